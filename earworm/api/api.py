"""The JSON API under /api/v1/: authentication, the error envelope, and the routers (STYLE.md §5, 4b)."""

import math

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import django_auth

from earworm.api.auth import ApiTokenAuth
from earworm.core.exceptions import ApplicationError, SpotifyBusy
from earworm.core.http import error_envelope
from earworm.spotify.errors import SpotifyError, SpotifyQuotaExceeded, SpotifyRateLimited

api = NinjaAPI(
    title="Earworm API",
    version="1",
    description="Your Spotify listening history. Authenticate with your session or `Authorization: Bearer <token>` "
    "(create tokens on /settings/).",
    # Bearer first; the session cookie second, with ninja's CSRF check on unsafe methods (SECURITY.md AP-1).
    auth=[ApiTokenAuth(), django_auth],
    urls_namespace="api",
)


def _envelope(request: HttpRequest, message: str, status: int, extra: dict | None = None) -> HttpResponse:
    response = api.create_response(request, error_envelope(message, extra), status=status)
    response["Cache-Control"] = "no-store"
    return response


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _envelope(request, "Authentication required: log in, or send Authorization: Bearer <token>.", 401)


@api.exception_handler(ValidationError)
def on_invalid_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {"loc": [str(part) for part in error.get("loc", ())], "message": error.get("msg", "invalid")}
        for error in exc.errors
    ]
    return _envelope(request, "The request is not valid.", 400, {"fields": fields})


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _envelope(request, "Not found.", 404)


@api.exception_handler(ApplicationError)
def on_application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = _envelope(request, exc.message, exc.status_code, exc.extra)
    if isinstance(exc, SpotifyBusy):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(SpotifyError)
def on_spotify_error(request: HttpRequest, exc: SpotifyError) -> HttpResponse:
    if isinstance(exc, SpotifyRateLimited | SpotifyQuotaExceeded):
        seconds = max(1, math.ceil(exc.retry_after))
        response = _envelope(request, "Spotify asked Earworm to wait; try again later.", 503)
        response["Retry-After"] = str(seconds)
        return response
    return _envelope(request, "Spotify is not answering; try again in a minute.", 502)


api.add_router("/", "earworm.api.me.router")
api.add_router("/", "earworm.api.plays.router")
api.add_router("/", "earworm.api.sync.router")
api.add_router("/", "earworm.api.stats.router")
api.add_router("/", "earworm.api.genres.router")
api.add_router("/", "earworm.api.export.router")
api.add_router("/", "earworm.api.imports.router")
