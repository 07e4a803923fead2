"""The `/import/` upload around the import service (issue 6): store the files, create the job, queue it, clean up.

Uploaded files live under `IMPORT_UPLOAD_DIR/<random>/` until their job finishes. One file is the job's
`upload_path` (relative, deleted by the import service when the job ends); several files are its `source_paths`
(their names are what error messages show). Either way the directory is removed once the job is done or failed.
"""

import logging
import re
import secrets
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from earworm.core.exceptions import ApplicationError
from earworm.history.models import ImportJob
from earworm.history.services.imports import import_job_create, upload_dir

logger = logging.getLogger(__name__)

ACTIVE = [ImportJob.Status.PENDING, ImportJob.Status.RUNNING]
# Files accepted by the upload form: the export zip or its JSON files (the parser checks the content, UP-2).
UPLOAD_SUFFIXES = (".zip", ".json")
MAX_UPLOAD_FILES = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()-]+")


class ImportUploadRejected(ApplicationError):
    """The upload itself cannot become an import (no files, wrong kind, too large, one already running)."""


def import_upload_create(*, user_id: int, files: Sequence[UploadedFile]) -> ImportJob:
    """Store the uploaded export files, create a pending `ImportJob`, and queue it after commit.

    Returns the job. Raises `ImportUploadRejected` when there is nothing to import, a file is neither .zip
    nor .json, the files exceed `IMPORT_MAX_UPLOAD_BYTES` together, or the user already has an import waiting
    or running (one at a time, SECURITY.md UP-5, UP-6).
    """
    if not files:
        raise ImportUploadRejected("Choose your export zip (my_spotify_data.zip) or its JSON files.")
    if len(files) > MAX_UPLOAD_FILES:
        raise ImportUploadRejected(f"At most {MAX_UPLOAD_FILES} files at once; upload the export zip instead.")
    for upload in files:
        if not (upload.name or "").lower().endswith(UPLOAD_SUFFIXES):
            raise ImportUploadRejected(
                f"{_display(upload.name)}: not a .zip or .json file. Upload the export zip or its JSON files."
            )
    total = sum(upload.size or 0 for upload in files)
    if total > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ImportUploadRejected(f"The upload is too large: at most {upload_limit_megabytes()} MB.")
    if ImportJob.objects.filter(user_id=user_id, status__in=ACTIVE).exists():
        raise ImportUploadRejected(
            "An import of your history is already in progress; upload more files when it has finished.",
            extra={"code": "import_running"},
        )

    folder = secrets.token_hex(12)
    directory = upload_dir() / folder
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    try:
        for upload in files:
            name = _unique(_safe_file_name(upload.name or "upload.json"), names)
            names.append(name)
            with open(directory / name, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
        with transaction.atomic():
            if len(names) == 1:
                job = import_job_create(user_id=user_id, upload_path=f"{folder}/{names[0]}", original_name=names[0])
            else:
                job = import_job_create(
                    user_id=user_id,
                    source_paths=[str(directory / name) for name in names],
                    original_name=", ".join(names)[:255],
                )
            transaction.on_commit(lambda: _enqueue(job.pk))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    logger.info("Import %s queued: %s file(s), %s bytes.", job.pk, len(names), total)
    return job


def _enqueue(job_id: int) -> None:
    from earworm.history.tasks import history_import as history_import_task

    history_import_task(job_id)


def upload_limit_megabytes() -> int:
    return int(settings.IMPORT_MAX_UPLOAD_BYTES // (1024 * 1024))


def _display(name: str | None) -> str:
    return (name or "").replace("\n", " ").replace("\r", " ")[:120]


def _safe_file_name(name: str) -> str:
    """The last path component, reduced to harmless characters, keeping the suffix the parser looks at."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" .") or "upload"
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        return cleaned[:120]
    return f"{stem[:110]}.{suffix[:8]}"


def _unique(name: str, taken: list[str]) -> str:
    if name not in taken:
        return name
    stem, _, suffix = name.rpartition(".")
    number = 2
    while f"{stem} ({number}).{suffix}" in taken:
        number += 1
    return f"{stem} ({number}).{suffix}"


def _upload_folder(job: ImportJob) -> Path | None:
    """The job's own directory under the upload directory, or None (a command's job, or nothing stored)."""
    root = upload_dir().resolve()
    if job.upload_path:
        candidate = (root / job.upload_path).parent
    elif job.source_paths:
        candidate = Path(job.source_paths[0]).parent
    else:
        return None
    candidate = candidate.resolve()
    # Only a direct child of the upload directory: never delete the files a command was pointed at.
    return candidate if candidate.parent == root else None


def import_upload_discard(*, job_id: int) -> bool:
    """Delete the uploaded files of a finished (done or failed) job. Returns whether a directory was removed."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status in ACTIVE:
        return False
    folder = _upload_folder(job)
    if folder is None or not folder.exists():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def import_jobs_recover(*, now: datetime | None = None) -> list[int]:
    """Find imports whose task was lost (queue flushed, worker killed) and return their ids to queue again.

    A job is picked up again when it is waiting and unclaimed for `IMPORT_REQUEUE_AFTER_SECONDS`, or running
    with an expired or released claim. A job still unfinished `IMPORT_GIVE_UP_HOURS` after its upload is
    failed with a message, and its files are deleted, so a file that crashes the worker cannot loop forever.
    Uploaded files of finished jobs that are still on disk (a worker died between the two steps) are deleted.
    """
    now = now or timezone.now()
    give_up = now - timedelta(hours=settings.IMPORT_GIVE_UP_HOURS)
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    abandoned = list(
        ImportJob.objects.filter(unclaimed, status__in=ACTIVE, created_at__lt=give_up).values_list("pk", flat=True)
    )
    for job_id in abandoned:
        with transaction.atomic():
            job = ImportJob.objects.select_for_update().get(pk=job_id)
            if job.status not in ACTIVE:
                continue
            job.status = ImportJob.Status.FAILED
            job.finished_at = now
            job.claimed_until = None
            job.errors = [
                *job.errors,
                "The import could not be completed (it was interrupted too often); upload the files again.",
            ]
            job.save(update_fields=["status", "finished_at", "claimed_until", "errors", "updated_at"])
        logger.warning("Import %s given up after %s hours.", job_id, settings.IMPORT_GIVE_UP_HOURS)
        import_upload_discard(job_id=job_id)
    stale = ImportJob.objects.filter(unclaimed, status__in=ACTIVE).filter(
        Q(status=ImportJob.Status.RUNNING)
        | Q(created_at__lt=now - timedelta(seconds=settings.IMPORT_REQUEUE_AFTER_SECONDS))
    )
    for job_id in ImportJob.objects.filter(
        status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED], finished_at__gte=give_up
    ).values_list("pk", flat=True):
        import_upload_discard(job_id=job_id)
    return list(stale.order_by("created_at").values_list("pk", flat=True))
