"""Import a Spotify data export (issue 6): the one service behind `import_history` and the `/import/` upload.

Export files are imported in batches of whole files (`_import_batch`), each in one transaction together with
the job's progress (`files_done`, counts), so a rejected file writes nothing, and a run killed at any point
resumes at the first file not done with the same final data. Plays go through the overlap rule of DESIGN.md
§5: `history_plays_store` on SQLite, COPY and a merge in SQL (`plays_copy`) on PostgreSQL, both over a whole
batch at a time so both give the same rows.

Tracks: extended records name the Spotify id; a missing one is created as a provisional Track keyed by that
id (metadata_fetched_at NULL) with the album artist and album known only by name (`name:` keys), which
enrichment later replaces. Records without an id (basic format, local files) are matched by normalised
(artist, track) names against the user's tracks, real ones first; otherwise a `name:` track is created and
the play counts as unresolved. On PostgreSQL, `_CatalogAhead` creates the provisional tracks of a file read
without error before its transaction needs them, in a second connection.
"""

import collections
import contextlib
import gc
import logging
import queue
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from earworm.catalog.keys import name_key
from earworm.catalog.models import Track, TrackArtist
from earworm.catalog.services import catalog_upsert
from earworm.core.exceptions import ApplicationError
from earworm.history.importing import (
    ArchiveLimits,
    ExportContents,
    ExportFileError,
    ExportPlay,
    ExportSource,
    FileKind,
    Skip,
    iter_export_rows,
    open_export,
)
from earworm.history.models import ImportJob, Play
from earworm.history.services.plays import NewPlay, StoreResult, history_plays_store
from earworm.history.services.plays_copy import StagedPlays, copy_row

logger = logging.getLogger(__name__)

CHUNK = 20_000
# Files are merged in batches of about this many records, one transaction each (`_import_batch`).
BATCH_RECORDS = 50_000
# Sort memory of a batch's transaction on PostgreSQL: the merge sorts the batch's plays by track and time, and
# with the default 4 MB that sort spilled to a temp file.
BATCH_WORK_MEM = "32MB"
# An import adding this many plays refreshes the planner's statistics before the statistics refresh.
ANALYZE_AFTER_PLAYS = 10_000
# Parsed chunks waiting for the database: the parser runs at most this far ahead.
PREFETCH_CHUNKS = 8
# While a parse thread runs (`_ParseTuning`): the interpreter's thread switch interval (Python's default is
# 5 ms) and the allocations between two collections of the garbage collector's youngest generation (700).
PARSE_SWITCH_INTERVAL = 0.0001
PARSE_GC_THRESHOLD = 50_000
# Extended files first, so basic-format records can match the tracks they name.
_KIND_ORDER = {FileKind.EXTENDED: 0, FileKind.BASIC_MUSIC: 1, None: 1, FileKind.BASIC_PODCAST: 2}


class ImportBusy(ApplicationError):
    """Another import of this user is running (one at a time, SECURITY.md UP-5)."""

    status_code = 409

    def __init__(self, message: str = "Another import of your history is running; wait for it to finish.") -> None:
        super().__init__(message, extra={"code": "import_running"})


@dataclass
class ImportProgress:
    """Passed to the optional progress callback after every chunk of records."""

    file: str
    file_number: int
    files_total: int
    records_in_file: int
    records_done: int


@dataclass
class ImportSummary:
    job_id: int
    status: str
    plays_added: int
    records_done: int
    skipped: dict[str, int]
    unresolved: int
    errors: list[str]
    ignored: list[str] = field(default_factory=list)


def upload_dir() -> Path:
    return Path(settings.IMPORT_UPLOAD_DIR)


def job_paths(job: ImportJob) -> list[tuple[Path, str]]:
    """The files of a job with their display names: paths given to the command, or the stored upload."""
    if job.source_paths:
        return [(Path(path), Path(path).name) for path in job.source_paths]
    return [(upload_dir() / job.upload_path, job.original_name or Path(job.upload_path).name)]


