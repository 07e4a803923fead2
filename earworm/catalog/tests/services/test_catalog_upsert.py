import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.catalog.services import catalog_upsert
from earworm.catalog.tests.factories import make_track
from earworm.spotify.types import SimplifiedArtistData, TrackData

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, list]:
    return {
        "artists": list(Artist.objects.order_by("key").values_list("key", "name", "spotify_id")),
        "albums": list(Album.objects.order_by("key").values_list("key", "name", "release_date")),
        "tracks": list(Track.objects.order_by("key").values_list("key", "name", "album__key", "isrc")),
        "links": list(
            TrackArtist.objects.order_by("track__key", "position").values_list("track__key", "artist__key", "position")
        ),
    }


def test_upserting_the_same_10000_tracks_twice_leaves_the_same_rows():
    tracks = [make_track(n, artists=1 + n % 3) for n in range(10_000)]

    first = catalog_upsert(tracks=tracks)
    before = _snapshot()
    second = catalog_upsert(tracks=tracks)

    assert _snapshot() == before
    assert (Track.objects.count(), Album.objects.count(), Artist.objects.count()) == (10_000, 2_000, 500)
    assert TrackArtist.objects.count() == sum(1 + n % 3 for n in range(10_000))
    assert (first.new_tracks, first.new_albums, first.new_artists) == (10_000, 2_000, 500)
    assert (second.new_tracks, second.new_albums, second.new_artists) == (0, 0, 0)
    assert first.track_ids == second.track_ids
    assert len(first.track_ids) == 10_000


def _queries_for(count: int) -> int:
    tracks = [make_track(n, artists=2) for n in range(count)]
    with CaptureQueriesContext(connection) as ctx:
        catalog_upsert(tracks=tracks)
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_the_number_of_tracks():
    small = _queries_for(10)
    Track.objects.all().delete()
    large = _queries_for(1_000)

    assert small == large
    assert small <= 12


def test_a_batch_holding_the_same_track_twice_is_written_once():
    track = make_track(7, artists=2)

    result = catalog_upsert(tracks=[track, track, make_track(8)])

    assert Track.objects.count() == 2
    assert result.new_tracks == 2
    assert list(
        Track.objects.get(key=track.id).artists.order_by("trackartist__position").values_list("name", flat=True)
    ) == [
        "Artist 7",
        "Artist 8",
    ]


def test_new_credits_replace_the_old_order():
    track = make_track(1, artists=2)
    catalog_upsert(tracks=[track])
    reordered = track.model_copy(update={"artists": list(reversed(track.artists))})

    catalog_upsert(tracks=[reordered])

    names = Track.objects.get(key=track.id).artists.order_by("trackartist__position").values_list("name", flat=True)
    assert list(names) == ["Artist 2", "Artist 1"]


def test_local_files_without_ids_get_a_stable_key_and_are_stored_once():
    local = TrackData(
        id=None,
        name="Demo tape",
        uri="spotify:local:Me:Tapes:Demo+tape:200",
        is_local=True,
        artists=[SimplifiedArtistData(id=None, name="Me")],
    )

    catalog_upsert(tracks=[local])
    catalog_upsert(tracks=[local])

    stored = Track.objects.get()
    assert stored.spotify_id is None
    assert stored.key.startswith("local:")
    assert stored.is_local
    assert Artist.objects.get().key.startswith("name:")


def test_metadata_timestamp_is_kept_when_a_later_upsert_has_none(django_assert_num_queries):
    from django.utils import timezone

    fetched = timezone.now()
    catalog_upsert(tracks=[make_track(3)], metadata_fetched_at=fetched)
    catalog_upsert(tracks=[make_track(3)])

    assert Track.objects.get().metadata_fetched_at == fetched
