from datetime import datetime

from django.http import Http404, HttpRequest
from ninja import Router, Schema

from earworm.accounts.selectors import account_overview_for_user

router = Router(tags=["me"])


class MeOut(Schema):
    spotify_id: str
    display_name: str
    status: str
    last_synced_at: datetime | None
    paused_until: datetime | None
    play_count: int


@router.get("/me", response=MeOut, summary="Who you are and how your sync is doing")
def me_get(request: HttpRequest) -> MeOut:
    overview = account_overview_for_user(user=request.auth)  # type: ignore[attr-defined]
    if overview is None:
        raise Http404
    return MeOut(**overview)
