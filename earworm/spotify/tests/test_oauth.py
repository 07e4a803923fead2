"""SpotifyOAuth against a strict mock token endpoint (SECURITY.md OA-1..OA-4, OA-7, FZ-2, LG-1, T-A1, T-C2)."""

import base64
import hashlib
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from earworm.spotify.errors import (
    SpotifyAuthError,
    SpotifyBadRequest,
    SpotifyBadResponse,
    SpotifyError,
    SpotifyInvalidClient,
    SpotifyInvalidGrant,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from earworm.spotify.oauth import SpotifyOAuth
from earworm.spotify.tests.conftest import (
    ACCOUNTS_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    SCOPES,
    SpotifyRouter,
)

MakeOAuth = Callable[..., SpotifyOAuth]
Payload = Callable[[str], Any]

TOKEN = "/api/token"
VERIFIER = "v" * 43 + "-._~0123"


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)


def basic_credentials(request: httpx.Request) -> str:
    scheme, _, value = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(value).decode()


# --- the authorize URL (OA-1..OA-4, T-A1) ------------------------------------------------------------------------


def test_authorization_request_builds_a_pkce_code_flow_url(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter
) -> None:
    auth = make_oauth().authorization_request()

    parts = urlsplit(auth.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ACCOUNTS_URL}/authorize"
    params = parse_qs(parts.query, strict_parsing=True)
    assert all(len(values) == 1 for values in params.values())
    query = {key: values[0] for key, values in params.items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == " ".join(SCOPES)
    assert query["state"] == auth.state
    assert query["code_challenge_method"] == "S256"
    expected = base64.urlsafe_b64encode(hashlib.sha256(auth.code_verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode()
    assert "show_dialog" not in query
    assert "code_verifier" not in query and auth.code_verifier not in auth.url
    assert CLIENT_SECRET not in auth.url
    assert spotify_router.requests == []


def test_state_and_verifier_are_long_random_and_fresh_each_time(make_oauth: MakeOAuth) -> None:
    """OA-2: state ≥ 128 bits; OA-3: verifier 43-128 unreserved characters with ≥ 256 bits."""
    oauth = make_oauth()
    first, second = oauth.authorization_request(), oauth.authorization_request()

    for auth in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9]{22,}", auth.state)  # 22 base-62 characters ≈ 131 bits
        assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", auth.code_verifier)
        assert len(auth.code_verifier) >= 43
    assert first.state != second.state
    assert first.code_verifier != second.code_verifier


def test_show_dialog_asks_spotify_for_the_consent_screen(make_oauth: MakeOAuth) -> None:
    auth = make_oauth().authorization_request(show_dialog=True)
    assert parse_qs(urlsplit(auth.url).query)["show_dialog"] == ["true"]


def test_the_redirect_uri_is_exactly_the_configured_one(make_oauth: MakeOAuth) -> None:
    """OA-4: Spotify compares byte for byte, trailing slash and case included."""
    odd = "https://Earworm.example:8443/api/callback/?x=1"
    auth = make_oauth(redirect_uri=odd).authorization_request()
    assert parse_qs(urlsplit(auth.url).query)["redirect_uri"] == [odd]


def test_the_authorization_request_repr_hides_state_and_verifier(make_oauth: MakeOAuth) -> None:
    auth = make_oauth().authorization_request()
    assert auth.code_verifier not in repr(auth)
    assert auth.state not in repr(auth).replace(auth.url, "")


# --- code exchange and refresh -----------------------------------------------------------------------------------


def test_exchange_code_posts_basic_auth_verifier_and_redirect_uri(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=spotify_payload("token")))

    token = make_oauth().exchange_code(code="AQ-code-from-callback", code_verifier=VERIFIER)

    assert token.access_token == "BQD-test-access-token"
    assert token.refresh_token == "AQB-test-refresh-token"
    assert token.expires_in == 3600 and token.scope == "user-read-recently-played"
    (request,) = spotify_router.requests
    assert str(request.url) == f"{ACCOUNTS_URL}/api/token"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert basic_credentials(request) == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert form(request) == {
        "grant_type": ["authorization_code"],
        "code": ["AQ-code-from-callback"],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [VERIFIER],
    }


def test_the_verifier_from_the_authorize_step_completes_the_exchange(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    """T-A1: the token POST carries the verifier whose S256 challenge went out in the authorize URL."""
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=spotify_payload("token")))
    oauth = make_oauth()
    auth = oauth.authorization_request()

    oauth.exchange_code(code="c", code_verifier=auth.code_verifier)

    sent = form(spotify_router.requests[0])["code_verifier"][0]
    challenge = parse_qs(urlsplit(auth.url).query)["code_challenge"][0]
    assert base64.urlsafe_b64encode(hashlib.sha256(sent.encode()).digest()).rstrip(b"=").decode() == challenge


