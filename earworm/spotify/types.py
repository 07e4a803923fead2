"""Typed values that cross the Spotify boundary.

Frozen pydantic v2 models shaped after `spotify/openapi.yml`, tolerant where real Spotify departs from its
spec (`spotify/FACTS.md` §2.3): `context` and `cursors` may be null, old tracks may lack `album`, local files
have a null `id`. Unknown fields are ignored, so new fields from Spotify never break parsing.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SpotifyModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ImageData(SpotifyModel):
    url: str
    height: int | None = None
    width: int | None = None


class SimplifiedArtistData(SpotifyModel):
    """`SimplifiedArtistObject`: what tracks and albums carry. No genres."""

    id: str | None = None
    name: str
    uri: str | None = None


class SimplifiedAlbumData(SpotifyModel):
    """`SimplifiedAlbumObject`. `release_date` may be just a year (`release_date_precision: "year"`)."""

    id: str | None = None
    name: str
    uri: str | None = None
    album_type: str | None = None
    release_date: str | None = None
    release_date_precision: str | None = None
    total_tracks: int | None = None
    images: list[ImageData] = Field(default_factory=list)
    artists: list[SimplifiedArtistData] = Field(default_factory=list)


class TrackData(SpotifyModel):
    """`TrackObject`. Local files arrive with `id: null`, `is_local: true` and a `spotify:local:` URI."""

    id: str | None = None
    name: str
    uri: str | None = None
    type: str = "track"
    duration_ms: int | None = None
    explicit: bool | None = None
    is_local: bool = False
    track_number: int | None = None
    disc_number: int | None = None
    album: SimplifiedAlbumData | None = None
    artists: list[SimplifiedArtistData] = Field(default_factory=list)
    external_ids: dict[str, str | None] | None = None

    @property
    def isrc(self) -> str | None:
        return (self.external_ids or {}).get("isrc") or None


class ContextData(SpotifyModel):
    type: str | None = None
    uri: str | None = None
    href: str | None = None


class PlayHistoryItem(SpotifyModel):
    """`PlayHistoryObject`. `track` is null in some real responses (FZ-3); such items are skipped."""

    track: TrackData | None = None
    played_at: datetime
    context: ContextData | None = None

    @field_validator("played_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("played_at must carry a time zone")
        return value


class CursorsData(SpotifyModel):
    after: str | None = None
    before: str | None = None


class PlayHistoryPage(SpotifyModel):
    """`CursorPagingPlayHistoryObject`. An empty page has `items: []`, `cursors: null`, `next: null`."""

    items: list[PlayHistoryItem]
    next: str | None = None
    cursors: CursorsData | None = None
    limit: int | None = None
    href: str | None = None


class ArtistData(SpotifyModel):
    """`ArtistObject`. `genres` is deprecated by Spotify and often empty: an empty list is a normal answer."""

    id: str
    name: str
    uri: str | None = None
    genres: list[str] = Field(default_factory=list)
    images: list[ImageData] = Field(default_factory=list)


class AlbumData(SimplifiedAlbumData):
    """`AlbumObject` (full album)."""


class UserProfile(SpotifyModel):
    """`PrivateUserObject`. `account_id` (May 2026) is the stable key for linking; `id` is the fallback."""

    id: str
    display_name: str | None = None
    account_id: str | None = None
    images: list[ImageData] = Field(default_factory=list)

    @property
    def link_key(self) -> str:
        return self.account_id or self.id


class TokenSet(SpotifyModel):
    """A token-endpoint answer. `refresh_token` is absent when Spotify keeps the old one."""

    # repr=False: a logged or printed TokenSet must not show the tokens (SECURITY.md LG-1).
    access_token: str = Field(min_length=1, repr=False)
    token_type: str
    expires_in: int = Field(ge=0)
    refresh_token: str | None = Field(default=None, repr=False)
    scope: str | None = None

    @field_validator("token_type")
    @classmethod
    def _must_be_bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError(f"unsupported token_type {value!r}")
        return value
