"""Deterministic catalog, users and listening behaviour, all derived from one seed.

Nothing here is random at run time: every value comes from ``random.Random`` seeded with a string
that names the seed and the object, so the same seed always yields the same artists, tracks,
albums, users and plays, whatever order they are asked for in. The catalog is cheap arithmetic
plus a few integer lists (album boundaries, album artists), so 10x the default size builds in well
under a second; object details are computed on demand and cached.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import threading
from dataclasses import dataclass, field
from functools import lru_cache

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Word pools. Non-ASCII on purpose: the app must store and show these correctly.
_FIRST = [
    "Alex",
    "Maya",
    "Jonas",
    "Zoë",
    "Sigrún",
    "Mateo",
    "Aiko",
    "Łukasz",
    "Amélie",
    "Björn",
    "Noor",
    "Dmitri",
    "Chloé",
    "Kwame",
    "Inés",
    "Oskar",
    "Yūki",
    "Søren",
    "Ana",
    "Leon",
    "Marta",
    "Rafael",
]
_LAST = [
    "Stone",
    "Rivers",
    "Novak",
    "Sørensen",
    "García",
    "Müller",
    "Okafor",
    "Tanaka",
    "Dubois",
    "Kowalski",
    "Haddad",
    "Lindqvist",
    "Ferreira",
    "Nakamura",
    "O'Brien",
    "Ćorić",
    "Jensen",
    "Moreau",
    "Silva",
]
_ADJ = [
    "Velvet",
    "Electric",
    "Silent",
    "Golden",
    "Neon",
    "Broken",
    "Midnight",
    "Crystal",
    "Wild",
    "Hollow",
    "Paper",
    "Lunar",
    "Savage",
    "Gentle",
    "Atomic",
    "Frozen",
    "Crimson",
    "Distant",
    "Sacred",
    "Tired",
]
_NOUN = [
    "Wolves",
    "Echoes",
    "Machines",
    "Rivers",
    "Ghosts",
    "Lights",
    "Horizons",
    "Tigers",
    "Mirrors",
    "Satellites",
    "Dreamers",
    "Gardens",
    "Oceans",
    "Strangers",
    "Cities",
    "Flowers",
    "Engines",
]
_SPECIAL_ARTISTS = [
    "Mø",
    "Sigur Þór",
    "Павук",
    "東京スカパラダイス",
    "Ñandú",
    "Beyoncé Trío",
    "Les Étoiles",
    "Ólafur & Co",
    "BAILÃO",
    "Habaďúra",
    "Lügenpack",
    "Høst",
    "Mañana Club",
    "Ärzte der Nacht",
    "Ελληνικά Όνειρα",
]
_TITLE_WORDS = [
    "Love",
    "Night",
    "Fire",
    "Home",
    "Summer",
    "Rain",
    "Heart",
    "Dance",
    "Gold",
    "Run",
    "Blue",
    "Sky",
    "Time",
    "Dream",
    "Shadow",
    "Light",
    "Ocean",
    "Stay",
    "Forever",
    "Alone",
    "Closer",
    "Wild",
    "Storm",
]
_SPECIAL_TITLES = [
    "Canción del Mar",
    "Mañana",
    "Ça Ira",
    "Über Alles",
    "Сон",
    "夜明け",
    "“The Fall Off”",
    "Manhã",
    "Smörgåsbord",
    "Grüße",
    "¿Cómo Terminamos Aquí?",
    "Ö",
    "Déjà Vu",
    "Niño",
    "Słońce",
    "Ψυχή",
]
_GENRES = [
    "indie pop",
    "rock",
    "pop",
    "hip hop",
    "techno",
    "house",
    "jazz",
    "classical",
    "folk",
    "metal",
    "r&b",
    "soul",
    "ambient",
    "punk",
    "reggaeton",
    "k-pop",
    "afrobeats",
    "drum and bass",
    "shoegaze",
    "norteño",
    "música mexicana",
    "chanson",
    "schlager",
    "j-pop",
    "bossa nova",
    "post-rock",
    "trap",
]
_LABELS = ["Night Owl Records", "Polar Sound", "Estrella Música", "Blue Room", "Kōgen Label", "Indie Co."]
_PODCASTS = [
    ("Science Weekly", ["Black holes", "Octopus minds", "Sleep", "Volcanoes"]),
    ("Rozmowy o muzyce", ["Odcinek 1", "Odcinek 2", "Gość specjalny"]),
    ("The Daily Run", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
]
_USER_NAMES = ["Alex Doe", "Zoë Müller", "Дарья Смирнова", "佐藤 花子", "Seán Ó Briain"]
_PLATFORMS = ["android", "ios", "osx", "windows", "web_player"]
_COUNTRIES = ["DE", "GB", "US", "PL", "SE", "ES", "JP", "ZZ"]
# Relative chance of a listening session starting at each local hour (0-23): quiet at night,
# commute peaks, evening peak. Sessions never start before 06:00 so days never overlap.
_HOUR_WEIGHTS = [0, 0, 0, 0, 0, 0, 1, 3, 4, 2, 1, 1, 2, 2, 1, 1, 1, 2, 3, 4, 4, 3, 2, 1]


def spotify_id(seed: int, kind: str, index: int) -> str:
    """A 22-character base62 id, stable for (seed, kind, index), like Spotify's."""
    n = int.from_bytes(hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=16).digest(), "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 62)
        out.append(BASE62[r])
    return "".join(out)


