import json
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.keys import name_key, normalize_name
from earworm.catalog.models import Album, Artist, Track
from earworm.history.models import ImportJob, Play
from earworm.history.services.imports import ImportBusy, history_import, import_job_create
from earworm.history.services.plays import NewPlay, history_plays_store
from earworm.history.tests.importing.samples import sample_files, skip_without_samples

pytestmark = pytest.mark.django_db(transaction=True)

MIN_MS = 30_000


def _import(user, *paths):
    job = import_job_create(user_id=user.pk, source_paths=[str(path) for path in paths])
    return history_import(job_id=job.pk)


def _expected(path: Path) -> tuple[Counter, int]:
    """Skip reasons and plays stored, computed from the file alone with the documented rules (docs/import.md)."""
    records = json.loads(path.read_text(encoding="utf-8"))
    name = path.name
    reasons: Counter = Counter()
    candidates: dict[object, list[tuple[datetime, int, int]]] = defaultdict(list)
    for index, record in enumerate(records):
        if "podcast" in name:
            reasons["episode"] += 1
            continue
        if "audiobook" in name:
            reasons["audiobook"] += 1
            continue
        if "ts" in record:
            end = datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            ms = record["ms_played"]
            uri = record.get("spotify_track_uri")
            if uri:
                identity: object = uri
            elif record.get("spotify_episode_uri") or record.get("episode_name"):
                reasons["episode"] += 1
                continue
            elif record.get("audiobook_uri") or record.get("audiobook_chapter_uri"):
                reasons["audiobook"] += 1
                continue
            elif not record.get("master_metadata_track_name"):
                reasons["no_content"] += 1
                continue
            else:
                identity = (
                    normalize_name(record["master_metadata_album_artist_name"] or ""),
                    normalize_name(record["master_metadata_track_name"]),
                )
        else:
            end = datetime.strptime(record["endTime"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            ms = record["msPlayed"]
            if record["trackName"] == "Unknown Track" or record["artistName"] == "Unknown Artist":
                reasons["no_content"] += 1
                continue
            identity = (normalize_name(record["artistName"]), normalize_name(record["trackName"]))
        if ms < MIN_MS:
            reasons["short_play"] += 1
            continue
        candidates[identity].append((end, index, ms))
    stored = 0
    for plays in candidates.values():
        kept_end = None
        for end, _index, ms in sorted(plays):
            start = end - min(timedelta(milliseconds=ms), timedelta(hours=2))
            # One listen when the two overlap by more than 2 s (export timestamps are whole seconds).
            if kept_end is not None and kept_end > start + timedelta(seconds=2):
                reasons["duplicate"] += 1
                continue
            kept_end = end
            stored += 1
    return reasons, stored


@pytest.mark.parametrize("path", sample_files() or [None], ids=lambda p: p.name[:60] if p else "no-samples")
def test_every_sample_export_imports_with_the_counts_its_records_give(user, path):
    if path is None:
        skip_without_samples()
    expected_reasons, expected_stored = _expected(path)

    summary = _import(user, path)

    assert summary.status == "done", summary.errors
    assert summary.errors == []
    assert summary.plays_added == expected_stored
    assert Play.objects.filter(user=user, source="export").count() == expected_stored
    assert summary.skipped == dict(expected_reasons)
    assert summary.records_done == len(json.loads(path.read_text(encoding="utf-8")))


def test_importing_the_same_files_again_adds_nothing(user):
    skip_without_samples()
    paths = sample_files()
    first = _import(user, *paths)
    counts = (Play.objects.count(), Track.objects.count(), Artist.objects.count(), Album.objects.count())

    second = _import(user, *paths)

    assert first.plays_added > 10_000
    assert second.plays_added == 0
    assert (Play.objects.count(), Track.objects.count(), Artist.objects.count(), Album.objects.count()) == counts
    assert second.skipped["duplicate"] == first.plays_added + first.skipped.get("duplicate", 0)


def _extended(ts: str, uri: str | None = "spotify:track:4uLU6hMCjMI75M1A2tKUQC", ms: int = 200_000, **extra):
    record = {
        "ts": ts,
        "ms_played": ms,
        "master_metadata_track_name": "Never Gonna Give You Up",
        "master_metadata_album_artist_name": "Rick Astley",
        "master_metadata_album_album_name": "Whenever You Need Somebody",
        "spotify_track_uri": uri,
        "episode_name": None,
        "spotify_episode_uri": None,
    }
    record.update(extra)
    return record


def _write(tmp_path: Path, name: str, records) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_extended_records_create_provisional_tracks_keyed_by_spotify_id(user, tmp_path):
    path = _write(tmp_path, "Streaming_History_Audio_2024_0.json", [_extended("2024-01-05T14:23:00Z")])

    summary = _import(user, path)

    assert summary.plays_added == 1
    track = Track.objects.get()
    assert (track.key, track.spotify_id, track.metadata_fetched_at) == (
        "4uLU6hMCjMI75M1A2tKUQC",
        "4uLU6hMCjMI75M1A2tKUQC",
        None,
    )
    assert track.album.key == name_key("Rick Astley", "Whenever You Need Somebody")
    assert list(track.artists.values_list("key", "name")) == [(name_key("Rick Astley"), "Rick Astley")]
    play = Play.objects.get()
    assert (play.played_at, play.ms_played, play.source) == (
        datetime(2024, 1, 5, 14, 23, tzinfo=UTC),
        200_000,
        "export",
    )


def test_basic_records_match_known_tracks_by_name_real_ones_first(user, tmp_path):
    extended = _write(tmp_path, "Streaming_History_Audio_2024_0.json", [_extended("2024-01-05T14:23:00Z")])
    basic = _write(
        tmp_path,
        "StreamingHistory_music_0.json",
        [
            {
                "endTime": "2024-02-01 10:00",
                "artistName": "rick  ASTLEY",
                "trackName": "Never gonna give you up",
                "msPlayed": 180_000,
            },
            {"endTime": "2024-02-01 11:00", "artistName": "Nobody", "trackName": "Unknown Song", "msPlayed": 180_000},
        ],
    )

    summary = _import(user, basic, extended)  # extended files go first whatever the order given

    assert summary.plays_added == 3
    assert summary.unresolved == 1
    real = Track.objects.get(spotify_id="4uLU6hMCjMI75M1A2tKUQC")
    assert Play.objects.filter(track=real).count() == 2
    provisional = Track.objects.get(key=name_key("Nobody", "Unknown Song"))
    assert provisional.spotify_id is None
    assert list(provisional.artists.values_list("key", flat=True)) == [name_key("Nobody")]


def test_export_plays_overlapping_api_plays_are_not_stored_twice(user, tmp_path):
    track = Track.objects.create(
        key="4uLU6hMCjMI75M1A2tKUQC", spotify_id="4uLU6hMCjMI75M1A2tKUQC", name="x", duration_ms=213_000
    )
    api_end = datetime(2024, 1, 5, 14, 23, 0, 412_000, tzinfo=UTC)
    history_plays_store(
        user_id=user.pk, plays=[NewPlay(track_id=track.pk, played_at=api_end, ms_played=None, source="api")]
    )
    path = _write(
        tmp_path,
        "endsong_0.json",
        [
            _extended("2024-01-05T14:23:00Z", ms=212_000),  # the same listen, from the export
            _extended("2024-01-05T14:23:03Z", ms=212_000),  # and its duplicate row
            _extended("2024-01-05T14:26:40Z", ms=200_000),  # the next, real repeat
        ],
    )

    summary = _import(user, path)

    assert summary.plays_added == 1
    assert summary.skipped == {"duplicate": 2}
    assert list(Play.objects.order_by("played_at").values_list("source", flat=True)) == ["api", "export"]


def test_a_second_import_of_the_same_user_is_refused_while_one_runs(user, tmp_path):
    path = _write(tmp_path, "endsong_0.json", [_extended("2024-01-05T14:23:00Z")])
    running = import_job_create(user_id=user.pk, source_paths=[str(path)])
    ImportJob.objects.filter(pk=running.pk).update(
        status="running", claimed_until=datetime.now(UTC) + timedelta(minutes=5)
    )
    other = import_job_create(user_id=user.pk, source_paths=[str(path)])

    with pytest.raises(ImportBusy):
        history_import(job_id=other.pk)

    assert history_import(job_id=running.pk) is None  # claimed by a live process
    assert Play.objects.count() == 0


def test_an_export_zip_imports_history_files_and_ignores_the_rest(user, tmp_path):
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json",
            json.dumps([_extended("2024-01-05T14:23:00Z")]),
        )
        zf.writestr("Spotify Account Data/Userdata.json", json.dumps({"username": "x"}))
        zf.writestr("Spotify Account Data/Payments.json", json.dumps({"card": "x"}))
        zf.writestr("Spotify Extended Streaming History/ReadMeFirst.pdf", b"%PDF")

    job = import_job_create(user_id=user.pk, upload_path="", source_paths=[str(archive)])
    summary = history_import(job_id=job.pk)

    assert summary.plays_added == 1
    assert sorted(summary.ignored) == ["Payments.json", "ReadMeFirst.pdf", "Userdata.json"]


def test_other_users_history_is_untouched(tmp_path):
    alice, bob = SpotifyAccountFactory().user, SpotifyAccountFactory().user
    path = _write(tmp_path, "endsong_0.json", [_extended("2024-01-05T14:23:00Z")])

    _import(alice, path)
    _import(bob, path)

    assert Play.objects.filter(user=alice).count() == Play.objects.filter(user=bob).count() == 1


def _catalog_and_plays():
    return (Play.objects.count(), Track.objects.count(), Artist.objects.count(), Album.objects.count())


GOOD_RECORD = _extended("2024-01-05T14:23:00Z")
BAD_FILES = [
    (
        "endsong_0.json",
        json.dumps([GOOD_RECORD, {**GOOD_RECORD, "ms_played": -1}]),
        "endsong_0.json, record 1: `ms_played` is negative",
    ),
    (
        "endsong_0.json",
        json.dumps([GOOD_RECORD, {**GOOD_RECORD, "ts": "2099-01-01T00:00:00Z"}]),
        "record 1: `ts` '2099-01-01T00:00:00Z' is in the future",
    ),
    ("endsong_0.json", json.dumps([GOOD_RECORD]) + "garbage", "endsong_0.json: has extra data after the JSON array"),
    (
        "endsong_0.json",
        json.dumps([GOOD_RECORD, {**GOOD_RECORD, "master_metadata_track_name": "a\u0000"}]),
        "record 1: contains a NUL character",
    ),
    ("endsong_0.json", json.dumps([GOOD_RECORD]).replace("Rick", "\\ud800"), "record 0: contains a lone surrogate"),
    (
        "endsong_0.json",
        json.dumps([GOOD_RECORD])[:-1] + ', {"ms_played": NaN}]',
        "record 1: holds a value Earworm refuses",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES)
def test_a_rejected_file_writes_nothing_and_says_why(user, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    summary = _import(user, path)

    assert summary.plays_added == 0
    assert len(summary.errors) == 1 and message in summary.errors[0]
    assert _catalog_and_plays() == (0, 0, 0, 0)


def test_a_rejected_file_does_not_stop_the_others(user, tmp_path):
    good = _write(tmp_path, "endsong_0.json", [GOOD_RECORD])
    bad = _write(tmp_path, "endsong_1.json", [GOOD_RECORD, {**GOOD_RECORD, "ms_played": "x"}])

    summary = _import(user, bad, good)

    assert summary.status == "done"
    assert summary.plays_added == 1
    assert summary.errors == ["endsong_1.json, record 1: `ms_played` must be an integer, not str."]


def test_an_archive_over_a_limit_fails_the_job_and_writes_nothing(user, tmp_path, settings):
    settings.IMPORT_MAX_ARCHIVE_MEMBERS = 2
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(3):
            zf.writestr(f"endsong_{n}.json", json.dumps([GOOD_RECORD]))

    summary = _import(user, archive)

    assert summary.status == "failed"
    assert summary.errors == ["my_spotify_data.zip: holds 3 files; the limit is 2."]
    assert _catalog_and_plays() == (0, 0, 0, 0)


@pytest.mark.parametrize("before", ["first import", "plays already stored"])
def test_statistics_after_an_import_equal_a_full_rebuild(user, tmp_path, before):
    """The refresh an import ends with (unbounded for a first import, by span otherwise, month rows diffed)
    leaves the same rollups as a rebuild from scratch, also when the import adds to plays stored before it in
    the same months."""
    from earworm.stats.models import HourRollup, TrackRollup
    from earworm.stats.services import stats_rollups_refresh

    if before == "plays already stored":
        track = Track.objects.create(key="4uLU6hMCjMI75M1A2tKUQC", spotify_id="4uLU6hMCjMI75M1A2tKUQC", name="x")
        history_plays_store(user_id=user.pk, plays=[NewPlay(track.pk, datetime(2023, 2, 10, tzinfo=UTC), None, "api")])
        stats_rollups_refresh(user_id=user.pk)
    ids = [f"{n:022d}" for n in range(40)]
    files = []
    for number in range(5):  # files sharing months, in no particular order inside
        start = datetime(2023, 1, 20, tzinfo=UTC) + timedelta(days=17 * number)
        records = [
            _extended(
                (start + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                uri=f"spotify:track:{ids[(i * 7 + number) % 40]}",
                ms=60_000 + i,
            )
            for i in range(60)
        ]
        files.append(_write(tmp_path, f"Streaming_History_Audio_2023_{number}.json", records[::-1]))

    summary = _import(user, *files)

    def rows() -> tuple[set, set]:
        tracks = TrackRollup.objects.filter(user=user).values_list("grain", "start", "track_id", "plays", "ms_played")
        hours = HourRollup.objects.filter(user=user).values_list("grain", "start", "weekday", "hour", "plays")
        return set(tracks), set(hours)

    assert summary.plays_added == 300
    imported = rows()
    stats_rollups_refresh(user_id=user.pk)
    assert imported == rows()
    assert sum(plays for grain, *_, plays, _ms in imported[0] if grain == 3) == Play.objects.filter(user=user).count()


def test_a_job_is_shown_done_only_once_its_statistics_are_ready(user, tmp_path, monkeypatch):
    """The import page and API show the job's status from another process: "done" must mean the rollups
    are already rebuilt."""
    from earworm.history.services import imports

    refresh = imports._refresh_stats
    seen = []

    def watching(**kwargs):
        seen.append(ImportJob.objects.get().status)
        refresh(**kwargs)

    monkeypatch.setattr(imports, "_refresh_stats", watching)
    path = _write(tmp_path, "Streaming_History_Audio_2023_0.json", [_extended("2023-05-01T10:00:00Z")])

    summary = _import(user, path)

    assert seen == [ImportJob.Status.RUNNING]
    assert summary.status == ImportJob.Status.DONE


def test_the_switch_interval_and_gc_threshold_are_changed_while_files_are_parsed_and_restored_after(
    user, tmp_path, monkeypatch
):
    """The import thread gets the GIL back promptly after each statement and the garbage collector runs less
    often while the parse thread runs (`imports._ParseTuning`); the interpreter's settings are left as they
    were, also when the import fails."""
    import gc
    import sys

    from earworm.history.services import imports

    before = (sys.getswitchinterval(), gc.get_threshold())
    seen = []
    store = imports._import_batch

    def watching(*args, **kwargs):
        seen.append((sys.getswitchinterval(), gc.get_threshold()[0]))
        return store(*args, **kwargs)

    monkeypatch.setattr(imports, "_import_batch", watching)
    path = _write(tmp_path, "Streaming_History_Audio_2023_0.json", [_extended("2023-05-01T10:00:00Z")])

    assert _import(user, path).plays_added == 1
    assert seen == [(pytest.approx(imports.PARSE_SWITCH_INTERVAL), imports.PARSE_GC_THRESHOLD)]
    assert (sys.getswitchinterval(), gc.get_threshold()) == before

    def failing(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(imports, "_import_batch", failing)
    with pytest.raises(RuntimeError):
        _import(user, _write(tmp_path, "Streaming_History_Audio_2023_1.json", [_extended("2023-06-01T10:00:00Z")]))
    assert (sys.getswitchinterval(), gc.get_threshold()) == before


def test_overlapping_imports_in_one_process_restore_the_settings_only_when_the_last_ends():
    import gc
    import sys

    from earworm.history.services.imports import PARSE_GC_THRESHOLD, PARSE_SWITCH_INTERVAL, _ParseTuning

    before = (sys.getswitchinterval(), gc.get_threshold())
    first, second = _ParseTuning(), _ParseTuning()
    first.__enter__()
    second.__enter__()
    first.__exit__()
    assert sys.getswitchinterval() == pytest.approx(PARSE_SWITCH_INTERVAL)
    assert gc.get_threshold()[0] == PARSE_GC_THRESHOLD
    second.__exit__()
    assert (sys.getswitchinterval(), gc.get_threshold()) == before