def test_exchange_code_warns_when_spotify_grants_other_scopes(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, spotify_payload: Payload, caplog: pytest.LogCaptureFixture
) -> None:
    """OA-7: record the granted scope and flag a difference."""
    payload = spotify_payload("token") | {"scope": "user-read-recently-played user-top-read"}
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=payload))

    with caplog.at_level(logging.WARNING, logger="earworm.spotify"):
        token = make_oauth().exchange_code(code="c", code_verifier=VERIFIER)

    assert token.scope == "user-read-recently-played user-top-read"
    assert "user-top-read" in caplog.text


@pytest.mark.parametrize(
    ("payload", "rotated"),
    [("token_refresh_rotated", "AQB-test-refresh-token-2"), ("token_refresh_kept", None)],
)
def test_refresh_returns_the_new_refresh_token_only_when_spotify_sends_one(
    make_oauth: MakeOAuth,
    spotify_router: SpotifyRouter,
    spotify_payload: Payload,
    payload: str,
    rotated: str | None,
) -> None:
    """A refresh answer may omit `refresh_token`: the caller keeps the stored one (T-A5)."""
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=spotify_payload(payload)))

    token = make_oauth().refresh(refresh_token="AQB-stored-refresh-token")

    assert token.refresh_token == rotated
    (request,) = spotify_router.requests
    assert basic_credentials(request) == f"{CLIENT_ID}:{CLIENT_SECRET}"
    assert form(request) == {"grant_type": ["refresh_token"], "refresh_token": ["AQB-stored-refresh-token"]}


@pytest.mark.parametrize(
    "call",
    [
        lambda o: o.exchange_code(code="", code_verifier=VERIFIER),
        lambda o: o.exchange_code(code="c", code_verifier="short"),
        lambda o: o.exchange_code(code="c", code_verifier="x" * 129),
        lambda o: o.exchange_code(code="c", code_verifier="v" * 42 + "/"),
        lambda o: o.refresh(refresh_token=""),
    ],
)
def test_bad_arguments_raise_value_error_without_a_request(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, call: Callable[[SpotifyOAuth], object]
) -> None:
    with pytest.raises(ValueError):
        call(make_oauth())
    assert spotify_router.requests == []


# --- token-endpoint failures (OA-7, FZ-2, T-C2) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}, SpotifyInvalidGrant),
        (400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}, SpotifyInvalidGrant),
        (200, {"error": "invalid_grant"}, SpotifyInvalidGrant),  # an error dressed as success
        (400, {"error": "invalid_client", "error_description": "Invalid client secret"}, SpotifyInvalidClient),
        (401, {"error": "invalid_client", "error_description": "Invalid client"}, SpotifyInvalidClient),
        (401, None, SpotifyInvalidClient),
        (400, {"error": "invalid_request", "error_description": "code_verifier was incorrect"}, SpotifyBadRequest),
        (400, {"error": "unsupported_grant_type"}, SpotifyBadRequest),
        (200, {"error": "server_error"}, SpotifyBadRequest),
        (400, None, SpotifyBadRequest),
        (400, {"error": {"status": 400, "message": "Bad request"}}, SpotifyBadRequest),
        (500, {"error": "server_error"}, SpotifyUnavailable),
        (502, None, SpotifyUnavailable),
        (503, None, SpotifyUnavailable),
        (302, None, SpotifyBadResponse),
    ],
)
def test_token_endpoint_errors_are_typed(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, status: int, body: Any, expected: type[SpotifyError]
) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="<html/>")
    spotify_router.add("POST", TOKEN, response)

    with pytest.raises(expected) as caught:
        make_oauth().refresh(refresh_token="AQB-stored")

    assert type(caught.value) is expected
    assert len(spotify_router.requests) == 1  # Authlib neither retries nor refreshes by itself