def is_base62_id(value: str) -> bool:
    return len(value) == 22 and all(c in BASE62 for c in value)


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _title(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.12:
        return rng.choice(_SPECIAL_TITLES)
    if roll < 0.5:
        return rng.choice(_TITLE_WORDS)
    if roll < 0.85:
        return f"{rng.choice(_TITLE_WORDS)} {rng.choice(_TITLE_WORDS)}"
    return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"


@dataclass(frozen=True)
class Artist:
    index: int
    id: str
    name: str
    genres: tuple[str, ...]
    popularity: int
    followers: int


@dataclass(frozen=True)
class Album:
    index: int
    id: str
    name: str
    album_type: str
    artist_indices: tuple[int, ...]
    first_track: int
    total_tracks: int
    release_date: str
    release_date_precision: str
    label: str
    popularity: int
    upc: str


@dataclass(frozen=True)
class Track:
    index: int
    id: str
    name: str
    album_index: int
    artist_indices: tuple[int, ...]
    duration_ms: int
    explicit: bool
    track_number: int
    isrc: str
    popularity: int


@dataclass(frozen=True)
class LocalTrack:
    """A local file the user added to Spotify: no Spotify id, a ``spotify:local:`` URI."""

    name: str
    artist: str
    album: str
    duration_ms: int

    @property
    def uri(self) -> str:
        def enc(s: str) -> str:
            return s.replace(" ", "+").replace(":", "%3A")

        return f"spotify:local:{enc(self.artist)}:{enc(self.album)}:{enc(self.name)}:{self.duration_ms // 1000}"


class Catalog:
    """Artists, albums and tracks. Only boundaries are stored; details are derived per index."""

    def __init__(self, seed: int, n_artists: int = 5000, n_tracks: int = 20000) -> None:
        self.seed = seed
        self.n_artists = n_artists
        self.n_tracks = n_tracks
        rng = _rng(seed, "catalog")
        self.album_first: list[int] = []
        self.album_artist: list[int] = []
        self.artist_albums: dict[int, list[int]] = {}
        sizes = [1, 1, 1, 2, 4, 6, 8, 10, 10, 12, 12, 14]
        t = 0
        while t < n_tracks:
            j = len(self.album_first)
            # Squaring skews album ownership toward low indices: a few prolific artists, a long tail.
            artist = int(n_artists * rng.random() ** 2)
            self.album_first.append(t)
            self.album_artist.append(artist)
            self.artist_albums.setdefault(artist, []).append(j)
            t += rng.choice(sizes)
        self.n_albums = len(self.album_first)
        self.artists_with_albums = sorted(self.artist_albums)
        self._ids: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    # -- ids ---------------------------------------------------------------------------------
    def _id_map(self, kind: str) -> dict[str, int]:
        with self._lock:
            if kind not in self._ids:
                count = {"artist": self.n_artists, "album": self.n_albums, "track": self.n_tracks}[kind]
                self._ids[kind] = {spotify_id(self.seed, kind, i): i for i in range(count)}
            return self._ids[kind]

    def lookup(self, kind: str, sid: str) -> int | None:
        return self._id_map(kind).get(sid)

    # -- objects -----------------------------------------------------------------------------
    @lru_cache(maxsize=100_000)  # noqa: B019 - the catalog lives as long as the process
    def artist(self, i: int) -> Artist:
        rng = _rng(self.seed, "artist", i)
        roll = rng.random()
        if roll < 0.08:
            name = rng.choice(_SPECIAL_ARTISTS) + ("" if rng.random() < 0.5 else f" {i}")
        elif roll < 0.45:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        elif roll < 0.75:
            name = f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}"
        else:
            name = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
        # Many real artists are "not yet classified": an empty genres list (FACTS §3.4).
        genres = () if rng.random() < 0.45 else tuple(rng.sample(_GENRES, rng.randint(1, 3)))
        popularity = max(0, min(100, int(90 - 80 * (i / max(1, self.n_artists)) ** 0.5 + rng.randint(-5, 5))))
        return Artist(i, spotify_id(self.seed, "artist", i), name, genres, popularity, rng.randint(0, 5_000_000))

    @lru_cache(maxsize=100_000)  # noqa: B019
    def album(self, j: int) -> Album:
        rng = _rng(self.seed, "album", j)
        first = self.album_first[j]
        end = self.album_first[j + 1] if j + 1 < self.n_albums else self.n_tracks
        total = end - first
        album_type = "single" if total <= 2 else ("compilation" if rng.random() < 0.05 else "album")
        year = rng.randint(1965, 2026)
        precision_roll = rng.random()
        if precision_roll < 0.1:
            release_date, precision = str(year), "year"
        elif precision_roll < 0.15:
            release_date, precision = f"{year}-{rng.randint(1, 12):02d}", "month"
        else:
            release_date, precision = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "day"
        name = _title(rng)
        artists: tuple[int, ...] = (self.album_artist[j],)
        if rng.random() < 0.05:
            artists = (*artists, rng.randrange(self.n_artists))
        upc = "".join(str(rng.randint(0, 9)) for _ in range(12))
        return Album(
            j, spotify_id(self.seed, "album", j), name, album_type, artists, first, total,
            release_date, precision, rng.choice(_LABELS), rng.randint(0, 100), upc,
        )  # fmt: skip

    def album_of_track(self, t: int) -> int:
        return bisect.bisect_right(self.album_first, t) - 1

    @lru_cache(maxsize=200_000)  # noqa: B019
    def track(self, t: int) -> Track:
        rng = _rng(self.seed, "track", t)
        j = self.album_of_track(t)
        album = self.album(j)
        name = album.name if album.total_tracks == 1 else _title(rng)
        artists: tuple[int, ...] = album.artist_indices[:1]
        roll = rng.random()
        if roll < 0.05:  # tracks by several artists ("feat."), a case the app must handle
            artists = (*artists, rng.randrange(self.n_artists), rng.randrange(self.n_artists))
        elif roll < 0.2:
            artists = (*artists, rng.randrange(self.n_artists))
        artists = tuple(dict.fromkeys(artists))
        duration = rng.randint(95_000, 330_000) if rng.random() < 0.95 else rng.randint(330_000, 1_010_150)
        isrc = f"{rng.choice(['US', 'GB', 'DE', 'SE', 'JP', 'BR'])}{rng.choice(['AB1', 'XY7', 'QM4'])}"
        isrc += f"{rng.randint(0, 99):02d}{rng.randint(0, 99999):05d}"
        return Track(
            t, spotify_id(self.seed, "track", t), name, j, artists, duration, rng.random() < 0.15,
            t - album.first_track + 1, isrc, rng.randint(0, 100),
        )  # fmt: skip


