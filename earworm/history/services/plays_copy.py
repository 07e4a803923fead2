"""PostgreSQL fast path for storing many plays: COPY into a staging table, then one merge in SQL.

The merge has exactly the semantics of `history_plays_store` (DESIGN.md §5, `plays.py`): a play is dropped
when it overlaps a stored play of the same track, or when it overlaps the last play of the same track kept
before it, taking the offered plays in (track, end, input order) order. Listen lengths are `ms_played`, else
the track's duration, else 30 s, capped at 2 h. Dropping never changes what later plays are compared with,
so the two checks are independent: the stored check is one anti-join; the walk over offered plays is a
window pass that settles almost every row (the first play of a run of overlapping plays is kept, the second
dropped), and a recursive walk settles the rest (third and later plays of a run, which real data rarely has).
`earworm/history/tests/services/test_plays_copy.py` checks both paths give the same rows.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction

from earworm.history.services.plays import MAX_LENGTH, UNKNOWN_LENGTH, NewPlay, StoreResult

_MAX_MS = int(MAX_LENGTH.total_seconds() * 1000)
_UNKNOWN_MS = int(UNKNOWN_LENGTH.total_seconds() * 1000)


def _length_sql(ms_played: str, duration: str) -> str:
    return (
        f"(LEAST(COALESCE(NULLIF({ms_played}, 0), NULLIF({duration}, 0), {_UNKNOWN_MS}), {_MAX_MS})"
        " * interval '1 millisecond')"
    )


_CREATE_STAGING = """
CREATE TEMP TABLE import_staging (
    seq bigint NOT NULL, track_id bigint NOT NULL, played_at timestamptz NOT NULL, ms_played integer,
    source varchar(8) NOT NULL, context_uri text NOT NULL
) ON COMMIT DROP
"""

# Offered plays with their start, minus those overlapping a stored play of the same track, with a verdict
# from one window pass: k = kept (no earlier offered play overlaps it), d = dropped (it overlaps the play
# before it, which is kept), ? = a later play of a run of overlaps, settled by the walk below.
_FLAG = f"""
CREATE TEMP TABLE import_flags ON COMMIT DROP AS
SELECT seq, track_id, played_at, started_at, ms_played, source, context_uri,
       CASE WHEN prev_end IS NULL OR prev_end <= started_at THEN 'k'
            WHEN prev2_end IS NULL OR prev2_end <= prev_start THEN 'd'
            ELSE '?' END AS verdict
FROM (
    SELECT c.*,
           lag(played_at) OVER w AS prev_end,
           lag(started_at) OVER w AS prev_start,
           lag(played_at, 2) OVER w AS prev2_end
    FROM (
        SELECT s.seq, s.track_id, s.played_at, s.ms_played, s.source, s.context_uri,
               s.played_at - {_length_sql("s.ms_played", "t.duration_ms")} AS started_at,
               t.duration_ms
        FROM import_staging s LEFT JOIN catalog_track t ON t.id = s.track_id
    ) c
    WHERE NOT EXISTS (
        SELECT 1 FROM history_play p
        WHERE p.user_id = %(user_id)s AND p.track_id = c.track_id
          AND p.played_at > c.started_at AND p.played_at < c.played_at + interval '{_MAX_MS} milliseconds'
          AND p.played_at - {_length_sql("p.ms_played", "c.duration_ms")} < c.played_at
    )
    WINDOW w AS (PARTITION BY track_id ORDER BY played_at, seq)
) flagged
"""  # noqa: S608 (only module constants are formatted in)

# Greedy walk, one step per offered play, over every track that has an unsettled play.
_WALK = """
CREATE TEMP TABLE import_walk ON COMMIT DROP AS
SELECT seq, track_id, played_at, started_at,
       row_number() OVER (PARTITION BY track_id ORDER BY played_at, seq) AS rn
FROM import_flags WHERE track_id IN (SELECT track_id FROM import_flags WHERE verdict = '?');
CREATE INDEX ON import_walk (track_id, rn);
WITH RECURSIVE walk(track_id, rn, seq, last_end, kept) AS (
    SELECT track_id, rn, seq, played_at, true FROM import_walk WHERE rn = 1
    UNION ALL
    SELECT c.track_id, c.rn, c.seq,
           CASE WHEN c.started_at >= w.last_end THEN c.played_at ELSE w.last_end END,
           c.started_at >= w.last_end
    FROM walk w JOIN import_walk c ON c.track_id = w.track_id AND c.rn = w.rn + 1
)
UPDATE import_flags f SET verdict = CASE WHEN walk.kept THEN 'k' ELSE 'd' END
FROM walk WHERE f.seq = walk.seq AND f.verdict = '?'
"""

_INSERT = """
INSERT INTO history_play (user_id, track_id, played_at, ms_played, source, context_uri)
SELECT %(user_id)s, track_id, played_at, ms_played, source, left(context_uri, 255)
FROM import_flags WHERE verdict = 'k'
ON CONFLICT DO NOTHING
"""


class StagedPlays:
    """Plays of one user COPYed into a staging table, merged by `merge()`. Use inside `transaction.atomic()`:
    the staging tables live until the transaction ends."""

    def __init__(self, *, user_id: int) -> None:
        self.user_id = user_id
        self.count = 0
        self.earliest: datetime | None = None
        self.latest: datetime | None = None
        self._cursor = connection.cursor()
        self._cursor.execute(_CREATE_STAGING)

    def add(self, plays: Iterable[NewPlay]) -> None:
        """COPY plays into the staging table; their order is the tie-break for plays ending together."""
        seq = self.count
        earliest, latest = self.earliest, self.latest
        with self._cursor.cursor.copy(  # type: ignore[attr-defined]
            "COPY import_staging (seq, track_id, played_at, ms_played, source, context_uri) FROM STDIN"
        ) as copy:
            for play in plays:
                copy.write_row((seq, play.track_id, play.played_at, play.ms_played, play.source, play.context_uri))
                seq += 1
                if earliest is None or play.played_at < earliest:
                    earliest = play.played_at
                if latest is None or play.played_at > latest:
                    latest = play.played_at
        self.count, self.earliest, self.latest = seq, earliest, latest

    def merge(self) -> StoreResult:
        """Insert the staged plays that are not duplicates; returns the counts as `history_plays_store` does."""
        if not self.count:
            return StoreResult(inserted=0, duplicates=0, earliest=None, latest=None)
        cursor = self._cursor
        cursor.execute("ANALYZE import_staging")
        params = {"user_id": self.user_id}
        cursor.execute(_FLAG, params)
        cursor.execute("SELECT EXISTS (SELECT 1 FROM import_flags WHERE verdict = '?')")
        if cursor.fetchone()[0]:
            cursor.execute(_WALK)
        cursor.execute(_INSERT, params)
        inserted = cursor.rowcount
        cursor.execute("DROP TABLE IF EXISTS import_walk; DROP TABLE import_flags; DROP TABLE import_staging")
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
