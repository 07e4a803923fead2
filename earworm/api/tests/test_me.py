"""The API foundation: authentication, the error envelope and GET /api/v1/me (DESIGN.md §4, SECURITY.md §8)."""

import hashlib

import pytest
from django.db import connection

from earworm.accounts.models import ApiToken
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.api.auth import api_token_create

pytestmark = pytest.mark.django_db

ME_FIELDS = {"spotify_id", "display_name", "status", "last_synced_at", "paused_until", "play_count"}


def test_unauthenticated_calls_get_401_json_not_a_redirect(client):
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == {
        "message": "Authentication required: log in, or send Authorization: Bearer <token>.",
        "extra": {},
    }


def test_me_with_the_session_has_the_contract_shape(auth_client, spotify_account):
    response = auth_client.get("/api/v1/me")

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= ME_FIELDS
    assert body["spotify_id"] == spotify_account.spotify_id
    assert body["status"] == "active"
    assert body["play_count"] == 0


def test_me_with_a_personal_api_token(client, spotify_account):
    _, raw = api_token_create(user=spotify_account.user, name="script")

    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200
    assert response.json()["spotify_id"] == spotify_account.spotify_id
    assert ApiToken.objects.get().last_used_at is not None


def test_each_user_sees_only_their_own_account(client):
    mine, theirs = SpotifyAccountFactory(), SpotifyAccountFactory()
    _, raw = api_token_create(user=mine.user, name="mine")

    body = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").json()

    assert body["spotify_id"] == mine.spotify_id != theirs.spotify_id


def test_the_database_holds_only_a_hash_of_the_token(spotify_account):
    _, raw = api_token_create(user=spotify_account.user, name="script")

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        row = " ".join(str(value) for value in cursor.fetchone())
    assert raw not in row
    assert hashlib.sha256(raw.encode()).hexdigest() in row
    assert raw.startswith("ew_") and len(raw) >= 43


def test_a_revoked_token_is_refused(client, spotify_account):
    token, raw = api_token_create(user=spotify_account.user, name="script")
    token.delete()

    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_a_token_in_the_query_string_is_refused(client, spotify_account):
    _, raw = api_token_create(user=spotify_account.user, name="script")

    assert client.get("/api/v1/me", {"token": raw, "access_token": raw}).status_code == 401


def test_a_user_without_a_spotify_account_gets_404_json(client, user):
    client.force_login(user)

    response = client.get("/api/v1/me")

    assert response.status_code == 404
    assert response.json()["message"] == "Not found."


def test_the_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")

    assert schema.status_code == 200
    assert "/api/v1/me" in schema.json()["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_play_count_counts_every_play_including_imported_ones(auth_client, spotify_account):
    from datetime import UTC, datetime, timedelta

    from earworm.history.services.plays import NewPlay, history_plays_store
    from earworm.history.tests.factories import TrackFactory
    from earworm.stats.services import stats_rollups_refresh

    track = TrackFactory()
    start = datetime(2019, 12, 31, 23, 0, tzinfo=UTC)
    plays = [NewPlay(track.pk, start + timedelta(hours=i), 200_000, "export") for i in range(5)]
    history_plays_store(user_id=spotify_account.user_id, plays=plays)
    stats_rollups_refresh(user_id=spotify_account.user_id)

    assert auth_client.get("/api/v1/me").json()["play_count"] == 5
