from typing import Any

from earworm.accounts.models import SpotifyAccount, User
from earworm.core.ratelimit import quota_gate_paused_until
from earworm.stats.selectors import stats_play_count


def account_for_user(*, user: User) -> SpotifyAccount | None:
    return SpotifyAccount.objects.filter(user=user).first()


def account_overview_for_user(*, user: User) -> dict[str, Any] | None:
    """The `/api/v1/me` fields (DESIGN.md §4), or None when the user has no Spotify account."""
    account = account_for_user(user=user)
    if account is None:
        return None
    return {
        "spotify_id": account.spotify_id,
        "display_name": account.display_name,
        "status": account.status,
        "last_synced_at": account.last_synced_at,
        "paused_until": quota_gate_paused_until(),
        "play_count": stats_play_count(user_id=user.pk),
    }
