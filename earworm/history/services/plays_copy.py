"""PostgreSQL fast path for storing many plays: COPY into a staging table, then one merge in SQL.

The merge has exactly the semantics of `history_plays_store` (DESIGN.md §5, `plays.py`): a play is dropped
when it is the same listen as a stored play of the same track, or as a play of the same track kept before it,
taking the offered plays in (track, end, input order) order. Two listens are the same when they end at the
same moment, or, unless both are from the API, when they overlap by more than OVERLAP_TOLERANCE; so the insert
needs no ON CONFLICT (which cost a third of its time), the user lock keeping other writers out. Listen lengths
are `ms_played`, else the track's duration, else 30 s, capped at 2 h. Dropping never changes what later plays
are compared with, so the two checks are independent: the stored check is one anti-join against the stored
plays near the staged span (copied to a small temp table with fresh statistics); the walk over offered plays
is a window pass that settles almost every row (a play no earlier play reaches is kept, one overlapping a kept
predecessor dropped), and a recursive walk settles the rest (later plays of a run of overlaps, very short
listens, API plays next to API plays), which real data rarely has.
`earworm/history/tests/services/test_plays_copy.py` checks both paths give the same rows.
"""

import contextlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from earworm.history.services.plays import (
    MAX_LENGTH,
    OVERLAP_TOLERANCE,
    UNKNOWN_LENGTH,
    NewPlay,
    StoreResult,
    plays_user_lock,
)

_MAX_MS = int(MAX_LENGTH.total_seconds() * 1000)
_UNKNOWN_MS = int(UNKNOWN_LENGTH.total_seconds() * 1000)
_TOL = f"interval '{int(OVERLAP_TOLERANCE.total_seconds() * 1000)} milliseconds'"


def _length_sql(ms_played: str, duration: str) -> str:
    return (
        f"(LEAST(COALESCE(NULLIF({ms_played}, 0), NULLIF({duration}, 0), {_UNKNOWN_MS}), {_MAX_MS})"
        " * interval '1 millisecond')"
    )


def _duration_sql(track_id: str) -> str:
    """The track's duration, read only where a length needs it (inside COALESCE, after a NULL `ms_played`):
    export plays have `ms_played`, so a file's thousands of tracks are not looked up one by one."""
    return f"(SELECT duration_ms FROM catalog_track WHERE id = {track_id})"  # noqa: S608 (a column name)


# The merge's working tables live as long as the connection and are emptied by every COMMIT (and at the start
# of each use, for a second batch in one transaction): creating and dropping five temp tables per export file
# wrote and vacuumed the system catalogs 84 times per 1M-record import. A rolled-back first use takes its
# CREATE with it; the next use creates them again.
# import_staging: a play names its track by primary key (`track_id`) or, for export records, by catalog key
# (`track_key`), resolved in the merge once the file's provisional tracks exist; `seq` is its position in the
# input (see `copy_row`).
# import_tracks / import_new_tracks: provisional tracks named by export records (see _UPSERT_TRACKS).
# import_stored: the stored plays of the user that can overlap a staged one (see _STORED).
# import_flags: the offered plays with their verdicts (see _MERGE).
_PREPARE = """
CREATE TEMP TABLE IF NOT EXISTS import_staging (
    seq bigint NOT NULL, track_id bigint, track_key text, played_at timestamptz NOT NULL, ms_played integer,
    source varchar(8) NOT NULL, context_uri text NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS import_tracks (
    ord bigint NOT NULL, key text NOT NULL, name text NOT NULL, artist_key text, artist_name text,
    album_key text, album_name text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS import_new_tracks (LIKE import_tracks) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS import_stored (
    track_id bigint, played_at timestamptz, ms_played integer, source varchar(8)
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS import_flags (
    seq bigint, track_id bigint, played_at timestamptz, started_at timestamptz, ms_played integer,
    source varchar(8), context_uri text, verdict text
) ON COMMIT DELETE ROWS;
DELETE FROM import_staging; DELETE FROM import_tracks; DELETE FROM import_new_tracks; DELETE FROM import_stored;
DELETE FROM import_flags
"""

