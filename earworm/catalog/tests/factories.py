"""Typed Spotify track objects for catalog tests, as recently-played would deliver them."""

from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData


def spotify_id(kind: str, n: int) -> str:
    return f"{kind[0]}{n:021d}"


def make_track(n: int, *, artists: int = 1, artist_pool: int = 500, album_pool: int = 2000) -> TrackData:
    """Track n, credited to `artists` artists drawn from a pool, on one album of a pool."""
    credited = [
        SimplifiedArtistData(id=spotify_id("artist", (n + i) % artist_pool), name=f"Artist {(n + i) % artist_pool}")
        for i in range(artists)
    ]
    album_n = n % album_pool
    album = SimplifiedAlbumData(
        id=spotify_id("album", album_n),
        name=f"Album {album_n}",
        album_type="album",
        release_date="2019",
        release_date_precision="year",
        total_tracks=10,
        artists=credited[:1],
    )
    return TrackData(
        id=spotify_id("track", n),
        name=f"Track {n} – ünïcode",
        uri=f"spotify:track:{spotify_id('track', n)}",
        duration_ms=180_000 + n,
        album=album,
        artists=credited,
        external_ids={"isrc": f"GBAAA{n:07d}"},
    )
