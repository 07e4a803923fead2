from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TypeVar

from django.db import transaction

from earworm.catalog.keys import album_key, artist_key, track_key
from earworm.catalog.models import Album, Artist, Track, TrackArtist
from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData

UPSERT_BATCH_SIZE = 1000
CatalogRow = TypeVar("CatalogRow", Artist, Album, Track)
# Column lengths: Spotify never sends longer names, but exports and local files can (SECURITY.md FZ-5).
NAME_MAX = 1000


@dataclass
class UpsertResult:
    """Primary keys by catalog key, and how many rows of each kind did not exist before."""

    track_ids: dict[str, int] = field(default_factory=dict)
    new_tracks: int = 0
    new_albums: int = 0
    new_artists: int = 0


def catalog_upsert(
    *,
    tracks: Iterable[TrackData],
    metadata_fetched_at: datetime | None = None,
    batch_size: int = UPSERT_BATCH_SIZE,
) -> UpsertResult:
    """Write tracks with their albums, artists and ordered track–artist links, creating or updating rows.

    Each batch is de-duplicated by key first (PostgreSQL refuses to update one row twice in a statement,
    SECURITY.md IN-4) and written with a fixed number of statements, whatever its size. Pass
    `metadata_fetched_at` when the tracks are Spotify's full objects, so enrichment skips them.

    Returns the primary key of every track by its catalog key, and counts of newly created rows.
    """
    result = UpsertResult()
    iterator = iter(tracks)
    while batch := tuple(islice(iterator, batch_size)):
        with transaction.atomic():
            _upsert_batch(batch, metadata_fetched_at=metadata_fetched_at, result=result)
    return result


def _upsert_batch(batch: Sequence[TrackData], *, metadata_fetched_at: datetime | None, result: UpsertResult) -> None:
    tracks_by_key: dict[str, TrackData] = {track_key(track): track for track in batch}
    artists_by_key: dict[str, SimplifiedArtistData] = {}
    albums_by_key: dict[str, SimplifiedAlbumData] = {}
    album_key_of_track: dict[str, str] = {}
    for key, track in tracks_by_key.items():
        for artist in track.artists:
            artists_by_key.setdefault(artist_key(artist), artist)
        if track.album is not None and track.album.name:
            album_artists = track.album.artists or track.artists
            for artist in track.album.artists:
                artists_by_key.setdefault(artist_key(artist), artist)
            akey = album_key(track.album, artist_name=album_artists[0].name if album_artists else "")
            albums_by_key.setdefault(akey, track.album)
            album_key_of_track[key] = akey

    result.new_artists += len(artists_by_key) - Artist.objects.filter(key__in=artists_by_key).count()
    result.new_albums += len(albums_by_key) - Album.objects.filter(key__in=albums_by_key).count()
    result.new_tracks += len(tracks_by_key) - Track.objects.filter(key__in=tracks_by_key).count()

    artist_ids = _upsert(
        Artist,
        [Artist(key=key, spotify_id=artist.id, name=artist.name[:NAME_MAX]) for key, artist in artists_by_key.items()],
        update_fields=["name", "spotify_id"],
    )
    album_update_fields = ["name", "spotify_id", "album_type", "release_date", "release_date_precision"]
    album_update_fields += ["total_tracks", "image_url"]
    if metadata_fetched_at is not None:
        album_update_fields.append("metadata_fetched_at")
    album_ids = _upsert(
        Album,
        [_album_row(key, album, metadata_fetched_at) for key, album in albums_by_key.items()],
        update_fields=album_update_fields,
    )
    track_update_fields = ["name", "spotify_id", "album", "duration_ms", "isrc", "explicit", "is_local"]
    if metadata_fetched_at is not None:
        track_update_fields.append("metadata_fetched_at")
    track_ids = _upsert(
        Track,
        [
            Track(
                key=key,
                spotify_id=track.id,
                name=track.name[:NAME_MAX],
                album_id=album_ids.get(album_key_of_track.get(key, "")),
                duration_ms=track.duration_ms if track.duration_ms and track.duration_ms > 0 else None,
                isrc=(track.isrc or "")[:16],
                explicit=track.explicit,
                is_local=track.is_local,
                metadata_fetched_at=metadata_fetched_at,
            )
            for key, track in tracks_by_key.items()
        ],
        update_fields=track_update_fields,
    )

    # Credits can change order between answers, so a track's links are replaced as a whole.
    links: list[TrackArtist] = []
    for key, track in tracks_by_key.items():
        seen: set[int] = set()
        for artist in track.artists:
            artist_id = artist_ids[artist_key(artist)]
            if artist_id not in seen:
                links.append(TrackArtist(track_id=track_ids[key], artist_id=artist_id, position=len(seen)))
                seen.add(artist_id)
    TrackArtist.objects.filter(track_id__in=track_ids.values()).delete()
    # Three columns a row: 10,000 rows stay well under psycopg's 65,535 parameters (SECURITY.md IN-6).
    TrackArtist.objects.bulk_create(links, batch_size=10_000)
    result.track_ids.update(track_ids)


def _album_row(key: str, album: SimplifiedAlbumData, metadata_fetched_at: datetime | None) -> Album:
    return Album(
        key=key,
        spotify_id=album.id,
        name=album.name[:NAME_MAX],
        album_type=(album.album_type or "")[:32],
        release_date=(album.release_date or "")[:10],
        release_date_precision=(album.release_date_precision or "")[:5],
        total_tracks=album.total_tracks if album.total_tracks and album.total_tracks > 0 else None,
        image_url=album.images[0].url[:1000] if album.images else "",
        metadata_fetched_at=metadata_fetched_at if album.id else None,
    )


def _upsert(model: type[CatalogRow], rows: list[CatalogRow], *, update_fields: list[str]) -> dict[str, int]:
    """Insert or update rows on their `key`; return primary keys by key."""
    if not rows:
        return {}
    created = model.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=update_fields,
        batch_size=UPSERT_BATCH_SIZE,
    )
    return {row.key: row.pk for row in created}
