"""The sync engine: Spotify's recently-played window into stored plays (STYLE.md §3 "Shape of a sync").

Spotify keeps only the last 50 plays (DESIGN.md §1), so each sync reads the whole window, lets the play store's
unique key and overlap rule drop what is already stored, and records a gap when the window no longer reaches
the newest stored play. One sync per account runs at a time, under a claim taken with a conditional UPDATE
that expires, so a crashed worker cannot hold it (STYLE.md §3). No transaction is open during HTTP.
"""

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.services import spotify_client_for_account
from earworm.catalog.keys import track_key
from earworm.catalog.services import catalog_upsert
from earworm.core.exceptions import SpotifyBusy, SpotifyReloginRequired
from earworm.core.ratelimit import quota_gate_paused_until
from earworm.history.models import Play, SyncRun
from earworm.history.services.plays import NewPlay, history_plays_store
from earworm.spotify.errors import SpotifyError, SpotifyQuotaExceeded, SpotifyRateLimited
from earworm.spotify.types import PlayHistoryItem, PlayHistoryPage, TrackData
from earworm.stats.services import stats_rollups_refresh

logger = logging.getLogger(__name__)

# Spotify's recently-played window (FACTS §2.3).
WINDOW_SIZE = 50
# A sync that is not forced skips an account synced less than this share of the interval ago: the periodic
# scheduler and a task's own retry may both have queued it.
FRESH_SHARE = 0.5
# The periodic scheduler enqueues at most this multiple of (active accounts / interval minutes) per minute,
# which spreads a cold start across the interval and lets a backlog drain.
SPREAD_SLACK = 1.5

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class SyncResult:
    """What one call of `history_sync` did. `status` is "ok", "skipped" (claimed elsewhere, inactive or just
    synced) or "failed" (the error is also raised)."""

    account_id: int
    status: str
    plays_seen: int = 0
    new_plays: int = 0
    new_tracks: int = 0
    new_artists: int = 0
    calls_made: int = 0
    duration_ms: int = 0
    gap_from: datetime | None = None
    gap_to: datetime | None = None
    error: str = ""


def _claim(account_id: int, *, now: datetime, synced_before: datetime | None) -> datetime | None:
    until = now + timedelta(seconds=settings.SYNC_CLAIM_SECONDS)
    accounts = SpotifyAccount.objects.filter(pk=account_id, status=SpotifyAccount.Status.ACTIVE).filter(
        Q(sync_claimed_until__isnull=True) | Q(sync_claimed_until__lt=now)
    )
    if synced_before is not None:
        # Checked again in the claim itself: a duplicate task that read the account just before another
        # worker's sync committed and released it must not sync it a second time.
        accounts = accounts.filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=synced_before))
    claimed = accounts.update(sync_claimed_until=until)
    return until if claimed == 1 else None


def history_sync(*, account_id: int, force: bool = False) -> SyncResult:
    """Fetch the account's recently-played window and store what is new.

    Claims the account first and returns a "skipped" result at once when another worker holds it, when the
    account is not active, or (unless `force`) when it was synced within half the interval. Then: a valid
    token, one `GET /me/player/recently-played?limit=50`, and one short transaction that upserts the catalog,
    stores the plays, advances `last_played_at` and records the `SyncRun` (with a gap when 50 plays came back
    and the oldest is newer than the newest stored one). The number of SQL statements does not depend on the
    number of plays.

    Returns a `SyncResult`. Raises `SpotifyReloginRequired` (account now needs re-login), `SpotifyBusy`,
    `SpotifyRateLimited` / `SpotifyQuotaExceeded` (the gate is closed; nothing was recorded), and other
    `SpotifyError`s, which are recorded on a failed `SyncRun` and on the account first.
    """
    now = timezone.now()
    account = SpotifyAccount.objects.filter(pk=account_id).only("status", "last_synced_at").first()
    if account is None or account.status != SpotifyAccount.Status.ACTIVE:
        return SyncResult(account_id=account_id, status=STATUS_SKIPPED)
    interval = timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)
    if not force and account.last_synced_at and now - account.last_synced_at < interval * FRESH_SHARE:
        return SyncResult(account_id=account_id, status=STATUS_SKIPPED)
    claim = _claim(account_id, now=now, synced_before=None if force else now - interval * FRESH_SHARE)
    if claim is None:
        return SyncResult(account_id=account_id, status=STATUS_SKIPPED)
    started = time.monotonic()
    calls = 0
    try:
        try:
            with spotify_client_for_account(account_id=account_id, kind="sync") as client:
                try:
                    page = client.recently_played(limit=WINDOW_SIZE)
                finally:
                    calls = client.calls_made
        except (SpotifyRateLimited, SpotifyQuotaExceeded, SpotifyBusy):
            raise  # the gate is closed or a refresh is in flight: not a failure of this account
        except (SpotifyError, SpotifyReloginRequired) as exc:
            message = exc.message
            _record_failure(account_id, started_at=now, started=started, calls=calls, message=message)
            raise
        return _store_window(account_id, page=page, started_at=now, started=started, calls=calls)
    finally:
        # Release only our own claim: if it lapsed and another worker took over, theirs stays.
        SpotifyAccount.objects.filter(pk=account_id, sync_claimed_until=claim).update(sync_claimed_until=None)


