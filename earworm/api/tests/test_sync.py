"""POST /api/v1/sync: 202 and a queued sync; CSRF with the session, none with a bearer token; rate-limited."""

import pytest
from django.core.cache import cache
from django.test import Client

from earworm.accounts.models import SpotifyAccount
from earworm.api.auth import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def queued(mocker):
    return mocker.patch("earworm.api.sync.history_sync_request")


def test_sync_with_bearer_token_is_accepted(client, spotify_account, queued):
    _, raw = api_token_create(user=spotify_account.user, name="script")

    response = client.post("/api/v1/sync", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 202
    assert response.json() == {"status": "queued", "paused_until": None}
    queued.assert_called_once_with(account_id=spotify_account.pk)


def test_sync_with_session_but_without_csrf_token_is_refused(spotify_account, queued):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(spotify_account.user)

    assert browser.post("/api/v1/sync").status_code == 403
    queued.assert_not_called()


def test_sync_with_session_and_csrf_token(spotify_account, queued):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(spotify_account.user)
    browser.get("/")
    token = browser.cookies["csrftoken"].value

    assert browser.post("/api/v1/sync", HTTP_X_CSRFTOKEN=token).status_code == 202


def test_sync_is_rate_limited_per_user(auth_client, queued):
    assert auth_client.post("/api/v1/sync").status_code == 202
    second = auth_client.post("/api/v1/sync")

    assert second.status_code == 429
    assert second.json()["extra"] == {"code": "sync_too_soon"}
    assert queued.call_count == 1


def test_sync_of_an_account_needing_relogin_is_409(auth_client, spotify_account, queued):
    spotify_account.status = SpotifyAccount.Status.NEEDS_RELOGIN
    spotify_account.save()

    response = auth_client.post("/api/v1/sync")

    assert response.status_code == 409
    assert response.json()["extra"]["code"] == "spotify_relogin_required"


def test_sync_queues_the_task_after_commit(auth_client, spotify_account, mocker, django_capture_on_commit_callbacks):
    task = mocker.patch("earworm.history.tasks.history_sync")
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.post("/api/v1/sync").status_code == 202
    task.assert_called_once_with(spotify_account.pk, True)
