"""An emulator user's export zip through the upload and the import task, plus that user's API sync, against the
emulator's ground truth: every play Earworm should keep is stored once, across both sources, and nothing else.

The expectation comes from the ground truth alone (issue 6, "What is stored"): music plays (Spotify tracks and
local files) of at least 30 s are kept, episodes are not, and the export's duplicate rows (`duplicate_rows`)
are the same play. A local file has no Spotify id, so it is kept under its name.
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from earworm.history.models import ImportJob, Play
from earworm.history.services.plays import OVERLAP_TOLERANCE
from earworm.history.services.sync import history_sync
from earworm.history.services.uploads import import_upload_create
from earworm.history.tests.e2e.conftest import connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

RECORDS = 3_000
MIN_MS = 30_000
# Listens Spotify reports both ways: the export's last plays, also shown (late) by recently-played.
OVERLAPPING = 8


def _seconds(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC)


def _import(user_id: int, data: bytes) -> ImportJob:
    upload = SimpleUploadedFile("my_spotify_data.zip", data, content_type="application/zip")
    job = import_upload_create(user_id=user_id, files=[upload])  # queued on commit: runs at once in tests
    job.refresh_from_db()
    return job


def _overlapping_listens(plays: list[Play]) -> list[tuple[Play, Play]]:
    """Pairs of stored plays of one track whose listening intervals overlap by more than the whole-second
    slack of export timestamps: the same listen twice."""
    by_track: dict[int, list[tuple[datetime, datetime, Play]]] = {}
    for play in plays:
        length = play.ms_played if play.ms_played is not None else (play.track.duration_ms or 0)
        by_track.setdefault(play.track_id, []).append(
            (play.played_at - timedelta(milliseconds=length), play.played_at, play)
        )
    pairs = []
    for intervals in by_track.values():
        intervals.sort(key=lambda item: item[0])
        for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
            if start < end - OVERLAP_TOLERANCE:
                pairs.append((first, second))
    return pairs


def _sub_second_repeats(kept: list[dict]) -> set[tuple[str, datetime]]:
    """Listens that start within a second of the previous listen of the same track ending."""
    last_end: dict[str, int] = {}
    found = set()
    for p in sorted(kept, key=lambda p: p["played_at_ms"]):
        key = p["track_id"] or p["name"]
        if key in last_end and p["started_at_ms"] - last_end[key] < 1000:
            found.add((key, _seconds(p["played_at_ms"])))
        last_end[key] = p["played_at_ms"]
    return found


@pytest.mark.parametrize("order", ["sync_then_import", "import_then_sync"])
def test_export_and_api_window_store_the_ground_truth_once(emulator_factory, settings, tmp_path, order):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    emu = emulator_factory("--no-auto-listen", "--backlog-hours", "0")
    control = emu.control
    user = control.users()[0]["id"]
    account = connect(emu, user)
    export_truth = control.ground_truth(user, source="export", records=RECORDS)
    data = control.export_zip_bytes(user, records=RECORDS)
    assert len(export_truth) == RECORDS and sum(p["duplicate_rows"] for p in export_truth) > 0

    kept = [p for p in export_truth if p["kind"] in ("track", "local") and p["ms_played"] >= MIN_MS]
    assert any(p["kind"] == "local" for p in kept) and any(p["kind"] == "episode" for p in export_truth)
    # Spotify's recently-played also reports the export's last few listens, and then newer ones.
    late = [p for p in kept if p["kind"] == "track"][-OVERLAPPING:]
    control.play(user, [{"track_id": p["track_id"], "played_at": p["played_at_ms"], "ms_played": p["ms_played"]}
                        for p in late])  # fmt: skip
    control.play(user, simulate_minutes=40, advance_clock=True)
    api_truth = control.ground_truth(user, source="api")
    api_window = sorted((p for p in api_truth if p["visible_in_api"]), key=lambda p: p["played_at_ms"])[-50:]
    assert len(api_window) > OVERLAPPING

    if order == "sync_then_import":
        history_sync(account_id=account.pk, force=True)
    job = _import(account.user_id, data)
    if order == "import_then_sync":
        history_sync(account_id=account.pk, force=True)

    assert (job.status, job.errors, job.files_total) == ("done", [], 1)
    assert job.records_done == RECORDS + sum(p["duplicate_rows"] for p in export_truth)
    # Each ground-truth play is 1 + duplicate_rows records; the skipped counts are by record.
    rows = {p["played_at_ms"]: 1 + p["duplicate_rows"] for p in export_truth}
    episodes = sum(rows[p["played_at_ms"]] for p in export_truth if p["kind"] == "episode")
    short = sum(rows[p["played_at_ms"]] for p in export_truth if p["kind"] != "episode" and p["ms_played"] < MIN_MS)
    duplicates = sum(p["duplicate_rows"] for p in kept) + (OVERLAPPING if order == "sync_then_import" else 0)
    assert {key: job.skipped.get(key) for key in ("episode", "short_play")} == {
        "episode": episodes,
        "short_play": short,
    }
    assert job.unresolved == sum(1 for p in kept if p["kind"] == "local")

    plays = list(Play.objects.filter(user_id=account.user_id).select_related("track"))
    # A listen is (track, end time to the second): the export's `ts` has whole seconds, the API milliseconds.
    expected = {(p["track_id"] or p["name"], _seconds(p["played_at_ms"])) for p in kept}
    expected |= {(p["track_id"], _seconds(p["played_at_ms"])) for p in api_window}
    stored = [(play.track.spotify_id or play.track.name, play.played_at.replace(microsecond=0)) for play in plays]
    assert len(stored) == len(set(stored)), "a listen was stored twice"
    assert set(stored) - expected == set(), "a play was invented"
    assert _overlapping_listens(plays) == []
    # The listens both sources reported: one play each, whichever source came first.
    first_source = "api" if order == "sync_then_import" else "export"
    for p in late:
        [play] = [
            play
            for play in plays
            if play.track.spotify_id == p["track_id"]
            and abs(play.played_at.timestamp() * 1000 - p["played_at_ms"]) < 1000
        ]
        assert play.source == first_source

    # Importing the same export again, and syncing again, add nothing.
    assert _import(account.user_id, data).plays_added == 0
    assert history_sync(account_id=account.pk, force=True).new_plays == 0
    assert Play.objects.filter(user_id=account.user_id).count() == len(stored)

    assert expected <= set(stored), f"plays lost: {sorted(expected - set(stored))[:5]}"
    assert job.skipped.get("duplicate") == duplicates