@dataclass(frozen=True)
class User:
    index: int
    id: str
    account_id: str
    display_name: str
    allow_listed: bool


@dataclass
class Profile:
    """How one user listens. Drives :func:`day_plays`."""

    favourite_artists: list[int]
    playlists: list[list[int]]
    local_tracks: list[LocalTrack]
    sessions_per_day: float
    skip_rate: float
    tz_hours: int
    platform: str
    country: str


@dataclass
class Play:
    """One stream of one item. ``end_ms`` is when it stopped; Spotify reports that as ``played_at``
    in the Web API (ms precision) and as ``ts`` in the export (whole seconds)."""

    user_id: str
    end_ms: int
    ms_played: int
    kind: str  # "track" | "local" | "episode"
    track_index: int | None = None
    local: LocalTrack | None = None
    episode: tuple[str, str, str] | None = None  # (show, episode name, episode id)
    context: tuple[str, str] | None = None  # (type, id) e.g. ("album", "abc…")
    reason_start: str = "trackdone"
    reason_end: str = "trackdone"
    shuffle: bool = False
    skipped: bool = False
    offline: bool = False
    source: str = "api"  # "api" (served by recently-played) or "export" (older history, export only)
    duplicate_rows: int = 0  # export only: extra copies of this row a few seconds later
    extra: dict = field(default_factory=dict)

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.ms_played

    @property
    def visible_in_api(self) -> bool:
        # Recently played lists tracks (no podcasts) played for more than 30 s (FACTS §2.3).
        return self.kind in ("track", "local") and self.ms_played > 30_000