# The stored plays of the user that can overlap a staged one: those ending within MAX_LENGTH of the staged
# span. A temp table with fresh statistics, so the anti-join below is planned on true row counts whatever
# the state of history_play's statistics (they go stale while an import grows the table).
_STORED = """
INSERT INTO import_stored
SELECT track_id, played_at, ms_played, source FROM history_play
WHERE user_id = %(user_id)s AND played_at >= %(low)s AND played_at <= %(high)s;
ANALYZE import_stored
"""

# Offered plays with their start, minus those that are the same listen as a stored play of the same track,
# with a verdict from one window pass: k = kept (no earlier offered play can overlap it), d = dropped (it
# overlaps the play before it, which is kept), ? = anything else (a later play of a run of overlaps, short
# listens, API plays next to API plays), settled by the walk below.
_FLAGGED = f"""
SELECT seq, track_id, played_at, started_at, ms_played, source, context_uri,
       CASE WHEN prev_end IS NULL OR (prev_end <= started_at + {_TOL} AND prev_end < played_at) THEN 'k'
            WHEN (prev2_end IS NULL OR (prev2_end <= prev_start + {_TOL} AND prev2_end < prev_end))
                 AND (prev_end = played_at OR (NOT (source = 'api' AND prev_source = 'api')
                      AND prev_end > started_at + {_TOL} AND prev_start < played_at - {_TOL})) THEN 'd'
            ELSE '?' END AS verdict
FROM (
    SELECT c.*,
           lag(played_at) OVER w AS prev_end,
           lag(started_at) OVER w AS prev_start,
           lag(source) OVER w AS prev_source,
           lag(played_at, 2) OVER w AS prev2_end
    FROM (
        SELECT s.seq, s.track_id, s.played_at, s.ms_played, s.source, s.context_uri,
               s.played_at - {_length_sql("s.ms_played", _duration_sql("s.track_id"))} AS started_at
        FROM import_staging s
        WHERE s.track_key IS NULL
        UNION ALL
        SELECT s.seq, t.id, s.played_at, s.ms_played, s.source, s.context_uri,
               s.played_at - {_length_sql("s.ms_played", "t.duration_ms")} AS started_at
        FROM import_staging s JOIN (
            SELECT k.track_key, t.id, t.duration_ms
            FROM (SELECT DISTINCT track_key FROM import_staging WHERE track_key IS NOT NULL) k
            CROSS JOIN LATERAL (SELECT id, duration_ms FROM catalog_track WHERE key = k.track_key OFFSET 0) t
        ) t ON t.track_key = s.track_key
        WHERE s.track_key IS NOT NULL
    ) c
    WHERE NOT EXISTS (
        SELECT 1 FROM import_stored p
        WHERE p.track_id = c.track_id
          AND p.played_at >= LEAST(c.started_at + {_TOL}, c.played_at)
          AND p.played_at < c.played_at + interval '{_MAX_MS} milliseconds'
          AND (p.played_at = c.played_at OR (NOT (p.source = 'api' AND c.source = 'api')
               AND p.played_at > c.started_at + {_TOL}
               AND p.played_at - {_length_sql("p.ms_played", _duration_sql("p.track_id"))} < c.played_at - {_TOL}))
    )
    WINDOW w AS (PARTITION BY track_id ORDER BY played_at, seq)
) windowed
"""  # noqa: S608 (only module constants are formatted in)

