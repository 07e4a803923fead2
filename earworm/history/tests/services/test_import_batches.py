"""Extended files are merged in batches (`imports._import_batch`): whole files only, a file that can still be
rejected alone, the same results as one file at a time."""

import json
import threading
import time
from pathlib import Path

import pytest

from earworm.history.models import ImportJob, Play
from earworm.history.services import imports
from earworm.history.services.imports import history_import, import_job_create

pytestmark = pytest.mark.django_db(transaction=True)


def _record(ts: str, track: str, ms: int = 200_000) -> dict:
    return {
        "ts": ts,
        "ms_played": ms,
        "master_metadata_track_name": f"Song {track}",
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": "Record",
        "spotify_track_uri": f"spotify:track:{track}",
    }


def _file(tmp_path: Path, name: str, records: list) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _import(user, paths: list[Path]):
    job = import_job_create(user_id=user.pk, source_paths=[str(path) for path in paths])
    return history_import(job_id=job.pk)


@pytest.fixture
def batches(monkeypatch) -> list[list[str]]:
    """The file names each batch took, in order."""
    taken: list[list[str]] = []
    real = imports._import_batch

    def spied(run, files):
        before = [key for key, _ in files]
        try:
            real(run, files)
        finally:
            taken.append([key.split("/", 1)[1] for key in before[: len(before) - len(files)]])

    monkeypatch.setattr(imports, "_import_batch", spied)
    return taken


def test_whole_extended_files_join_a_batch_until_it_holds_batch_records(user, tmp_path, monkeypatch, batches):
    monkeypatch.setattr(imports, "BATCH_RECORDS", 3)
    paths = [
        _file(tmp_path, f"Streaming_History_Audio_2024_{n}.json", [_record(f"2024-01-0{n + 1}T10:00:00Z", f"t{n}")] * 2)
        for n in range(5)
    ]
    basic = [{"endTime": "2024-02-01 10:00", "artistName": "Band", "trackName": "Song t0", "msPlayed": 200_000}]
    paths.append(_file(tmp_path, "StreamingHistory_music_0.json", basic))

    summary = _import(user, paths)

    assert batches == [
        ["Streaming_History_Audio_2024_0.json", "Streaming_History_Audio_2024_1.json"],
        ["Streaming_History_Audio_2024_2.json", "Streaming_History_Audio_2024_3.json"],
        ["Streaming_History_Audio_2024_4.json"],
        ["StreamingHistory_music_0.json"],  # basic files match names against the plays stored before them
    ]
    assert summary is not None and summary.plays_added == 6 and summary.unresolved == 0
    assert summary.skipped == {"duplicate": 5}  # each file's record logged twice
    assert len(ImportJob.objects.get().files_done) == 6


def test_a_file_read_whole_and_rejected_is_recorded_in_its_batch(user, tmp_path, batches):
    first = _file(tmp_path, "Streaming_History_Audio_2024_0.json", [_record("2024-01-01T10:00:00Z", "a")])
    bad = [_record("2024-01-02T10:00:00Z", "b"), {**_record("2024-01-02T11:00:00Z", "b"), "ms_played": "x"}]
    rejected = _file(tmp_path, "Streaming_History_Audio_2024_1.json", bad)
    last = _file(tmp_path, "Streaming_History_Audio_2024_2.json", [_record("2024-01-03T10:00:00Z", "c")])

    summary = _import(user, [first, rejected, last])

    assert len(batches) == 1 and len(batches[0]) == 3
    assert summary is not None and summary.plays_added == 2
    assert summary.errors == ["Streaming_History_Audio_2024_1.json, record 1: `ms_played` must be an integer, not str."]
    assert sorted(Play.objects.values_list("track__key", flat=True)) == ["a", "c"]
    assert summary.records_done == 2  # a rejected file's records count for nothing


