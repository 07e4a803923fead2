"""The accounts service: consent, code and refresh grants, and every error path."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from spotify_emulator.validation import validate

from .conftest import REDIRECT, SCOPE, authorize, bearer, code_from, login, pkce_pair

BASIC = ("earworm-demo-client", "earworm-demo-secret")


def token_post(http: httpx.Client, auth: tuple[str, str] | None = BASIC, **data: str) -> httpx.Response:
    return http.post("/api/token", data=data, auth=auth)


def test_full_dance(emu, http, users):
    """consent -> code -> token -> /me -> recently-played -> refresh -> revoked refresh."""
    user = users[0]["id"]
    resp = authorize(http, user)
    assert resp.status_code == 303
    loc = urlsplit(resp.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    q = parse_qs(loc.query)
    assert q["state"] == ["st4te"]
    tok = token_post(http, grant_type="authorization_code", code=q["code"][0], redirect_uri=REDIRECT)
    assert tok.status_code == 200
    body = tok.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == SCOPE
    me = http.get("/v1/me", headers=bearer(body))
    assert me.status_code == 200
    validate(me.json(), "PrivateUserObject")
    assert me.json()["id"] == user
    rp = http.get("/v1/me/player/recently-played", params={"limit": 50}, headers=bearer(body))
    assert rp.status_code == 200
    validate(rp.json(), "CursorPagingPlayHistoryObject")
    assert rp.json()["items"]
    ref = token_post(http, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert ref.status_code == 200
    assert "refresh_token" not in ref.json()  # default policy "omit": keep using the old one
    assert http.get("/v1/me", headers=bearer(ref.json())).status_code == 200
    emu.control.revoke(user)
    dead = token_post(http, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert dead.status_code == 400
    assert dead.json() == {"error": "invalid_grant", "error_description": "Refresh token revoked"}
    counters = emu.control.counters()
    assert counters["refresh_grants"] == 2
    assert counters["calls"]["me"] == 2


def test_cancel_redirects_access_denied(http, users):
    resp = authorize(http, users[0]["id"], agree=False)
    assert resp.status_code == 303
    assert parse_qs(urlsplit(resp.headers["location"]).query) == {"error": ["access_denied"], "state": ["st4te"]}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"client_id": "nope"}, "INVALID_CLIENT: Invalid client"),
        ({"redirect_uri": "http://127.0.0.1:8000/api/callback"}, "INVALID_CLIENT: Invalid redirect URI"),
        ({"redirect_uri": "http://localhost:8000/api/callback/"}, "INVALID_CLIENT: Invalid redirect URI"),
        ({"redirect_uri": "https://evil.example/api/callback/"}, "INVALID_CLIENT: Invalid redirect URI"),
    ],
)
def test_authorize_client_errors_are_shown_not_redirected(http, users, params, message):
    resp = authorize(http, users[0]["id"], **params)
    assert resp.status_code == 400
    assert "location" not in resp.headers
    assert message in resp.text


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "user-read-recently-played not-a-scope"}, "invalid_scope"),
        ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
)
def test_authorize_request_errors_redirect(http, users, params, error):
    resp = authorize(http, users[0]["id"], **params)
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp.headers["location"]).query) == {"error": [error], "state": ["st4te"]}


def test_loopback_redirect_any_port(http, users):
    uri = "http://127.0.0.1:51234/api/callback/"
    resp = authorize(http, users[0]["id"], redirect_uri=uri)
    assert resp.headers["location"].startswith(uri + "?code=")
    tok = token_post(http, grant_type="authorization_code", code=code_from(resp), redirect_uri=uri)
    assert tok.status_code == 200


def test_silent_reauthorize_unless_show_dialog(http, users):
    authorize(http, users[0]["id"])  # sets the emulator's login cookie
    query = {"client_id": "earworm-demo-client", "response_type": "code", "redirect_uri": REDIRECT, "state": "s"}
    again = http.get("/authorize", params=query)
    assert again.status_code == 302 and "code=" in again.headers["location"]
    dialog = http.get("/authorize", params={**query, "show_dialog": "true"})
    assert dialog.status_code == 200 and 'id="agree"' in dialog.text


def test_consent_page_lists_scopes_and_users(http, users):
    page = http.get("/authorize", params={"client_id": "earworm-demo-client", "response_type": "code",
                                          "redirect_uri": REDIRECT, "scope": SCOPE})  # fmt: skip
    assert 'name="user"' in page.text and 'id="cancel"' in page.text
    assert "user-read-recently-played" in page.text
    assert all(u["id"] in page.text for u in users)


def test_code_is_single_use_and_checked(emu, http, users):
    code = code_from(authorize(http, users[0]["id"]))
    bad_redirect = token_post(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "x")
    assert bad_redirect.json() == {"error": "invalid_grant", "error_description": "Invalid authorization code"}
    code = code_from(authorize(http, users[0]["id"], show_dialog="true"))
    assert token_post(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).status_code == 200
    reused = token_post(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "Invalid authorization code"}


def test_code_expires_after_ten_minutes(emu, http, users):
    code = code_from(authorize(http, users[0]["id"]))
    emu.control.advance_clock(601)
    resp = token_post(http, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert resp.json()["error_description"] == "Invalid authorization code"


def test_client_authentication_errors(http, users):
    code = code_from(authorize(http, users[0]["id"]))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert token_post(http, auth=("nope", "x"), **form).json() == {
        "error": "invalid_client", "error_description": "Invalid client"}  # fmt: skip
    assert token_post(http, auth=("earworm-demo-client", "wrong"), **form).json() == {
        "error": "invalid_client", "error_description": "Invalid client secret"}  # fmt: skip
    # Credentials in the body are accepted too.
    body_auth = token_post(
        http, auth=None, client_id="earworm-demo-client", client_secret="earworm-demo-secret", **form
    )
    assert body_auth.status_code == 200


def test_grant_type_errors(http):
    missing = token_post(http)
    assert missing.status_code == 400
    assert missing.json() == {"error": "unsupported_grant_type", "error_description": "grant_type parameter is missing"}
    wrong = token_post(http, grant_type="password")
    assert wrong.json()["error"] == "unsupported_grant_type"
    no_code = token_post(http, grant_type="authorization_code", redirect_uri=REDIRECT)
    assert no_code.json()["error"] == "invalid_request"
    no_refresh = token_post(http, grant_type="refresh_token")
    assert no_refresh.json()["error"] == "invalid_request"
    unknown = token_post(http, grant_type="refresh_token", refresh_token="AQnope")
    assert unknown.json() == {"error": "invalid_grant", "error_description": "Invalid refresh token"}


def test_pkce(http, users):
    verifier, challenge = pkce_pair()
    params = {"code_challenge_method": "S256", "code_challenge": challenge}
    code = code_from(authorize(http, users[0]["id"], **params))
    wrong = token_post(http, auth=None, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                       client_id="earworm-demo-client", code_verifier=pkce_pair()[0])  # fmt: skip
    assert wrong.json() == {"error": "invalid_grant", "error_description": "code_verifier was incorrect"}
    code = code_from(authorize(http, users[0]["id"], show_dialog="true", **params))
    ok = token_post(http, auth=None, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                    client_id="earworm-demo-client", code_verifier=verifier)  # fmt: skip
    assert ok.status_code == 200
    first = ok.json()["refresh_token"]
    # PKCE refresh tokens are single use: each refresh returns a new one and kills the old.
    ref = token_post(http, auth=None, grant_type="refresh_token", refresh_token=first, client_id="earworm-demo-client")
    assert ref.status_code == 200 and ref.json()["refresh_token"] != first
    again = token_post(http, auth=None, grant_type="refresh_token", refresh_token=first,
                       client_id="earworm-demo-client")  # fmt: skip
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("policy", ["rotate", "rotate_invalidate"])
def test_refresh_rotation_policies(emu, http, users, policy):
    emu.control.set_config(refresh_policy=policy)
    first = login(http, users[0]["id"])["refresh_token"]
    ref = token_post(http, grant_type="refresh_token", refresh_token=first)
    new = ref.json()["refresh_token"]
    assert new != first
    old_again = token_post(http, grant_type="refresh_token", refresh_token=first)
    if policy == "rotate":
        assert old_again.status_code == 200
    else:
        assert old_again.json() == {"error": "invalid_grant", "error_description": "Refresh token revoked"}
    assert token_post(http, grant_type="refresh_token", refresh_token=new).status_code == 200


def test_access_token_expires(emu, http, users):
    emu.control.set_config(access_token_ttl=60)
    tok = login(http, users[0]["id"])
    assert tok["expires_in"] == 60
    emu.control.advance_clock(61)
    resp = http.get("/v1/me", headers=bearer(tok))
    assert resp.status_code == 401
    assert resp.json() == {"error": {"status": 401, "message": "The access token expired"}}
    validate(resp.json(), "Unauthorized")


def test_refresh_token_expires_six_months_after_consent(emu, http, users):
    tok = login(http, users[0]["id"])
    emu.control.advance_clock(182 * 86400)
    assert token_post(http, grant_type="refresh_token", refresh_token=tok["refresh_token"]).status_code == 200
    emu.control.advance_clock(2 * 86400)  # refreshing did not extend the lifetime
    resp = token_post(http, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("kind", "description"),
    [("revoked_refresh", "Refresh token revoked"), ("expired_consent", "Refresh token expired")],
)
def test_refresh_faults(emu, http, users, kind, description):
    tok = login(http, users[0]["id"])
    emu.control.inject_fault(kind, endpoint="token")
    resp = token_post(http, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": description}
    # The grant stays dead: the fault models a real revocation/expiry, not a blip.
    assert token_post(http, grant_type="refresh_token", refresh_token=tok["refresh_token"]).status_code == 400
