from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.keys import name_key
from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.catalog.services import catalog_enrich
from earworm.history.models import Play
from earworm.history.tests.conftest import track_json
from earworm.history.tests.factories import at

pytestmark = pytest.mark.django_db


def artist_json(spotify_id: str, genres: list[str]) -> dict:
    return {"id": spotify_id, "name": f"Real {spotify_id}", "genres": genres, "images": [{"url": "https://i/x"}]}


@pytest.fixture
def account():
    return SpotifyAccountFactory()


def test_artists_get_genres_one_request_each(fake_spotify, account):
    Artist.objects.create(key="ar1", spotify_id="ar1", name="One")
    Artist.objects.create(key="ar2", spotify_id="ar2", name="Two")
    Artist.objects.create(key=name_key("Nobody"), name="Nobody")  # no Spotify id: cannot be asked
    fake_spotify.queue("/artists/ar1", artist_json("ar1", ["indie pop", "shoegaze"]))
    fake_spotify.queue("/artists/ar2", artist_json("ar2", []))

    result = catalog_enrich(max_requests=10)

    assert (result.requests, result.artists_enriched, result.genres_linked, result.artists_left) == (2, 2, 2, 0)
    one = Artist.objects.get(key="ar1")
    assert sorted(one.genres.values_list("name", flat=True)) == ["indie pop", "shoegaze"]
    assert one.image_url == "https://i/x" and one.metadata_fetched_at is not None
    assert Artist.objects.get(key="ar2").metadata_fetched_at is not None  # empty genres are an answer
    assert catalog_enrich(max_requests=10).requests == 0


def test_unknown_items_are_marked_and_never_asked_again(fake_spotify, account):
    Artist.objects.create(key="ar404", spotify_id="ar404", name="Gone")
    fake_spotify.queue("/artists/ar404", httpx.Response(404, json={"error": {"status": 404, "message": "nf"}}))

    assert catalog_enrich(max_requests=10).not_found == 1
    assert Artist.objects.get().not_found
    assert catalog_enrich(max_requests=10).requests == 0


def test_the_request_cap_holds(fake_spotify, account):
    for n in range(5):
        Artist.objects.create(key=f"ar{n}", spotify_id=f"ar{n}", name=str(n))
        fake_spotify.queue(f"/artists/ar{n}", artist_json(f"ar{n}", ["rock"]))

    result = catalog_enrich(max_requests=3)

    assert (result.requests, result.artists_enriched, result.artists_left) == (3, 3, 2)


def test_batch_endpoints_when_allowed(fake_spotify, account, settings):
    settings.SPOTIFY_BATCH_ENDPOINTS = True
    for n in range(3):
        Artist.objects.create(key=f"ar{n}", spotify_id=f"ar{n}", name=str(n))
    fake_spotify.queue("/artists", {"artists": [artist_json("ar0", ["a"]), None, artist_json("ar2", ["b"])]})

    result = catalog_enrich(max_requests=5)

    assert (result.requests, result.artists_enriched, result.not_found) == (1, 2, 1)
    assert "ids=ar0%2Car1%2Car2" in str(fake_spotify.requests[0].url)


def test_a_rate_limit_keeps_what_was_fetched(fake_spotify, account):
    for n in range(3):
        Artist.objects.create(key=f"ar{n}", spotify_id=f"ar{n}", name=str(n))
    fake_spotify.queue("/artists/ar0", artist_json("ar0", ["a"]))
    fake_spotify.queue("/artists/ar1", httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {}}))

    result = catalog_enrich(max_requests=10)

    assert result.artists_enriched == 1 and "slow down" in result.stopped_reason
    assert Artist.objects.filter(metadata_fetched_at__isnull=False).count() == 1


def test_imported_tracks_get_real_album_and_artists_and_provisional_rows_go(fake_spotify, account):
    """An export gives a track id with names only; enrichment links the real rows and drops the provisional ones."""
    real = track_json(7)
    provisional_artist = Artist.objects.create(key=name_key("Artist 7"), name="Artist 7")
    provisional_album = Album.objects.create(key=name_key("Artist 7", "Album 3"), name="Album 3")
    track = Track.objects.create(key=real["id"], spotify_id=real["id"], name="Track 7", album=provisional_album)
    TrackArtist.objects.create(track=track, artist=provisional_artist, position=0)
    cold = Track.objects.create(key="tr-cold", spotify_id="trcold", name="Cold")
    Play.objects.create(user=account.user, track=track, played_at=at(0), source="export")
    fake_spotify.queue(f"/tracks/{real['id']}", real)

    result = catalog_enrich(max_requests=1)

    assert fake_spotify.requests[0].url.path.endswith(real["id"])  # the most-played track first
    assert result.provisional_removed == 2
    track.refresh_from_db()
    assert track.album.spotify_id == real["album"]["id"] and track.metadata_fetched_at is not None
    assert list(track.artists.values_list("spotify_id", flat=True)) == [real["artists"][0]["id"]]
    assert not Artist.objects.filter(key__startswith="name:").exists()
    assert not Album.objects.filter(key__startswith="name:").exists()
    cold.refresh_from_db()
    assert cold.metadata_fetched_at is None
    assert result.tracks_left == 1 and result.artists_left == 1  # the real artist's genres come next run


def test_no_account_no_requests(fake_spotify):
    Artist.objects.create(key="ar1", spotify_id="ar1", name="One")
    result = catalog_enrich(max_requests=5)
    assert result.requests == 0 and result.artists_left == 1 and result.stopped_reason


def test_enrich_catalog_command_prints_a_summary(fake_spotify, account):
    Artist.objects.create(key="ar1", spotify_id="ar1", name="One")
    fake_spotify.queue("/artists/ar1", artist_json("ar1", ["jazz"]))
    out = StringIO()

    call_command("enrich_catalog", "--max-requests", "5", stdout=out)

    assert "1 Spotify calls: 1 artists enriched (1 genre links)" in out.getvalue()
