"""Log in with Spotify: authorization code flow with `state` and PKCE (SECURITY.md §2)."""

import logging
import time
from typing import Any

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.debug import sensitive_variables

from earworm.accounts.services import spotify_account_connect
from earworm.accounts.spotify_api import spotify_client, spotify_oauth
from earworm.core.ratelimit import quota_gate_record_config_error
from earworm.spotify.errors import SpotifyForbidden, SpotifyInvalidClient, SpotifyInvalidGrant

logger = logging.getLogger(__name__)

PENDING_LOGINS_KEY = "spotify_pending_logins"
# A login attempt must come back within 10 minutes; a browser keeps at most 10 pending (SECURITY.md OA-2, T-A4).
PENDING_LOGIN_TTL_SECONDS = 600
PENDING_LOGINS_MAX = 10
# Callback parameters longer than this, or not ASCII, are refused outright (OA-6).
PARAM_MAX_LENGTH = 2048


class SpotifyLoginView(View):
    """Redirect to Spotify's consent page with a fresh single-use `state` and a PKCE challenge."""

    def get(self, request: HttpRequest) -> HttpResponse:
        authorization = spotify_oauth().authorization_request()
        pending = _pending_logins(request)
        pending[authorization.state] = {
            "verifier": authorization.code_verifier,
            "created": time.time(),
            "next": _safe_next(request, request.GET.get("next")),
        }
        # Oldest first: keep the newest PENDING_LOGINS_MAX attempts.
        newest = sorted(pending.items(), key=lambda item: item[1]["created"])[-PENDING_LOGINS_MAX:]
        request.session[PENDING_LOGINS_KEY] = dict(newest)
        return HttpResponseRedirect(authorization.url)


class SpotifyCallbackView(View):
    """Finish a login: check `state`, exchange the code, read the profile, log the user in."""

    @sensitive_variables("code", "attempt", "token_set")
    def get(self, request: HttpRequest) -> HttpResponse:
        params = _single_params(request, ("state", "code", "error"))
        if params is None:
            return _render_error(request, "That sign-in link is malformed. Please start again.", status=400)
        state, code, error = params["state"], params["code"], params["error"]
        attempt = _pop_pending_login(request, state)
        if attempt is None:
            logger.warning("Spotify callback with a missing, unknown, expired or replayed state.")
            return _render_error(
                request,
                "This sign-in did not start here, or it expired or was already used. Please start again.",
                status=403,
            )
        if error:
            if error == "access_denied":
                logger.info("Spotify login cancelled by the user.")
                return render(request, "accounts/login_cancelled.html", status=200)
            logger.warning("Spotify login failed with error %r.", error[:50])
            return _render_error(request, "Spotify could not complete the sign-in. Please try again.", status=400)
        if not code:
            return _render_error(request, "Spotify sent no authorization code. Please start again.", status=400)

        try:
            token_set = spotify_oauth().exchange_code(code=code, code_verifier=attempt["verifier"])
            with spotify_client(access_token=token_set.access_token, kind="login") as client:
                profile = client.me()
        except SpotifyInvalidGrant:
            return _render_error(request, "That sign-in code expired or was already used. Please start again.", 400)
        except SpotifyInvalidClient as exc:
            quota_gate_record_config_error(message=f"Login failed: {exc.message}")
            return _render_error(
                request,
                "Earworm's connection to Spotify is misconfigured. The person who runs this Earworm has to fix it.",
                status=502,
            )
        except SpotifyForbidden as exc:
            if exc.not_allowlisted:
                return render(request, "accounts/not_allowlisted.html", status=403)
            return _render_error(request, "Spotify refused access to your profile.", status=403)
        # Other SpotifyErrors (unavailable, rate limited) reach SpotifyErrorMiddleware: a 502 or 503 page.

        result = spotify_account_connect(token_set=token_set, profile=profile)
        login(request, result.user)  # a new session key and CSRF token (SECURITY.md OA-13)
        return HttpResponseRedirect(attempt["next"])

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        # The callback URL carries the code: never leak it to another site through Referer (OA-9).
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "no-store"
        return response


class LogoutView(View):
    """POST only: a GET must never change state (SECURITY.md OA-16)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        logout(request)
        return HttpResponseRedirect("/")


def _pending_logins(request: HttpRequest) -> dict[str, dict[str, Any]]:
    now = time.time()
    pending = request.session.get(PENDING_LOGINS_KEY, {})
    return {s: a for s, a in pending.items() if now - a["created"] < PENDING_LOGIN_TTL_SECONDS}


def _pop_pending_login(request: HttpRequest, state: str) -> dict[str, Any] | None:
    """Remove and return the login attempt for `state`: every state works once (OA-2)."""
    if not state:
        return None
    pending = _pending_logins(request)
    attempt = pending.pop(state, None)
    request.session[PENDING_LOGINS_KEY] = pending
    return attempt


def _single_params(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str] | None:
    """Each parameter at most once, short and ASCII; None when any is not (OA-6)."""
    values: dict[str, str] = {}
    for name in names:
        given = request.GET.getlist(name)
        if len(given) > 1:
            return None
        value = given[0] if given else ""
        if len(value) > PARAM_MAX_LENGTH or not value.isascii():
            return None
        values[name] = value
    return values


def _safe_next(request: HttpRequest, url: str | None) -> str:
    """Same-site paths only (SECURITY.md OA-8); anything else falls back to the home page."""
    if (
        url
        and url.startswith("/")
        and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    ):
        return url
    return "/"


def _render_error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "accounts/login_error.html", {"message": message}, status=status)