def test_invalid_grant_is_a_permanent_auth_error(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(400, json={"error": "invalid_grant"}))

    with pytest.raises(SpotifyAuthError) as caught:
        make_oauth().refresh(refresh_token="AQB-stored")
    assert caught.value.permanent is True


def test_unknown_oauth_error_codes_are_not_echoed(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(400, json={"error": "<script>alert(1)</script>"}))

    with pytest.raises(SpotifyBadRequest) as caught:
        make_oauth().refresh(refresh_token="AQB-stored")
    assert caught.value.error_code is None
    assert "script" not in caught.value.message


def test_invalid_client_is_logged_loudly(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, caplog: pytest.LogCaptureFixture
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(400, json={"error": "invalid_client"}))

    with caplog.at_level(logging.WARNING, logger="earworm.spotify"), pytest.raises(SpotifyInvalidClient):
        make_oauth().refresh(refresh_token="AQB-stored")
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert CLIENT_SECRET not in caplog.text


def test_429_on_the_token_endpoint_is_rate_limited(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))

    with pytest.raises(SpotifyRateLimited) as caught:
        make_oauth().refresh(refresh_token="AQB-stored")
    assert caught.value.retry_after == 7.0


def test_quota_429_on_the_token_endpoint_pauses(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add(
        "POST", TOKEN, httpx.Response(429, headers={"Retry-After": "3600"}, json=spotify_payload("error_429_quota"))
    )

    with pytest.raises(SpotifyQuotaExceeded) as caught:
        make_oauth().refresh(refresh_token="AQB-stored")
    assert caught.value.retry_after == 3600.0


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("timed out"), httpx.ConnectError("refused")],
)
def test_network_failures_on_the_token_endpoint_are_unavailable(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, exc: Exception
) -> None:
    spotify_router.add("POST", TOKEN, exc)

    with pytest.raises(SpotifyUnavailable):
        make_oauth().exchange_code(code="c", code_verifier=VERIFIER)


@pytest.mark.parametrize(
    "content",
    [
        b"<html><body>Gateway</body></html>",
        b"",
        b'{"access_token": "BQD-cut',
        b'["access_token"]',
        b'{"access_token": "x", "token_type": "Bearer", "expires_in": NaN}',
        b'{"access_token": "x", "token_type": "Bearer", "expires_in": Infinity}',
    ],
)
def test_a_token_answer_that_is_not_a_json_object_is_a_bad_response(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, content: bytes
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, content=content))

    with pytest.raises(SpotifyBadResponse):
        make_oauth().refresh(refresh_token="AQB-stored")


GOOD = {"access_token": "BQD-x", "token_type": "Bearer", "expires_in": 3600}


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer", "expires_in": 3600},
        GOOD | {"access_token": ""},
        GOOD | {"access_token": None},
        GOOD | {"access_token": 12345},
        {"access_token": "BQD-x", "expires_in": 3600},
        GOOD | {"token_type": "mac"},
        GOOD | {"token_type": None},
        GOOD | {"expires_in": "-1"},
        GOOD | {"expires_in": -1},
        GOOD | {"expires_in": None},
        GOOD | {"expires_in": "abc"},
        GOOD | {"expires_in": 3600.5},
        GOOD | {"expires_in": "1e309"},
        {"access_token": "BQD-x", "token_type": "Bearer"},
        GOOD | {"scope": ["user-read-recently-played"]},
        GOOD | {"refresh_token": 7},
    ],
)
def test_a_token_answer_with_bad_fields_is_a_bad_response(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, body: dict[str, Any]
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=body))

    with pytest.raises(SpotifyBadResponse):
        make_oauth().refresh(refresh_token="AQB-stored")


