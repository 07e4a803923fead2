"""The Web API subset Earworm uses, under ``/v1``.

Checks run in Spotify's order as far as it is observable: token (401), limits (429), allow-list
(403), then the endpoint itself (400/403/404).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

from . import render
from .generator import is_base62_id
from .http import Request, Response, api_error, json_response
from .state import AccessToken, State

BATCH_MAX = {"tracks": 50, "artists": 50, "albums": 20}
_ROUTES = [
    (re.compile(r"^/v1/me/?$"), "me"),
    (re.compile(r"^/v1/me/player/recently-played/?$"), "recently-played"),
    (re.compile(r"^/v1/tracks/([^/]+)/?$"), "track"),
    (re.compile(r"^/v1/artists/([^/]+)/?$"), "artist"),
    (re.compile(r"^/v1/albums/([^/]+)/?$"), "album"),
    (re.compile(r"^/v1/tracks/?$"), "tracks"),
    (re.compile(r"^/v1/artists/?$"), "artists"),
    (re.compile(r"^/v1/albums/?$"), "albums"),
]


def endpoint_name(path: str) -> tuple[str, str | None]:
    for pattern, name in _ROUTES:
        m = pattern.match(path)
        if m:
            return name, (m.group(1) if m.groups() else None)
    return "other", None


def peek_token(state: State, req: Request) -> AccessToken | None:
    """The token a request carries, if known (for counters); no validation."""
    auth = req.headers.get("authorization", "")
    return state.access_tokens.get(auth[7:].strip()) if auth.startswith("Bearer ") else None


def authenticate(state: State, req: Request) -> AccessToken | Response:
    auth = req.headers.get("authorization")
    if not auth:
        return api_error(401, "No token provided")
    if not auth.startswith("Bearer "):
        return api_error(400, "Only valid bearer authentication supported")
    tok = state.access_tokens.get(auth[7:].strip())
    if tok is None:
        return api_error(401, "Invalid access token")
    if tok.expires_ms <= state.now_ms():
        return api_error(401, "The access token expired")
    return tok


def rate_limited(kind: str, retry_after: int) -> Response:
    headers = [("Retry-After", str(retry_after))]
    if kind == "quota":
        return api_error(429, "Too many requests", headers, reason="QUOTA_EXCEEDED")
    return api_error(429, "API rate limit exceeded", headers)


def handle(state: State, req: Request, endpoint: str, ident: str | None) -> Response:
    if endpoint == "other":
        return api_error(404, "Service not found")
    if req.method != "GET":
        return api_error(405, "Method not allowed")
    tok = authenticate(state, req)
    if isinstance(tok, Response):
        return tok
    refused = state.check_limits(tok.client_id)
    if refused is not None:
        return rate_limited(*refused)
    if tok.user_id and not state.allow_list.get(tok.user_id, False):
        return api_error(403, "User not registered in the Developer Dashboard")
    handler: Callable[[State, Request, AccessToken, str | None], Response] = _HANDLERS[endpoint]
    return handler(state, req, tok, ident)


def _me(state: State, req: Request, tok: AccessToken, _ident: str | None) -> Response:
    user = state.world.user(tok.user_id)
    if user is None:  # an app token (client credentials) has no user
        return api_error(401, "Invalid access token")
    return json_response(200, render.private_user(req.api_url, user, state.settings.mode))


def _int_arg(req: Request, name: str) -> int | Response | None:
    raw = req.arg(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return api_error(400, f"Invalid {name}")


def _recently_played(state: State, req: Request, tok: AccessToken, _ident: str | None) -> Response:
    if "user-read-recently-played" not in tok.scope.split():
        return api_error(403, "Insufficient client scope")
    if state.world.user(tok.user_id) is None:
        return api_error(401, "Invalid access token")
    limit = _int_arg(req, "limit")
    after = _int_arg(req, "after")
    before = _int_arg(req, "before")
    for value in (limit, after, before):
        if isinstance(value, Response):
            return value
    assert not isinstance(limit, Response) and not isinstance(after, Response) and not isinstance(before, Response)
    if limit is None:
        limit = 20
    if not 1 <= limit <= 50:
        return api_error(400, "Invalid limit")
    if after is not None and before is not None:
        return api_error(400, "Only one of after or before may be specified")
    state.materialize()
    now = state.now_ms()
    with state.lock:
        visible = [p for p in state.plays.get(tok.user_id, []) if p.end_ms <= now and p.visible_in_api]
    # Spotify keeps only the last 50 plays (FACTS §2.3); cursors never reach further back.
    window = visible[-50:]
    if after is not None:
        newer = [p for p in window if p.end_ms > after]
        page = newer[:limit]  # the oldest plays after the cursor, so paging forward loses nothing
        more = len(newer) > limit
    else:
        older = [p for p in window if before is None or p.end_ms < before]
        page = older[-limit:]
        more = len(older) > limit
    page = list(reversed(page))  # newest first, as Spotify lists them
    query = {k: v[0] for k, v in req.query.items()}
    href = f"{req.api_url}/me/player/recently-played" + (f"?{urlencode(query)}" if query else "")
    body: dict[str, object] = {"items": [], "next": None, "cursors": None, "limit": limit, "href": href}
    if page:
        newest, oldest = page[0].end_ms, page[-1].end_ms
        body["items"] = [render.play_history(req.api_url, state.world.catalog, p, state.settings.mode) for p in page]
        body["cursors"] = {"after": str(newest), "before": str(oldest)}
        if more:
            nxt = {"after": newest} if after is not None else {"before": oldest}
            body["next"] = f"{req.api_url}/me/player/recently-played?{urlencode({**nxt, 'limit': limit})}"
    return json_response(200, body)


def _lookup(state: State, kind: str, ident: str) -> object | Response:
    if not is_base62_id(ident):
        return api_error(400, "Invalid base62 id")
    index = state.world.catalog.lookup(kind, ident)
    if index is None:
        return api_error(404, "Resource not found")
    return index


def _render(state: State, req: Request, kind: str, index: int) -> dict[str, object]:
    cat, mode = state.world.catalog, state.settings.mode
    if kind == "track":
        return render.track(req.api_url, cat, cat.track(index), mode)
    if kind == "artist":
        return render.artist(req.api_url, cat.artist(index), mode)
    return render.album(req.api_url, cat, cat.album(index), mode)


def _single(kind: str) -> Callable[[State, Request, AccessToken, str | None], Response]:
    def handler(state: State, req: Request, _tok: AccessToken, ident: str | None) -> Response:
        index = _lookup(state, kind, ident or "")
        if isinstance(index, Response):
            return index
        assert isinstance(index, int)
        return json_response(200, _render(state, req, kind, index))

    return handler


def _batch(kind: str) -> Callable[[State, Request, AccessToken, str | None], Response]:
    plural = f"{kind}s"

    def handler(state: State, req: Request, _tok: AccessToken, _ident: str | None) -> Response:
        # Removed for development-mode apps in February 2026 (FACTS §3.3).
        if state.settings.mode == "development":
            return api_error(403, "Forbidden")
        raw = req.arg("ids")
        if not raw:
            return api_error(400, "Missing required parameter: ids")
        ids = raw.split(",")
        if len(ids) > BATCH_MAX[plural]:
            return api_error(400, "Too many ids requested")
        out: list[object] = []
        for ident in ids:
            if not is_base62_id(ident):
                return api_error(400, "Invalid base62 id")
            index = state.world.catalog.lookup(kind, ident)
            # Unknown ids come back as null entries, in request order.
            out.append(None if index is None else _render(state, req, kind, index))
        return json_response(200, {plural: out})

    return handler


_HANDLERS: dict[str, Callable[[State, Request, AccessToken, str | None], Response]] = {
    "me": _me,
    "recently-played": _recently_played,
    "track": _single("track"),
    "artist": _single("artist"),
    "album": _single("album"),
    "tracks": _batch("track"),
    "artists": _batch("artist"),
    "albums": _batch("album"),
}
