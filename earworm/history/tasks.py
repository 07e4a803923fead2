"""Huey tasks of the sync engine: thin wrappers that own retry and scheduling policy (STYLE.md §8).

Arguments are ids only (SECURITY.md RF-7). Task names are `module.function`; renaming one strands messages
already queued.
"""

import logging
import random
from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task
from huey.exceptions import RetryTask

from earworm.core.exceptions import SpotifyBusy, SpotifyReloginRequired
from earworm.spotify.errors import (
    SpotifyBadResponse,
    SpotifyError,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
)

logger = logging.getLogger(__name__)

# Many accounts meet the same quota pause; spread their return over a few minutes instead of all at once.
QUOTA_RESUME_SPREAD_SECONDS = 300


# Transient failures (5xx, timeouts, malformed bodies): 30 s, 60 s, 120 s, then the error stays recorded on the
# account and the next periodic run (one interval later) tries again.
@db_task(retries=3, retry_delay=30, retry_backoff=2)
def history_sync(account_id: int, force: bool = False) -> None:
    from earworm.history.services.sync import history_sync as sync

    try:
        sync(account_id=account_id, force=force)
    except SpotifyQuotaExceeded as exc:
        raise RetryTask(eta=exc.resume_at + _jitter(QUOTA_RESUME_SPREAD_SECONDS)) from None
    except SpotifyRateLimited as exc:
        raise RetryTask(delay=exc.retry_after + random.uniform(0, 5)) from None
    except SpotifyBusy:
        raise RetryTask(delay=5 + random.uniform(0, 5)) from None
    except SpotifyReloginRequired:
        logger.info("Sync stopped: account %s needs a new Spotify login.", account_id)
    except (SpotifyUnavailable, SpotifyBadResponse):
        raise  # the declared retries apply
    except SpotifyError as exc:
        if not exc.permanent:
            raise
        logger.warning("Sync of account %s failed for good: %s", account_id, exc.message)


def _jitter(seconds: float) -> timedelta:
    return timedelta(seconds=random.uniform(0, seconds))


# Every minute, whatever SYNC_INTERVAL_MINUTES is: each run enqueues the accounts that are due and at most
# (accounts / interval) x 1.5 of them, which keeps any interval exact and spreads accounts across it. Only one
# consumer may run periodic tasks (the others start with --no-periodic, STYLE.md §8).
@db_periodic_task(crontab())
def history_sync_all_due() -> None:
    from earworm.history.services.sync import history_sync_all_due as enqueue_due

    enqueue_due()


# --- Imports of data-export uploads (issue 6) ---------------------------------------------------------------


# A web upload's import. Another import of the same user running: try again shortly (one at a time, UP-5).
# Anything else that escapes the service (the database went away, the worker's disk filled) leaves the job
# resumable; the declared retries resume it at the first file not done, and `history_import_recover` catches
# what the retries do not. A rejected file is not an exception: the service records it on the job.
@db_task(retries=3, retry_delay=30, retry_backoff=2)
def history_import(job_id: int) -> None:
    from earworm.history.services.imports import ImportBusy
    from earworm.history.services.imports import history_import as run_import
    from earworm.history.services.uploads import import_upload_discard

    try:
        summary = run_import(job_id=job_id)
    except ImportBusy:
        raise RetryTask(delay=30 + random.uniform(0, 10)) from None
    if summary is None:
        logger.info("Import %s is held by another worker or already finished.", job_id)
    import_upload_discard(job_id=job_id)


# Every 5 minutes: imports whose task was lost (Redis flushed, a worker killed mid-file and its claim expired)
# are queued again, so an upload always finishes without the user doing anything. A claim lasts
# IMPORT_CLAIM_SECONDS, so a killed import resumes within that plus 5 minutes.
@db_periodic_task(crontab(minute="*/5"))
def history_import_recover() -> None:
    from earworm.history.services.uploads import import_jobs_recover

    for job_id in import_jobs_recover():
        logger.info("Import %s queued again (its task was lost or its worker stopped).", job_id)
        history_import(job_id)
