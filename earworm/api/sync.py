"""`POST /api/v1/sync`: queue a sync of the caller's account now ("Sync now"); 202 (DESIGN.md §4, STYLE.md §5)."""

from datetime import datetime

from django.core.cache import cache
from django.http import Http404, HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from earworm.accounts.models import SpotifyAccount
from earworm.core.exceptions import ApplicationError, SpotifyReloginRequired
from earworm.core.ratelimit import quota_gate_paused_until
from earworm.history.services.sync import history_sync_request

router = Router(tags=["sync"])

# One "Sync now" per user per minute (SECURITY.md UP-6). The cache is shared by every web process when a shared
# cache backend is configured; with the default local-memory cache the limit holds per process.
SYNC_REQUEST_INTERVAL_SECONDS = 60


class SyncTooSoon(ApplicationError):
    status_code = 429

    def __init__(self) -> None:
        super().__init__(
            "A sync was requested less than a minute ago; it is on its way.", extra={"code": "sync_too_soon"}
        )


class SyncOut(Schema):
    status: str
    paused_until: datetime | None


@router.post("/sync", response={202: SyncOut}, summary="Sync your plays now")
def sync_start(request: HttpRequest) -> Status[SyncOut]:
    user = request.auth  # type: ignore[attr-defined]
    account = SpotifyAccount.objects.filter(user=user).only("pk", "status").first()
    if account is None:
        raise Http404
    if account.status != SpotifyAccount.Status.ACTIVE:
        raise SpotifyReloginRequired()
    if not cache.add(f"earworm:sync-request:{user.pk}", 1, timeout=SYNC_REQUEST_INTERVAL_SECONDS):
        raise SyncTooSoon()
    history_sync_request(account_id=account.pk)
    return Status(202, SyncOut(status="queued", paused_until=quota_gate_paused_until()))
