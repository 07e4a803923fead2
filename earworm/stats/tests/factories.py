"""Catalog rows and plays for statistics tests, written directly (the ingest services are tested elsewhere)."""

from datetime import datetime

from earworm.catalog.models import Album, Artist, ArtistGenre, Genre, Track, TrackArtist
from earworm.history.models import Play


def make_catalog(*, tracks: int = 6, artists: int = 4, albums: int = 3, genres: int = 3) -> list[Track]:
    """Tracks with 1–2 artists each, on a few albums; artists with 0–2 genres; some durations unknown."""
    genre_rows = [Genre.objects.create(name=f"genre {i}") for i in range(genres)]
    artist_rows = [Artist.objects.create(key=f"ar{i}", spotify_id=f"ar{i}", name=f"Artist {i}") for i in range(artists)]
    for i, artist in enumerate(artist_rows):
        for genre in genre_rows[: i % 3]:
            ArtistGenre.objects.create(artist=artist, genre=genre)
    album_rows = [Album.objects.create(key=f"al{i}", spotify_id=f"al{i}", name=f"Album {i}") for i in range(albums)]
    track_rows = []
    for i in range(tracks):
        track = Track.objects.create(
            key=f"tr{i}",
            spotify_id=f"tr{i}",
            name=f"Track {i}",
            album=album_rows[i % albums] if i % 5 != 4 else None,
            duration_ms=None if i % 4 == 3 else 100_000 + i * 1000,
        )
        TrackArtist.objects.create(track=track, artist=artist_rows[i % artists], position=0)
        if i % 2:
            TrackArtist.objects.create(track=track, artist=artist_rows[(i + 1) % artists], position=1)
        track_rows.append(track)
    return track_rows


def make_play(*, user, track: Track, played_at: datetime, ms_played: int | None = None, source: str = "export"):
    return Play.objects.create(user=user, track=track, played_at=played_at, ms_played=ms_played, source=source)
