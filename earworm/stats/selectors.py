"""Reads of statistics from the rollups (docs/stats.md); the Play table is read only for the few days at the ends
of a range that no whole month covers, by track."""

# ruff: noqa: S608  (SQL here interpolates only table names, fixed snippets and %s placeholders)

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, models
from django.utils import timezone

from earworm.accounts.models import User
from earworm.catalog.models import Album, Artist, ArtistGenre, Genre, Track, TrackArtist
from earworm.core.exceptions import ApplicationError
from earworm.history.models import Play
from earworm.stats.models import Grain, HourRollup, RollupState, TrackRollup
from earworm.stats.services import PLAY_MS_SQL, local_parts_sql, plays_in_days_sql, user_zone

T = TypeVar("T")
RANGE_HELP = "Use 4w, 6m, 12m, all, a year such as 2024, or FROM..TO such as 2024-01-01..2024-03-31."
TOP_MAX = 100
YEAR_MIN, YEAR_MAX = 2000, 2100

TR = TrackRollup._meta.db_table
HR = HourRollup._meta.db_table
TA = TrackArtist._meta.db_table
AG = ArtistGenre._meta.db_table
TRACK = Track._meta.db_table


# Cached statistics live this long at most. Plays reach them at once (every refresh bumps the user's version);
# a catalog change without plays (enrichment naming a track's artists) shows within this time.
STATS_CACHE_SECONDS = 15 * 60
# Part of every cache key, raised whenever what the rollups hold changes (2: migration stats 0007 removed the
# track year rows). During an upgrade, processes of the previous release run for a few seconds against the
# migrated tables; what they compute then is cached under their own keys and never served by this release.
CACHE_LAYOUT = 2


