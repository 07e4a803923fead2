"""The web import task: retries while another import runs, deletes the upload, and lost jobs are found again."""

import json
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from huey.exceptions import RetryTask

from earworm.accounts.tests.factories import UserFactory
from earworm.history import tasks
from earworm.history.models import ImportJob
from earworm.history.services.imports import ImportBusy
from earworm.history.services.uploads import import_jobs_recover

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    return settings.IMPORT_UPLOAD_DIR


def _uploaded_job(upload_dir, user, records: list[dict] | None = None) -> ImportJob:
    folder = upload_dir / "f00d"
    folder.mkdir(parents=True)
    (folder / "Streaming_History_Audio_2020.json").write_text(json.dumps(records or []))
    return ImportJob.objects.create(
        user=user,
        upload_path="f00d/Streaming_History_Audio_2020.json",
        original_name="Streaming_History_Audio_2020.json",
    )


def test_the_task_imports_and_deletes_the_upload(upload_dir):
    job = _uploaded_job(upload_dir, UserFactory())
    tasks.history_import.call_local(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.files_total == 1
    assert list(upload_dir.iterdir()) == []


def test_another_running_import_reschedules_the_task(mocker, upload_dir):
    mocker.patch("earworm.history.services.imports.history_import", side_effect=ImportBusy())
    with pytest.raises(RetryTask) as retry:
        tasks.history_import.call_local(1)
    assert 30 <= retry.value.delay <= 40


def test_transient_errors_keep_the_files_for_the_declared_retries(mocker, upload_dir):
    job = _uploaded_job(upload_dir, UserFactory())
    mocker.patch("earworm.history.services.imports.history_import", side_effect=OperationalError("database is locked"))
    with pytest.raises(OperationalError):
        tasks.history_import.call_local(job.pk)
    assert tasks.history_import.retries == 3
    assert (upload_dir / job.upload_path).exists()


def test_lost_and_stale_jobs_are_queued_again(upload_dir):
    user, other, third = UserFactory(), UserFactory(), UserFactory()
    now = timezone.now()
    old = now - timedelta(minutes=10)
    lost = ImportJob.objects.create(user=user)
    ImportJob.objects.filter(pk=lost.pk).update(created_at=old)
    fresh = ImportJob.objects.create(user=third)  # just queued: its task is still on its way
    killed = ImportJob.objects.create(user=other, status="running", claimed_until=now - timedelta(seconds=1))
    live = ImportJob.objects.create(user=third, status="running", claimed_until=now + timedelta(minutes=5))
    ImportJob.objects.create(user=user, status="done", finished_at=now)
    assert import_jobs_recover(now=now) == [lost.pk, killed.pk]
    assert fresh.pk and live.pk


def test_a_job_unfinished_for_a_day_is_failed_and_its_files_deleted(upload_dir, settings):
    job = _uploaded_job(upload_dir, UserFactory())
    ImportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(hours=settings.IMPORT_GIVE_UP_HOURS + 1)
    )
    assert import_jobs_recover() == []
    job.refresh_from_db()
    assert job.status == "failed" and "upload the files again" in job.errors[-1]
    assert list(upload_dir.iterdir()) == []


def test_the_periodic_check_runs_the_lost_jobs(upload_dir):
    job = _uploaded_job(upload_dir, UserFactory(), [])
    ImportJob.objects.filter(pk=job.pk).update(status="running", claimed_until=None)
    tasks.history_import_recover.call_local()  # immediate mode: the queued import runs at once
    job.refresh_from_db()
    assert job.status == "done"
    assert list(upload_dir.iterdir()) == []


def test_files_a_command_was_given_are_never_deleted(tmp_path, upload_dir):
    path = tmp_path / "Streaming_History_Audio_2020.json"
    path.write_text("[]")
    job = ImportJob.objects.create(user=UserFactory(), source_paths=[str(path)])
    tasks.history_import.call_local(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and path.exists()