def test_expires_in_of_1e309_is_rejected(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    """Python's json reads the number 1e309 as infinity."""
    content = b'{"access_token": "BQD-x", "token_type": "Bearer", "expires_in": 1e309}'
    spotify_router.add("POST", TOKEN, httpx.Response(200, content=content))

    with pytest.raises(SpotifyBadResponse):
        make_oauth().refresh(refresh_token="AQB-stored")


@pytest.mark.parametrize(("expires_in", "expected"), [("3600", 3600), (3600.0, 3600), (0, 0)])
def test_expires_in_as_a_numeric_string_or_whole_float_is_accepted(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, expires_in: Any, expected: int
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=GOOD | {"expires_in": expires_in}))

    assert make_oauth().refresh(refresh_token="AQB-stored").expires_in == expected


def test_token_type_is_case_insensitive(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=GOOD | {"token_type": "bearer"}))

    assert make_oauth().refresh(refresh_token="AQB-stored").token_type == "bearer"


def test_an_oversize_token_answer_is_refused(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    def endless() -> Iterator[bytes]:
        yield b'{"access_token": "'
        while True:
            yield b"x" * 65536

    spotify_router.add("POST", TOKEN, httpx.Response(200, content=endless()))

    with pytest.raises(SpotifyBadResponse, match="too large"):
        make_oauth().refresh(refresh_token="AQB-stored")


def test_a_declared_oversize_token_answer_is_refused(make_oauth: MakeOAuth, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, content=b" " * 2048))

    with pytest.raises(SpotifyBadResponse, match="too large"):
        make_oauth(max_response_bytes=1024).refresh(refresh_token="AQB-stored")


# --- secrets stay out of logs and error reports (LG-1) -----------------------------------------------------------


def test_failure_logs_redact_tokens_in_the_body(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"error": "invalid_request", "refresh_token": "AQB-echoed-secret", "access_token": "BQD-echoed"}
    spotify_router.add("POST", TOKEN, httpx.Response(400, json=body))

    with caplog.at_level(logging.WARNING, logger="earworm.spotify"), pytest.raises(SpotifyBadRequest):
        make_oauth().refresh(refresh_token="AQB-stored-secret")

    assert "invalid_request" in caplog.text
    assert "secret" not in caplog.text and "BQD-echoed" not in caplog.text


def test_shape_errors_are_logged_without_values(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, caplog: pytest.LogCaptureFixture
) -> None:
    spotify_router.add("POST", TOKEN, httpx.Response(200, json=GOOD | {"access_token": "BQD-leak", "expires_in": -1}))

    with caplog.at_level(logging.WARNING, logger="earworm.spotify"), pytest.raises(SpotifyBadResponse):
        make_oauth().refresh(refresh_token="AQB-stored")

    assert "expires_in" in caplog.text
    assert "BQD-leak" not in caplog.text


def test_technical_error_reports_hide_the_refresh_token_and_client_secret(
    make_oauth: MakeOAuth, spotify_router: SpotifyRouter, settings: Any
) -> None:
    """LG-1: raise inside the refresh; Django's 500 report must not show the token or the secret."""
    from django.views.debug import ExceptionReporter

    settings.DEBUG = False
    refresh_token = "AQB-" + "stored-refresh-token-value"
    spotify_router.add("POST", TOKEN, RuntimeError("unexpected"))
    oauth = make_oauth()

    try:
        oauth.refresh(refresh_token=refresh_token)
    except RuntimeError:
        exc_type, exc_value, tb = sys.exc_info()
    else:  # pragma: no cover
        pytest.fail("expected the RuntimeError to escape")

    # Start below this test's frame, which holds the token by construction.
    assert tb is not None
    report = ExceptionReporter(None, exc_type, exc_value, tb.tb_next).get_traceback_html()
    assert "_token_request" in report
    assert refresh_token not in report
    assert CLIENT_SECRET not in report
    assert base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode() not in report


def test_the_oauth_repr_shows_no_secret(make_oauth: MakeOAuth) -> None:
    assert CLIENT_SECRET not in repr(make_oauth())
