"""Statistics, genres and export over the JSON API: contract shapes, ranges, and one user's data only."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.api.auth import api_token_create
from earworm.catalog.models import Track
from earworm.stats.services import stats_rollups_refresh
from earworm.stats.tests.factories import make_catalog, make_play

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/stats/top-artists",
    "/api/v1/stats/top-tracks",
    "/api/v1/stats/top-albums",
    "/api/v1/stats/top-genres",
    "/api/v1/stats/summary",
    "/api/v1/stats/heatmap",
    "/api/v1/stats/timeline",
    "/api/v1/genres",
]


@pytest.fixture(autouse=True)
def _fresh_stats_cache():
    cache.clear()


@pytest.fixture
def two_listeners(db):
    """Alice played tracks 0–2, Bob tracks 3–5; both in the last days."""
    cache.clear()
    tracks = make_catalog(tracks=6)
    alice, bob = SpotifyAccountFactory().user, SpotifyAccountFactory().user
    now = timezone.now()
    for n in range(9):
        make_play(user=alice, track=tracks[n % 3], played_at=now - timedelta(hours=n * 5), ms_played=60_000)
    make_play(user=bob, track=tracks[4], played_at=now - timedelta(hours=1))
    make_play(user=bob, track=tracks[3], played_at=now - timedelta(days=400), ms_played=1)
    for user in (alice, bob):
        stats_rollups_refresh(user_id=user.pk)
    return alice, bob, tracks


def _bearer(user) -> dict:
    _, raw = api_token_create(user=user, name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.parametrize("url", [*ENDPOINTS, "/api/v1/export"])
def test_every_stats_endpoint_needs_authentication(client, url):
    assert client.get(url).status_code == 401


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_user_sees_only_their_own_statistics(client, two_listeners, url):
    alice, bob, tracks = two_listeners
    alice_body = client.get(url + "?range=all", **_bearer(alice)).json()
    bob_response = client.get(url + "?range=all", **_bearer(bob))
    assert bob_response.status_code == 200
    assert bob_response["Cache-Control"] == "no-store"
    text = json.dumps(bob_response.json())
    for track in tracks[:3]:
        assert track.name not in text
    assert json.dumps(alice_body) != text


def test_top_tracks_contract_shape_and_order(client, two_listeners):
    alice, _, tracks = two_listeners
    body = client.get("/api/v1/stats/top-tracks?range=4w", **_bearer(alice)).json()
    assert body["range"]["key"] == "4w"
    assert [item["name"] for item in body["items"]] == [t.name for t in tracks[:3]]
    first = body["items"][0]
    assert {"spotify_id", "name", "album", "artists", "plays", "ms_played"} <= set(first)
    assert first["plays"] == 3
    assert first["ms_played"] == 180_000


def test_top_artists_albums_genres_have_plays_and_ms_played(client, two_listeners):
    alice, _, _ = two_listeners
    for kind in ("artists", "albums", "genres"):
        items = client.get(f"/api/v1/stats/top-{kind}?range=12m", **_bearer(alice)).json()["items"]
        assert items, kind
        assert all({"name", "plays", "ms_played"} <= set(item) for item in items)


def test_ranges_select_local_days(client, two_listeners):
    _, bob, _ = two_listeners
    headers = _bearer(bob)
    recent = client.get("/api/v1/stats/summary?range=4w", **headers).json()
    assert recent["plays"] == 1
    everything = client.get("/api/v1/stats/summary?range=all", **headers).json()
    assert everything["plays"] == 2
    year = (timezone.now() - timedelta(days=400)).year
    assert client.get(f"/api/v1/stats/summary?range={year}", **headers).json()["plays"] >= 1
    day = (timezone.now() - timedelta(days=400)).date()
    custom = client.get(f"/api/v1/stats/summary?range={day}..{day + timedelta(days=1)}", **headers).json()
    assert custom["plays"] == 1


@pytest.mark.parametrize("bad", ["5w", "1999", "2024-02-30..2024-03-01", "2024-03-01..2024-01-01", "x" * 30])
def test_a_bad_range_is_a_400_envelope(client, two_listeners, bad):
    alice, _, _ = two_listeners
    response = client.get(f"/api/v1/stats/top-artists?range={bad}", **_bearer(alice))
    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}


def test_limit_is_bounded(client, two_listeners):
    alice, _, _ = two_listeners
    assert client.get("/api/v1/stats/top-tracks?limit=1000", **_bearer(alice)).status_code == 400


def test_genres_lists_artists_and_plays_without_genre(client, two_listeners):
    alice, _, _ = two_listeners
    body = client.get("/api/v1/genres?range=all", **_bearer(alice)).json()
    assert {"items", "without_genre", "range"} <= set(body)
    assert body["without_genre"]["plays"] > 0  # Artist 0 has no genre
    assert all(item["artists"] for item in body["items"])


def test_export_json_streams_only_the_callers_plays(client, two_listeners):
    _alice, bob, tracks = two_listeners
    response = client.get("/api/v1/export?format=json", **_bearer(bob))
    assert response.status_code == 200
    assert response.streaming
    assert response["Cache-Control"] == "no-store"
    body = json.loads(b"".join(response.streaming_content))
    assert len(body["items"]) == 2
    assert {item["track"]["name"] for item in body["items"]} == {tracks[3].name, tracks[4].name}
    item = body["items"][0]
    assert {"played_at", "ms_played", "source", "track"} <= set(item)
    assert item["played_at"].endswith("Z")
    assert {"spotify_id", "name", "album", "artists"} <= set(item["track"])


def test_export_pages_through_every_play(client, two_listeners, monkeypatch):
    alice, _, _ = two_listeners
    monkeypatch.setattr("earworm.stats.exporting.EXPORT_PAGE", 2)
    response = client.get("/api/v1/export?format=json", **_bearer(alice))
    items = json.loads(b"".join(response.streaming_content))["items"]
    assert len(items) == 9
    assert [i["played_at"] for i in items] == sorted(i["played_at"] for i in items)


def test_export_csv_neutralises_formulas(client, user):
    cache.clear()
    track = make_catalog(tracks=1)[0]
    Track.objects.filter(pk=track.pk).update(name='=HYPERLINK("http://evil.example","x")')
    make_play(user=user, track=track, played_at=datetime(2024, 1, 1, tzinfo=UTC), ms_played=5)
    response = client.get("/api/v1/export?format=csv", **_bearer(user))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["played_at", "ms_played", "source"]
    assert rows[1][5] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[1][1] == "5"


def test_export_is_rate_limited(client, user):
    cache.clear()
    headers = _bearer(user)
    statuses = [client.get("/api/v1/export", **headers).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5
    assert statuses[-1] == 429


def test_export_token_in_query_string_is_refused(client, user):
    _, raw = api_token_create(user=user, name="t")
    assert client.get(f"/api/v1/export?token={raw}").status_code == 401


def test_imports_lists_only_the_callers_jobs(client, two_listeners):
    from earworm.history.models import ImportJob

    alice, bob, _ = two_listeners
    ImportJob.objects.create(user=alice, original_name="alice.zip", status="done", plays_added=3)
    ImportJob.objects.create(user=bob, original_name="bob.zip")
    body = client.get("/api/v1/imports", **_bearer(bob)).json()
    assert [item["original_name"] for item in body["items"]] == ["bob.zip"]
    assert {"status", "records_total", "plays_added", "skipped", "errors"} <= set(body["items"][0])
    assert client.get("/api/v1/imports").status_code == 401