def _stats_version(user_id: int) -> str:
    """The user's rollup version and a stamp of the catalog links, in one round trip.

    Every refresh bumps the version. Catalog services replace a track's artists or an artist's genres by
    delete + insert, so new link ids move the stamp and artist and genre statistics are recomputed.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT version FROM {RollupState._meta.db_table} WHERE user_id = %s), "
            f"(SELECT MAX(id) FROM {TA}), (SELECT MAX(id) FROM {AG})",
            [user_id],
        )
        version, links, genres = cursor.fetchone()
    return f"{version or 0}.{links or 0}.{genres or 0}"


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """Cache a statistics selector per user, rollup version and arguments (docs/stats.md)."""

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> T:
        user_id = kwargs["user_id"]
        args = hashlib.sha256(repr(sorted(kwargs.items())).encode()).hexdigest()[:32]
        key = f"stats:{CACHE_LAYOUT}:{fn.__name__}:{user_id}:{_stats_version(user_id)}:{args}"
        found = cache.get(key, _MISSING)
        if found is not _MISSING:
            return found
        value = fn(**kwargs)
        cache.set(key, value, STATS_CACHE_SECONDS)
        return value

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper


_MISSING = object()


class InvalidRange(ApplicationError):
    def __init__(self, value: str) -> None:
        super().__init__(f"Unknown range {value[:40]!r}. {RANGE_HELP}", extra={"field": "range"})


@dataclass(frozen=True)
class DateRange:
    """Local days [first, last], both inclusive; None for an open end (`all`)."""

    key: str
    first: date | None
    last: date | None
    label: str

    @property
    def is_all(self) -> bool:
        return self.first is None and self.last is None


RANGE_CHOICES = [("4w", "4 weeks"), ("6m", "6 months"), ("12m", "12 months"), ("all", "All time")]
_DAYS = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    # The same day of the month, or the month's last day (31 March minus one month is 29 February in 2024).
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def user_today(*, time_zone: str) -> date:
    return timezone.now().astimezone(user_zone(time_zone)).date()


def stats_range_parse(*, value: str | None, today: date) -> DateRange:
    """Parse DESIGN.md §4's `range=`: 4w, 6m, 12m, all, YYYY or FROM..TO, in the user's local days."""
    value = (value or "4w").strip()
    if value == "4w":
        return DateRange(value, today - timedelta(days=27), today, "Last 4 weeks")
    if value in ("6m", "12m"):
        months = int(value[:-1])
        return DateRange(value, _add_months(today, -months) + timedelta(days=1), today, f"Last {months} months")
    if value == "all":
        return DateRange(value, None, None, "All time")
    if re.fullmatch(r"\d{4}", value) and YEAR_MIN <= int(value) <= YEAR_MAX:
        year = int(value)
        return DateRange(value, date(year, 1, 1), date(year, 12, 31), value)
    match = _DAYS.match(value)
    if match:
        try:
            first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
        except ValueError as exc:
            raise InvalidRange(value) from exc
        if first > last or first.year < YEAR_MIN or last.year > YEAR_MAX:
            raise InvalidRange(value)
        return DateRange(value, first, last, f"{first:%-d %b %Y} – {last:%-d %b %Y}")
    raise InvalidRange(value)


# --- tiling a range with periods ----------------------------------------------------------------------------


Tile = tuple[int, date | None, date | None]


def _year_end(year: int) -> date:
    return date(year, 12, 31)


def _month_end(day: date) -> date:
    return _add_months(day.replace(day=1), 1) - timedelta(days=1)


def range_tiles(first: date, last: date, *, max_grain: Grain = Grain.YEAR) -> list[Tile]:
    """The fewest whole periods that cover [first, last] exactly: years, then months, then days.

    Each tile is (grain, first period start, last period start), both inclusive.
    """
    if first > last:
        return []
    tiles: list[Tile] = []
    if max_grain >= Grain.YEAR:
        y_first = first.year if first == date(first.year, 1, 1) else first.year + 1
        y_last = last.year if last == _year_end(last.year) else last.year - 1
        if y_first <= y_last:
            tiles.append((Grain.YEAR, date(y_first, 1, 1), date(y_last, 1, 1)))
            tiles += range_tiles(first, date(y_first, 1, 1) - timedelta(days=1), max_grain=Grain.MONTH)
            tiles += range_tiles(date(y_last + 1, 1, 1), last, max_grain=Grain.MONTH)
            return tiles
    if max_grain >= Grain.MONTH:
        m_first = first if first.day == 1 else _add_months(first.replace(day=1), 1)
        m_last = last.replace(day=1) if last == _month_end(last) else _add_months(last.replace(day=1), -1)
        if m_first <= m_last:
            tiles.append((Grain.MONTH, m_first, m_last))
            tiles += range_tiles(first, m_first - timedelta(days=1), max_grain=Grain.DAY)
            tiles += range_tiles(_add_months(m_last, 1), last, max_grain=Grain.DAY)
            return tiles
    return [(Grain.DAY, first, last)]


def _tiles_sql(tiles: list[Tile], params: list, alias: str = "r") -> str:
    if not tiles:
        return " AND 1 = 0"
    parts = []
    for grain, lo, hi in tiles:
        clause = f"{alias}.grain = %s"
        params.append(int(grain))
        if lo is not None:
            clause += f" AND {alias}.start >= %s"
            params.append(connection.ops.adapt_datefield_value(lo))
        if hi is not None:
            clause += f" AND {alias}.start <= %s"
            params.append(connection.ops.adapt_datefield_value(hi))
        parts.append(f"({clause})")
    return " AND (" + " OR ".join(parts) + ")"


def _track_tiles(date_range: DateRange) -> list[Tile]:
    """Tiles of the track rollup, which has month and all-time rows only (docs/stats.md)."""
    if date_range.is_all:
        return [(Grain.ALL, None, None)]
    first = date_range.first or date(YEAR_MIN, 1, 1)
    last = date_range.last or date(YEAR_MAX, 12, 31)
    return range_tiles(first, last, max_grain=Grain.MONTH)


def _hour_tiles(date_range: DateRange, *, max_grain: Grain = Grain.YEAR) -> list[Tile]:
    if date_range.is_all:
        return [(max_grain, None, None)]
    first = date_range.first or date(YEAR_MIN, 1, 1)
    last = date_range.last or date(YEAR_MAX, 12, 31)
    return range_tiles(first, last, max_grain=max_grain)


def track_rows_sql(user_id: int, tiles: list[Tile], params: list) -> str:
    """A `FROM` item `r(grain, start, track_id, plays, ms_played)` over the user's plays in `tiles`.

    Month and all-time tiles read the track rollup; day tiles read the plays themselves, one row each (the
    track rollup has no day rows: one per track and day is about one per play; nor year rows: a heavy listener
    plays most tracks of a year in only one or two of its months, so they saved little and cost an import a
    third of its rollup writes). A range has at most two day tiles, the days before its first whole month and
    after its last; only the daily or weekly timeline of an artist, album or track reads its whole range (up
    to 400 days) from the plays of those tracks.
    """
    coarse = [tile for tile in tiles if tile[0] != Grain.DAY]
    days = [tile for tile in tiles if tile[0] == Grain.DAY]
    parts = []
    if coarse or not days:
        params.append(user_id)
        where = _tiles_sql(coarse, params)
        parts.append(
            f"SELECT r.grain, r.start, r.track_id, r.plays, r.ms_played FROM {TR} r WHERE r.user_id = %s{where}"
        )
    if days:
        zone = user_zone(User.objects.filter(pk=user_id).values_list("time_zone", flat=True).first() or "UTC")
        day_sql = local_parts_sql()[0]
        for _grain, lo, hi in days:
            params += [zone.key, user_id]
            plays = plays_in_days_sql(zone, lo, hi, params)
            parts.append(
                f"SELECT 0 AS grain, {day_sql} AS start, p.track_id, 1 AS plays, {PLAY_MS_SQL} AS ms_played {plays}"
            )
    return "(" + " UNION ALL ".join(parts) + ") r"


def _per_track(user_id: int, date_range: DateRange, params: list) -> str:
    """A subquery `x(track_id, plays, ms_played)`: one row per track played in the range.

    Aggregating per track before joining the catalog makes the joins as small as the user's distinct tracks.
    """
    rows = track_rows_sql(user_id, _track_tiles(date_range), params)
    return (
        f"(SELECT r.track_id, SUM(r.plays) AS plays, SUM(r.ms_played) AS ms_played FROM {rows} GROUP BY r.track_id) x"
    )


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- top lists ------------------------------------------------------------------------------------------------


def _scope_sql(track_ids_sql: str | None) -> str:
    return f" AND r.track_id IN ({track_ids_sql})" if track_ids_sql else ""


@cached
def stats_top_tracks(
    *, user_id: int, date_range: DateRange, limit: int = 10, artist_id: int | None = None, album_id: int | None = None
) -> list[dict[str, Any]]:
    """Most played tracks: plays, then listening time."""
    params: list = []
    rows_sql = track_rows_sql(user_id, _track_tiles(date_range), params)
    where = ""
    if artist_id is not None:
        where += f" AND r.track_id IN (SELECT track_id FROM {TA} WHERE artist_id = %s)"
        params.append(artist_id)
    if album_id is not None:
        where += f" AND r.track_id IN (SELECT id FROM {TRACK} WHERE album_id = %s)"
        params.append(album_id)
    rows = _rows(
        f"SELECT r.track_id, SUM(r.plays), SUM(r.ms_played) FROM {rows_sql} WHERE 1 = 1{where} "
        "GROUP BY r.track_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT %s",
        [*params, _limit(limit)],
    )
    tracks = Track.objects.select_related("album").in_bulk([row[0] for row in rows])
    artists = _artists_of([row[0] for row in rows])
    return [
        {
            "id": track_id,
            "spotify_id": tracks[track_id].spotify_id,
            "name": tracks[track_id].name,
            "album": _album_ref(tracks[track_id].album),
            "image_url": _album_image(tracks[track_id].album),
            "artists": artists.get(track_id, []),
            "plays": int(plays),
            "ms_played": int(ms),
        }
        for track_id, plays, ms in rows
    ]


def _album_image(album: Album | None) -> str:
    return album.image_url if album is not None else ""


def _limit(limit: int) -> int:
    return max(1, min(int(limit), TOP_MAX))


def _album_ref(album: Album | None) -> dict[str, Any] | None:
    if album is None:
        return None
    return {"id": album.pk, "spotify_id": album.spotify_id, "name": album.name}


def _artists_of(track_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Ordered credited artists of each track."""
    result: dict[int, list[dict[str, Any]]] = {}
    links = (
        TrackArtist.objects.filter(track_id__in=track_ids)
        .select_related("artist")
        .order_by("track_id", "position")
        .only("track_id", "position", "artist__name", "artist__spotify_id")
    )
    for link in links:
        result.setdefault(link.track_id, []).append(
            {"id": link.artist_id, "spotify_id": link.artist.spotify_id, "name": link.artist.name}
        )
    return result


