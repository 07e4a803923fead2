import logging
import math
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from earworm.core.exceptions import SpotifyBusy, SpotifyReloginRequired
from earworm.spotify.errors import SpotifyError, SpotifyQuotaExceeded, SpotifyRateLimited

logger = logging.getLogger(__name__)


class SpotifyErrorMiddleware:
    """Turn Spotify trouble in an HTML view into a page that says what happened, with the right status.

    The JSON API has its own handlers (earworm.api.api); this covers the HTML views only.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/v1/"):
            return None
        if isinstance(exception, SpotifyReloginRequired):
            messages.error(request, exception.message)
            return HttpResponseRedirect("/")
        if isinstance(exception, SpotifyBusy):
            return _rate_limited(request, exception.retry_after)
        if isinstance(exception, SpotifyQuotaExceeded | SpotifyRateLimited):
            return _rate_limited(request, exception.retry_after)
        if isinstance(exception, SpotifyError):
            logger.warning("Spotify error in %s: %r", request.path, exception)
            return render(request, "errors/spotify_unavailable.html", status=502)
        return None


def _rate_limited(request: HttpRequest, retry_after: float) -> HttpResponse:
    seconds = max(1, math.ceil(retry_after))
    response = render(request, "errors/rate_limited.html", {"retry_after": seconds}, status=503)
    response["Retry-After"] = str(seconds)
    return response
