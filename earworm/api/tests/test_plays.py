"""GET /api/v1/plays: the DESIGN.md §4 shape, keyset pages, one user's data only."""

from datetime import UTC, datetime, timedelta

import pytest

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.history.models import Play

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def track() -> Track:
    album = Album.objects.create(key="al1", spotify_id="al1", name="Album")
    track = Track.objects.create(key="tr1", spotify_id="tr1", name="Song", album=album, duration_ms=200_000)
    for position, name in enumerate(["First", "Second"]):
        artist = Artist.objects.create(key=f"ar{position}", spotify_id=f"ar{position}", name=name)
        TrackArtist.objects.create(track=track, artist=artist, position=position)
    return track


def _plays(user, track, n):
    Play.objects.bulk_create(
        Play(user=user, track=track, played_at=T0 + timedelta(minutes=5 * i), source="api") for i in range(n)
    )


def test_plays_have_the_contract_shape(auth_client, spotify_account, track):
    _plays(spotify_account.user, track, 1)
    Play.objects.create(user=spotify_account.user, track=track, played_at=T0 - timedelta(days=1), ms_played=1234,
                        source="export")  # fmt: skip

    body = auth_client.get("/api/v1/plays").json()

    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    newest, oldest = body["items"]
    assert newest == {
        "played_at": "2026-03-01T12:00:00Z",
        "ms_played": None,
        "source": "api",
        "track": {
            "spotify_id": "tr1",
            "name": "Song",
            "album": {"spotify_id": "al1", "name": "Album"},
            "artists": [{"spotify_id": "ar0", "name": "First"}, {"spotify_id": "ar1", "name": "Second"}],
        },
    }
    assert (oldest["source"], oldest["ms_played"]) == ("export", 1234)


def test_plays_pages_with_cursor_newest_first(auth_client, spotify_account, track):
    _plays(spotify_account.user, track, 5)

    first = auth_client.get("/api/v1/plays", {"limit": 2}).json()
    second = auth_client.get("/api/v1/plays", {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = auth_client.get("/api/v1/plays", {"limit": 2, "cursor": second["next_cursor"]}).json()

    times = [item["played_at"] for page in (first, second, third) for item in page["items"]]
    assert times == sorted(times, reverse=True) and len(set(times)) == 5
    assert third["next_cursor"] is None


def test_plays_since_and_until(auth_client, spotify_account, track):
    _plays(spotify_account.user, track, 5)

    body = auth_client.get("/api/v1/plays", {"since": "2026-03-01T12:05:00Z", "until": "2026-03-01T12:15:00Z"}).json()

    assert [item["played_at"] for item in body["items"]] == ["2026-03-01T12:10:00Z", "2026-03-01T12:05:00Z"]


def test_plays_are_only_the_callers(auth_client, spotify_account, track):
    other = SpotifyAccountFactory()
    _plays(other.user, track, 3)

    assert auth_client.get("/api/v1/plays").json()["items"] == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"since": "yesterday"}, {"cursor": "%%%"}])
def test_plays_bad_input_gives_400_envelope(auth_client, params):
    response = auth_client.get("/api/v1/plays", params)

    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}


def test_plays_needs_authentication(client):
    assert client.get("/api/v1/plays").status_code == 401
