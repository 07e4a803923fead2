"""Mutable emulator state: clock, settings, clients, grants and tokens, plays, limits, faults, counters.

One ``State`` per server. Everything is guarded by a single re-entrant lock: requests are few and
short, and one lock makes every control-API operation atomic with respect to Web API calls.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .generator import DAY_MS, Play, World

REFRESH_POLICIES = ("omit", "rotate", "rotate_invalidate", "random")
MODES = ("development", "extended")
FAULT_KINDS = (
    "429", "quota", "500", "502", "503", "timeout", "malformed_json", "truncated",
    "revoked_refresh", "expired_consent",
)  # fmt: skip
DEFAULT_CLIENT_ID = "earworm-demo-client"
DEFAULT_CLIENT_SECRET = "earworm-demo-secret"
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1:8000/api/callback/",)


def iso_ms(ms: int) -> str:
    """``2026-04-20T10:00:00.123Z``: Spotify's ``played_at`` format (FACTS §2.3)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value: Any) -> int:
    """Accept epoch ms (int) or an ISO-8601 string; return epoch ms."""
    if isinstance(value, int | float):
        return int(value)
    text = str(value).replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    name: str = "Earworm"


@dataclass
class Settings:
    mode: str = "development"
    access_token_ttl: int = 3600
    refresh_token_lifetime_days: int = 183  # "6 months" after consent
    code_ttl: int = 600
    refresh_policy: str = "omit"
    rate_limit: int = 600  # requests per rolling window, per client
    rate_window_seconds: int = 30
    quota_per_day: int = 50_000  # requests per rolling 24 h, per client
    quota_retry_after: int | None = None  # None: seconds until the oldest counted call leaves the day
    timeout_seconds: float = 35.0  # how long a "timeout" fault sleeps
    auto_listen: bool = True  # users keep listening (deterministically) as the clock moves on
    api_backlog_hours: int = 24  # plays before clock start that recently-played still serves
    export_days: int = 730  # how far back the export's history reaches
    # Demo mode: every user has at least this many plays in recently-played at start, so a first sync
    # shows something even for a user whose generated history is quiet right now.
    recent_plays: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown setting {key!r}")
            if key == "mode" and value not in MODES:
                raise ValueError(f"mode must be one of {MODES}")
            if key == "refresh_policy" and value not in REFRESH_POLICIES:
                raise ValueError(f"refresh_policy must be one of {REFRESH_POLICIES}")
            setattr(self, key, value)


class Clock:
    """Emulator time in epoch ms: a start instant plus real elapsed time plus manual offsets.

    Frozen clocks (``--frozen-clock``) do not tick with real time; only advance/set move them,
    which makes tests exact."""

    def __init__(self, start_ms: int, frozen: bool = False) -> None:
        self.start_ms = start_ms
        self.frozen = frozen
        self._mono0 = time.monotonic()
        self._offset = 0

    def now_ms(self) -> int:
        real = 0 if self.frozen else int((time.monotonic() - self._mono0) * 1000)
        return self.start_ms + real + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += int(seconds * 1000)

    def set(self, ms: int) -> None:
        self._offset += ms - self.now_ms()


@dataclass
class Code:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    expires_ms: int
    code_challenge: str | None
    consent_ms: int = 0


@dataclass
class Grant:
    """One consent: a user approved a client. Its refresh tokens die 6 months after ``consent_ms``."""

    grant_id: int
    client_id: str
    user_id: str
    scope: str
    consent_ms: int
    pkce: bool
    expires_ms: int
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: int
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    user_id: str
    scope: str
    expires_ms: int


@dataclass
class Fault:
    id: int
    endpoint: str
    kind: str
    count: int | None = None  # apply to the next N matching calls
    fraction: float | None = None  # or to this share of matching calls
    retry_after: int = 5
    delay_seconds: float | None = None
    applied: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Counters:
    calls: collections.Counter = field(default_factory=collections.Counter)
    by_client: dict[str, collections.Counter] = field(default_factory=dict)
    by_user: dict[str, collections.Counter] = field(default_factory=dict)
    statuses: dict[str, collections.Counter] = field(default_factory=dict)
    grants: collections.Counter = field(default_factory=collections.Counter)
    faults: collections.Counter = field(default_factory=collections.Counter)
    # Web API requests of one user in flight at once: the most ever seen, and how many requests started
    # while another of the same user was still being answered (proof that a client never overlaps them).
    max_concurrent_by_user: collections.Counter = field(default_factory=collections.Counter)
    overlaps_by_user: collections.Counter = field(default_factory=collections.Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "by_client": {k: dict(v) for k, v in self.by_client.items()},
            "by_user": {k: dict(v) for k, v in self.by_user.items()},
            "statuses": {k: dict(v) for k, v in self.statuses.items()},
            "token_grants": dict(self.grants),
            "refresh_grants": self.grants.get("refresh_token", 0),
            "faults_applied": dict(self.faults),
            "max_concurrent_by_user": dict(self.max_concurrent_by_user),
            "overlaps_by_user": dict(self.overlaps_by_user),
        }