# Greedy walk, one step per offered play in (end, input) order, over every segment of a track that has an
# unsettled play, carrying the kept listens of the segment (ends, starts, whether from the API): a play is kept
# unless it is the same listen as one of them, by the rule of `plays._overlaps`. Real exports send few here.
# A segment is a run of a track's plays each ending less than MAX_LENGTH after the one before: a listen is at
# most MAX_LENGTH long, so no play can be the same listen as a play of an earlier segment, and the walk takes
# only the segments it must settle (a batch of files holds hundreds of plays of a popular track; walking them
# all took 0.6 s of 1M records). Numbered here, for the few tracks set aside, rather than in the window pass
# for every play (a second window over all of them: ~25 % of that pass).
_WALK = f"""
CREATE TEMP TABLE import_walk ON COMMIT DROP AS
WITH segmented AS (
    SELECT seq, track_id, played_at, started_at, source = 'api' AS api, verdict,
           count(*) FILTER (WHERE prev_end IS NULL OR played_at - prev_end >= interval '{_MAX_MS} milliseconds')
               OVER w AS segment
    FROM (SELECT f.*, lag(played_at) OVER w AS prev_end FROM import_flags f
          WINDOW w AS (PARTITION BY track_id ORDER BY played_at, seq)) f
    WINDOW w AS (PARTITION BY track_id ORDER BY played_at, seq)
)
SELECT seq, track_id, segment, played_at, started_at, api,
       row_number() OVER (PARTITION BY track_id, segment ORDER BY played_at, seq) AS rn
FROM segmented
WHERE (track_id, segment) IN (SELECT track_id, segment FROM segmented WHERE verdict = '?');
CREATE INDEX ON import_walk (track_id, segment, rn);
WITH RECURSIVE walk(track_id, segment, rn, seq, ends, starts, apis, kept) AS (
    SELECT track_id, segment, rn, seq, ARRAY[played_at], ARRAY[started_at], ARRAY[api], true
    FROM import_walk WHERE rn = 1
    UNION ALL
    SELECT s.track_id, s.segment, s.rn, s.seq,
           CASE WHEN s.keep THEN s.ends || s.played_at ELSE s.ends END,
           CASE WHEN s.keep THEN s.starts || s.started_at ELSE s.starts END,
           CASE WHEN s.keep THEN s.apis || s.api ELSE s.apis END,
           s.keep
    FROM (
        SELECT c.track_id, c.segment, c.rn, c.seq, c.played_at, c.started_at, c.api, w.ends, w.starts, w.apis,
               NOT EXISTS (
                   SELECT 1 FROM unnest(w.ends, w.starts, w.apis) k(e, st, a)
                   WHERE e = c.played_at
                      OR (NOT (a AND c.api) AND e > c.started_at + {_TOL} AND st < c.played_at - {_TOL})
               ) AS keep
        FROM walk w JOIN import_walk c ON c.track_id = w.track_id AND c.segment = w.segment AND c.rn = w.rn + 1
    ) s
)
UPDATE import_flags f SET verdict = CASE WHEN walk.kept THEN 'k' ELSE 'd' END
FROM walk WHERE f.seq = walk.seq AND f.verdict = '?'
"""  # noqa: S608 (only module constants are formatted in)

_INSERT_COLUMNS = """
INSERT INTO history_play (user_id, track_id, played_at, ms_played, source, context_uri)
SELECT %(user_id)s, track_id, played_at, ms_played, source, left(context_uri, 255)"""

# One statement inserts the plays the window pass keeps and sets aside every play of a track it left
# unsettled (the walk needs the kept plays around them too) in import_flags: the verdicts stay in memory, not
# in a table written and read again (0.9 s of a 1M-record import).
_MERGE = f"""
WITH flagged AS MATERIALIZED ({_FLAGGED}),
unsettled AS MATERIALIZED (SELECT DISTINCT track_id FROM flagged WHERE verdict = '?'),
held AS (INSERT INTO import_flags SELECT * FROM flagged f WHERE f.track_id IN (SELECT track_id FROM unsettled))
{_INSERT_COLUMNS}
FROM flagged f WHERE verdict = 'k' AND NOT EXISTS (SELECT 1 FROM unsettled u WHERE u.track_id = f.track_id)
"""  # noqa: S608 (only module constants are formatted in)

# The set-aside plays once the walk has settled them.
_INSERT_HELD = f"{_INSERT_COLUMNS} FROM import_flags WHERE verdict = 'k'"