def import_job_claim(*, job_id: int) -> str | None:
    """Claim a job for this process: a conditional UPDATE, plus the database's one-running-import-per-user
    constraint. Returns the claim token, or None when the job is done or claimed by a live process.
    Raises `ImportBusy` when another job of the same user is running."""
    now = timezone.now()
    token = uuid.uuid4().hex
    job = ImportJob.objects.filter(pk=job_id).values("user_id").first()
    if job is None:
        return None
    # A job whose claim expired (its process died) goes back to waiting; it resumes when claimed again.
    ImportJob.objects.filter(user_id=job["user_id"], status=ImportJob.Status.RUNNING, claimed_until__lt=now).exclude(
        pk=job_id
    ).update(status=ImportJob.Status.PENDING)
    try:
        with transaction.atomic():
            claimed = (
                ImportJob.objects.filter(pk=job_id, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING])
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .update(
                    status=ImportJob.Status.RUNNING,
                    claimed_until=now + timedelta(seconds=settings.IMPORT_CLAIM_SECONDS),
                    claimed_by=token,
                )
            )
    except IntegrityError:
        raise ImportBusy() from None
    return token if claimed == 1 else None


def history_import(*, job_id: int, progress: Callable[[ImportProgress], None] | None = None) -> ImportSummary | None:
    """Run (or resume) an import job to the end. Returns its summary, or None if another process holds it.

    A file that breaks a rule is rejected with a message naming it (and the record), nothing of it is written,
    and the other files are still imported. An archive that breaks a limit fails the whole job. Raises
    `ImportBusy` when another import of the same user is running.
    """
    token = import_job_claim(job_id=job_id)
    if token is None:
        return None
    job = ImportJob.objects.get(pk=job_id)
    ignored: list[str] = []
    try:
        _run(job, token, ignored, progress)
    except ExportFileError as exc:
        ImportJob.objects.filter(pk=job.pk).update(errors=[*job.errors, exc.message])
        _finish(job, ImportJob.Status.FAILED)
    except BaseException:
        # Leave the job resumable (a SIGKILL leaves it the same way, until the claim expires).
        ImportJob.objects.filter(pk=job.pk, claimed_by=token).update(claimed_until=None)
        raise
    else:
        _finish(job, ImportJob.Status.DONE)
    job.refresh_from_db()
    return ImportSummary(
        job_id=job.pk,
        status=job.status,
        plays_added=job.plays_added,
        records_done=job.records_done,
        skipped=dict(job.skipped),
        unresolved=job.unresolved,
        errors=list(job.errors),
        ignored=ignored,
    )


def _finish(job: ImportJob, status: str) -> None:
    """Refresh the statistics of the plays added, then mark the job finished: a job shown as done has its
    statistics ready. A failed refresh leaves the job running; when its claim expires it is resumed, finds
    every file done and comes back here."""
    job.refresh_from_db()
    if job.plays_added and job.span_start and job.span_end:
        if connection.vendor == "postgresql" and job.plays_added >= ANALYZE_AFTER_PLAYS:
            # The planner's row counts predate the import; autovacuum may be late or off. Stale counts turned
            # the statistics refresh below from 3 s into 10 minutes once (a nested loop over 750,000 plays).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE history_play, catalog_track")
        _refresh_stats(user_id=job.user_id, start=job.span_start, end=job.span_end)
    ImportJob.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now(), claimed_until=None)
    if job.upload_path and not job.source_paths:
        (upload_dir() / job.upload_path).unlink(missing_ok=True)


def _refresh_stats(*, user_id: int, start: datetime, end: datetime) -> None:
    from django.db.models import Max, Min

    from earworm.stats.services import stats_rollups_refresh

    # When the import spans every play of the user (a first import), the unbounded refresh rebuilds the same
    # rows with one statement per grain instead of per-track batches for the all-time rows.
    stored = Play.objects.filter(user_id=user_id).aggregate(first=Min("played_at"), last=Max("played_at"))
    if stored["first"] is not None and stored["first"] >= start and stored["last"] <= end:
        stats_rollups_refresh(user_id=user_id)
    else:
        stats_rollups_refresh(user_id=user_id, start=start, end=end)


def _limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_members=settings.IMPORT_MAX_ARCHIVE_MEMBERS,
        max_total_bytes=settings.IMPORT_MAX_UNCOMPRESSED_BYTES,
        max_ratio=settings.IMPORT_MAX_COMPRESSION_RATIO,
    )


