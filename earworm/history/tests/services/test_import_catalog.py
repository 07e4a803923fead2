"""The tracks an import creates are the rows `catalog_upsert` writes for the export's names, on both databases
(PostgreSQL creates them in SQL from a staging table)."""

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from earworm.catalog.keys import name_key
from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.catalog.services import catalog_upsert
from earworm.history.importing import ExportPlay
from earworm.history.models import Play
from earworm.history.services import imports
from earworm.history.services.imports import history_import, import_job_create
from earworm.history.services.plays_copy import StagedPlays
from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData

pytestmark = pytest.mark.django_db(transaction=True)


def _record(ts: str, track_id: str, name: str | None, artist: str | None, album: str | None) -> dict:
    return {
        "ts": ts,
        "ms_played": 200_000,
        "master_metadata_track_name": name,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": f"spotify:track:{track_id}",
    }


def _rows() -> tuple[list, list, list, list]:
    return (
        sorted(Track.objects.values_list("key", "spotify_id", "name", "album__key", "duration_ms", "is_local")),
        sorted(Artist.objects.values_list("key", "spotify_id", "name")),
        sorted(Album.objects.values_list("key", "spotify_id", "name", "album_type", "release_date")),
        sorted(TrackArtist.objects.values_list("track__key", "artist__key", "position")),
    )


def test_imported_tracks_equal_what_catalog_upsert_writes_for_the_same_names(user, tmp_path: Path):
    known = TrackData(id="known1", name="Known", duration_ms=180_000, artists=[SimplifiedArtistData(name="Old")])
    catalog_upsert(tracks=[known])
    records = [
        _record("2024-01-01T10:00:00Z", "aaa1", "Song A", "Band", "Record"),
        _record("2024-01-01T11:00:00Z", "aaa1", "Song A again", "Band", "Record"),  # a chunk.s last names win
        _record("2024-01-01T12:00:00Z", "bbb2", "Song B", "band ", "Other"),  # same artist key
        _record("2024-01-01T13:00:00Z", "ccc3", None, None, None),  # no names: the id is the name
        _record("2024-01-01T14:00:00Z", "known1", "Renamed", "New", "Album"),  # known: left as it is
    ]
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(json.dumps(records), encoding="utf-8")

    summary = history_import(job_id=import_job_create(user_id=user.pk, source_paths=[str(path)]).pk)
    imported = _rows()
    Play.objects.all().delete()
    Track.objects.exclude(key="known1").delete()
    Album.objects.all().delete()
    Artist.objects.exclude(key=name_key("Old")).delete()
    catalog_upsert(
        tracks=[
            TrackData(
                id=track_id,
                name=name,
                album=SimplifiedAlbumData(name=album) if album else None,
                artists=[SimplifiedArtistData(name=artist)] if artist else [],
            )
            for track_id, name, artist, album in [
                ("aaa1", "Song A again", "Band", "Record"),
                ("bbb2", "Song B", "band ", "Other"),
                ("ccc3", "ccc3", "", ""),
            ]
        ]
    )

    assert summary is not None and summary.plays_added == 5
    assert imported == _rows()


def _files(tmp_path: Path) -> list[Path]:
    """Six files whose tracks recur across files, with the artist and album spelled differently in each; two
    also hold a local file by one of the artists (matched by name, so its file makes its own tracks)."""
    paths = []
    for number in range(6):
        records = [
            _record(
                f"2024-0{number + 1}-01T{hour:02d}:00:00Z",
                f"t{number * 5 + hour}",  # three tracks of each file were in the file before
                f"Song {hour}",
                f"Band {hour % 3}" if number % 2 else f"band {hour % 3} ",
                f"Record {hour % 4} v{number}",
            )
            for hour in range(8)
        ]
        if number in (2, 3):
            local = _record(
                f"2024-0{number + 1}-01T20:00:00Z",
                "x",
                f"Local {number}",
                records[1]["master_metadata_album_artist_name"],
                f"Record 1 v{number}",
            )
            records.insert(0, {**local, "spotify_track_uri": f"spotify:local:Band+1:Record:Local+{number}:200"})
        paths.append(tmp_path / f"Streaming_History_Audio_2024_{number}.json")
        paths[-1].write_text(json.dumps(records), encoding="utf-8")
    return paths


def _import_slowly(user, paths: list[Path]):
    """Import with the import's own thread pausing after each chunk, so the catalog thread gets well ahead (the
    order of the catalog changes must not depend on it)."""
    job = import_job_create(user_id=user.pk, source_paths=[str(path) for path in paths])
    return history_import(job_id=job.pk, progress=lambda _: time.sleep(0.1))


def _reset() -> None:
    Play.objects.all().delete()
    TrackArtist.objects.all().delete()
    Track.objects.all().delete()
    Album.objects.all().delete()
    Artist.objects.all().delete()


