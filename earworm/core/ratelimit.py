"""The Spotify gate shared by every process and machine (DESIGN.md §1, §5; SECURITY.md RL-1, RL-2, RL-4).

Spotify counts calls per client id in a rolling 30-second window, and separately against a daily quota whose
429 says `QUOTA_EXCEEDED` with a `Retry-After` of hours. The gate, asked by `SpotifyClient` before each call
(`earworm.spotify.gate.SpotifyGate`), keeps every process under both:

- a budget of `SPOTIFY_WINDOW_BUDGET` calls per rolling `SPOTIFY_WINDOW_SECONDS`, per client id;
- enrichment (`kind="enrich"`) may use only `SPOTIFY_ENRICH_WINDOW_SHARE` of that window, so syncs always find
  room, and at most `SPOTIFY_ENRICH_DAILY_BUDGET` calls a day, well under Spotify's quota;
- `paused_until`: any 429 closes the gate for its `Retry-After` (seconds for the window, hours for the quota).

A refused call raises at once (`SpotifyRateLimited` or `SpotifyQuotaExceeded`) and makes no HTTP request;
nothing ever sleeps: the task layer reschedules with an ETA.

Two implementations, chosen by `spotify_gate()`:
- `DatabaseGate` (default): the `QuotaGate` row. The rolling window is a sliding-window counter (the previous
  fixed window's count weighted by how much of it still overlaps, plus the current one), admitted with one
  conditional `UPDATE … WHERE window_requests < allowed`, so concurrent workers can never overshoot. A call costs
  one SELECT and one UPDATE; no row lock is held and no transaction is open.
- `RedisGate` (when `REDIS_URL` is set): an exact rolling window in a sorted set, admitted by one Lua script
  using Redis's own clock. Pauses are written to the `QuotaGate` row too, so the UI shows them and they survive
  a Redis flush only as far as the row is read (`quota_gate_paused_until`).
"""

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from earworm.core.models import QuotaGate
from earworm.spotify.errors import SpotifyQuotaExceeded, SpotifyRateLimited

logger = logging.getLogger(__name__)

KIND_ENRICH = "enrich"
PAUSE_QUOTA = "quota"
PAUSE_RATE_LIMIT = "rate_limit"
DAY = timedelta(days=1)
# Conditional updates that lose a race are retried this often before the call is refused for a second.
ADMIT_ATTEMPTS = 5


def quota_gate_get(*, client_id: str | None = None) -> QuotaGate:
    gate, _ = QuotaGate.objects.get_or_create(client_id=client_id or settings.SPOTIFY_CLIENT_ID)
    return gate


def quota_gate_record_config_error(*, message: str, client_id: str | None = None) -> None:
    """Record an operator problem (e.g. `invalid_client`) for /healthz and the admin, and log it loudly."""
    gate = quota_gate_get(client_id=client_id)
    QuotaGate.objects.filter(pk=gate.pk).update(config_error=message[:2000], config_error_at=timezone.now())
    logger.error("Spotify configuration error for client %s: %s", gate.client_id, message)


def quota_gate_clear_config_error(*, client_id: str | None = None) -> None:
    """A successful token call proves the client credentials work again."""
    QuotaGate.objects.filter(client_id=client_id or settings.SPOTIFY_CLIENT_ID).exclude(config_error="").update(
        config_error="", config_error_at=None
    )


def quota_gate_paused_until(*, client_id: str | None = None) -> datetime | None:
    """When Spotify work for the client resumes, or None when it is not paused."""
    paused_until = (
        QuotaGate.objects.filter(client_id=client_id or settings.SPOTIFY_CLIENT_ID)
        .values_list("paused_until", flat=True)
        .first()
    )
    return paused_until if paused_until and paused_until > timezone.now() else None


def quota_gate_pause(*, until: datetime, reason: str, client_id: str | None = None) -> None:
    """Close the gate until `until`, unless it is already closed for longer. Returns nothing."""
    gate = quota_gate_get(client_id=client_id)
    changed = (
        QuotaGate.objects.filter(pk=gate.pk)
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until))
        .update(paused_until=until, pause_reason=reason[:32])
    )
    if changed:
        log = logger.warning if reason == PAUSE_QUOTA else logger.info
        log("Spotify gate for %s closed until %s (%s).", gate.client_id, until.isoformat(), reason)


def quota_gate_resume(*, client_id: str | None = None) -> None:
    """Open the gate now (operators, tests). Returns nothing."""
    QuotaGate.objects.filter(client_id=client_id or settings.SPOTIFY_CLIENT_ID).update(
        paused_until=None, pause_reason=""
    )
    if settings.REDIS_URL:
        _redis().delete(_redis_key(client_id or settings.SPOTIFY_CLIENT_ID, "pause"))