def _run(job: ImportJob, token: str, ignored: list[str], progress: Callable[[ImportProgress], None] | None) -> None:
    paths = job_paths(job)
    with _opened(paths) as sources_by_path:
        sources: list[tuple[str, ExportSource]] = []
        for prefix, contents in sources_by_path:
            ignored.extend(contents.ignored)
            sources.extend((f"{prefix}{source.key}", source) for source in contents.sources)
        sources.sort(key=lambda item: _KIND_ORDER.get(item[1].kind, 1))
        ImportJob.objects.filter(pk=job.pk).update(files_total=len(sources))
        known = _KnownTracks()
        job.refresh_from_db(fields=["files_done"])
        todo = [(key, source) for key, source in sources if key not in job.files_done]
        numbers = {key: number for number, (key, _) in enumerate(sources, start=1)}
        # A second connection sees only committed rows: inside a caller's transaction (tests) there is no catalog
        # thread.
        ahead = _CatalogAhead(known) if connection.vendor == "postgresql" and not connection.in_atomic_block else None
        # The catalog thread stops first: the parse thread may be waiting to hand it a file while it waits for a
        # transaction that failed.
        with (
            _ParseTuning(),
            _Prefetch(todo, for_copy=connection.vendor == "postgresql", known=known, ahead=ahead) as prefetch,
            ahead or contextlib.nullcontext(),
        ):
            run = _Batches(job.pk, job.user_id, token, numbers, len(sources), progress, known, prefetch, ahead)
            remaining = collections.deque(todo)
            while remaining:
                key = remaining[0][0]
                try:
                    _import_batch(run, remaining)
                except ExportFileError as exc:  # in a file read in more than one chunk, alone in its batch
                    logger.info("Import %s: file rejected: %s", job.pk, exc.message)
                    with transaction.atomic():
                        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
                        locked.errors = [*locked.errors, exc.message]
                        locked.files_done = [*locked.files_done, key]
                        locked.save(update_fields=["errors", "files_done", "updated_at"])


@dataclass
class _Chunk:
    """Up to CHUNK records of one file, sorted out by the parse thread."""

    records: int
    skipped: Counter[str]
    plays: list[ExportPlay]
    last: bool = False  # the file's last chunk: the file was read to its end without error
    by_name: bool = False  # some plays have no Spotify id (basic format, local files): matched by name
    # For COPY, when every play names its Spotify id: the plays as COPY rows of import_staging (`copy_row`)
    # numbered from `first` (the plays in the file's earlier chunks), the last play of each track no earlier file
    # committed, and the span of their end times.
    copy_rows: bytes | None = None
    first: int = 0
    tracks: dict[str, ExportPlay] = field(default_factory=dict)
    earliest: datetime | None = None
    latest: datetime | None = None


def _prepare(rows: list[ExportPlay | Skip], *, last: bool, first: int, for_copy: bool, known: "_KnownTracks") -> _Chunk:
    skipped: Counter[str] = Counter()
    plays: list[ExportPlay] = []
    for row in rows:
        if type(row) is ExportPlay:
            plays.append(row)
        else:
            skipped[row] += 1  # type: ignore[index]
    by_name = not all(play.track_id for play in plays)
    chunk = _Chunk(len(rows), skipped, plays, last=last, by_name=by_name, first=first)
    if for_copy and plays and not by_name:
        # Tracks committed by an earlier file go by primary key, the others by catalog key, resolved in the
        # merge.
        ids = known.ids
        encoded = []
        for seq, play in enumerate(plays, first):
            pk = ids.get(play.track_id)
            if pk is None:
                # The names of the chunk's last play of each track, as `_TrackResolver.resolve` takes them.
                chunk.tracks[play.track_id] = play
            encoded.append(copy_row(seq, play.track_id if pk is None else pk, play.played_at, play.ms_played))
        chunk.copy_rows = b"".join(encoded)
        chunk.earliest = min(play.played_at for play in plays)
        chunk.latest = max(play.played_at for play in plays)
    return chunk


_Item = _Chunk | BaseException | None


class _ParseTuning:
    """Interpreter settings for the time at least one parse thread of this process runs; the last import to
    end puts back what it found.

    - Thread switch interval 0.1 ms instead of Python's 5 ms: the import thread sends statements one after
      another and needs the GIL back after each answer; the parse thread holds it, and by default gives it up
      only every 5 ms. With 0.1 ms, a 1M-record import took 17.3-17.6 s instead of 20.0-22.7 s on this 2-core
      machine (docs/benchmarks.md); the parser, which runs ahead of the database anyway, does not get slower in
      a way that shows.
    - The garbage collector's first threshold PARSE_GC_THRESHOLD instead of 700 allocations: the parser makes
      a million rows, none of them in a reference cycle, and each of the ~10 full collections they set off
      walked every chunk waiting in the queues while holding the GIL (1.6 s of a 1M-record import; 0.1 s now).
      Cycles are still collected, just less often."""

    _lock = threading.Lock()
    _users = 0
    _saved_interval = 0.0
    _saved_threshold = 0

    def __enter__(self) -> None:
        with self._lock:
            if _ParseTuning._users == 0:
                _ParseTuning._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(PARSE_SWITCH_INTERVAL)
                _ParseTuning._saved_threshold = gc.get_threshold()[0]
                gc.set_threshold(PARSE_GC_THRESHOLD, *gc.get_threshold()[1:])
            _ParseTuning._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            _ParseTuning._users -= 1
            if _ParseTuning._users == 0:
                sys.setswitchinterval(_ParseTuning._saved_interval)
                gc.set_threshold(_ParseTuning._saved_threshold, *gc.get_threshold()[1:])