@cached
def stats_top_artists(*, user_id: int, date_range: DateRange, limit: int = 10) -> list[dict[str, Any]]:
    """Most played artists. A play counts for every artist credited on its track."""
    params: list = []
    per_track = _per_track(user_id, date_range, params)
    rows = _rows(
        f"SELECT ta.artist_id, SUM(x.plays), SUM(x.ms_played) FROM {per_track} "
        f"JOIN {TA} ta ON ta.track_id = x.track_id "
        "GROUP BY ta.artist_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT %s",
        [*params, _limit(limit)],
    )
    artists = Artist.objects.in_bulk([row[0] for row in rows])
    return [
        {
            "id": artist_id,
            "spotify_id": artists[artist_id].spotify_id,
            "name": artists[artist_id].name,
            "image_url": artists[artist_id].image_url,
            "plays": int(plays),
            "ms_played": int(ms),
        }
        for artist_id, plays, ms in rows
    ]


@cached
def stats_top_albums(*, user_id: int, date_range: DateRange, limit: int = 10) -> list[dict[str, Any]]:
    params: list = []
    per_track = _per_track(user_id, date_range, params)
    rows = _rows(
        f"SELECT t.album_id, SUM(x.plays), SUM(x.ms_played) FROM {per_track} JOIN {TRACK} t ON t.id = x.track_id "
        "WHERE t.album_id IS NOT NULL GROUP BY t.album_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT %s",
        [*params, _limit(limit)],
    )
    albums = Album.objects.in_bulk([row[0] for row in rows])
    album_artists = _album_artists([row[0] for row in rows])
    return [
        {
            "id": album_id,
            "spotify_id": albums[album_id].spotify_id,
            "name": albums[album_id].name,
            "image_url": albums[album_id].image_url,
            "artists": album_artists.get(album_id, []),
            "plays": int(plays),
            "ms_played": int(ms),
        }
        for album_id, plays, ms in rows
    ]