def _duration_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record_failure(account_id: int, *, started_at: datetime, started: float, calls: int, message: str) -> None:
    with transaction.atomic():
        SyncRun.objects.create(
            account_id=account_id,
            status=SyncRun.Status.FAILED,
            started_at=started_at,
            finished_at=timezone.now(),
            duration_ms=_duration_ms(started),
            calls_made=calls,
            error=message[:500],
        )
        SpotifyAccount.objects.filter(pk=account_id).update(last_sync_error=message[:500])
    logger.warning("Sync of account %s failed: %s", account_id, message)


def _track_items(page: PlayHistoryPage) -> list[tuple[PlayHistoryItem, TrackData]]:
    """The window's plays of music tracks; items without a track (FZ-3) and episodes are skipped."""
    return [(item, item.track) for item in page.items if item.track is not None and item.track.type == "track"]


def _store_window(
    account_id: int, *, page: PlayHistoryPage, started_at: datetime, started: float, calls: int
) -> SyncResult:
    items = _track_items(page)
    played = [item.played_at for item, _ in items]
    with transaction.atomic():
        account = SpotifyAccount.objects.only("user_id", "last_played_at").get(pk=account_id)
        upsert = catalog_upsert(tracks=[track for _, track in items], metadata_fetched_at=timezone.now())
        stored = history_plays_store(
            user_id=account.user_id,
            plays=[
                NewPlay(
                    track_id=upsert.track_ids[track_key(track)],
                    played_at=item.played_at,
                    ms_played=None,
                    source=Play.Source.API,
                    context_uri=(item.context.uri or "") if item.context else "",
                )
                for item, track in items
            ],
        )
        if stored.inserted:
            # Statistics read per-day rollups (earworm.stats), so they follow the plays in the same commit.
            stats_rollups_refresh(user_id=account.user_id, start=stored.earliest, end=stored.latest)
        gap_from = gap_to = None
        last = account.last_played_at
        # A full window whose oldest play is newer than the newest stored one may have lost plays between
        # polls (SECURITY.md IN-8). A window of fewer than 50 plays is all Spotify has, so nothing is lost.
        if len(page.items) >= WINDOW_SIZE and last is not None and played and min(played) > last:
            gap_from, gap_to = last, min(played)
        newest = max(played) if played else None
        account_updates: dict[str, object] = {"last_synced_at": timezone.now(), "last_sync_error": ""}
        if newest is not None and (last is None or newest > last):
            account_updates["last_played_at"] = newest
        SpotifyAccount.objects.filter(pk=account_id).update(**account_updates)
        duration = _duration_ms(started)
        SyncRun.objects.create(
            account_id=account_id,
            status=SyncRun.Status.OK,
            started_at=started_at,
            finished_at=timezone.now(),
            duration_ms=duration,
            plays_seen=len(page.items),
            new_plays=stored.inserted,
            new_tracks=upsert.new_tracks,
            new_artists=upsert.new_artists,
            calls_made=calls,
            gap_from=gap_from,
            gap_to=gap_to,
        )
    if gap_from is not None:
        logger.warning("Sync of account %s: plays may be lost between %s and %s.", account_id, gap_from, gap_to)
    return SyncResult(
        account_id=account_id,
        status=STATUS_OK,
        plays_seen=len(page.items),
        new_plays=stored.inserted,
        new_tracks=upsert.new_tracks,
        new_artists=upsert.new_artists,
        calls_made=calls,
        duration_ms=duration,
        gap_from=gap_from,
        gap_to=gap_to,
    )


def history_accounts_due(*, now: datetime | None = None) -> list[int]:
    """Ids of active, unclaimed accounts due for a sync, oldest first, at most a spread-out share per call.

    Due means: last synced longer ago than `SYNC_INTERVAL_MINUTES` (or never), and no sync attempt (even a
    failed one) within the interval, so a broken account is retried once per interval and not every minute.
    """
    now = now or timezone.now()
    interval = timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)
    cutoff = now - interval
    active = SpotifyAccount.objects.filter(status=SpotifyAccount.Status.ACTIVE)
    counts = active.aggregate(total=Count("pk"))
    per_call = max(1, math.ceil(counts["total"] / max(settings.SYNC_INTERVAL_MINUTES, 1) * SPREAD_SLACK))
    due = (
        active.filter(Q(sync_claimed_until__isnull=True) | Q(sync_claimed_until__lt=now))
        .filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=cutoff))
        .exclude(Exists(SyncRun.objects.filter(account_id=OuterRef("pk"), started_at__gt=cutoff)))
        .order_by(F("last_synced_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:per_call]
    )
    return list(due)


def history_sync_all_due() -> list[int]:
    """Enqueue one sync task for each account due now (see `history_accounts_due`), after commit.

    Does nothing while the Spotify gate is paused: the work resumes by itself when it opens. Returns the ids
    of the accounts enqueued.
    """
    if quota_gate_paused_until() is not None:
        return []
    from earworm.history.tasks import history_sync as history_sync_task

    account_ids = history_accounts_due()
    for account_id in account_ids:
        transaction.on_commit(partial(history_sync_task, account_id))
    if account_ids:
        logger.info("Enqueued %s due syncs.", len(account_ids))
    return account_ids


def history_sync_request(*, account_id: int, delay_seconds: float | None = None) -> None:
    """Queue a forced sync of one account ("Sync now", a fresh login), after commit. Returns nothing.

    With `delay_seconds` the task is scheduled rather than queued, so it never runs inside the web request
    even when Huey runs tasks immediately.
    """
    from earworm.history.tasks import history_sync as history_sync_task

    if delay_seconds is None:
        transaction.on_commit(lambda: history_sync_task(account_id, True))
    else:
        transaction.on_commit(lambda: history_sync_task.schedule(args=(account_id, True), delay=delay_seconds))