class World:
    """Catalog + users + per-user listening streams for one seed."""

    def __init__(self, seed: int = 1, n_artists: int = 5000, n_tracks: int = 20000, n_users: int = 5) -> None:
        self.seed = seed
        self.catalog = Catalog(seed, n_artists, n_tracks)
        self.users: list[User] = []
        for k in range(n_users):
            rng = _rng(seed, "user", k)
            name = _USER_NAMES[k % len(_USER_NAMES)] + ("" if k < len(_USER_NAMES) else f" {k}")
            uid = "31" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))
            account_id = "".join(rng.choice(BASE62) for _ in range(10))
            # The fifth user (and every fifth after) is not allow-listed: a development-mode app
            # has at most 5 users, and a user outside the list gets 403 on every Web API call.
            self.users.append(User(k, uid, account_id, name, allow_listed=(k % 5 != 4)))
        self._profiles: dict[int, Profile] = {}
        self._day_cache: dict[tuple[int, int], list[Play]] = {}
        self._lock = threading.Lock()

    def user(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def profile(self, k: int) -> Profile:
        with self._lock:
            if k in self._profiles:
                return self._profiles[k]
        rng = _rng(self.seed, "profile", k)
        cat = self.catalog
        favs = [rng.choice(cat.artists_with_albums[: max(50, len(cat.artists_with_albums) // 4)]) for _ in range(12)]
        favs += rng.sample(cat.artists_with_albums, min(8, len(cat.artists_with_albums)))
        playlists = []
        for _ in range(3):
            tracks = [self._artist_track(rng, rng.choice(favs)) for _ in range(40)]
            tracks += [rng.randrange(cat.n_tracks) for _ in range(20)]
            playlists.append(tracks)
        local = [
            LocalTrack(_title(rng), f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "Home Recordings",
                       rng.randint(120_000, 300_000))
            for _ in range(5)
        ]  # fmt: skip
        prof = Profile(
            favs, playlists, local, rng.uniform(1.5, 3.5), rng.uniform(0.08, 0.3), rng.choice([-5, 0, 1, 2, 9]),
            rng.choice(_PLATFORMS), rng.choice(_COUNTRIES),
        )  # fmt: skip
        with self._lock:
            self._profiles[k] = prof
        return prof

    def _artist_track(self, rng: random.Random, artist: int) -> int:
        albums = self.catalog.artist_albums.get(artist) or [rng.randrange(self.catalog.n_albums)]
        album = self.catalog.album(rng.choice(albums))
        return album.first_track + rng.randrange(album.total_tracks)

    def day_plays(self, k: int, day: int) -> list[Play]:
        """Every play of user ``k`` on local day ``day`` (days since the epoch in the user's zone)."""
        key = (k, day)
        with self._lock:
            if key in self._day_cache:
                return self._day_cache[key]
        plays = self._make_day(k, day)
        with self._lock:
            if len(self._day_cache) > 20_000:
                self._day_cache.clear()
            self._day_cache[key] = plays
        return plays

    def _make_day(self, k: int, day: int) -> list[Play]:
        user, prof, cat = self.users[k], self.profile(k), self.catalog
        rng = _rng(self.seed, "day", k, day)
        day_start = day * DAY_MS - prof.tz_hours * HOUR_MS  # local midnight, in UTC ms
        day_end = day_start + DAY_MS
        n_sessions = max(0, round(rng.gauss(prof.sessions_per_day, 1.0)))
        starts = sorted(
            day_start + rng.choices(range(24), _HOUR_WEIGHTS)[0] * HOUR_MS + rng.randrange(HOUR_MS)
            for _ in range(n_sessions)
        )
        plays: list[Play] = []
        cursor = day_start
        for start in starts:
            t = max(start, cursor + 60_000)
            if t >= day_end - 10 * 60_000:
                break
            if rng.random() < 0.06:  # a podcast episode: export-only, never in recently played
                show, episodes = rng.choice(_PODCASTS)
                ep = rng.randrange(len(episodes))
                ms = rng.randint(60_000, 4_294_320)
                ep_id = spotify_id(self.seed, f"episode:{show}", ep)
                reason_end = rng.choice(["endplay", "trackdone"])
                episode = (show, episodes[ep], ep_id)
                plays.append(
                    Play(
                        user.id, t + ms, ms, "episode", episode=episode, reason_start="clickrow", reason_end=reason_end
                    )
                )
                cursor = t + ms
                continue
            mode = rng.choices(["album", "playlist", "artist", "none"], [25, 35, 15, 25])[0]
            context: tuple[str, str] | None = None
            queue: list[int] = []
            if mode == "album":
                album = cat.album(cat.album_of_track(self._artist_track(rng, rng.choice(prof.favourite_artists))))
                queue = list(range(album.first_track, album.first_track + album.total_tracks))
                context = ("album", album.id)
            elif mode == "playlist":
                p = rng.randrange(len(prof.playlists))
                queue = rng.sample(prof.playlists[p], min(25, len(prof.playlists[p])))
                context = ("playlist", spotify_id(self.seed, f"playlist:{k}", p))
            elif mode == "artist":
                artist = rng.choice(prof.favourite_artists)
                queue = [self._artist_track(rng, artist) for _ in range(15)]
                context = ("artist", cat.artist(artist).id)
            else:
                for _ in range(20):
                    if rng.random() < 0.6:
                        queue.append(self._artist_track(rng, rng.choice(prof.favourite_artists)))
                    else:
                        queue.append(rng.randrange(cat.n_tracks))
            shuffle = mode == "playlist" and rng.random() < 0.7
            length = rng.randint(3, 20)
            reason_start = "clickrow"
            for n, track_index in enumerate(queue[:length]):
                if t >= day_end - 10 * 60_000:
                    break
                local: LocalTrack | None = None
                if mode == "none" and rng.random() < 0.04:
                    local = rng.choice(prof.local_tracks)
                duration = local.duration_ms if local else cat.track(track_index).duration_ms
                skipped = rng.random() < prof.skip_rate
                # Skips are mostly short (not listed by the API) but some pass the 30 s mark.
                ms = rng.randint(1_000, min(duration, 60_000)) if skipped else duration - rng.randint(0, 400)
                play = Play(
                    user.id, t + ms, ms, "local" if local else "track",
                    track_index=None if local else track_index, local=local,
                    context=context if rng.random() > 0.05 else None,
                    reason_start=reason_start, reason_end="fwdbtn" if skipped else "trackdone",
                    shuffle=shuffle, skipped=skipped, offline=rng.random() < 0.03,
                )  # fmt: skip
                plays.append(play)
                t = play.end_ms + rng.randint(0, 3_000)
                reason_start = "fwdbtn" if skipped else "trackdone"
                if n < length - 1 and not skipped and rng.random() < 0.06:
                    # Repeat: the same track again straight away; a real, separate play.
                    plays.append(
                        Play(user.id, t + duration, duration, play.kind, track_index=play.track_index,
                             local=local, context=context, reason_start="trackdone", shuffle=shuffle)
                    )  # fmt: skip
                    t += duration + rng.randint(0, 3_000)
            cursor = t
        if rng.random() < 0.5 and plays:
            plays[-1].reason_end = "endplay"
        return plays

    def plays_between(self, k: int, start_ms: int, end_ms: int) -> list[Play]:
        """Generated plays of user ``k`` ending in ``(start_ms, end_ms]``, oldest first."""
        tz = self.profile(k).tz_hours
        first_day = (start_ms + tz * HOUR_MS) // DAY_MS - 1
        last_day = (end_ms + tz * HOUR_MS) // DAY_MS + 1
        out: list[Play] = []
        for day in range(first_day, last_day + 1):
            out.extend(p for p in self.day_plays(k, day) if start_ms < p.end_ms <= end_ms)
        out.sort(key=lambda p: p.end_ms)
        return out
