"""The one way plays enter the database, whatever their source (API sync or data export).

DESIGN.md §5: a play is unique per user, track and `played_at`; beyond that, two plays of one track whose
listening intervals overlap are one play. Both sources give the moment a listen *ended* (the API's
`played_at`, the export's `ts`), so a play covers `[played_at - length, played_at]`, where the length is
`ms_played` when known and the track's duration otherwise. This catches the same listen arriving from
the API and from an export, and the duplicate records real exports contain, while keeping genuine
back-to-back repeats (they touch but do not overlap).

Two plays of one track that end at the same moment are one play whatever their lengths (that is the unique
key). Two API plays are never merged by overlap, only by that key: the API does not say how long a listen
lasted, so the track's full duration would swallow a real replay after a skip (the API reports each listen
once, with a stable `played_at`). Overlaps of up to OVERLAP_TOLERANCE are allowed: export timestamps are
whole seconds.
"""

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction

from earworm.accounts.models import User
from earworm.catalog.models import Track
from earworm.history.models import Play

# A listen of unknown length counts as Spotify's shortest counted stream.
UNKNOWN_LENGTH = timedelta(seconds=30)
# No listen is taken to last longer than this when looking for overlaps; bounds the neighbour query.
MAX_LENGTH = timedelta(hours=2)
# Two listens are one only when they overlap by more than this. Export timestamps are cut to whole seconds,
# so a straight repeat of a track can seem to start up to a second before the previous listen ended; real
# duplicates (the same listen twice) overlap by the whole listen, at least 26 s of the 30 s minimum.
OVERLAP_TOLERANCE = timedelta(seconds=2)
INSERT_BATCH_SIZE = 2000


@dataclass(frozen=True)
class NewPlay:
    track_id: int
    played_at: datetime  # aware, UTC: when the listen ended
    ms_played: int | None
    source: str
    context_uri: str = ""


@dataclass(frozen=True)
class StoreResult:
    inserted: int
    duplicates: int
    # The span of the plays offered, for refreshing what is derived from plays.
    earliest: datetime | None
    latest: datetime | None


def listen_length(*, ms_played: int | None, duration_ms: int | None) -> timedelta:
    """How long a listen lasted, for the overlap rule."""
    for value in (ms_played, duration_ms):
        if value:
            return min(timedelta(milliseconds=value), MAX_LENGTH)
    return UNKNOWN_LENGTH


def plays_user_lock(*, user_id: int) -> None:
    """Lock the user's row until the caller's transaction ends: one writer of a user's plays at a time.

    Every writer of plays takes it before reading the stored plays it compares with, so a sync and an import
    of the same user cannot both insert the same listen, and a user cannot be deleted while plays are being
    added (plays have no database foreign key, see `Play`; deleting a user takes the same lock first).
    `stats_rollups_refresh` takes it too. SQLite needs no lock: it runs one writing transaction at a time.
    Raises `User.DoesNotExist` when the user is gone.
    """
    if connection.vendor != "postgresql":
        if not User.objects.filter(pk=user_id).exists():
            raise User.DoesNotExist(f"User {user_id} does not exist.")
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {User._meta.db_table} WHERE id = %s FOR UPDATE", [user_id])  # noqa: S608
        if cursor.fetchone() is None:
            raise User.DoesNotExist(f"User {user_id} does not exist.")


def history_plays_store(*, user_id: int, plays: Sequence[NewPlay]) -> StoreResult:
    """Store new plays of one user, dropping any that overlap a stored play or an earlier one in `plays`.

    Runs a fixed number of queries per call (durations, stored neighbours, two counts, the inserts in
    batches of 2,000), inside the caller's transaction when there is one. Returns how many plays were
    inserted and how many were duplicates.
    """
    if not plays:
        return StoreResult(inserted=0, duplicates=0, earliest=None, latest=None)
    with transaction.atomic():
        plays_user_lock(user_id=user_id)
        return _store(user_id, plays)


def _store(user_id: int, plays: Sequence[NewPlay]) -> StoreResult:
    durations = dict(Track.objects.filter(pk__in={play.track_id for play in plays}).values_list("pk", "duration_ms"))

    def interval(track_id: int, played_at: datetime, ms_played: int | None) -> tuple[datetime, datetime]:
        return played_at - listen_length(ms_played=ms_played, duration_ms=durations.get(track_id)), played_at

    earliest = min(play.played_at for play in plays)
    latest = max(play.played_at for play in plays)
    window_start = earliest - MAX_LENGTH
    window_end = latest + MAX_LENGTH

    # Stored listens per track as (end, start, source), sorted by end.
    stored: dict[int, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    neighbours = (
        Play.objects.filter(user_id=user_id, track_id__in=durations.keys(), played_at__range=(window_start, window_end))
        .order_by("played_at")
        .values_list("track_id", "played_at", "ms_played", "source")
    )
    for track_id, played_at, ms_played, source in neighbours:
        start, end = interval(track_id, played_at, ms_played)
        bisect.insort(stored[track_id], (end, start, source))

    kept: list[Play] = []
    for play in sorted(plays, key=lambda p: (p.track_id, p.played_at)):
        start, end = interval(play.track_id, play.played_at, play.ms_played)
        listens = stored[play.track_id]
        if _overlaps(listens, start, end, play.source):
            continue
        bisect.insort(listens, (end, start, play.source))
        kept.append(
            Play(
                user_id=user_id,
                track_id=play.track_id,
                played_at=play.played_at,
                ms_played=play.ms_played,
                source=play.source,
                context_uri=play.context_uri[:255],
            )
        )

    # No conflict is possible: the rule drops every play with a stored one's key, and the user lock keeps
    # other writers out until this transaction ends.
    Play.objects.bulk_create(kept, batch_size=INSERT_BATCH_SIZE)
    return StoreResult(inserted=len(kept), duplicates=len(plays) - len(kept), earliest=earliest, latest=latest)


def _overlaps(listens: list[tuple[datetime, datetime, str]], start: datetime, end: datetime, source: str) -> bool:
    """Whether a listen is already among `listens` ((end, start, source), sorted by end).

    A stored listen is the same one when it ends at the same moment, or, unless both are API plays, when the
    two overlap by more than OVERLAP_TOLERANCE: it ends after `start + tolerance` and starts before
    `end - tolerance`; only those ending within MAX_LENGTH after `end` can start that early.
    """
    low = min(start + OVERLAP_TOLERANCE, end)  # a listen shorter than the tolerance still matches its key
    for stored_end, stored_start, stored_source in listens[bisect.bisect_left(listens, (low,)) :]:
        if stored_end - MAX_LENGTH >= end:
            break
        if stored_end == end:
            return True
        both_api = source == stored_source == Play.Source.API
        if not both_api and stored_end > start + OVERLAP_TOLERANCE and stored_start < end - OVERLAP_TOLERANCE:
            return True
    return False