def _put_while(into: queue.Queue, item: object, running: Callable[[], bool]) -> bool:
    """Put `item` into the bounded queue `into`, waiting for room while `running()`; False if it stopped first."""
    while running():
        try:
            into.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class _Prefetch:
    """Parse the export files in a background thread while the database merges and commits the file before:
    the parser is pure Python and psycopg releases the GIL while it waits on PostgreSQL, so the two overlap.
    The queue holds a few chunks at most, so memory stays independent of file sizes. A file's parse error
    reaches the consumer at the same point of that file as a direct parse would raise it."""

    def __init__(
        self,
        sources: list[tuple[str, ExportSource]],
        *,
        for_copy: bool,
        known: "_KnownTracks",
        ahead: "_CatalogAhead | None" = None,
    ) -> None:
        self.sources = sources
        self.for_copy = for_copy
        self.known = known
        self.ahead = ahead
        self.queue: queue.Queue[tuple[str, _Item]] = queue.Queue(maxsize=PREFETCH_CHUNKS)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._parse, name="import-parse", daemon=True)
        self._held: _Item = None  # the next file's first item, taken by read_whole()
        self._peeked = False

    def __enter__(self) -> "_Prefetch":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _put(self, key: str, item: _Item) -> bool:
        return _put_while(self.queue, (key, item), lambda: not self.stop.is_set())

    def _parse(self) -> None:
        now = timezone.now()
        track_ids: dict[str, str] = {}  # checked track URIs, for every file
        plays = 0  # numbers the plays of all files in input order (`copy_row`'s `seq`)
        for key, source in self.sources:
            try:
                with source.open() as stream:
                    parsed = iter_export_rows(
                        stream,
                        file=source.name,
                        kind=source.kind,
                        min_ms_played=settings.IMPORT_MIN_MS_PLAYED,
                        now=now,
                        track_ids=track_ids,
                    )
                    # The tracks the file names that no earlier file committed, each with the play the import
                    # thread stages it with (the last of the first chunk naming it, see _CopyWriter.add_export).
                    tracks: dict[str, ExportPlay] = {}
                    by_name = False
                    for rows, last in _chunks(parsed, CHUNK):
                        chunk = _prepare(rows, last=last, first=plays, for_copy=self.for_copy, known=self.known)
                        plays += len(chunk.plays)
                        by_name = by_name or chunk.by_name
                        for track_id, play in chunk.tracks.items():
                            tracks.setdefault(track_id, play)
                        if not self._put(key, chunk):
                            return
                    if self.ahead is not None:  # read to the end without error: not a rejected file
                        # A file matching plays by name makes all of its tracks in its own transaction.
                        self.ahead.offer(key, {} if by_name else tracks, pause=by_name)
            except ExportFileError as exc:
                if not self._put(key, exc):
                    return
                continue
            except BaseException as exc:  # handed to the consumer, which raises it in the import's thread
                self._put(key, exc)
                return
            if not self._put(key, None):
                return

    def _next(self, key: str) -> _Item:
        if self._peeked:
            self._peeked = False
            return self._held
        got, item = self.queue.get()
        assert got == key, (got, key)
        return item

    def read_whole(self, key: str) -> bool:
        """Whether file `key`, the next in order, has been read to its end (waiting for its first chunk): it
        was rejected or is a single chunk, so taking it into a transaction cannot make that roll back."""
        if not self._peeked:
            self._held, self._peeked = self._next(key), True
        return not isinstance(self._held, _Chunk) or self._held.last

    def chunks(self, key: str) -> Iterator[_Chunk]:
        """The chunks of file `key`, the next file in order; raises the file's `ExportFileError`."""
        while True:
            item = self._next(key)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class _CatalogAhead:
    """PostgreSQL: create the provisional tracks of each file, in file order, once the parse thread has read the
    file to its end without error, in a second connection while the import's connection is still merging earlier
    files. The catalog writes and their foreign-key checks at COMMIT then run on the other core instead of inside
    the import's transactions (docs/import.md).

    Before it makes a file's remaining tracks, the import waits until this thread has done that file
    (`wait_for`): the catalog then changes in the same order as when each file's transaction makes its own
    tracks (the first spelling of a name in a file wins, a later file's new tracks may rename an artist), and
    the import finds its tracks made, so it writes no catalog row itself. A file with plays matched by name is
    the exception: the import's transaction makes all of its tracks (matching needs the plays stored before
    it), the file ends its batch, and this thread does nothing for it and pauses until that transaction has
    committed (`committed`), so it neither writes a later file's names first nor waits on the import's locks
    while the import waits for it. Only a head start: the import still creates any track it does not find,
    so when this thread fails (logged) or stops, the import goes on as without it."""

    def __init__(self, known: "_KnownTracks") -> None:
        self.known = known
        self.queue: queue.Queue[tuple[str, dict[str, ExportPlay], bool]] = queue.Queue(maxsize=PREFETCH_CHUNKS)
        self.state = threading.Condition()
        self.done: set[str] = set()  # files whose tracks exist
        self.committed_files: set[str] = set()
        self.stopped = False  # set when the thread ends, failed or stopped: nobody waits for it any more
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._create, name="import-catalog", daemon=True)

    def __enter__(self) -> "_CatalogAhead":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt()
        self.thread.join()

    def halt(self) -> None:
        """Stop creating tracks ahead (also while paused); offers are dropped from now on."""
        self.stop.set()
        with self.state:
            self.state.notify_all()

    def offer(self, key: str, tracks: dict[str, ExportPlay], *, pause: bool = False) -> None:
        """Called by the parse thread once file `key` has been read without error (`tracks`: those no earlier
        file committed; `pause`: the import makes them, wait until it has committed the file). Waits while the
        queue is full: the parse thread is ahead of the import anyway."""
        _put_while(self.queue, (key, tracks, pause), lambda: not (self.stopped or self.stop.is_set()))

    def wait_for(self, key: str) -> None:
        """Called by the import thread once it has read every chunk of file `key`, before making its tracks."""
        with self.state:
            self.state.wait_for(lambda: key in self.done or self.stopped)

    def committed(self, keys: Iterable[str]) -> None:
        """Called by the import thread once the transaction of files `keys` has committed."""
        with self.state:
            self.committed_files.update(keys)
            self.state.notify_all()

    def _create(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    key, tracks, pause = self.queue.get(timeout=0.05)
                except queue.Empty:
                    continue
                rows = [
                    _CopyWriter.track_row(track_id, play)
                    for track_id, play in tracks.items()
                    if track_id not in self.known.ids
                ]
                if rows:
                    with transaction.atomic():
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL synchronous_commit = off")  # as _import_batch does
                        staged = StagedPlays(user_id=0)  # no plays: merge() only creates the tracks
                        staged.add_tracks(rows)
                        staged.merge()
                    self.known.update(staged.track_ids)
                with self.state:
                    self.done.add(key)
                    self.state.notify_all()
                    while pause and key not in self.committed_files and not self.stop.is_set():
                        self.state.wait()
        except Exception:
            logger.exception("Import: creating tracks ahead stopped; each file's transaction creates its own")
        finally:
            with self.state:
                self.stopped = True
                self.state.notify_all()
            connection.close()  # this thread's own connection


class _opened:
    """Open every path of a job (closing them all at the end); keys are prefixed when there are several."""

    def __init__(self, paths: list[tuple[Path, str]]) -> None:
        self.paths = paths
        self.stack: list = []

    def __enter__(self) -> list[tuple[str, ExportContents]]:
        self.exit_stack = contextlib.ExitStack()
        opened = []
        for index, (path, name) in enumerate(self.paths):
            contents = self.exit_stack.enter_context(open_export(path, display_name=name, limits=_limits()))
            opened.append((f"{index}/" if len(self.paths) > 1 else "", contents))
        return opened

    def __exit__(self, *exc: object) -> None:
        self.exit_stack.close()


class _TrackResolver:
    """Track primary keys for export plays of one file, creating provisional tracks where needed."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.by_id: dict[str, int] = {}
        self._by_name: dict[str, tuple[int, bool]] | None = None

    def by_name(self) -> dict[str, tuple[int, bool]]:
        """(pk, has a Spotify id) by name_key(first artist, track) over the user's tracks, real ones first."""
        if self._by_name is None:
            index: dict[str, tuple[int, bool]] = {}
            played = Play.objects.filter(user_id=self.user_id).values("track_id")
            tracks = Track.objects.filter(pk__in=played).order_by("pk").values_list("pk", "name", "spotify_id")
            first_artist = dict(
                TrackArtist.objects.filter(track_id__in=played, position=0).values_list("track_id", "artist__name")
            )
            for pk, name, spotify_id in tracks:
                key = name_key(first_artist.get(pk, ""), name)
                if key not in index or (spotify_id and not index[key][1]):
                    index[key] = (pk, bool(spotify_id))
            self._by_name = index
        return self._by_name

    def resolve(self, plays: list[ExportPlay]) -> tuple[list[int], int]:
        """The track pk of each play, and how many plays matched no track with a Spotify id."""
        from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData

        missing_ids = {play.track_id for play in plays if play.track_id and play.track_id not in self.by_id}
        if missing_ids:
            self.by_id.update(Track.objects.filter(key__in=missing_ids).values_list("key", "pk"))
            new = [
                TrackData(
                    id=play.track_id,
                    name=play.track_name or play.track_id,
                    album=SimplifiedAlbumData(name=play.album_name) if play.album_name else None,
                    artists=[SimplifiedArtistData(name=play.artist_name)] if play.artist_name else [],
                )
                for play in {p.track_id: p for p in plays if p.track_id in missing_ids}.values()
                if play.track_id not in self.by_id
            ]
            if new:
                self.by_id.update(catalog_upsert(tracks=new).track_ids)
        names = self.by_name() if any(not play.track_id for play in plays) else {}
        missing_names: dict[str, ExportPlay] = {}
        for play in plays:
            if not play.track_id:
                key = name_key(play.artist_name, play.track_name)
                if key not in names:
                    missing_names.setdefault(key, play)
        if missing_names:
            created = catalog_upsert(
                tracks=[
                    TrackData(
                        name=play.track_name,
                        album=SimplifiedAlbumData(name=play.album_name) if play.album_name else None,
                        artists=[SimplifiedArtistData(name=play.artist_name)] if play.artist_name else [],
                    )
                    for play in missing_names.values()
                ]
            ).track_ids
            for key in missing_names:
                names[key] = (created[key], False)
        pks: list[int] = []
        unresolved = 0
        for play in plays:
            if play.track_id:
                pks.append(self.by_id[play.track_id])
            else:
                pk, real = names[name_key(play.artist_name, play.track_name)]
                pks.append(pk)
                unresolved += not real
        return pks, unresolved


def _chunks(rows: Iterable[ExportPlay | Skip], size: int) -> Iterator[tuple[list[ExportPlay | Skip], bool]]:
    """Lists of up to `size` rows, each with whether it is the last (one row is read ahead to know)."""
    iterator = iter(rows)
    chunk = list(islice(iterator, size))
    while chunk:
        following = list(islice(iterator, 1))
        yield chunk, not following
        chunk = following + list(islice(iterator, size - 1)) if following else []


class _PythonWriter:
    """SQLite (and the reference): the file's plays in memory, one `history_plays_store` call at the end."""

    def __init__(self, user_id: int, known: "_KnownTracks") -> None:
        self.user_id = user_id
        self.resolver = _TrackResolver(user_id)
        self.plays: list[NewPlay] = []

    def add_export(self, chunk: "_Chunk") -> int:
        """Stage a chunk of plays; returns how many matched no track with a Spotify id."""
        plays = chunk.plays
        pks, unresolved = self.resolver.resolve(plays)
        self.plays.extend(
            NewPlay(track_id=pk, played_at=play.played_at, ms_played=play.ms_played, source="export")
            for pk, play in zip(pks, plays, strict=True)
        )
        return unresolved

    def file_done(self) -> None:
        pass  # tracks are made as each chunk is resolved

    def merge(self) -> StoreResult:
        return history_plays_store(user_id=self.user_id, plays=self.plays)

    def committed(self) -> None:
        pass


@lru_cache(maxsize=1 << 16)
def _name_key(*names: str) -> str:
    return name_key(*names)


class _KnownTracks:
    """Primary keys by catalog key of the tracks committed by earlier files of this run, so a file stages only
    the tracks it introduces and its plays name the others by primary key (the merge looks up only the new
    ones). Read by the parse thread while the import thread adds to it (single dict operations, atomic under
    the GIL). Bounded: cleared when it grows past `limit` (a cache, never the truth)."""

    def __init__(self, limit: int = 500_000) -> None:
        self.ids: dict[str, int] = {}
        self.limit = limit

    def update(self, ids: dict[str, int]) -> None:
        if len(self.ids) + len(ids) > self.limit:
            self.ids.clear()
        self.ids.update(ids)


class _CopyWriter:
    """PostgreSQL: plays and the provisional tracks they name COPYed into staging tables chunk by chunk
    (memory independent of the file's size), merged in SQL by `StagedPlays.merge()` at the end of the file.
    Plays with a Spotify id go in by the track's primary or catalog key; only records without one are resolved
    here, by name."""

    def __init__(self, user_id: int, known: _KnownTracks) -> None:
        self.staged = StagedPlays(user_id=user_id)
        self.resolver = _TrackResolver(user_id)
        self.known = known
        self.staged_keys: set[str] = set()

    def add_export(self, chunk: "_Chunk") -> int:
        if chunk.copy_rows is None:
            return self._add_plays(chunk.plays)
        known, staged = self.known.ids, self.staged_keys
        new_tracks = [
            self.track_row(track_id, play)
            for track_id, play in chunk.tracks.items()
            if track_id not in known and track_id not in staged
        ]
        if new_tracks:
            staged.update(row[0] for row in new_tracks)
            self.staged.add_tracks(new_tracks)
        assert chunk.earliest is not None and chunk.latest is not None
        self.staged.add_rows(chunk.copy_rows, chunk.first, len(chunk.plays), chunk.earliest, chunk.latest)
        return 0

    @staticmethod
    def track_row(track_id: str, play: ExportPlay) -> tuple[str, str, str | None, str, str | None, str]:
        artist, album = play.artist_name, play.album_name
        return (
            track_id,
            play.track_name or track_id,
            _name_key(artist) if artist else None,
            artist,
            _name_key(artist, album) if album else None,
            album,
        )

    def _add_plays(self, plays: list[ExportPlay]) -> int:
        unresolved = 0
        by_name: Iterator[int] = iter(())
        unnamed = [play for play in plays if not play.track_id]
        if unnamed:
            pks, unresolved = self.resolver.resolve(unnamed)
            by_name = iter(pks)
        known, staged = self.known.ids, self.staged_keys
        new: dict[str, ExportPlay] = {}
        rows: list[tuple[int | str, datetime, int]] = []
        for play in plays:
            track_id = play.track_id
            if not track_id:
                rows.append((next(by_name), play.played_at, play.ms_played))
                continue
            if track_id not in known and track_id not in staged:
                new[track_id] = play  # the names of the chunk's last play of the track, as _TrackResolver
            rows.append((track_id, play.played_at, play.ms_played))
        if new:
            staged.update(new)
            self.staged.add_tracks([self.track_row(track_id, play) for track_id, play in new.items()])
        self.staged.add_export(rows)
        return unresolved

    def file_done(self) -> None:
        """Create the file's tracks that no earlier file or the catalog thread made."""
        self.staged.create_tracks()

    def merge(self) -> StoreResult:
        return self.staged.merge()

    def committed(self) -> None:
        self.known.update(self.staged.track_ids)


def _joins(file: tuple[str, ExportSource], records: int, prefetch: _Prefetch, batch_kind: FileKind | None) -> bool:
    """Whether `file` may join a batch holding `records` records that began with a file of `batch_kind`. Only
    extended files are batched: basic-format records are matched by name against the tracks of the plays
    stored before them."""
    key, source = file
    extended = FileKind.EXTENDED
    return batch_kind is extended and source.kind is extended and records < BATCH_RECORDS and prefetch.read_whole(key)


@dataclass
class _Batches:
    """What importing the job's files in batches needs besides the files."""

    job_id: int
    user_id: int
    token: str
    numbers: dict[str, int]  # each file's position among all of the job's files, from 1
    files_total: int
    progress: Callable[[ImportProgress], None] | None
    known: _KnownTracks
    prefetch: _Prefetch
    ahead: _CatalogAhead | None


def _import_batch(run: _Batches, files: "collections.deque[tuple[str, ExportSource]]") -> None:
    """Import the next file of `files` and the files after it that may join it (`_joins`: extended files
    while the batch holds fewer than BATCH_RECORDS records) in one transaction with the job's progress, taking
    them from the front of `files`.

    Only the batch's first file may still be rejected once its first chunk has arrived (it is read in more than
    one chunk): its `ExportFileError` rolls the transaction back and leaves it to the caller. The others join
    only once read to their end (`_Prefetch.read_whole`); a file rejected among them is recorded here. Merging
    several files at once saves each file's statements and COMMIT and lets the merge work on larger sets (the
    merge statements of a 1M-record import: 5.4 s for 84 files, 4.5 s for 17 batches). A file's plays are
    compared with the plays of the batch's earlier files by the same rule as with stored plays; a batch ends at
    the same file whether or not the import was interrupted before it, since an interruption leaves whole
    batches done."""
    skipped: Counter[str] = Counter()
    records = 0
    unresolved = 0
    done: list[str] = []
    errors: list[str] = []
    prefetch = run.prefetch
    batch_kind: FileKind | None = None  # the kind of the batch's first file
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The COMMIT need not wait for the WAL to reach the disk: the files and the job's progress commit
            # together, so a crash that loses the last commits only makes a resumed import read those files
            # again (a few ms of each transaction otherwise, 2.7 s of a 1M-record import in one per file).
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL synchronous_commit = off; SET LOCAL work_mem = '{BATCH_WORK_MEM}'")
        job = ImportJob.objects.select_for_update().get(pk=run.job_id)
        writer = (_CopyWriter if connection.vendor == "postgresql" else _PythonWriter)(run.user_id, run.known)
        while files and (not done or _joins(files[0], records, prefetch, batch_kind)):
            key, source = files[0]
            if key in job.files_done or job.claimed_by != run.token:
                # Done meanwhile by another process, which took the job over when this one's claim expired.
                if done:
                    break  # the next batch passes over it
                if run.ahead is not None:
                    run.ahead.halt()  # it may wait for a transaction of this process that will not come
                files.popleft()
                for _ in prefetch.chunks(key):
                    pass
                return
            files.popleft()
            if not done:
                batch_kind = source.kind
            in_file = 0
            by_name = False
            try:
                for chunk in prefetch.chunks(key):
                    in_file += chunk.records
                    by_name = by_name or chunk.by_name
                    skipped.update(chunk.skipped)
                    if chunk.plays:
                        unresolved += writer.add_export(chunk)
                    if run.progress:
                        number = run.numbers[key]
                        total = job.records_done + records + in_file
                        run.progress(ImportProgress(source.name, number, run.files_total, in_file, total))
            except ExportFileError as exc:
                if in_file:
                    raise
                logger.info("Import %s: file rejected: %s", run.job_id, exc.message)
                errors.append(exc.message)
            else:
                records += in_file
                if run.ahead is not None:
                    run.ahead.wait_for(key)
                writer.file_done()
            done.append(key)
            if by_name:
                break  # the catalog thread waits for this transaction (_CatalogAhead)
        result = writer.merge()
        if result.duplicates:
            skipped[Skip.DUPLICATE] += result.duplicates
        job.files_done = [*job.files_done, *done]
        job.errors = [*job.errors, *errors]
        job.records_done += records
        job.records_total = max(job.records_total, job.records_done)
        job.plays_added += result.inserted
        job.unresolved += unresolved
        job.skipped = dict(Counter(job.skipped) + Counter({str(k): v for k, v in skipped.items()}))
        if result.inserted and result.earliest and result.latest:
            job.span_start = min(filter(None, [job.span_start, result.earliest]))
            job.span_end = max(filter(None, [job.span_end, result.latest]))
        job.claimed_until = timezone.now() + timedelta(seconds=settings.IMPORT_CLAIM_SECONDS)
        job.save()
    writer.committed()
    if run.ahead is not None:
        run.ahead.committed(done)


def import_job_create(
    *, user_id: int, source_paths: list[str] | None = None, upload_path: str = "", original_name: str = ""
) -> ImportJob:
    """A new pending job for the given files (command) or stored upload (web)."""
    return ImportJob.objects.create(
        user_id=user_id, source_paths=source_paths or [], upload_path=upload_path, original_name=original_name
    )


def import_job_for_paths(*, user_id: int, source_paths: list[str]) -> ImportJob:
    """The unfinished job of this user for exactly these files (to resume it), or a new one."""
    existing = (
        ImportJob.objects.filter(user_id=user_id, source_paths=source_paths)
        .exclude(status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED])
        .order_by("-created_at")
        .first()
    )
    return existing or import_job_create(user_id=user_id, source_paths=source_paths)
