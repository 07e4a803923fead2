"""The accounts service: ``GET /authorize`` (consent page), ``POST /authorize/consent``, ``POST /api/token``.

Behaviour follows FACTS §1: errors about the client or redirect URI are shown on our own page and
never reach the callback; every other outcome redirects to the callback with ``state``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import secrets
from urllib.parse import urlencode, urlsplit

from .http import Request, Response, html_response, json_response, oauth_error, redirect
from .state import AccessToken, Client, Code, Grant, RefreshToken, State

SCOPES = {
    "ugc-image-upload", "user-read-playback-state", "user-modify-playback-state", "user-read-currently-playing",
    "app-remote-control", "streaming", "playlist-read-private", "playlist-read-collaborative",
    "playlist-modify-private", "playlist-modify-public", "user-follow-modify", "user-follow-read",
    "user-read-playback-position", "user-top-read", "user-read-recently-played", "user-library-modify",
    "user-library-read", "user-read-email", "user-read-private", "user-personalized",
    "user-soa-link", "user-soa-unlink", "soa-manage-entitlements", "soa-manage-partner", "soa-create-partner",
}  # fmt: skip
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
COOKIE = "emulator_user"


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    """Exact match, except that loopback IP literals may use any port (FACTS §1.3)."""
    if uri in client.redirect_uris:
        return True
    try:
        got = urlsplit(uri)
        got_port = got.port
    except ValueError:
        return False
    if (
        got.scheme != "http"
        or got.hostname is None
        or (f"[{got.hostname}]" not in LOOPBACK_HOSTS and (got.hostname not in LOOPBACK_HOSTS))
    ):
        return False
    for registered in client.redirect_uris:
        reg = urlsplit(registered)
        if (reg.scheme, reg.hostname, reg.path, reg.query) == (got.scheme, got.hostname, got.path, got.query):
            return got_port is not None or reg.port is None
    return False


def _error_page(message: str) -> Response:
    # What Spotify shows for a bad client or redirect URI: a page, not a redirect.
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
        f"<h1>Oops! Something went wrong</h1><p id='error'>{html.escape(message)}</p></body></html>"
    )
    return html_response(400, body)


def _callback(uri: str, params: dict[str, str], status: int = 302) -> Response:
    sep = "&" if "?" in uri else "?"
    resp = redirect(uri + sep + urlencode(params))
    resp.status = status
    return resp


def _cookie_user(req: Request) -> str | None:
    for part in req.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def authorize(state: State, req: Request) -> Response:
    q = {k: v[0] for k, v in req.query.items()}
    client = state.clients.get(q.get("client_id", ""))
    if client is None:
        return _error_page("INVALID_CLIENT: Invalid client")
    redirect_uri = q.get("redirect_uri", "")
    if not redirect_uri or not redirect_uri_allowed(client, redirect_uri):
        return _error_page("INVALID_CLIENT: Invalid redirect URI")
    st = q.get("state")

    def fail(error: str) -> Response:
        params = {"error": error}
        if st is not None:
            params["state"] = st
        return _callback(redirect_uri, params)

    if q.get("response_type") != "code":
        return fail("unsupported_response_type")
    scope = " ".join(q.get("scope", "").split())
    if any(s not in SCOPES for s in scope.split()):
        return fail("invalid_scope")
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    has_pkce = challenge is not None or method is not None
    if has_pkce and (method != "S256" or not challenge or not _CHALLENGE.match(challenge)):
        return fail("invalid_request")
    request_id = secrets.token_urlsafe(16)
    pending = {"client_id": client.client_id, "redirect_uri": redirect_uri, "scope": scope,
               "code_challenge": challenge or ""}  # fmt: skip
    if st is not None:
        pending["state"] = st
    with state.lock:
        state.pending[request_id] = pending
        # An approved user is sent straight back unless show_dialog=true (FACTS §1.1).
        user = _cookie_user(req)
        if q.get("show_dialog", "false").lower() != "true" and user and (client.client_id, user) in state.approved:
            state.pending.pop(request_id)
            return _issue_code(state, pending, user)
    return _consent_page(state, client, request_id, scope)


def _consent_page(state: State, client: Client, request_id: str, scope: str) -> Response:
    scopes = "".join(f"<li class='scope'>{html.escape(s)}</li>" for s in scope.split()) or (
        "<li class='scope'>Public data only</li>"
    )
    options = "".join(
        f"<option value='{html.escape(u.id)}'>{html.escape(u.display_name)} ({html.escape(u.id)})"
        f"{'' if state.allow_list.get(u.id) else ' - not allow-listed'}</option>"
        for u in state.world.users
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Spotify emulator - authorize {html.escape(client.name)}</title></head>
<body>
<h1>Connect {html.escape(client.name)} to your Spotify account</h1>
<p>This emulated app (client id <code>{html.escape(client.client_id)}</code>) asks to:</p>
<ul id="scopes">{scopes}</ul>
<form method="post" action="/authorize/consent">
  <input type="hidden" name="request_id" value="{request_id}">
  <label for="user">Log in as</label>
  <select id="user" name="user">{options}</select>
  <button type="submit" id="agree" name="agree" value="1">Agree</button>
  <button type="submit" id="cancel" name="cancel" value="1">Cancel</button>
</form>
</body></html>"""
    return html_response(200, body)


