from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from earworm.accounts.selectors import account_for_user
from earworm.accounts.services import spotify_account_consent_expires_at

# Warn this long before the 6-month Spotify consent runs out.
CONSENT_WARNING_DAYS = 14


def earworm(request: HttpRequest) -> dict[str, Any]:
    """What every page needs: demo mode, and the signed-in user's Spotify account for the banners."""
    context: dict[str, Any] = {"demo_mode": settings.DEMO_MODE}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        account = account_for_user(user=user)
        context["spotify_account"] = account
        # Until the user has a zone, the browser suggests one once per session (earworm/static/earworm/timezone.js).
        context["tz_autodetect"] = user.time_zone == "UTC" and not request.session.get("time_zone_checked")
        if account is not None:
            expires = spotify_account_consent_expires_at(account=account)
            if expires and (expires - timezone.now()).days < CONSENT_WARNING_DAYS:
                context["consent_expires_at"] = expires
    return context