def _refuse_paused(paused_until: datetime, reason: str, now: datetime) -> None:
    wait = max((paused_until - now).total_seconds(), 0.0)
    if reason == PAUSE_QUOTA:
        raise SpotifyQuotaExceeded(wait, paused_until)
    raise SpotifyRateLimited(wait, f"Earworm is waiting {wait:.0f} s for Spotify's rate limit.")


def _window_limit(kind: str) -> int:
    budget = int(settings.SPOTIFY_WINDOW_BUDGET)
    if kind == KIND_ENRICH:
        return max(1, math.floor(budget * float(settings.SPOTIFY_ENRICH_WINDOW_SHARE)))
    return budget


class DatabaseGate:
    """The gate on the `QuotaGate` row (see the module docstring). One instance per client; cheap to build."""

    def __init__(self, *, client_id: str | None = None, clock: Callable[[], datetime] = timezone.now) -> None:
        self.client_id = client_id or settings.SPOTIFY_CLIENT_ID
        self._clock = clock
        # Calls this instance refused, for the benchmarks.
        self.refusals = 0

    def before_request(self, *, kind: str) -> None:
        """Admit one call or raise `SpotifyQuotaExceeded` / `SpotifyRateLimited`. Returns nothing."""
        window = timedelta(seconds=settings.SPOTIFY_WINDOW_SECONDS)
        limit = _window_limit(kind)
        gate = quota_gate_get(client_id=self.client_id)
        for _ in range(ADMIT_ATTEMPTS):
            now = self._clock()
            if gate.paused_until and gate.paused_until > now:
                self.refusals += 1
                _refuse_paused(gate.paused_until, gate.pause_reason, now)
            bucket = _bucket_start(now, window)
            if gate.window_started_at != bucket:
                self._roll_window(gate, bucket, window)
                gate.refresh_from_db()
                continue
            if kind == KIND_ENRICH and (gate.day_started_at is None or now - gate.day_started_at >= DAY):
                QuotaGate.objects.filter(pk=gate.pk, day_started_at=gate.day_started_at).update(
                    day_started_at=now, day_requests=0, day_enrich_requests=0
                )
                gate.refresh_from_db()
                continue
            if kind == KIND_ENRICH and gate.day_enrich_requests >= settings.SPOTIFY_ENRICH_DAILY_BUDGET:
                self.refusals += 1
                assert gate.day_started_at is not None
                wait = max((gate.day_started_at + DAY - now).total_seconds(), 1.0)
                raise SpotifyRateLimited(wait, "Today's enrichment budget is used up.")
            # Sliding-window estimate: the share of the previous window still inside the rolling one, plus now.
            elapsed = (now - bucket) / window
            carried = gate.window_prev_requests * (1.0 - elapsed)
            allowed = math.floor(limit - carried)
            if gate.window_requests >= allowed:
                self.refusals += 1
                wait = max((bucket + window - now).total_seconds(), 0.5)
                raise SpotifyRateLimited(wait, "Earworm's Spotify request budget for this half minute is used up.")
            admitted = QuotaGate.objects.filter(
                Q(paused_until__isnull=True) | Q(paused_until__lte=now),
                pk=gate.pk,
                window_started_at=bucket,
                window_requests__lt=allowed,
            )
            updates: dict[str, Any] = {
                "window_requests": F("window_requests") + 1,
                "day_requests": F("day_requests") + 1,
            }
            if kind == KIND_ENRICH:
                admitted = admitted.filter(day_enrich_requests__lt=settings.SPOTIFY_ENRICH_DAILY_BUDGET)
                updates["day_enrich_requests"] = F("day_enrich_requests") + 1
            if admitted.update(**updates) == 1:
                return
            gate.refresh_from_db()
        self.refusals += 1
        raise SpotifyRateLimited(1.0, "Earworm's Spotify request budget is busy; retry in a second.")

    def _roll_window(self, gate: QuotaGate, bucket: datetime, window: timedelta) -> None:
        previous = gate.window_requests if gate.window_started_at == bucket - window else 0
        # Compare-and-set on the old start: of several processes rolling at once, one wins, the rest re-read.
        QuotaGate.objects.filter(pk=gate.pk, window_started_at=gate.window_started_at).update(
            window_started_at=bucket, window_prev_requests=previous, window_requests=0
        )

    def after_response(self, *, status: int, retry_after: float | None, quota_exceeded: bool) -> None:
        """Close the gate on any 429 for its `Retry-After`. Returns nothing."""
        if status != 429:
            return
        wait = retry_after if retry_after is not None else 30.0
        quota_gate_pause(
            until=self._clock() + timedelta(seconds=wait),
            reason=PAUSE_QUOTA if quota_exceeded else PAUSE_RATE_LIMIT,
            client_id=self.client_id,
        )


