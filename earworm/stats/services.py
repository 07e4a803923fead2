"""Writes of the statistics rollups: the one service that rebuilds them from plays (docs/stats.md)."""

# ruff: noqa: S608  (SQL here interpolates only table names, fixed snippets and %s placeholders)

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from earworm.accounts.models import User
from earworm.catalog.models import Track
from earworm.history.models import Play
from earworm.history.services.plays import plays_user_lock
from earworm.stats.models import ALL_TIME_START, Grain, HourRollup, RollupState, TrackRollup

# IN lists are split so neither database meets its parameter limit.
CHUNK = 500
# Up to this many touched tracks, month rows are rebuilt per track rather than per whole period.
TOUCHED_TRACKS_MAX = CHUNK
# A refresh spanning more days than this (an import) sorts with more memory and without JIT compilation, for
# its transaction only (`_tune_large_refresh`).
LARGE_REFRESH_DAYS = 62
LARGE_REFRESH_WORK_MEM = "64MB"
# The share of a user's listening span whose track month rows a full rebuild replaces in its second connection.
SIDE_MONTHS_SHARE = 0.25


def user_zone(time_zone: str) -> ZoneInfo:
    """The user's zone; UTC when the stored name is unknown to this machine's tz database."""
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def local_parts_sql() -> tuple[str, str, str]:
    """SQL for the local day, weekday (0 = Monday) and hour of `p.played_at`; each takes the zone name once."""
    if _is_postgres():
        return (
            "CAST((p.played_at AT TIME ZONE %s) AS date)",
            "(CAST(EXTRACT(ISODOW FROM p.played_at AT TIME ZONE %s) AS integer) - 1)",
            "CAST(EXTRACT(HOUR FROM p.played_at AT TIME ZONE %s) AS integer)",
        )
    # Django registers these functions on every SQLite connection; they convert with zoneinfo, DST included.
    return (
        "django_datetime_cast_date(p.played_at, %s, 'UTC')",
        "(django_datetime_extract('iso_week_day', p.played_at, %s, 'UTC') - 1)",
        "django_datetime_extract('hour', p.played_at, %s, 'UTC')",
    )


def _period_start_sql(grain: Grain) -> str:
    """SQL for the first day of the month or year that contains `start`."""
    if _is_postgres():
        unit = "month" if grain == Grain.MONTH else "year"
        return f"CAST(date_trunc('{unit}', CAST(start AS timestamp)) AS date)"
    modifier = "start of month" if grain == Grain.MONTH else "start of year"
    return f"date(start, '{modifier}')"


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(ZoneInfo("UTC"))


def stats_rollups_refresh(*, user_id: int, start: datetime | None = None, end: datetime | None = None) -> None:
    """Rebuild the user's rollups for the plays in [start, end] (None: unbounded) from the Play table.

    Whole local days are rebuilt: every day that contains an instant of [start, end] in the user's time zone,
    then the months and years that contain those days (hour rollup) or the months (track rollup), then the
    all-time rows of every track involved. Safe to call any number of times and concurrently (the user's row
    is locked on PostgreSQL; SQLite writes one at a time); one transaction, so readers see the old rollups or
    the new ones, except that a large refresh on PostgreSQL outside a transaction (an import's) commits what it
    rebuilds in a second connection (`_rebuild_besides_track_months`) a moment before the rest.
    """
    user = User.objects.filter(pk=user_id).only("time_zone").first()
    if user is None:
        return
    zone = user_zone(user.time_zone)
    day_lo = start.astimezone(zone).date() if start is not None else None
    day_hi = end.astimezone(zone).date() if end is not None else None
    if day_lo is not None and day_hi is not None and day_lo > day_hi:
        return
    everything = day_lo is None and day_hi is None
    large = _is_postgres() and (day_lo is None or day_hi is None or (day_hi - day_lo).days > LARGE_REFRESH_DAYS)
    # A second connection sees only committed plays: not inside a caller's transaction, which may have added some.
    alongside = large and not connection.in_atomic_block
    month_lo = _month_start(day_lo) if day_lo else None
    month_hi = _month_start(day_hi) if day_hi else None
    # The pool is left (waiting for its thread) before the transaction ends, so the lock covers its work.
    with transaction.atomic(), ThreadPoolExecutor(max_workers=1) as pool, connection.cursor() as cursor:
        # Two refreshes of one user (a sync and an import) would otherwise race on the same keys.
        plays_user_lock(user_id=user_id)
        if large:
            _tune_large_refresh(cursor)
        # A full rebuild alongside splits the track months between the two connections (_split_month).
        split = _split_month(cursor, user_id, zone) if everything and alongside else None
        side = (_rebuild_besides_track_months, user_id, zone, day_lo, day_hi, everything, split)
        side_done = pool.submit(_in_own_transaction, *side) if alongside else None
        if split is not None:
            _replace_track_months(cursor, user_id, zone, None, _previous_month(split))
        else:
            touched = _rebuild_track_months(cursor, user_id, zone, month_lo, month_hi)
            if touched is not None:  # None: every track, see _rebuild_besides_track_months
                _rebuild_all_time(cursor, user_id, touched)
        if side_done is None:
            _rebuild_besides_track_months(cursor, *side[1:])
        else:
            side_done.result()  # its error rolls this transaction back
        _bump_version(user_id)