def test_a_file_that_can_still_be_rejected_after_its_first_chunk_is_alone_in_its_batch(
    user, tmp_path, monkeypatch, batches
):
    monkeypatch.setattr(imports, "CHUNK", 2)
    first = _file(tmp_path, "Streaming_History_Audio_2024_0.json", [_record("2024-01-01T10:00:00Z", "a")])
    records = [_record(f"2024-01-02T1{n}:00:00Z", "b") for n in range(4)]
    rejected = _file(tmp_path, "Streaming_History_Audio_2024_1.json", [*records, {**records[0], "ts": 5}])
    last = _file(tmp_path, "Streaming_History_Audio_2024_2.json", [_record("2024-01-03T10:00:00Z", "c")] * 2)

    summary = _import(user, [first, rejected, last])

    assert batches == [
        ["Streaming_History_Audio_2024_0.json"],
        ["Streaming_History_Audio_2024_1.json"],  # its first chunk staged, then rolled back
        ["Streaming_History_Audio_2024_2.json"],
    ]
    assert summary is not None and summary.plays_added == 2
    assert summary.errors == ["Streaming_History_Audio_2024_1.json, record 4: `ts` must be a string, not int."]
    assert sorted(Play.objects.values_list("track__key", flat=True)) == ["a", "c"]
    assert len(ImportJob.objects.get().files_done) == 3


@pytest.mark.parametrize("batch_records", [1, 50_000])
def test_the_same_listen_in_two_files_is_one_play_in_one_batch_or_two(user, tmp_path, monkeypatch, batch_records):
    """A real export logs some streams twice a few seconds apart, also across files."""
    monkeypatch.setattr(imports, "BATCH_RECORDS", batch_records)
    first = _file(tmp_path, "Streaming_History_Audio_2024_0.json", [_record("2024-01-01T10:00:00Z", "a")])
    again = _file(tmp_path, "Streaming_History_Audio_2024_1.json", [_record("2024-01-01T10:00:03Z", "a")])

    summary = _import(user, [first, again])

    assert summary is not None and summary.plays_added == 1 and summary.skipped == {"duplicate": 1}
    assert Play.objects.get().played_at.isoformat() == "2024-01-01T10:00:00+00:00"


def test_a_file_matching_plays_by_name_ends_its_batch(user, tmp_path, batches):
    """Its transaction makes its own tracks; on PostgreSQL the catalog thread waits until it has committed."""
    local = {**_record("2024-01-02T10:00:00Z", "x"), "spotify_track_uri": "spotify:local:Band:Record:Song+x:200"}
    paths = [
        _file(tmp_path, "Streaming_History_Audio_2024_0.json", [_record("2024-01-01T10:00:00Z", "a")]),
        _file(tmp_path, "Streaming_History_Audio_2024_1.json", [local, _record("2024-01-02T11:00:00Z", "b")]),
        _file(tmp_path, "Streaming_History_Audio_2024_2.json", [_record("2024-01-03T10:00:00Z", "c")]),
    ]

    summary = _import(user, paths)

    assert [len(batch) for batch in batches] == [2, 1]
    assert summary is not None and summary.plays_added == 4 and summary.unresolved == 1


@pytest.mark.postgres
def test_an_import_failing_while_the_catalog_thread_waits_for_a_file_ends_without_hanging(user, tmp_path, monkeypatch):
    """The catalog thread pauses after a file matching plays by name until its transaction commits; when that
    transaction fails instead, the threads still stop (the parse thread may be waiting to hand it more files)."""
    local = {**_record("2024-01-01T09:00:00Z", "x"), "spotify_track_uri": "spotify:local:Band:Record:Song+x:200"}
    paths = [_file(tmp_path, "Streaming_History_Audio_2024_00.json", [local])]
    # Empty files: offered to the catalog thread, one item each in the parse queue, so the catalog thread's
    # queue fills before the parse queue does.
    paths += [_file(tmp_path, f"Streaming_History_Audio_2024_{n:02d}.json", []) for n in range(10, 24)]

    def failing_merge(self):
        time.sleep(0.5)  # the parse thread fills the catalog thread's queue meanwhile
        raise RuntimeError("database gone")

    monkeypatch.setattr(imports._CopyWriter, "merge", failing_merge)
    outcome: list[BaseException] = []

    def run():
        try:
            _import(user, paths)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)

    assert not thread.is_alive(), "the import hung"
    assert [str(exc) for exc in outcome] == ["database gone"]