# Provisional tracks named by export records (Spotify id and the names in the record), created before the
# merge: artists and albums by `name:` key (the first name seen wins within a file, a later spelling of the
# same key renames the row, as `catalog_upsert` does), then tracks not known yet with their artist link.
# Rows are written in key order, the order `catalog_upsert` locks in, so concurrent writers wait, not deadlock:
# code-point order (`_BY_KEY`), as Python sorts, whatever the database's collation (under en_US, `aB` comes
# before `Ab`, and Spotify ids mix cases).
# Catalog rows are looked up by key one at a time (scalar subqueries, `OFFSET 0` keeps them from becoming
# joins): a file names a few thousand tracks, and a hash join would read the whole shared catalog per file.
# Artists and albums already stored under the same name are skipped before the upsert, which would otherwise
# lock each of them (a row lock written to the page and the WAL) only to leave it unchanged.
# JIT is off for the rest of the file's transaction: with no statistics on the temp tables the planner
# guesses the track-link join grows with the square of the file's new tracks, so larger files crossed
# `jit_above_cost` and spent up to 0.37 s compiling a statement of key lookups that runs in 0.17 s
# (0.85 s of a 1M-record import); none of the merge's statements gains from JIT.
_BY_KEY = 'COLLATE "C"'


def _upsert_named(table: str, prefix: str, defaults: dict[str, str]) -> str:
    """Upsert the provisional artists or albums (`{prefix}_key`, `{prefix}_name`) of the file's new tracks:
    one row per key, its first name in the file; `defaults` fills the table's other columns."""
    columns = ", ".join(defaults)
    values = ", ".join(defaults.values())
    return f"""
INSERT INTO {table} (created_at, updated_at, key, spotify_id, name, metadata_fetched_at, not_found, {columns})
SELECT now(), now(), {prefix}_key, NULL, name, NULL, false, {values}
FROM (SELECT DISTINCT ON ({prefix}_key) {prefix}_key, left({prefix}_name, 1000) AS name FROM import_new_tracks
      WHERE {prefix}_key IS NOT NULL ORDER BY {prefix}_key, ord) a
WHERE NOT EXISTS (SELECT 1 FROM {table} c WHERE c.key = a.{prefix}_key AND c.name = a.name OFFSET 0)
ORDER BY {prefix}_key {_BY_KEY}
ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at
WHERE {table}.name <> EXCLUDED.name;"""  # noqa: S608 (only module constants are formatted in)


_UPSERT_ARTISTS = _upsert_named("catalog_artist", "artist", {"image_url": "''"})
_UPSERT_ALBUMS = _upsert_named(
    "catalog_album",
    "album",
    {
        "album_type": "''",
        "release_date": "''",
        "release_date_precision": "''",
        "total_tracks": "NULL",
        "image_url": "''",
    },
)

_UPSERT_TRACKS = f"""
SET LOCAL jit = off;
INSERT INTO import_new_tracks
SELECT DISTINCT ON (t.key) t.* FROM import_tracks t
WHERE NOT EXISTS (SELECT 1 FROM catalog_track c WHERE c.key = t.key OFFSET 0)
ORDER BY t.key, t.ord;
{_UPSERT_ARTISTS}
{_UPSERT_ALBUMS}
WITH created AS (
    INSERT INTO catalog_track (created_at, updated_at, key, spotify_id, name, metadata_fetched_at, not_found,
                               duration_ms, isrc, explicit, is_local, album_id)
    SELECT now(), now(), t.key, t.key, left(t.name, 1000), NULL, false, NULL, '', NULL, false,
           (SELECT al.id FROM catalog_album al WHERE al.key = t.album_key)
    FROM import_new_tracks t
    ORDER BY t.key {_BY_KEY}
    -- No conflict target: a sync inserting the same track at this moment may collide on `spotify_id` as
    -- well as on `key` (catalog.services._lost_insert_race); the row it wrote is then the file's track.
    ON CONFLICT DO NOTHING
    RETURNING id, key
)
INSERT INTO catalog_trackartist (track_id, artist_id, position)
SELECT created.id, (SELECT ar.id FROM catalog_artist ar WHERE ar.key = t.artist_key), 0
FROM created JOIN import_new_tracks t ON t.key = created.key
WHERE t.artist_key IS NOT NULL
"""  # noqa: S608 (only module constants are formatted in)

_STAGED_TRACK_IDS = """
SELECT k.key, c.id FROM (SELECT DISTINCT key FROM import_tracks) k
CROSS JOIN LATERAL (SELECT id FROM catalog_track WHERE key = k.key OFFSET 0) c
"""