def consent(state: State, req: Request) -> Response:
    form = req.form()
    with state.lock:
        pending = state.pending.pop(form.get("request_id", ""), None)
    if pending is None:
        return _error_page("This authorization request has expired. Please start again.")
    params = {"state": pending["state"]} if "state" in pending else {}
    if "agree" not in form:
        return _callback(pending["redirect_uri"], {"error": "access_denied", **params}, 303)
    user_id = form.get("user", "")
    if state.world.user(user_id) is None:
        return _error_page("Unknown user")
    resp = _issue_code(state, pending, user_id, 303)
    resp.headers.append(("Set-Cookie", f"{COOKIE}={user_id}; Path=/; HttpOnly; SameSite=Lax"))
    return resp


def _issue_code(state: State, pending: dict[str, str], user_id: str, status: int = 302) -> Response:
    code = "AQ" + secrets.token_urlsafe(180)[:230]
    with state.lock:
        now = state.now_ms()
        state.codes[code] = Code(
            code, pending["client_id"], user_id, pending["redirect_uri"], pending["scope"],
            now + state.settings.code_ttl * 1000, pending["code_challenge"] or None, now,
        )  # fmt: skip
        state.approved.add((pending["client_id"], user_id))
    params = {"code": code}
    if "state" in pending:
        params["state"] = pending["state"]
    return _callback(pending["redirect_uri"], params, status)


def _client_credentials(req: Request, form: dict[str, str]) -> tuple[str | None, str | None, bool]:
    """(client_id, secret, ok). Basic auth wins; Spotify also accepts both in the body."""
    auth = req.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, None, False
        cid, sep, secret = raw.partition(":")
        return (cid, secret, True) if sep else (None, None, False)
    return form.get("client_id"), form.get("client_secret"), True


def token(state: State, req: Request) -> Response:
    if req.method != "POST":
        return json_response(405, {"error": "invalid_request", "error_description": "Only POST is supported"})
    form = req.form()
    client_id, secret, ok = _client_credentials(req, form)
    grant_type = form.get("grant_type")
    if not grant_type:
        return oauth_error("unsupported_grant_type", "grant_type parameter is missing")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        return oauth_error(
            "unsupported_grant_type",
            "grant_type must be client_credentials, authorization_code or refresh_token",
        )
    with state.lock:
        state.counters.grants[grant_type] += 1
    if not ok or not client_id:
        return oauth_error("invalid_client", "Invalid client")
    client = state.clients.get(client_id)
    if client is None:
        return oauth_error("invalid_client", "Invalid client")
    if secret is not None and not secrets.compare_digest(secret, client.client_secret):
        return oauth_error("invalid_client", "Invalid client secret")
    if grant_type == "authorization_code":
        return _code_grant(state, client, form, secret is None)
    if grant_type == "refresh_token":
        return _refresh_grant(state, client, form, secret is None)
    # client_credentials: an app token without a user (FACTS lists it as a grant Spotify has).
    if secret is None:
        return oauth_error("invalid_client", "Invalid client secret")
    return _token_response(state, client.client_id, "", "", None)