def _album_artists(album_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The first-credited artist of each album's tracks (albums have no artist link of their own)."""
    result: dict[int, list[dict[str, Any]]] = {}
    links = (
        TrackArtist.objects.filter(track__album_id__in=album_ids, position=0)
        .select_related("artist")
        .values_list("track__album_id", "artist_id", "artist__spotify_id", "artist__name")
        .distinct()
    )
    for album_id, artist_id, spotify_id, name in links:
        names = result.setdefault(album_id, [])
        if len(names) < 3 and all(a["id"] != artist_id for a in names):
            names.append({"id": artist_id, "spotify_id": spotify_id, "name": name})
    return result


@cached
def stats_top_genres(*, user_id: int, date_range: DateRange, limit: int = 10) -> list[dict[str, Any]]:
    """Genres by plays: a play counts once for each genre of its track's artists."""
    params: list = []
    per_track = _per_track(user_id, date_range, params)
    # One row per (track, genre): a track by two artists of one genre counts once for that genre.
    rows = _rows(
        f"SELECT g.genre_id, SUM(g.plays), SUM(g.ms_played) FROM (SELECT DISTINCT x.track_id, x.plays, x.ms_played, "
        f"ag.genre_id FROM {per_track} JOIN {TA} ta ON ta.track_id = x.track_id JOIN {AG} ag "
        "ON ag.artist_id = ta.artist_id) g GROUP BY g.genre_id ORDER BY 2 DESC, 3 DESC, 1 LIMIT %s",
        [*params, _limit(limit)],
    )
    genres = Genre.objects.in_bulk([row[0] for row in rows])
    return [
        {"id": genre_id, "name": genres[genre_id].name, "plays": int(plays), "ms_played": int(ms)}
        for genre_id, plays, ms in rows
    ]


@cached
def stats_genre_coverage(*, user_id: int, date_range: DateRange) -> dict[str, int]:
    """Plays and time of tracks none of whose artists has a genre (Spotify's genres are often empty)."""
    params: list = []
    per_track = _per_track(user_id, date_range, params)
    row = _rows(
        f"SELECT COALESCE(SUM(x.plays), 0), COALESCE(SUM(x.ms_played), 0) FROM {per_track} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {TA} ta JOIN {AG} ag ON ag.artist_id = ta.artist_id "
        "WHERE ta.track_id = x.track_id)",
        params,
    )[0]
    return {"plays": int(row[0]), "ms_played": int(row[1])}


@cached
def stats_genre_artists(
    *, user_id: int, date_range: DateRange, genre_ids: list[int], per_genre: int = 5
) -> dict[int, list[dict[str, Any]]]:
    """The most played artists of each genre."""
    if not genre_ids:
        return {}
    params: list = []
    per_track = _per_track(user_id, date_range, params)
    marks = ", ".join(["%s"] * len(genre_ids))
    rows = _rows(
        f"SELECT ag.genre_id, ta.artist_id, SUM(x.plays) FROM {per_track} JOIN {TA} ta ON ta.track_id = x.track_id "
        f"JOIN {AG} ag ON ag.artist_id = ta.artist_id WHERE ag.genre_id IN ({marks}) "
        "GROUP BY ag.genre_id, ta.artist_id ORDER BY 3 DESC, 2",
        [*params, *genre_ids],
    )
    chosen: dict[int, list[tuple[int, int]]] = {}
    for genre_id, artist_id, plays in rows:
        bucket = chosen.setdefault(genre_id, [])
        if len(bucket) < per_genre:
            bucket.append((artist_id, int(plays)))
    artists = Artist.objects.in_bulk([a for bucket in chosen.values() for a, _ in bucket])
    return {
        genre_id: [{"id": a, "name": artists[a].name, "plays": p} for a, p in bucket]
        for genre_id, bucket in chosen.items()
    }


@cached
def stats_genre_timeline(*, user_id: int, date_range: DateRange, genre_ids: list[int]) -> dict[date, dict[int, int]]:
    """Plays per genre per year (ranges over two years) or per month, for the given genres (a track whose
    artists share a genre counts once: one row per rollup row and genre)."""
    if not genre_ids:
        return {}
    first, last = stats_bounds(user_id=user_id, date_range=date_range)
    if first is None or last is None:
        return {}
    by_year = (last - first).days > 2 * 366
    marks = ", ".join(["%s"] * len(genre_ids))
    rows = _rows(
        f"SELECT g.start, g.genre_id, SUM(g.plays) FROM (SELECT DISTINCT r.track_id, r.start, r.plays, ag.genre_id "
        f"FROM {TR} r JOIN {TA} ta ON ta.track_id = r.track_id JOIN {AG} ag ON ag.artist_id = ta.artist_id "
        f"WHERE r.user_id = %s AND r.grain = %s AND r.start >= %s AND r.start <= %s AND ag.genre_id IN ({marks})) g "
        "GROUP BY g.start, g.genre_id",
        [user_id, int(Grain.MONTH), _month_floor(first), _month_floor(last), *genre_ids],
    )
    result: dict[date, dict[int, int]] = {}
    for start, genre_id, plays in rows:
        month = _as_date(start)
        period = result.setdefault(date(month.year, 1, 1) if by_year else month, {})
        period[genre_id] = period.get(genre_id, 0) + int(plays)
    return dict(sorted(result.items()))


def _month_floor(day: date) -> Any:
    return connection.ops.adapt_datefield_value(day.replace(day=1))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- totals, time and the heatmap -----------------------------------------------------------------------------


@cached
def stats_bounds(*, user_id: int, date_range: DateRange) -> tuple[date | None, date | None]:
    """The range's first and last day, with `all` narrowed to the days that have plays."""
    if not date_range.is_all:
        return date_range.first, date_range.last
    row = _rows(f"SELECT MIN(start), MAX(start) FROM {HR} WHERE user_id = %s AND grain = %s", [user_id, 0])[0]
    if row[0] is None:
        return None, None
    return _as_date(row[0]), _as_date(row[1])


@cached
def stats_totals(*, user_id: int, date_range: DateRange) -> dict[str, int]:
    """Plays, listening time, and distinct tracks, artists and albums in the range."""
    params: list = [user_id]
    where = _tiles_sql(_hour_tiles(date_range), params)
    plays, ms = _rows(
        f"SELECT COALESCE(SUM(r.plays), 0), COALESCE(SUM(r.ms_played), 0) FROM {HR} r WHERE r.user_id = %s{where}",
        params,
    )[0]
    params = []
    per_track = _per_track(user_id, date_range, params)
    tracks, artists, albums = _rows(
        f"SELECT COUNT(DISTINCT x.track_id), COUNT(DISTINCT ta.artist_id), COUNT(DISTINCT t.album_id) FROM {per_track} "
        f"JOIN {TRACK} t ON t.id = x.track_id LEFT JOIN {TA} ta ON ta.track_id = x.track_id",
        params,
    )[0]
    return {
        "plays": int(plays),
        "ms_played": int(ms),
        "tracks": int(tracks),
        "artists": int(artists),
        "albums": int(albums),
    }


@cached
def stats_heatmap(*, user_id: int, date_range: DateRange) -> list[list[int]]:
    """Plays by local weekday (rows, Monday first) and hour of day (columns)."""
    params: list = [user_id]
    where = _tiles_sql(_hour_tiles(date_range), params)
    grid = [[0] * 24 for _ in range(7)]
    for weekday, hour, plays in _rows(
        f"SELECT r.weekday, r.hour, SUM(r.plays) FROM {HR} r WHERE r.user_id = %s{where} GROUP BY r.weekday, r.hour",
        params,
    ):
        grid[weekday][hour] = int(plays)
    return grid


@dataclass(frozen=True)
class TimelinePoint:
    start: date
    plays: int
    ms_played: int


def timeline_bucket(first: date, last: date) -> str:
    days = (last - first).days
    if days <= 62:
        return "day"
    if days <= 400:
        return "week"
    return "month"


def _bucket_start(day: date, bucket: str) -> date:
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return date(day.year, 1, 1)


def _buckets(first: date, last: date, bucket: str) -> list[date]:
    out, current = [], _bucket_start(first, bucket)
    while current <= last:
        out.append(current)
        if bucket == "day":
            current += timedelta(days=1)
        elif bucket == "week":
            current += timedelta(days=7)
        elif bucket == "month":
            current = _add_months(current, 1)
        else:
            current = date(current.year + 1, 1, 1)
    return out


@cached
def stats_timeline(
    *,
    user_id: int,
    date_range: DateRange,
    bucket: str | None = None,
    track_ids_sql: str | None = None,
    scope_params: list | None = None,
) -> tuple[str, list[TimelinePoint]]:
    """Listening per day, week or month (chosen from the range's length), every bucket present, zeros included.

    With `track_ids_sql` (a subquery and its params), only those tracks count: artist, album and track pages.
    """
    first, last = stats_bounds(user_id=user_id, date_range=date_range)
    if first is None or last is None:
        return bucket or "day", []
    bucket = bucket or timeline_bucket(first, last)
    max_grain = Grain.DAY if bucket in ("day", "week") else Grain.MONTH if bucket == "month" else Grain.YEAR
    params: list = []
    if track_ids_sql:
        tiles = range_tiles(first, last, max_grain=min(max_grain, Grain.MONTH))  # the track rollup has no years
        source = track_rows_sql(user_id, tiles, params) + f" WHERE r.track_id IN ({track_ids_sql})"
        params += scope_params or []
    else:
        params.append(user_id)
        source = f"{HR} r WHERE r.user_id = %s" + _tiles_sql(range_tiles(first, last, max_grain=max_grain), params)
    totals: dict[date, list[int]] = {b: [0, 0] for b in _buckets(first, last, bucket)}
    for _grain, start, plays, ms in _rows(
        f"SELECT r.grain, r.start, SUM(r.plays), SUM(r.ms_played) FROM {source} GROUP BY r.grain, r.start", params
    ):
        key = _bucket_start(_as_date(start), bucket)
        if key in totals:
            totals[key][0] += int(plays)
            totals[key][1] += int(ms)
    return bucket, [TimelinePoint(day, p, ms) for day, (p, ms) in totals.items()]


@cached
def stats_busiest_day(*, user_id: int, date_range: DateRange) -> dict[str, Any] | None:
    first, last = stats_bounds(user_id=user_id, date_range=date_range)
    if first is None or last is None:
        return None
    rows = _rows(
        f"SELECT start, SUM(plays), SUM(ms_played) FROM {HR} WHERE user_id = %s AND grain = %s AND start >= %s "
        "AND start <= %s GROUP BY start ORDER BY 3 DESC, 1 LIMIT 1",
        [user_id, 0, connection.ops.adapt_datefield_value(first), connection.ops.adapt_datefield_value(last)],
    )
    if not rows:
        return None
    return {"day": _as_date(rows[0][0]), "plays": int(rows[0][1]), "ms_played": int(rows[0][2])}


def stats_first_and_last_play(
    *, user_id: int, date_range: DateRange, time_zone: str, track_ids: list[int] | None = None
) -> tuple[Play | None, Play | None]:
    """The first and the latest play in the range (optionally of some tracks).

    The month rollups give the first and last months with such plays; only the plays of those months are read
    (of the first two at either end: the range may begin or end inside a month whose plays fall outside it).
    """
    if track_ids is not None and not track_ids:
        return None, None
    zone = user_zone(time_zone)
    low = datetime.combine(date_range.first, time.min, tzinfo=zone) if date_range.first else None
    high = datetime.combine(date_range.last + timedelta(days=1), time.min, tzinfo=zone) if date_range.last else None
    months = TrackRollup.objects.filter(user_id=user_id, grain=Grain.MONTH)
    if date_range.first is not None:
        months = months.filter(start__gte=date_range.first.replace(day=1))
    if date_range.last is not None:
        months = months.filter(start__lte=date_range.last)
    plays = Play.objects.filter(user_id=user_id).select_related("track", "track__album")
    if track_ids is not None:
        months = months.filter(track_id__in=track_ids)
        plays = plays.filter(track_id__in=track_ids)
    starts = months.values_list("start", flat=True).distinct()

    def edge(order: str) -> Play | None:
        for month in starts.order_by("start" if order == "played_at" else "-start")[:2]:
            month_start = datetime.combine(_as_date(month), time.min, tzinfo=zone)
            month_end = datetime.combine(_add_months(_as_date(month), 1), time.min, tzinfo=zone)
            window = plays.filter(played_at__gte=max(filter(None, [low, month_start])))
            window = window.filter(played_at__lt=min(filter(None, [high, month_end])))
            found = window.order_by(order).first()
            if found is not None:
                return found
        return None

    return edge("played_at"), edge("-played_at")


@cached
def stats_entity_summary(
    *, user_id: int, date_range: DateRange, track_ids_sql: str, scope_params: list
) -> dict[str, int]:
    """Plays and listening time of some tracks (an artist's, an album's, one track) in the range."""
    params: list = []
    rows_sql = track_rows_sql(user_id, _track_tiles(date_range), params)
    plays, ms = _rows(
        f"SELECT COALESCE(SUM(r.plays), 0), COALESCE(SUM(r.ms_played), 0) FROM {rows_sql} "
        f"WHERE r.track_id IN ({track_ids_sql})",
        [*params, *scope_params],
    )[0]
    return {"plays": int(plays), "ms_played": int(ms)}


def artist_tracks_sql() -> str:
    return f"SELECT track_id FROM {TA} WHERE artist_id = %s"


def album_tracks_sql() -> str:
    return f"SELECT id FROM {TRACK} WHERE album_id = %s"


def track_only_sql() -> str:
    return "%s"


@cached
def stats_years_with_plays(*, user_id: int) -> list[int]:
    rows = _rows(
        f"SELECT start FROM {HR} WHERE user_id = %s AND grain = %s GROUP BY start ORDER BY start",
        [user_id, int(Grain.YEAR)],
    )
    return [_as_date(row[0]).year for row in rows]


def stats_play_count(*, user_id: int) -> int:
    """All the user's plays, summed from the yearly hour rollups (at most 168 rows a year) instead of
    counting a history of millions of plays on every `/api/v1/me`."""
    total = HourRollup.objects.filter(user_id=user_id, grain=Grain.YEAR).aggregate(total=models.Sum("plays"))
    return int(total["total"] or 0)
