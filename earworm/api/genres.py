"""Genres by plays with their top artists, and the plays whose artists have no genre at all."""

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from earworm.api.stats import RANGE_DESCRIPTION, RangeOut, parse_range, range_out
from earworm.stats import selectors

router = Router(tags=["stats"])


class GenresQuery(Schema):
    range: str = Field("4w", max_length=40, description=RANGE_DESCRIPTION)
    limit: int = Field(20, ge=1, le=selectors.TOP_MAX)


class GenreArtistOut(Schema):
    id: int
    name: str
    plays: int


class GenreItemOut(Schema):
    id: int
    name: str
    plays: int
    ms_played: int
    artists: list[GenreArtistOut]


class WithoutGenreOut(Schema):
    plays: int
    ms_played: int


class GenresOut(Schema):
    range: RangeOut
    items: list[GenreItemOut]
    without_genre: WithoutGenreOut = Field(..., description="plays of tracks none of whose artists has a genre")


@router.get("/genres", response=GenresOut, summary="Your genres, their artists, and what has no genre")
def genre_list(request: HttpRequest, response: HttpResponse, query: Query[GenresQuery]) -> dict:
    response["Cache-Control"] = "no-store"
    user_id = request.auth.pk  # type: ignore[attr-defined]
    date_range = parse_range(request, query.range)
    genres = selectors.stats_top_genres(user_id=user_id, date_range=date_range, limit=query.limit)
    artists = selectors.stats_genre_artists(user_id=user_id, date_range=date_range, genre_ids=[g["id"] for g in genres])
    return {
        "range": range_out(date_range),
        "items": [{**genre, "artists": artists.get(genre["id"], [])} for genre in genres],
        "without_genre": selectors.stats_genre_coverage(user_id=user_id, date_range=date_range),
    }
