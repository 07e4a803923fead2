"""The /import/ page: upload, one import at a time, progress and counts, the size limit, the metadata line."""

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.core.models import QuotaGate
from earworm.history.import_selectors import import_metadata_status
from earworm.history.models import ImportJob, Play
from earworm.history.tests.factories import TrackFactory

pytestmark = pytest.mark.django_db

TRACK = "4uLU6hMCjMI75M1A2tKUQC"


def _record(ts: str, ms: int = 200_000, uri: str | None = f"spotify:track:{TRACK}") -> dict:
    return {
        "ts": ts,
        "ms_played": ms,
        "master_metadata_track_name": "Song",
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": uri,
        "episode_name": None,
        "spotify_episode_uri": None,
    }


def _json_file(name: str, records: list[dict]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, json.dumps(records).encode(), content_type="application/json")


def _zip_file(records: list[dict]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2020.json", json.dumps(records))
    return SimpleUploadedFile("my_spotify_data.zip", buffer.getvalue(), content_type="application/zip")


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.IMPORT_UPLOAD_DIR


def test_the_page_needs_a_login(client):
    response = client.get("/import/")
    assert response.status_code == 302


def test_the_page_states_the_limit_and_has_no_refresh_when_idle(auth_client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
    response = auth_client.get("/import/")
    assert response.status_code == 200
    assert "At most <strong>50 MB</strong>" in response.content.decode()
    assert "Refresh" not in response
    assert response["Cache-Control"] == "no-store"


def test_uploading_the_zip_imports_it_and_deletes_the_file(
    auth_client, spotify_account, upload_dir, django_capture_on_commit_callbacks
):
    records = [_record("2020-05-01T10:00:00Z"), _record("2020-05-01T10:00:03Z"), _record("2020-05-01T11:00:00Z", 5_000)]
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/import/", {"files": _zip_file(records)})
    assert response.status_code == 302
    job = ImportJob.objects.get(user=spotify_account.user)
    assert (job.status, job.plays_added, job.skipped) == ("done", 1, {"duplicate": 1, "short_play": 1})
    assert Play.objects.filter(user=spotify_account.user).count() == 1
    assert list(upload_dir.iterdir()) == []

    page = auth_client.get("/import/").content.decode()
    assert "my_spotify_data.zip" in page
    assert "played under 30 seconds" in page
    assert "1 of 1 tracks have full metadata" not in page  # the export's track is provisional
    assert "0 of 1</strong> tracks have full metadata; next batch at" in page


def test_several_json_files_are_one_job_and_a_bad_one_is_named(
    auth_client, spotify_account, upload_dir, django_capture_on_commit_callbacks
):
    good = _json_file("Streaming_History_Audio_2020.json", [_record("2020-05-01T10:00:00Z")])
    bad = _json_file("Streaming_History_Audio_2021.json", [_record("2021-05-01T10:00:00Z"), {"ts": 5}])
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post("/import/", {"files": [good, bad]})
    job = ImportJob.objects.get(user=spotify_account.user)
    assert job.status == "done" and job.plays_added == 1 and job.files_total == 2
    assert len(job.errors) == 1 and job.errors[0].startswith("Streaming_History_Audio_2021.json, record 1")
    assert list(upload_dir.iterdir()) == []
    page = auth_client.get("/import/").content.decode()
    assert "Streaming_History_Audio_2021.json, record 1" in page


def test_a_second_upload_while_one_runs_is_refused_and_the_page_refreshes(auth_client, spotify_account, upload_dir):
    ImportJob.objects.create(user=spotify_account.user, status="running", files_total=3, files_done=["a"])
    response = auth_client.post("/import/", {"files": _json_file("x.json", [])}, follow=True)
    assert "already in progress" in response.content.decode()
    assert ImportJob.objects.filter(user=spotify_account.user).count() == 1
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []

    page = auth_client.get("/import/")
    assert page["Refresh"] == "3"
    assert "File 2 of 3" in page.content.decode()


def test_wrong_kind_of_file_is_refused(auth_client, spotify_account, upload_dir):
    response = auth_client.post("/import/", {"files": SimpleUploadedFile("notes.txt", b"hi")}, follow=True)
    assert "notes.txt: not a .zip or .json file" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_upload_over_the_limit_is_refused_while_streaming(auth_client, spotify_account, upload_dir, settings):
    """A body under the middleware's Content-Length cap but over the files' own limit."""
    settings.IMPORT_MAX_UPLOAD_BYTES = 10_000
    response = auth_client.post("/import/", {"files": _json_file("big.json", [_record("2020-05-01T10:00:00Z")] * 200)})
    assert response.status_code == 302
    page = auth_client.get("/import/").content.decode()
    assert "The upload is too large" in page
    assert not ImportJob.objects.exists()


def test_an_oversized_content_length_gets_413_before_reading(auth_client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1024
    response = auth_client.generic(
        "POST", "/import/", b"x", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=str(10 * 1024**2)
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode()


def test_the_upload_checks_csrf(client, spotify_account, upload_dir):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(spotify_account.user)
    response = strict.post("/import/", {"files": _json_file("x.json", [])})
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_metadata_status_counts_tracks_and_waits_for_the_next_five_minutes(settings):
    account = SpotifyAccountFactory()
    full, waiting, local = TrackFactory(metadata_fetched_at=timezone.now()), TrackFactory(), TrackFactory()
    local.spotify_id = None
    local.save()
    for n, track in enumerate([full, waiting, local, waiting]):
        Play.objects.create(
            user=account.user, track=track, played_at=timezone.now() - timedelta(hours=n), source="export"
        )
    now = datetime(2026, 3, 1, 12, 7, 30, tzinfo=UTC)
    status = import_metadata_status(user_id=account.user_id, now=now)
    assert (status.tracks_total, status.tracks_complete, status.tracks_unfetchable, status.tracks_waiting) == (
        3,
        1,
        1,
        1,
    )
    assert status.next_batch_at == datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    assert status.paused_until is None


def test_metadata_status_after_a_quota_pause_and_a_spent_daily_budget(settings):
    settings.REDIS_URL = ""
    account = SpotifyAccountFactory()
    Play.objects.create(user=account.user, track=TrackFactory(), played_at=timezone.now(), source="export")
    now = datetime(2026, 3, 1, 12, 7, 30, tzinfo=UTC)
    gate = QuotaGate.objects.create(
        client_id=settings.SPOTIFY_CLIENT_ID, paused_until=now + timedelta(hours=3, minutes=1), pause_reason="quota"
    )
    status = import_metadata_status(user_id=account.user_id, now=now)
    assert status.pause_reason == "quota"
    assert status.next_batch_at == datetime(2026, 3, 1, 15, 10, tzinfo=UTC)

    gate.paused_until = None
    gate.day_started_at = now - timedelta(hours=20)
    gate.day_enrich_requests = settings.SPOTIFY_ENRICH_DAILY_BUDGET
    gate.save()
    status = import_metadata_status(user_id=account.user_id, now=now)
    assert status.pause_reason == "daily_budget"
    assert status.next_batch_at == datetime(2026, 3, 1, 16, 10, tzinfo=UTC)


def test_nothing_left_to_fetch_has_no_next_batch():
    account = SpotifyAccountFactory()
    track = TrackFactory(metadata_fetched_at=timezone.now())
    Play.objects.create(user=account.user, track=track, played_at=timezone.now(), source="api")
    assert import_metadata_status(user_id=account.user_id).next_batch_at is None
