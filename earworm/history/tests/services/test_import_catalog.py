"""The tracks an import creates are the rows `catalog_upsert` writes for the export's names, on both databases
(PostgreSQL creates them in SQL from a staging table)."""

import json
from pathlib import Path

import pytest

from earworm.catalog.keys import name_key
from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.catalog.services import catalog_upsert
from earworm.history.models import Play
from earworm.history.services.imports import history_import, import_job_create
from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData

pytestmark = pytest.mark.django_db(transaction=True)


def _record(ts: str, track_id: str, name: str | None, artist: str | None, album: str | None) -> dict:
    return {
        "ts": ts,
        "ms_played": 200_000,
        "master_metadata_track_name": name,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": f"spotify:track:{track_id}",
    }


def _rows() -> tuple[list, list, list, list]:
    return (
        sorted(Track.objects.values_list("key", "spotify_id", "name", "album__key", "duration_ms", "is_local")),
        sorted(Artist.objects.values_list("key", "spotify_id", "name")),
        sorted(Album.objects.values_list("key", "spotify_id", "name", "album_type", "release_date")),
        sorted(TrackArtist.objects.values_list("track__key", "artist__key", "position")),
    )


def test_imported_tracks_equal_what_catalog_upsert_writes_for_the_same_names(user, tmp_path: Path):
    known = TrackData(id="known1", name="Known", duration_ms=180_000, artists=[SimplifiedArtistData(name="Old")])
    catalog_upsert(tracks=[known])
    records = [
        _record("2024-01-01T10:00:00Z", "aaa1", "Song A", "Band", "Record"),
        _record("2024-01-01T11:00:00Z", "aaa1", "Song A again", "Band", "Record"),  # a chunk.s last names win
        _record("2024-01-01T12:00:00Z", "bbb2", "Song B", "band ", "Other"),  # same artist key
        _record("2024-01-01T13:00:00Z", "ccc3", None, None, None),  # no names: the id is the name
        _record("2024-01-01T14:00:00Z", "known1", "Renamed", "New", "Album"),  # known: left as it is
    ]
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(json.dumps(records), encoding="utf-8")

    summary = history_import(job_id=import_job_create(user_id=user.pk, source_paths=[str(path)]).pk)
    imported = _rows()
    Play.objects.all().delete()
    Track.objects.exclude(key="known1").delete()
    Album.objects.all().delete()
    Artist.objects.exclude(key=name_key("Old")).delete()
    catalog_upsert(
        tracks=[
            TrackData(
                id=track_id,
                name=name,
                album=SimplifiedAlbumData(name=album) if album else None,
                artists=[SimplifiedArtistData(name=artist)] if artist else [],
            )
            for track_id, name, artist, album in [
                ("aaa1", "Song A again", "Band", "Record"),
                ("bbb2", "Song B", "band ", "Other"),
                ("ccc3", "ccc3", "", ""),
            ]
        ]
    )

    assert summary is not None and summary.plays_added == 5
    assert imported == _rows()
