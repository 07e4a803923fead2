"""Reads of plays. Statistics live in earworm.stats."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, Q

from earworm.catalog.models import TrackArtist
from earworm.core.exceptions import ApplicationError
from earworm.history.models import Play

PLAY_PAGE_MAX = 200


class InvalidCursor(ApplicationError):
    def __init__(self) -> None:
        super().__init__("The cursor is not valid; start again without it.", extra={"field": "cursor"})


@dataclass(frozen=True)
class PlayPage:
    items: list[Play]
    next_cursor: str | None


def _encode_cursor(play: Play) -> str:
    return base64.urlsafe_b64encode(f"{play.played_at.isoformat()}|{play.pk}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        played_at, pk = raw.split("|")
        parsed = datetime.fromisoformat(played_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor() from exc


def play_list_for_user(
    *,
    user_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> PlayPage:
    """A page of the user's plays, newest first, with track, album and ordered artists loaded.

    Keyset pagination on (played_at, id): a page never repeats or skips a play when new plays arrive
    meanwhile, unlike offsets. `since` is inclusive, `until` exclusive.
    """
    limit = max(1, min(limit, PLAY_PAGE_MAX))
    plays = Play.objects.filter(user_id=user_id)
    if since is not None:
        plays = plays.filter(played_at__gte=since)
    if until is not None:
        plays = plays.filter(played_at__lt=until)
    if cursor:
        played_at, pk = _decode_cursor(cursor)
        plays = plays.filter(Q(played_at__lt=played_at) | Q(played_at=played_at, pk__lt=pk))
    page = list(
        plays.select_related("track__album")
        .prefetch_related(
            Prefetch(
                "track__trackartist_set",
                queryset=TrackArtist.objects.select_related("artist").order_by("position"),
                to_attr="credits",
            )
        )
        .order_by("-played_at", "-pk")[: limit + 1]
    )
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return PlayPage(items=page[:limit], next_cursor=next_cursor)


@dataclass(frozen=True)
class SyncStatus:
    """What the home page shows about an account's syncing."""

    last_synced_at: datetime | None
    last_new_plays: int | None
    next_sync_at: datetime | None
    error: str
    paused_until: datetime | None
    gaps: list[tuple[datetime, datetime]]
    # The next sync is due now: it starts within a minute.
    next_sync_soon: bool = False


# Gaps older than this are no longer shown on the home page.
GAP_SHOWN_DAYS = 30
GAPS_SHOWN = 5


def sync_status_for_account(*, account_id: int) -> SyncStatus | None:
    """The account's sync status: last sync and its new plays, next sync, error, gate pause, recent gaps."""
    from django.conf import settings
    from django.utils import timezone

    from earworm.accounts.models import SpotifyAccount
    from earworm.core.ratelimit import quota_gate_paused_until
    from earworm.history.models import SyncRun

    account = SpotifyAccount.objects.filter(pk=account_id).only("status", "last_synced_at", "last_sync_error").first()
    if account is None:
        return None
    runs = SyncRun.objects.filter(account_id=account_id)
    last_ok = runs.filter(status=SyncRun.Status.OK).order_by("-started_at").values_list("new_plays", flat=True)
    now = timezone.now()
    gaps = list(
        runs.filter(gap_from__isnull=False, started_at__gte=now - timedelta(days=GAP_SHOWN_DAYS))
        .order_by("-started_at")
        .values_list("gap_from", "gap_to")[:GAPS_SHOWN]
    )
    paused_until = quota_gate_paused_until()
    next_sync_at = None
    if account.status == SpotifyAccount.Status.ACTIVE:
        interval = timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)
        next_sync_at = max(account.last_synced_at + interval, now) if account.last_synced_at else now
        if paused_until and paused_until > next_sync_at:
            next_sync_at = paused_until
    return SyncStatus(
        last_synced_at=account.last_synced_at,
        last_new_plays=last_ok.first(),
        next_sync_at=next_sync_at,
        error=account.last_sync_error,
        paused_until=paused_until,
        gaps=[(start, end) for start, end in gaps if start and end],
        next_sync_soon=next_sync_at is not None and next_sync_at <= now + timedelta(minutes=1),
    )