def _tune_large_refresh(cursor) -> None:
    # Sorting a long history's plays by month and track spills to disk with the default 4 MB. JIT: a large
    # refresh's four statements over all the plays cross `jit_above_cost` and compiled for ~0.2 s each (0.9 s of
    # CPU for 1M plays), more than the compiled code saved: a full rebuild took 4.9 s with it, 4.6 s without.
    cursor.execute(f"SET LOCAL work_mem = '{LARGE_REFRESH_WORK_MEM}'; SET LOCAL jit = off")


def _in_own_transaction(rebuild, *args) -> None:
    """Run `rebuild(cursor, *args)` in this thread's own connection and transaction, for a large refresh on
    PostgreSQL: it runs on the second core while the caller rebuilds the track rollup's month rows (the longest
    part: 2.4 s of 3.3 s for 1M plays). The caller holds the user's lock throughout, so no play of the user and
    no other refresh of the user can commit in between; this transaction commits just before the caller's."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _tune_large_refresh(cursor)
            rebuild(cursor, *args)
    finally:
        connection.close()


def _rebuild_besides_track_months(
    cursor,
    user_id: int,
    zone: ZoneInfo,
    day_lo: date | None,
    day_hi: date | None,
    everything: bool,
    months_from: date | None,
) -> None:
    """What a refresh rebuilds without reading the track rollup's month rows: the hour rollup's day rows for the
    local days [day_lo, day_hi], then the months and years holding them; for a full rebuild (`everything`) the
    all-time rows of every track, from the plays; and the track month rows from `months_from` on, if given."""
    _rebuild_hour_days(cursor, user_id, zone, day_lo, day_hi)
    month_lo = _month_start(day_lo) if day_lo else None
    month_hi = _month_start(day_hi) if day_hi else None
    _rebuild_hours_coarser(cursor, user_id, Grain.MONTH, month_lo, month_hi)
    year_lo = date(day_lo.year, 1, 1) if day_lo else None
    year_hi = date(day_hi.year, 1, 1) if day_hi else None
    _rebuild_hours_coarser(cursor, user_id, Grain.YEAR, year_lo, year_hi)
    if everything:
        _rebuild_all_time_from_plays(cursor, user_id)
    if months_from is not None:
        _replace_track_months(cursor, user_id, zone, months_from, None)


def _split_month(cursor, user_id: int, zone: ZoneInfo) -> date | None:
    """The first month whose track rows the second connection of a full rebuild replaces: the month a quarter
    of the user's listening span before its end. The hour and all-time rows cost about as much as the month rows
    of half the plays, so this balances the two connections when plays are spread evenly over time (an uneven
    spread only makes one finish first). None when the user has no plays."""
    cursor.execute(f"SELECT MIN(played_at), MAX(played_at) FROM {Play._meta.db_table} WHERE user_id = %s", [user_id])
    first, last = cursor.fetchone()
    if first is None:
        return None
    return _month_start((last - (last - first) * SIDE_MONTHS_SHARE).astimezone(zone).date())


def _bump_version(user_id: int) -> None:
    """A new version makes every cached statistic of the user stale (earworm.stats.selectors)."""
    if not RollupState.objects.filter(user_id=user_id).update(version=F("version") + 1, refreshed_at=timezone.now()):
        RollupState.objects.get_or_create(user_id=user_id, defaults={"version": 1})


def _dt(value: datetime) -> object:
    """A datetime as the backend stores it (SQLite compares text, so the format must match Django's)."""
    return connection.ops.adapt_datetimefield_value(value)


def _d(value: date) -> object:
    return connection.ops.adapt_datefield_value(value)


def _between(column: str, lo: date | None, hi: date | None, params: list) -> str:
    sql = ""
    if lo is not None:
        sql += f" AND {column} >= %s"
        params.append(_d(lo))
    if hi is not None:
        sql += f" AND {column} <= %s"
        params.append(_d(hi))
    return sql


def _delete_sql(table: str, user_id: int, grain: Grain, lo: date | None, hi: date | None) -> tuple[str, list]:
    """SQL (and its parameters) deleting the user's rows of one grain of a rollup starting in [lo, hi] (None:
    open)."""
    params: list = [user_id, int(grain)]
    return f"DELETE FROM {table} WHERE user_id = %s AND grain = %s" + _between("start", lo, hi, params), params


def plays_in_days_sql(zone: ZoneInfo, day_lo: date | None, day_hi: date | None, params: list) -> str:
    """`FROM` and `WHERE` over the plays `p` of the user (the first parameter, which the
    caller adds) in the local days [day_lo, day_hi]; None leaves that end open."""
    where = ""
    if day_lo is not None:
        where += " AND p.played_at >= %s"
        params.append(_dt(_local_midnight_utc(day_lo, zone)))
    if day_hi is not None:
        where += " AND p.played_at < %s"
        params.append(_dt(_local_midnight_utc(day_hi + timedelta(days=1), zone)))
    return f"FROM {Play._meta.db_table} p WHERE p.user_id = %s{where}"


# Listening time: ms_played where known, else the track's duration (API plays carry no ms_played). The
# duration is read for those plays only: a join would read the track of every export play too.
PLAY_MS_SQL = f"COALESCE(p.ms_played, (SELECT t.duration_ms FROM {Track._meta.db_table} t WHERE t.id = p.track_id), 0)"


def _rebuild_hour_days(cursor, user_id: int, zone: ZoneInfo, day_lo: date | None, day_hi: date | None) -> None:
    cursor.execute(*_delete_sql(HourRollup._meta.db_table, user_id, Grain.DAY, day_lo, day_hi))
    tz_name = str(zone.key)
    play_params: list = [user_id]
    plays = plays_in_days_sql(zone, day_lo, day_hi, play_params)
    insert = f"INSERT INTO {HourRollup._meta.db_table} (user_id, grain, start, weekday, hour, plays, ms_played) "
    if _is_postgres():
        # One time-zone conversion per play, grouped by the local hour it falls in; the day, weekday and hour
        # follow from that hour (three conversions and a three-column grouping took three times as long).
        cursor.execute(
            f"{insert} SELECT %s, %s, CAST(h AS date), CAST(EXTRACT(ISODOW FROM h) AS integer) - 1, "
            "CAST(EXTRACT(HOUR FROM h) AS integer), n, ms FROM ("
            f"SELECT date_trunc('hour', p.played_at AT TIME ZONE %s) AS h, COUNT(*) AS n, SUM({PLAY_MS_SQL}) AS ms "
            f"{plays} GROUP BY 1) g ORDER BY h",
            [user_id, int(Grain.DAY), tz_name, *play_params],
        )
        return
    day_sql, weekday_sql, hour_sql = local_parts_sql()
    cursor.execute(
        f"{insert} SELECT %s, %s, {day_sql}, {weekday_sql}, {hour_sql}, COUNT(*), SUM({PLAY_MS_SQL}) {plays} "
        "GROUP BY 3, 4, 5 ORDER BY 3, 4, 5",
        [user_id, int(Grain.DAY), tz_name, tz_name, tz_name, *play_params],
    )


def _month_of_play_sql() -> str:
    """SQL for the first day of the local month of `p.played_at`; takes the zone name once."""
    if _is_postgres():
        return "CAST(date_trunc('month', p.played_at AT TIME ZONE %s) AS date)"
    return "date(django_datetime_cast_date(p.played_at, %s, 'UTC'), 'start of month')"


def _track_months_sql(user_id: int, zone: ZoneInfo, lo: date | None, hi: date | None) -> tuple[str, list]:
    """SQL (and its parameters) for the track rollup's month rows of the months [lo, hi] (None: open), from the
    plays: (start, track_id, plays, ms_played)."""
    play_params: list = [user_id]
    plays = plays_in_days_sql(zone, lo, _next_month(hi) - timedelta(days=1) if hi else None, play_params)
    sql = f"SELECT {_month_of_play_sql()} AS start, p.track_id, COUNT(*) AS plays, SUM({PLAY_MS_SQL}) AS ms_played "
    return f"{sql}{plays} GROUP BY 1, 2", [str(zone.key), *play_params]


_TRACK_MONTHS_INSERT = (
    f"INSERT INTO {TrackRollup._meta.db_table} (user_id, grain, start, track_id, plays, ms_played) "
    "SELECT %s, %s, n.* FROM "
)


def _replace_track_months(cursor, user_id: int, zone: ZoneInfo, lo: date | None, hi: date | None) -> None:
    """Delete the track rollup's month rows of the months [lo, hi] (None: open) and insert them again."""
    cursor.execute(*_delete_sql(TrackRollup._meta.db_table, user_id, Grain.MONTH, lo, hi))
    new, new_params = _track_months_sql(user_id, zone, lo, hi)
    cursor.execute(f"{_TRACK_MONTHS_INSERT}({new}) n ORDER BY 3, 4", [user_id, int(Grain.MONTH), *new_params])


def _rebuild_track_months(cursor, user_id: int, zone: ZoneInfo, lo: date | None, hi: date | None) -> list[int] | None:
    """Month rows of the track rollup for the months [lo, hi], from the plays; returns the tracks whose rows
    changed (None for an unbounded rebuild: every track).

    Track rollups have no day rows (a row per track and day is about a row per play); pages read the plays
    of the days at the ends of a range (`selectors.track_rows_sql`).
    """
    if lo is None and hi is None:
        _replace_track_months(cursor, user_id, zone, None, None)
        return None
    table = TrackRollup._meta.db_table
    new, new_params = _track_months_sql(user_id, zone, lo, hi)
    old_params: list = [user_id, int(Grain.MONTH)]
    old = f"SELECT start, track_id, plays, ms_played FROM {table} WHERE user_id = %s AND grain = %s" + _between(
        "start", lo, hi, old_params
    )
    # The rows that differ either way: a sync changes a few of a month's thousands of tracks.
    cursor.execute(
        f"WITH new AS ({new}), old AS ({old}) SELECT track_id FROM (SELECT * FROM new EXCEPT SELECT * FROM old) a "
        "UNION SELECT track_id FROM (SELECT * FROM old EXCEPT SELECT * FROM new) b",
        [*new_params, *old_params],
    )
    changed = sorted(row[0] for row in cursor.fetchall())
    if not changed:
        return changed
    if len(changed) > TOUCHED_TRACKS_MAX:
        _replace_track_months(cursor, user_id, zone, lo, hi)
        return changed
    delete, delete_params = _delete_sql(table, user_id, Grain.MONTH, lo, hi)
    for chunk in _chunks(changed):
        ids = ", ".join(str(int(t)) for t in chunk)
        cursor.execute(f"{delete} AND track_id IN ({ids})", delete_params)
        cursor.execute(
            f"{_TRACK_MONTHS_INSERT}({new}) n WHERE n.track_id IN ({ids}) ORDER BY 3, 4",
            [user_id, int(Grain.MONTH), *new_params],
        )
    return changed


def _rebuild_hours_coarser(cursor, user_id: int, grain: Grain, lo: date | None, hi: date | None) -> None:
    """Rebuild the hour rollup's month (or year) rows for the periods starting in [lo, hi] from the next finer
    grain."""
    table = HourRollup._meta.db_table
    finer = Grain(grain - 1)
    hi_end = None
    if hi is not None:
        hi_end = _next_month(hi) if grain == Grain.MONTH else date(hi.year + 1, 1, 1)
    cursor.execute(*_delete_sql(table, user_id, grain, lo, hi))
    params: list = [user_id, int(grain), user_id, int(finer)]
    where = ""
    if lo is not None:
        where += " AND start >= %s"
        params.append(_d(lo))
    if hi_end is not None:
        where += " AND start < %s"
        params.append(_d(hi_end))
    cursor.execute(
        f"INSERT INTO {table} (user_id, grain, start, weekday, hour, plays, ms_played) "
        f"SELECT %s, %s, {_period_start_sql(grain)}, weekday, hour, SUM(plays), SUM(ms_played) FROM {table} "
        f"WHERE user_id = %s AND grain = %s{where} GROUP BY 3, 4, 5 ORDER BY 3, 4, 5",
        params,
    )


def _rebuild_all_time_from_plays(cursor, user_id: int) -> None:
    """The all-time rows of every track, from the plays (so they need not wait for the month rows)."""
    table = TrackRollup._meta.db_table
    cursor.execute(*_delete_sql(table, user_id, Grain.ALL, None, None))
    params: list = [user_id, int(Grain.ALL), _d(date.fromisoformat(ALL_TIME_START)), user_id]
    cursor.execute(
        f"INSERT INTO {table} (user_id, grain, start, track_id, plays, ms_played) "
        f"SELECT %s, %s, %s, p.track_id, COUNT(*), SUM({PLAY_MS_SQL}) FROM {Play._meta.db_table} p "
        "WHERE p.user_id = %s GROUP BY p.track_id ORDER BY p.track_id",
        params,
    )


def _rebuild_all_time(cursor, user_id: int, track_ids: list[int]) -> None:
    """All-time rows of the given tracks from their month rows."""
    table = TrackRollup._meta.db_table
    insert = (
        f"INSERT INTO {table} (user_id, grain, start, track_id, plays, ms_played) "
        f"SELECT %s, %s, %s, track_id, SUM(plays), SUM(ms_played) FROM {table} WHERE user_id = %s AND grain = %s"
    )
    head = [user_id, int(Grain.ALL), _d(date.fromisoformat(ALL_TIME_START)), user_id, int(Grain.MONTH)]
    delete, delete_params = _delete_sql(table, user_id, Grain.ALL, None, None)
    for chunk in _chunks(track_ids):
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(f"{delete} AND track_id IN ({marks})", [*delete_params, *chunk])
        cursor.execute(insert + f" AND track_id IN ({marks}) GROUP BY track_id", [*head, *chunk])


def stats_time_zone_set(*, user_id: int, time_zone: str) -> bool:
    """Store the user's time zone and rebuild their rollups in it (in the background). False if unchanged.

    Local days and hours move with the zone, so every rollup of the user changes.
    """
    from earworm.stats.tasks import stats_rollups_refresh_all as refresh_task

    user_zone(time_zone)  # an unknown name would silently count as UTC
    with transaction.atomic():
        changed = User.objects.filter(pk=user_id).exclude(time_zone=time_zone).update(time_zone=time_zone)
        if changed:
            transaction.on_commit(lambda: refresh_task(user_id))
    return bool(changed)


def user_data_delete(*, user_id: int) -> None:
    """Delete a user with their Spotify account, tokens, plays, imports and statistics.

    The shared catalog (tracks, albums, artists, genres) stays: other users' plays may point at it.
    Rollups and plays go first in bulk statements, so a long history is not loaded into memory.
    """
    with transaction.atomic():
        plays_user_lock(user_id=user_id)  # before the plays go: a running sync or import finishes first
        TrackRollup.objects.filter(user_id=user_id).delete()
        HourRollup.objects.filter(user_id=user_id).delete()
        Play.objects.filter(user_id=user_id).delete()
        User.objects.filter(pk=user_id).delete()
