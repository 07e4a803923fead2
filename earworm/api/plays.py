"""`GET /api/v1/plays`: the user's plays, newest first, with keyset cursors (DESIGN.md §4)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from earworm.history.models import Play
from earworm.history.selectors import PLAY_PAGE_MAX, play_list_for_user

router = Router(tags=["plays"])


class PlaysIn(Schema):
    since: datetime | None = Field(default=None, description="only plays at or after this time (ISO 8601)")
    until: datetime | None = Field(default=None, description="only plays before this time (ISO 8601)")
    limit: int = Field(default=50, ge=1, le=PLAY_PAGE_MAX)
    cursor: str | None = Field(default=None, max_length=200, description="`next_cursor` of the previous page")


class AlbumOut(Schema):
    spotify_id: str | None
    name: str


class ArtistOut(Schema):
    spotify_id: str | None
    name: str


class TrackOut(Schema):
    spotify_id: str | None
    name: str
    album: AlbumOut | None
    artists: list[ArtistOut]


class PlayOut(Schema):
    played_at: datetime
    ms_played: int | None
    source: str
    track: TrackOut


class PlaysOut(Schema):
    items: list[PlayOut]
    next_cursor: str | None


def _play_out(play: Play) -> PlayOut:
    track = play.track
    album = track.album
    return PlayOut(
        played_at=play.played_at,
        ms_played=play.ms_played,
        source=play.source,
        track=TrackOut(
            spotify_id=track.spotify_id,
            name=track.name,
            album=AlbumOut(spotify_id=album.spotify_id, name=album.name) if album else None,
            artists=[
                ArtistOut(spotify_id=credit.artist.spotify_id, name=credit.artist.name)
                for credit in track.credits  # type: ignore[attr-defined]
            ],
        ),
    )


@router.get("/plays", response=PlaysOut, summary="Your plays, newest first")
def play_list(request: HttpRequest, filters: Query[PlaysIn]) -> PlaysOut:
    page = play_list_for_user(
        user_id=request.auth.pk,  # type: ignore[attr-defined]
        since=filters.since,
        until=filters.until,
        limit=filters.limit,
        cursor=filters.cursor,
    )
    return PlaysOut(items=[_play_out(play) for play in page.items], next_cursor=page.next_cursor)
