from typing import Any

from django.conf import settings
from django.http import HttpRequest


def earworm(request: HttpRequest) -> dict[str, Any]:
    """What every page needs: demo-mode flag and whether a Spotify app is configured."""
    return {"demo_mode": settings.DEMO_MODE}