def load_clients(path: str | None) -> list[Client]:
    """Clients from a JSON file: ``[{"client_id", "client_secret", "redirect_uris": [...]}, ...]``."""
    if not path:
        return [Client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, list(DEFAULT_REDIRECT_URIS))]
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(raw, dict):
        raw = raw.get("clients", [])
    return [
        Client(c["client_id"], c["client_secret"], list(c.get("redirect_uris", DEFAULT_REDIRECT_URIS)),
               c.get("name", "Earworm"))
        for c in raw
    ]  # fmt: skip


class State:
    def __init__(
        self,
        seed: int = 1,
        clients: list[Client] | None = None,
        settings: Settings | None = None,
        start_ms: int | None = None,
        frozen_clock: bool = False,
        n_artists: int = 5000,
        n_tracks: int = 20000,
        n_users: int = 5,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self._init_args = dict(n_artists=n_artists, n_tracks=n_tracks, n_users=n_users)
        self.initial_clients = clients or load_clients(None)
        self.initial_settings = dataclasses.replace(settings or Settings())
        self.initial_start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self.frozen_clock = frozen_clock
        self.world = World(seed, n_artists, n_tracks, n_users)
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state right after start: same seed, clock, clients and settings."""
        with self.lock:
            self.settings = dataclasses.replace(self.initial_settings)
            self.clients = {c.client_id: dataclasses.replace(c) for c in self.initial_clients}
            self.clock = Clock(self.initial_start_ms, self.frozen_clock)
            self.codes: dict[str, Code] = {}
            self.grants: dict[int, Grant] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.approved: set[tuple[str, str]] = set()  # (client, user) for silent re-authorize
            self.pending: dict[str, dict[str, str]] = {}  # consent requests awaiting Agree/Cancel
            self.faults: list[Fault] = []
            self.counters = Counters()
            self.in_flight: collections.Counter = collections.Counter()
            self.windows: dict[str, collections.deque] = {}
            self.quota: dict[str, collections.deque] = {}
            self.allow_list = {u.id: u.allow_listed for u in self.world.users}
            self.fault_rng = random.Random(f"{self.seed}:faults")
            self.token_rng = random.Random(f"{self.seed}:tokens")
            # Plays: the recent window starts ``api_backlog_hours`` before the clock start. Older
            # plays belong to the export; newer ones are materialized as the clock moves.
            self.api_from_ms = self.initial_start_ms - self.settings.api_backlog_hours * 3_600_000
            self.plays: dict[str, list[Play]] = {u.id: [] for u in self.world.users}
            self.materialized_until = self.api_from_ms
            self._next_id = 1
            if self.settings.recent_plays:
                self._top_up_recent_plays(self.settings.recent_plays)

    def next_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def new_token(self, prefix: str) -> str:
        # Shaped like Spotify's opaque tokens (access "BQ…", refresh "AQ…"); unpredictable on purpose.
        return prefix + secrets.token_urlsafe(96)[:118]

    # -- plays -------------------------------------------------------------------------------
    def materialize(self) -> None:
        """Append the generated plays that ended since the last call (if users auto-listen)."""
        with self.lock:
            now = self.now_ms()
            if now <= self.materialized_until:
                return
            if self.settings.auto_listen:
                for user in self.world.users:
                    new = self.world.plays_between(user.index, self.materialized_until, now)
                    self.plays[user.id].extend(dataclasses.replace(p, source="api") for p in new)
                    self.plays[user.id].sort(key=lambda p: p.end_ms)
            self.materialized_until = now

    def _top_up_recent_plays(self, minimum: int) -> None:
        """Give every user a listening session that ends just before the clock start, so recently-played
        serves at least `minimum` plays. Deterministic for a seed."""
        start = self.initial_start_ms
        for user in self.world.users:
            have = len(self.world.plays_between(user.index, self.api_from_ms, start))
            rng = random.Random(f"{self.seed}:recent:{user.id}")
            favourites = self.world.profile(user.index).favourite_artists
            end = start - 60_000
            for _ in range(max(0, minimum - have)):
                index = self.world._artist_track(rng, rng.choice(favourites))
                duration = self.world.catalog.track(index).duration_ms
                self.plays[user.id].append(Play(user.id, end, duration, "track", track_index=index, source="api"))
                end -= duration + rng.randint(0, 5_000)
            self.plays[user.id].sort(key=lambda p: p.end_ms)

    def add_play(self, play: Play) -> None:
        with self.lock:
            lst = self.plays.setdefault(play.user_id, [])
            lst.append(play)
            lst.sort(key=lambda p: p.end_ms)

    def export_plays(self, user_index: int, records: int | None = None) -> list[Play]:
        """The user's older history, which only the data export contains."""
        start = self.api_from_ms - self.settings.export_days * DAY_MS
        plays = [
            dataclasses.replace(p, source="export")
            for p in self.world.plays_between(user_index, start, self.api_from_ms - 1)
        ]
        if records is not None:
            plays = plays[-records:] if records > 0 else []
        # ~1 % of rows appear twice a few seconds apart, as in real exports (SOURCES.md).
        for p in plays:
            key = f"{self.seed}:dup:{p.user_id}:{p.end_ms}"
            if random.Random(key).random() < 0.01:
                p.duplicate_rows = 1
        return plays

    # -- limits ------------------------------------------------------------------------------
    def check_limits(self, client_id: str) -> tuple[str, int] | None:
        """Count one Web API call for ``client_id``. Returns ("quota"|"rate", retry_after) if refused."""
        with self.lock:
            now = self.now_ms()
            s = self.settings
            day = self.quota.setdefault(client_id, collections.deque())
            while day and day[0] <= now - DAY_MS:
                day.popleft()
            if len(day) >= s.quota_per_day:
                retry = s.quota_retry_after or max(3600, (day[0] + DAY_MS - now + 999) // 1000)
                return "quota", int(retry)
            win = self.windows.setdefault(client_id, collections.deque())
            while win and win[0] <= now - s.rate_window_seconds * 1000:
                win.popleft()
            if len(win) >= s.rate_limit:
                retry = max(1, (win[0] + s.rate_window_seconds * 1000 - now + 999) // 1000)
                return "rate", int(retry)
            win.append(now)
            day.append(now)
            return None

    # -- faults ------------------------------------------------------------------------------
    def take_fault(self, endpoint: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in ("*", endpoint) or (kinds is not None and fault.kind not in kinds):
                    continue
                if fault.count is not None:
                    if fault.applied >= fault.count:
                        continue
                elif fault.fraction is not None and self.fault_rng.random() >= fault.fraction:
                    continue
                fault.applied += 1
                self.counters.faults[fault.kind] += 1
                return fault
            return None

    # -- counters ----------------------------------------------------------------------------
    def count(self, endpoint: str, client_id: str | None = None, user_id: str | None = None) -> None:
        with self.lock:
            self.counters.calls[endpoint] += 1
            if client_id:
                self.counters.by_client.setdefault(client_id, collections.Counter())[endpoint] += 1
            if user_id:
                self.counters.by_user.setdefault(user_id, collections.Counter())[endpoint] += 1

    def request_started(self, user_id: str) -> None:
        """A Web API request of ``user_id`` arrived; pair with ``request_finished``."""
        with self.lock:
            self.in_flight[user_id] += 1
            current = self.in_flight[user_id]
            if current > 1:
                self.counters.overlaps_by_user[user_id] += 1
            if current > self.counters.max_concurrent_by_user[user_id]:
                self.counters.max_concurrent_by_user[user_id] = current

    def request_finished(self, user_id: str) -> None:
        with self.lock:
            self.in_flight[user_id] = max(0, self.in_flight[user_id] - 1)

    def count_status(self, endpoint: str, status: int) -> None:
        with self.lock:
            self.counters.statuses.setdefault(endpoint, collections.Counter())[str(status)] += 1