def _bucket_start(now: datetime, window: timedelta) -> datetime:
    seconds = window.total_seconds()
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - (epoch % seconds), tz=now.tzinfo)


# Redis: KEYS = window zset, enrich day counter, pause; ARGV = window ms, limit, is_enrich, day budget, member.
# Returns {0} admitted, {1, reason, until_ms} paused, {2, wait_ms} window full, {3, wait_ms} day budget used.
_ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = redis.call('HMGET', KEYS[3], 'until', 'reason')
if pause[1] and tonumber(pause[1]) > now then return {1, pause[2], pause[1]} end
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local limit = tonumber(ARGV[2])
if ARGV[3] == '1' then
  local used = redis.call('ZCARD', KEYS[1])
  if used >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {2, tostring(tonumber(oldest[2]) + window - now)}
  end
  local day = tonumber(redis.call('GET', KEYS[2]) or '0')
  if day >= tonumber(ARGV[4]) then return {3, tostring(redis.call('PTTL', KEYS[2]))} end
  redis.call('INCR', KEYS[2])
  if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], 86400000) end
else
  local used = redis.call('ZCARD', KEYS[1])
  if used >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {2, tostring(tonumber(oldest[2]) + window - now)}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
return {0}
"""

# KEYS = pause hash; ARGV = wait ms, reason. Extends the pause, never shortens it; returns the until in ms.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local target = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if current >= target then return current end
redis.call('HSET', KEYS[1], 'until', target, 'reason', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], target)
return target
"""


@cache
def _redis_for(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def _redis() -> Any:
    return _redis_for(settings.REDIS_URL)


def _redis_key(client_id: str, part: str) -> str:
    return f"{settings.SPOTIFY_GATE_REDIS_PREFIX}:{client_id}:{part}"


class RedisGate:
    """The gate in Redis (see the module docstring): an exact rolling window, one round trip per call."""

    def __init__(self, *, client_id: str | None = None) -> None:
        self.client_id = client_id or settings.SPOTIFY_CLIENT_ID
        self.refusals = 0
        redis_client = _redis()
        self._admit = redis_client.register_script(_ADMIT_LUA)
        self._pause = redis_client.register_script(_PAUSE_LUA)

    def _keys(self) -> list[str]:
        return [_redis_key(self.client_id, part) for part in ("window", "enrich-day", "pause")]

    def before_request(self, *, kind: str) -> None:
        """Admit one call or raise `SpotifyQuotaExceeded` / `SpotifyRateLimited`. Returns nothing."""
        window_ms = int(settings.SPOTIFY_WINDOW_SECONDS * 1000)
        answer = self._admit(
            keys=self._keys(),
            args=[
                window_ms,
                _window_limit(kind),
                "1" if kind == KIND_ENRICH else "0",
                settings.SPOTIFY_ENRICH_DAILY_BUDGET,
                uuid.uuid4().hex,
            ],
        )
        code = int(answer[0])
        if code == 0:
            return
        self.refusals += 1
        if code == 1:
            reason = answer[1].decode() if isinstance(answer[1], bytes) else str(answer[1])
            until = datetime.fromtimestamp(int(answer[2]) / 1000, tz=UTC)
            _refuse_paused(until, reason, timezone.now())
        wait = max(int(answer[1]) / 1000, 0.5)
        if code == 3:
            raise SpotifyRateLimited(wait, "Today's enrichment budget is used up.")
        raise SpotifyRateLimited(wait, "Earworm's Spotify request budget for this half minute is used up.")

    def after_response(self, *, status: int, retry_after: float | None, quota_exceeded: bool) -> None:
        """Close the gate on any 429 for its `Retry-After`, in Redis and on the row. Returns nothing."""
        if status != 429:
            return
        wait = retry_after if retry_after is not None else 30.0
        reason = PAUSE_QUOTA if quota_exceeded else PAUSE_RATE_LIMIT
        self._pause(keys=[self._keys()[2]], args=[int(wait * 1000), reason])
        quota_gate_pause(until=timezone.now() + timedelta(seconds=wait), reason=reason, client_id=self.client_id)


def spotify_gate(*, client_id: str | None = None) -> DatabaseGate | RedisGate:
    """The deployment's gate: Redis when `REDIS_URL` is set, else the database row."""
    if settings.REDIS_URL:
        return RedisGate(client_id=client_id)
    return DatabaseGate(client_id=client_id)
