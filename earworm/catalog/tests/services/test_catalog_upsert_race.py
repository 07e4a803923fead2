"""Two transactions inserting the same new row at once (two syncs meeting the same new artist).

`ON CONFLICT (key)` arbitrates only the `key` index: both inserts can pass that check before either has
written its row; the second then waits on the `spotify_id` index and fails once the first commits. That
window lasts microseconds (two threads upserting the same new track 1,000 times met it 3 times), so the
test builds its aftermath step by step: another transaction holds the Spotify id in an uncommitted row, the
upsert waits on it and fails when it commits, and before the retry that row takes its real key, as the
winner of the race wrote it.
"""

import logging
import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.catalog.services import catalog_upsert
from earworm.catalog.tests.factories import make_track, spotify_id

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ARTIST = spotify_id("artist", 0)  # make_track(0)'s only artist
WAIT = 10


def _upsert_is_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the view stays as the transaction first read it
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


class _OtherSync(threading.Thread):
    """Commits the artist under a temporary key once the upsert waits on it; takes the real key on request."""

    def __init__(self) -> None:
        super().__init__()
        self.holding, self.rename, self.renamed = threading.Event(), threading.Event(), threading.Event()
        self.failures: list[BaseException] = []

    def run(self) -> None:
        try:
            with transaction.atomic():
                Artist.objects.create(key="not-yet", spotify_id=ARTIST, name="Written by the other sync")
                self.holding.set()
                deadline = time.monotonic() + WAIT
                while not _upsert_is_waiting():
                    assert time.monotonic() < deadline, "the upsert never waited on the uncommitted artist"
                    time.sleep(0.02)
            assert self.rename.wait(WAIT), "the upsert never retried"
            Artist.objects.filter(key="not-yet").update(key=ARTIST)
            self.renamed.set()
        except BaseException as exc:  # reported by the test's thread
            self.failures.append(exc)
        finally:
            connection.close()


class _RenameBeforeRetry(logging.Handler):
    def __init__(self, other: _OtherSync) -> None:
        super().__init__()
        self.other = other

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.other.rename.set()
            assert self.other.renamed.wait(WAIT)


def test_an_upsert_that_loses_an_insert_race_is_written_again_onto_the_winners_row() -> None:
    other = _OtherSync()
    other.start()
    assert other.holding.wait(WAIT)
    handler = _RenameBeforeRetry(other)
    logger = logging.getLogger("earworm.catalog.services")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with transaction.atomic():  # as in a sync: the lost attempt is undone to its savepoint, not further
            result = catalog_upsert(tracks=[make_track(0)])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        other.join()

    assert not other.failures
    assert other.renamed.is_set()
    assert list(Artist.objects.values_list("key", "spotify_id", "name")) == [(ARTIST, ARTIST, "Artist 0")]
    track = Track.objects.get()
    assert result.track_ids == {track.key: track.pk}
    assert (result.new_tracks, result.new_albums, result.new_artists) == (1, 1, 0)
    assert list(TrackArtist.objects.values_list("track_id", "artist__key")) == [(track.pk, ARTIST)]


def test_a_spotify_id_held_by_another_row_is_an_error_after_the_retries_and_writes_nothing() -> None:
    # Not a race: a row under another key keeps the id (no code of Earworm writes such a row).
    Artist.objects.create(key="another-key", spotify_id=ARTIST, name="Elsewhere")

    with pytest.raises(IntegrityError, match="catalog_artist_unique_spotify_id"):
        catalog_upsert(tracks=[make_track(0)])

    assert list(Artist.objects.values_list("key", flat=True)) == ["another-key"]
    assert not Track.objects.exists() and not Album.objects.exists()