@pytest.mark.postgres
def test_tracks_created_ahead_are_the_rows_each_files_transaction_would_create(user, tmp_path, monkeypatch):
    creators: list[str] = []
    merge = StagedPlays.merge

    def spied_merge(self):
        if self.tracks:
            creators.append(threading.current_thread().name)
        return merge(self)

    monkeypatch.setattr(StagedPlays, "merge", spied_merge)
    paths = _files(tmp_path)
    ahead = _import_slowly(user, paths)
    ahead_rows = (_rows(), sorted(Play.objects.values_list("track__key", "played_at")))
    created_ahead = creators.count("import-catalog")
    _reset()
    # The thread creates nothing: each file counts as done when offered, and its transaction creates its tracks.
    monkeypatch.setattr(imports._CatalogAhead, "offer", lambda self, key, tracks, pause=False: self.done.add(key))
    creators.clear()
    alone = _import_slowly(user, paths)

    assert created_ahead == 4  # the tracks of every file but the two matching a play by name
    assert "import-catalog" not in creators
    assert ahead is not None and alone is not None and ahead.plays_added == alone.plays_added == 50
    assert ahead_rows == (_rows(), sorted(Play.objects.values_list("track__key", "played_at")))


@pytest.mark.postgres
def test_when_creating_tracks_ahead_fails_each_file_creates_its_own(user, tmp_path, monkeypatch, caplog):
    paths = _files(tmp_path)
    alone = _import_slowly(user, paths)
    expected = _rows()
    _reset()
    add_tracks = StagedPlays.add_tracks

    def failing(self, tracks):
        if threading.current_thread().name == "import-catalog":
            raise RuntimeError("connection lost")
        return add_tracks(self, tracks)

    monkeypatch.setattr(StagedPlays, "add_tracks", failing)
    summary = _import_slowly(user, paths)

    assert "creating tracks ahead stopped" in caplog.text
    assert summary is not None and summary.status == "done" and summary.plays_added == alone.plays_added
    assert _rows() == expected


@pytest.mark.postgres
def test_the_tracks_of_a_rejected_file_are_not_created_ahead(user, tmp_path):
    good = tmp_path / "Streaming_History_Audio_2024_0.json"
    good.write_text(json.dumps([_record("2024-01-01T10:00:00Z", "good1", "Good", "Band", "Record")]), "utf-8")
    bad = tmp_path / "Streaming_History_Audio_2024_1.json"
    records = [_record("2024-01-02T10:00:00Z", f"bad{n}", "Bad", "Other", "Album") for n in range(3)]
    bad.write_text(json.dumps([*records, {**records[0], "ms_played": "x"}]), "utf-8")

    summary = _import_slowly(user, [good, bad])

    assert summary is not None and summary.plays_added == 1 and len(summary.errors) == 1
    assert list(Track.objects.values_list("key", flat=True)) == ["good1"]
    assert not Artist.objects.filter(name="Other").exists()


def _play(track_id: str) -> ExportPlay:
    return ExportPlay(datetime(2024, 1, 1, tzinfo=UTC), 200_000, track_id, "Song", "Band", "Record")


@pytest.mark.postgres
def test_the_import_waits_for_a_files_tracks_and_not_for_a_stopped_thread(monkeypatch):
    merge = StagedPlays.merge
    monkeypatch.setattr(StagedPlays, "merge", lambda self: (time.sleep(0.3), merge(self))[1])
    known = imports._KnownTracks()
    with imports._CatalogAhead(known) as ahead:
        ahead.offer("file1", {"abc1": _play("abc1")})
        ahead.offer("file2", {})  # a file naming no new track is done at once
        ahead.wait_for("file1")  # returns once the tracks exist, with their ids known
        assert set(known.ids) == {"abc1"}
        ahead.wait_for("file2")
    ahead.wait_for("file3")  # the thread has stopped: nothing to wait for
    ahead.offer("file3", {"def3": _play("def3")})  # nor to offer to

    assert list(Track.objects.values_list("key", flat=True)) == ["abc1"]


@pytest.mark.postgres
def test_a_paused_catalog_thread_can_be_halted_and_then_takes_no_more_offers():
    """An import that lost its job to another process halts the thread, which may be paused after a file whose
    transaction will never commit here, while the parse thread waits to offer it more files."""
    known = imports._KnownTracks()
    with imports._CatalogAhead(known) as ahead:
        ahead.offer("by-name", {}, pause=True)
        ahead.wait_for("by-name")  # done, and now paused until that file commits
        offering = threading.Thread(
            target=lambda: [ahead.offer(f"file{n}", {}) for n in range(imports.PREFETCH_CHUNKS + 2)], daemon=True
        )
        offering.start()
        offering.join(timeout=0.5)
        assert offering.is_alive()  # the paused thread's queue is full
        ahead.halt()
        offering.join(timeout=5)
        assert not offering.is_alive()
        assert "file0" not in ahead.done
