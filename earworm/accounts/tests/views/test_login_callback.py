"""The OAuth login views, with Spotify replaced at the boundary (SECURITY.md §2, T-A1..T-A6, FZ-1)."""

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.views import PENDING_LOGINS_KEY, PENDING_LOGINS_MAX
from earworm.core.models import QuotaGate
from earworm.spotify.client import SpotifyClient
from earworm.spotify.errors import (
    SpotifyForbidden,
    SpotifyInvalidClient,
    SpotifyInvalidGrant,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from earworm.spotify.oauth import SpotifyOAuth
from earworm.spotify.types import TokenSet, UserProfile

pytestmark = pytest.mark.django_db

TOKENS = TokenSet(
    access_token="AQD-access",
    token_type="Bearer",
    expires_in=3600,
    refresh_token="AQB-refresh",
    scope="user-read-recently-played",
)
PROFILE = UserProfile(id="wizzler", display_name="Wizzler Ünïcode", account_id="acct-wizzler")


@pytest.fixture
def spotify(mocker):
    """Spotify's token endpoint and /v1/me, replaced at the boundary."""
    exchange = mocker.patch.object(SpotifyOAuth, "exchange_code", autospec=True, return_value=TOKENS)
    me = mocker.patch.object(SpotifyClient, "me", autospec=True, return_value=PROFILE)
    return type("Spotify", (), {"exchange": exchange, "me": me})


def _start_login(client, next_url: str | None = None) -> str:
    response = client.get("/api/login/", {"next": next_url} if next_url else {})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def test_login_redirects_to_spotify_with_state_pkce_and_the_configured_redirect_uri(client, settings):
    response = client.get("/api/login/", HTTP_HOST="127.0.0.1")

    location = urlsplit(response["Location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{settings.SPOTIFY_ACCOUNTS_URL}/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == settings.SPOTIFY_CLIENT_ID
    assert query["redirect_uri"] == settings.SPOTIFY_REDIRECT_URI
    assert query["scope"] == "user-read-recently-played"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 22
    pending = client.session[PENDING_LOGINS_KEY][query["state"]]
    verifier = pending["verifier"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == expected
    assert verifier not in response.content.decode() + response["Location"]


def test_the_redirect_uri_ignores_the_host_header(client, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "evil.example"]
    response = client.get("/api/login/", HTTP_HOST="evil.example")

    assert parse_qs(urlsplit(response["Location"]).query)["redirect_uri"] == [settings.SPOTIFY_REDIRECT_URI]


def test_an_unknown_host_is_refused(client):
    assert client.get("/api/login/", HTTP_HOST="attacker.example").status_code == 400


def test_a_browser_keeps_at_most_ten_pending_logins(client):
    states = [_start_login(client) for _ in range(PENDING_LOGINS_MAX + 2)]

    pending = client.session[PENDING_LOGINS_KEY]
    assert len(pending) == PENDING_LOGINS_MAX
    assert states[0] not in pending and states[-1] in pending


def test_a_successful_callback_links_the_account_logs_in_and_redirects_cleanly(client, spotify):
    state = _start_login(client, next_url="/plays/")
    verifier = client.session[PENDING_LOGINS_KEY][state]["verifier"]
    session_before = client.session.session_key

    response = client.get("/api/callback/", {"code": "the-code", "state": state})

    assert response.status_code == 302
    assert response["Location"] == "/plays/"
    assert response["Referrer-Policy"] == "no-referrer"
    assert spotify.exchange.call_args.kwargs == {"code": "the-code", "code_verifier": verifier}
    account = SpotifyAccount.objects.get()
    assert (account.spotify_id, account.account_id, account.display_name) == (
        "wizzler",
        "acct-wizzler",
        "Wizzler Ünïcode",
    )
    assert (account.access_token, account.refresh_token) == ("AQD-access", "AQB-refresh")
    assert account.consented_at is not None and account.expires_at is not None
    assert client.session["_auth_user_id"] == str(account.user_id)
    assert client.session.session_key != session_before
    home = client.get("/")
    assert "Wizzler Ünïcode" in home.content.decode()


def test_the_same_state_works_only_once(client, spotify):
    state = _start_login(client)
    client.get("/api/callback/", {"code": "c1", "state": state})

    replay = client.get("/api/callback/", {"code": "c2", "state": state})

    assert replay.status_code == 403
    assert spotify.exchange.call_count == 1


@pytest.mark.parametrize(
    "params",
    [{}, {"code": "c"}, {"state": "forged"}, {"code": "c", "state": "forged"}, {"error": "access_denied"}],
)
def test_a_missing_or_wrong_state_is_refused_without_asking_spotify(client, spotify, params):
    _start_login(client)

    response = client.get("/api/callback/", params)

    assert response.status_code == 403
    assert spotify.exchange.call_count == 0
    assert not SpotifyAccount.objects.exists()


def test_a_state_from_another_browser_is_refused(client, django_user_model, spotify):
    from django.test import Client

    state = _start_login(Client())

    assert client.get("/api/callback/", {"code": "c", "state": state}).status_code == 403
    assert spotify.exchange.call_count == 0


def test_an_expired_state_is_refused(client, spotify, mocker):
    state = _start_login(client)
    mocker.patch("earworm.accounts.views.time.time", return_value=time.time() + 601)

    assert client.get("/api/callback/", {"code": "c", "state": state}).status_code == 403


def test_cancelling_on_spotify_shows_a_friendly_message_and_creates_nothing(client, spotify):
    state = _start_login(client)

    response = client.get("/api/callback/", {"error": "access_denied", "state": state})

    assert response.status_code == 200
    assert "You cancelled the sign-in" in response.content.decode()
    assert spotify.exchange.call_count == 0
    assert not SpotifyAccount.objects.exists()


def test_other_spotify_errors_are_not_reflected_into_the_page(client, spotify):
    state = _start_login(client)

    response = client.get("/api/callback/", {"error": "<script>alert(1)</script>", "state": state})

    assert response.status_code == 400
    assert "<script>alert(1)" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    ["code=a&code=b&state=S", "code=a&state=S&state=S", "code=a&state=" + "x" * 3000, "code=%C3%A9&state=S"],
)
def test_malformed_callbacks_are_refused(client, spotify, query):
    response = client.get("/api/callback/?" + query)

    assert response.status_code == 400
    assert spotify.exchange.call_count == 0


def test_post_to_the_callback_is_not_allowed(client):
    assert client.post("/api/callback/").status_code == 405


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "javascript:alert(1)",
        "%2F%2Fevil.com",
        "http://testserver/x",
    ],
)
def test_next_only_accepts_same_site_paths(client, spotify, next_url):
    state = _start_login(client, next_url=next_url)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response["Location"] == "/"


def test_an_expired_code_says_so(client, spotify):
    spotify.exchange.side_effect = SpotifyInvalidGrant()
    state = _start_login(client)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response.status_code == 400
    assert "expired or was already used" in response.content.decode()


def test_invalid_client_is_an_operator_error_shown_on_healthz(client, spotify):
    spotify.exchange.side_effect = SpotifyInvalidClient()
    state = _start_login(client)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response.status_code == 502
    assert "misconfigured" in response.content.decode()
    assert QuotaGate.objects.get().config_error
    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert "client credentials" in health["spotify"][0]["configuration_error"]


def test_a_user_missing_from_the_allow_list_is_told_what_the_owner_must_do(client, spotify):
    spotify.me.side_effect = SpotifyForbidden("User not registered.", not_allowlisted=True)
    state = _start_login(client)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response.status_code == 403
    page = response.content.decode()
    assert "User not registered in the Developer Dashboard" in page
    assert "User Management" in page
    assert not SpotifyAccount.objects.exists()


def test_spotify_down_during_login_is_a_502_page(client, spotify):
    spotify.exchange.side_effect = SpotifyUnavailable("Spotify did not answer in time.")
    state = _start_login(client)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response.status_code == 502
    assert "Spotify is not answering; try again in a minute" in response.content.decode()


def test_rate_limited_during_login_is_a_503_with_retry_after(client, spotify):
    spotify.me.side_effect = SpotifyRateLimited(7.2)
    state = _start_login(client)

    response = client.get("/api/callback/", {"code": "c", "state": state})

    assert response.status_code == 503
    assert response["Retry-After"] == "8"


def test_logging_in_again_keeps_the_stored_refresh_token_when_spotify_sends_none(client, spotify, spotify_account):
    spotify.me.return_value = UserProfile(id=spotify_account.spotify_id, account_id=spotify_account.account_id)
    spotify.exchange.return_value = TOKENS.model_copy(update={"refresh_token": None})
    old_refresh = spotify_account.refresh_token
    SpotifyAccount.objects.filter(pk=spotify_account.pk).update(status="needs_relogin", status_reason="expired")
    state = _start_login(client)

    client.get("/api/callback/", {"code": "c", "state": state})

    account = SpotifyAccount.objects.get()
    assert account.refresh_token == old_refresh
    assert account.status == "active" and account.status_reason == ""


def test_logout_is_post_only(auth_client):
    assert auth_client.get("/api/logout/").status_code == 405
    assert auth_client.post("/api/logout/").status_code == 302
    assert "_auth_user_id" not in auth_client.session


def test_needs_relogin_shows_a_banner_with_a_button_on_every_page(auth_client, spotify_account):
    SpotifyAccount.objects.filter(pk=spotify_account.pk).update(
        status="needs_relogin", status_reason="Spotify no longer accepts Earworm's login."
    )

    page = auth_client.get("/").content.decode()

    assert "Earworm has stopped syncing your plays." in page
    assert "Log in with Spotify again" in page
