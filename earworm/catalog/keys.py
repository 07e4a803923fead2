"""Stable, non-null catalog keys (see catalog.models): the Spotify id, or a surrogate when there is none."""

import hashlib

from earworm.spotify.types import SimplifiedAlbumData, SimplifiedArtistData, TrackData


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def normalize_name(name: str) -> str:
    """Case- and spacing-insensitive form of a name, for matching names from exports."""
    return " ".join(name.casefold().split())


def name_key(*names: str) -> str:
    """Key of a row known only by name(s), e.g. an artist from a data export."""
    return "name:" + _digest("\x1f".join(normalize_name(name) for name in names))


def artist_key(artist: SimplifiedArtistData) -> str:
    return artist.id or name_key(artist.name)


def album_key(album: SimplifiedAlbumData, *, artist_name: str) -> str:
    return album.id or name_key(artist_name, album.name)


def track_key(track: TrackData) -> str:
    if track.id:
        return track.id
    # Local files: Spotify gives no id but a URI that names the file (spotify:local:artist:album:title:secs).
    if track.uri:
        return "local:" + _digest(track.uri)
    first_artist = track.artists[0].name if track.artists else ""
    return name_key(first_artist, track.name)