def _token_response(state: State, client_id: str, user_id: str, scope: str, refresh: str | None) -> Response:
    with state.lock:
        access = "BQ" + secrets.token_urlsafe(120)[:150]
        ttl = state.settings.access_token_ttl
        state.access_tokens[access] = AccessToken(access, client_id, user_id, scope, state.now_ms() + ttl * 1000)
        state.counters.grants["issued_access_tokens"] += 1
    body: dict[str, object] = {"access_token": access, "token_type": "Bearer", "expires_in": ttl}
    if refresh is not None:
        body["refresh_token"] = refresh
    body["scope"] = scope
    return json_response(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


def _code_grant(state: State, client: Client, form: dict[str, str], public: bool) -> Response:
    code_value = form.get("code")
    if not code_value:
        return oauth_error("invalid_request", "code must be supplied")
    redirect_uri = form.get("redirect_uri")
    with state.lock:
        # Codes are single use: any attempt consumes the code, successful or not.
        code = state.codes.pop(code_value, None)
        now = state.now_ms()
        if code is None or code.client_id != client.client_id or code.expires_ms <= now:
            return oauth_error("invalid_grant", "Invalid authorization code")
        if redirect_uri != code.redirect_uri:
            return oauth_error("invalid_grant", "Invalid authorization code")
        if code.code_challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not _VERIFIER.match(verifier) or digest != code.code_challenge:
                return oauth_error("invalid_grant", "code_verifier was incorrect")
        elif public:
            return oauth_error("invalid_client", "Invalid client secret")
        consent_ms = code.consent_ms
        grant = Grant(
            state.next_id(), client.client_id, code.user_id, code.scope, consent_ms, bool(code.code_challenge),
            consent_ms + state.settings.refresh_token_lifetime_days * 86_400_000,
        )  # fmt: skip
        state.grants[grant.grant_id] = grant
        refresh = "AQ" + secrets.token_urlsafe(100)[:131]
        state.refresh_tokens[refresh] = RefreshToken(refresh, grant.grant_id)
        state.counters.grants["authorization_code_ok"] += 1
    return _token_response(state, client.client_id, code.user_id, code.scope, refresh)


def _refresh_grant(state: State, client: Client, form: dict[str, str], public: bool) -> Response:
    value = form.get("refresh_token")
    if not value:
        return oauth_error("invalid_request", "refresh_token must be supplied")
    with state.lock:
        rt = state.refresh_tokens.get(value)
        grant = state.grants.get(rt.grant_id) if rt else None
        if rt is None or grant is None or grant.client_id != client.client_id:
            return oauth_error("invalid_grant", "Invalid refresh token")
        if public and not grant.pkce:
            return oauth_error("invalid_client", "Invalid client secret")
        fault = state.take_fault("token", ("revoked_refresh", "expired_consent"))
        now = state.now_ms()
        if fault is not None and fault.kind == "revoked_refresh":
            grant.revoked = True  # as if the user removed the app or changed the password
        elif fault is not None:
            grant.expires_ms = now - 1  # consent older than 6 months
        if rt.revoked or grant.revoked:
            return oauth_error("invalid_grant", "Refresh token revoked")
        if grant.expires_ms <= now:
            # Spotify documents invalid_grant for an expired refresh token; the description is our guess.
            return oauth_error("invalid_grant", "Refresh token expired")
        policy = state.settings.refresh_policy
        if grant.pkce and public:
            # A public PKCE client's refresh tokens are single use (FACTS §1.2). A confidential client that
            # also sends a PKCE challenge (as RFC 9700 recommends) authenticates with its secret and gets
            # the configured policy.
            policy = "rotate_invalidate"
        elif policy == "random":
            policy = state.token_rng.choice(["omit", "rotate", "rotate_invalidate"])
        new_refresh: str | None = None
        if policy in ("rotate", "rotate_invalidate"):
            new_refresh = "AQ" + secrets.token_urlsafe(100)[:131]
            state.refresh_tokens[new_refresh] = RefreshToken(new_refresh, grant.grant_id)
            if policy == "rotate_invalidate":
                rt.revoked = True
        state.counters.grants["refresh_token_ok"] += 1
    return _token_response(state, client.client_id, grant.user_id, grant.scope, new_refresh)