# The staging COPY is in PostgreSQL's binary format: the server stores the values without parsing text
# (timestamps above all), which halved the staging COPY of a 1M-record import (1.7 s -> 0.8 s).
_STAGING_COLUMNS = "(seq, track_id, track_key, played_at, ms_played, source, context_uri)"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NULL = b"\xff\xff\xff\xff"
# Field count, then each field as its byte length (-1 for NULL) and its value in network order.
_SEQ_AND_PK = struct.Struct("!hiqiqi")  # 7 fields; seq; track_id; track_key NULL (the length -1)
_SEQ_AND_KEY = struct.Struct("!hiqii")  # 7 fields; seq; track_id NULL; the length of track_key
_AT_AND_MS = struct.Struct("!iqii")  # played_at (microseconds since 2000); ms_played
_AT = struct.Struct("!iq")


def _text(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


_EXPORT_SOURCE = _text("export") + _text("")  # source, an empty context_uri


def copy_row(
    seq: int, track: int | str, played_at: datetime, ms_played: int | None, tail: bytes = _EXPORT_SOURCE
) -> bytes:
    """One play as a row of the binary COPY into import_staging: `seq` its position in the input (the tie-break
    for plays ending together), `track` a primary key or the catalog key of a track staged with
    `StagedPlays.add_tracks`, `tail` the encoded source and context (`source_tail`; an export play's by
    default)."""
    if type(track) is int:
        head = _SEQ_AND_PK.pack(7, 8, seq, 8, track, -1)
    else:
        key = track.encode()  # type: ignore[union-attr]
        head = _SEQ_AND_KEY.pack(7, 8, seq, -1, len(key)) + key
    at = (played_at - _PG_EPOCH) // _MICROSECOND
    if ms_played is None:
        return head + _AT.pack(8, at) + _NULL + tail
    return head + _AT_AND_MS.pack(8, at, 4, ms_played) + tail


def source_tail(source: str, context_uri: str) -> bytes:
    """The last two fields of `copy_row`."""
    return _text(source) + _text(context_uri)


class StagedPlays:
    """Plays of one user COPYed into a staging table, merged by `merge()`. Use inside `transaction.atomic()`:
    the staging tables are emptied when the transaction ends."""

    def __init__(self, *, user_id: int) -> None:
        self.user_id = user_id
        self.count = 0  # plays staged
        self.next_seq = 0  # the lowest number the next staged play may have
        self.tracks = 0  # tracks staged
        self._tracks_pending = False  # staged since the last create_tracks()
        self.earliest: datetime | None = None
        self.latest: datetime | None = None
        self._cursor = connection.cursor()
        self._cursor.execute(_PREPARE)
        # The primary keys of the tracks staged with add_tracks, known once merge() has created them.
        self.track_ids: dict[str, int] = {}

    def _span(self, earliest: datetime, latest: datetime) -> None:
        if self.earliest is None or earliest < self.earliest:
            self.earliest = earliest
        if self.latest is None or latest > self.latest:
            self.latest = latest

    def add(self, plays: Iterable[NewPlay]) -> None:
        """COPY plays into the staging table as they come; their order is the tie-break for plays ending
        together."""
        seq = self.next_seq
        earliest, latest = self.earliest, self.latest
        with self._copy() as copy:
            for play in plays:
                copy.write(
                    copy_row(
                        seq, play.track_id, play.played_at, play.ms_played, source_tail(play.source, play.context_uri)
                    )
                )
                seq += 1
                if earliest is None or play.played_at < earliest:
                    earliest = play.played_at
                if latest is None or play.played_at > latest:
                    latest = play.played_at
        self.count += seq - self.next_seq
        self.next_seq, self.earliest, self.latest = seq, earliest, latest

    def add_export(self, plays: Sequence[tuple[int | str, datetime, int]]) -> None:
        """COPY export plays, each `(track pk, or catalog key of a track staged with add_tracks, played_at,
        ms_played)`, in input order (the tie-break for plays ending together)."""
        if not plays:
            return
        rows = b"".join([copy_row(seq, *play) for seq, play in enumerate(plays, self.next_seq)])
        moments = [play[1] for play in plays]
        self.add_rows(rows, self.next_seq, len(plays), min(moments), max(moments))

    def add_rows(self, rows: bytes, first: int, count: int, earliest: datetime, latest: datetime) -> None:
        """COPY `count` plays already encoded by `copy_row`, numbered from `first` up, after every play staged so
        far (with gaps, perhaps: the parse thread numbers the plays of every file of an import), with the span of
        their `played_at`."""
        if first < self.next_seq:
            raise ValueError(f"rows numbered from {first}, not after the staged plays (up to {self.next_seq - 1})")
        with self._copy() as copy:
            copy.write(rows)
        self._span(earliest, latest)
        self.count += count
        self.next_seq = first + count

    @contextlib.contextmanager
    def _copy(self) -> Iterator[Any]:
        """A binary COPY into import_staging: write `copy_row` rows to what it yields."""
        with self._cursor.cursor.copy(f"COPY import_staging {_STAGING_COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[attr-defined]
            copy.write(_COPY_HEADER)
            yield copy
            copy.write(_COPY_TRAILER)

    def add_tracks(self, tracks: Iterable[tuple[str, str, str | None, str, str | None, str]]) -> None:
        """Stage provisional tracks `(key, name, artist key, artist name, album key, album name)` (keys None when
        the name is unknown), created by `create_tracks()` or `merge()` unless a track with that key exists by
        then."""
        ord_ = self.tracks
        with self._cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY import_tracks (ord, key, name, artist_key, artist_name, album_key, album_name) FROM STDIN"
        ) as copy:
            for track in tracks:
                copy.write_row((ord_, *track))
                ord_ += 1
        self._tracks_pending = self._tracks_pending or ord_ > self.tracks
        self.tracks = ord_

    def create_tracks(self) -> None:
        """Create the tracks staged since the last call (then known in `track_ids`): a batch of files creates each
        file's tracks when the file ends, so names change in file order as when every file had its own
        transaction."""
        if not self._tracks_pending:
            return
        cursor = self._cursor
        cursor.execute(_UPSERT_TRACKS)
        cursor.execute(_STAGED_TRACK_IDS)
        self.track_ids.update(cursor.fetchall())
        cursor.execute("DELETE FROM import_tracks; DELETE FROM import_new_tracks")
        self._tracks_pending = False

    def merge(self) -> StoreResult:
        """Insert the staged plays that are not duplicates; returns the counts as `history_plays_store` does."""
        cursor = self._cursor
        self.create_tracks()
        if not self.count:
            return StoreResult(inserted=0, duplicates=0, earliest=None, latest=None)
        assert self.earliest is not None and self.latest is not None
        plays_user_lock(user_id=self.user_id)
        params: dict[str, Any] = {
            "user_id": self.user_id,
            "low": self.earliest - MAX_LENGTH,
            "high": self.latest + MAX_LENGTH,
        }
        cursor.execute(_STORED, params)
        cursor.execute(_MERGE, params)
        inserted = cursor.rowcount
        cursor.execute("SELECT EXISTS (SELECT 1 FROM import_flags)")
        if cursor.fetchone()[0]:  # rare: see _WALK
            cursor.execute(_WALK)
            cursor.execute(_INSERT_HELD, params)
            inserted += cursor.rowcount
            cursor.execute("DROP TABLE import_walk")  # an ordinary temp table, not one kept for the next use
        return StoreResult(
            inserted=inserted, duplicates=self.count - inserted, earliest=self.earliest, latest=self.latest
        )


def history_plays_store_copy(*, user_id: int, plays: Iterable[NewPlay]) -> StoreResult:
    """`history_plays_store` for PostgreSQL, through COPY and a merge in SQL: same rows, same counts.

    Memory does not depend on the number of plays (they stream into the staging table). Raises
    `NotSupportedError` on other databases.
    """
    if connection.vendor != "postgresql":
        from django.db import NotSupportedError

        raise NotSupportedError("history_plays_store_copy needs PostgreSQL; use history_plays_store.")
    with transaction.atomic():
        staged = StagedPlays(user_id=user_id)
        staged.add(plays)
        return staged.merge()
