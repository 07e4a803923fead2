"""Statistics: top artists, tracks, albums and genres, totals, the heatmap and the timeline (DESIGN.md §4).

Every handler reads rollups of the authenticated user only (SECURITY.md AP-2).
"""

from collections.abc import Callable
from datetime import date, datetime

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from earworm.stats import selectors
from earworm.stats.selectors import DateRange, stats_range_parse, user_today

router = Router(tags=["stats"])

RANGE_DESCRIPTION = "4w, 6m, 12m, all, a year (2024) or FROM..TO (2024-01-01..2024-03-31), in your time zone"


class StatsQuery(Schema):
    range: str = Field("4w", max_length=40, description=RANGE_DESCRIPTION)
    limit: int = Field(10, ge=1, le=selectors.TOP_MAX)


class RangeOut(Schema):
    key: str
    first: date | None = Field(None, description="first local day, inclusive (null: since the first play)")
    last: date | None = Field(None, description="last local day, inclusive")
    label: str


class RefOut(Schema):
    id: int
    spotify_id: str | None
    name: str


class ArtistOut(RefOut):
    image_url: str
    plays: int
    ms_played: int


class AlbumOut(RefOut):
    image_url: str
    artists: list[RefOut]
    plays: int
    ms_played: int


class TrackOut(RefOut):
    album: RefOut | None
    artists: list[RefOut]
    image_url: str
    plays: int
    ms_played: int


class GenreOut(Schema):
    id: int
    name: str
    plays: int
    ms_played: int


class TopArtistsOut(Schema):
    range: RangeOut
    items: list[ArtistOut]


class TopAlbumsOut(Schema):
    range: RangeOut
    items: list[AlbumOut]


class TopTracksOut(Schema):
    range: RangeOut
    items: list[TrackOut]


class TopGenresOut(Schema):
    range: RangeOut
    items: list[GenreOut]


class PlayRefOut(Schema):
    played_at: datetime
    track: RefOut


class SummaryOut(Schema):
    range: RangeOut
    plays: int
    ms_played: int
    tracks: int
    artists: int
    albums: int
    first_play: PlayRefOut | None
    latest_play: PlayRefOut | None


class HeatmapOut(Schema):
    range: RangeOut
    weekdays: list[str]
    plays: list[list[int]] = Field(..., description="7 rows (Monday first) of 24 hours, local time")


class TimelinePointOut(Schema):
    start: date
    plays: int
    ms_played: int


class TimelineOut(Schema):
    range: RangeOut
    bucket: str = Field(..., description="day, week (starting Monday) or month")
    items: list[TimelinePointOut]


def parse_range(request: HttpRequest, value: str) -> DateRange:
    """The request user's range, in their time zone; InvalidRange (400) when malformed."""
    return stats_range_parse(value=value, today=user_today(time_zone=request.auth.time_zone))  # type: ignore[attr-defined]


def range_out(date_range: DateRange) -> RangeOut:
    return RangeOut(key=date_range.key, first=date_range.first, last=date_range.last, label=date_range.label)


def _no_store(response: HttpResponse) -> None:
    response["Cache-Control"] = "no-store"


def _top(request: HttpRequest, response: HttpResponse, query: StatsQuery, selector: Callable[..., list]) -> dict:
    """One top list in the DESIGN.md §4 shape: the range it covers and its items."""
    _no_store(response)
    date_range = parse_range(request, query.range)
    items = selector(user_id=request.auth.pk, date_range=date_range, limit=query.limit)  # type: ignore[attr-defined]
    return {"range": range_out(date_range), "items": items}


@router.get("/stats/top-artists", response=TopArtistsOut, summary="Your most played artists")
def stats_top_artists(request: HttpRequest, response: HttpResponse, query: Query[StatsQuery]) -> dict:
    return _top(request, response, query, selectors.stats_top_artists)


@router.get("/stats/top-tracks", response=TopTracksOut, summary="Your most played tracks")
def stats_top_tracks(request: HttpRequest, response: HttpResponse, query: Query[StatsQuery]) -> dict:
    return _top(request, response, query, selectors.stats_top_tracks)


@router.get("/stats/top-albums", response=TopAlbumsOut, summary="Your most played albums")
def stats_top_albums(request: HttpRequest, response: HttpResponse, query: Query[StatsQuery]) -> dict:
    return _top(request, response, query, selectors.stats_top_albums)


@router.get("/stats/top-genres", response=TopGenresOut, summary="Your most played genres")
def stats_top_genres(request: HttpRequest, response: HttpResponse, query: Query[StatsQuery]) -> dict:
    return _top(request, response, query, selectors.stats_top_genres)


class RangeQuery(Schema):
    range: str = Field("4w", max_length=40, description=RANGE_DESCRIPTION)


def _play_ref(play) -> dict | None:  # type: ignore[no-untyped-def]
    if play is None:
        return None
    track = play.track
    return {"played_at": play.played_at, "track": {"id": track.pk, "spotify_id": track.spotify_id, "name": track.name}}


@router.get("/stats/summary", response=SummaryOut, summary="Totals, and the first and latest play, for a range")
def stats_summary(request: HttpRequest, response: HttpResponse, query: Query[RangeQuery]) -> dict:
    _no_store(response)
    user = request.auth  # type: ignore[attr-defined]
    date_range = parse_range(request, query.range)
    totals = selectors.stats_totals(user_id=user.pk, date_range=date_range)
    first, latest = selectors.stats_first_and_last_play(
        user_id=user.pk, date_range=date_range, time_zone=user.time_zone
    )
    return {"range": range_out(date_range), **totals, "first_play": _play_ref(first), "latest_play": _play_ref(latest)}


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@router.get("/stats/heatmap", response=HeatmapOut, summary="Plays by weekday and hour of day")
def stats_heatmap(request: HttpRequest, response: HttpResponse, query: Query[RangeQuery]) -> dict:
    _no_store(response)
    date_range = parse_range(request, query.range)
    grid = selectors.stats_heatmap(user_id=request.auth.pk, date_range=date_range)  # type: ignore[attr-defined]
    return {"range": range_out(date_range), "weekdays": WEEKDAYS, "plays": grid}


@router.get("/stats/timeline", response=TimelineOut, summary="Plays and listening time per day, week or month")
def stats_timeline(request: HttpRequest, response: HttpResponse, query: Query[RangeQuery]) -> dict:
    _no_store(response)
    date_range = parse_range(request, query.range)
    bucket, points = selectors.stats_timeline(user_id=request.auth.pk, date_range=date_range)  # type: ignore[attr-defined]
    return {
        "range": range_out(date_range),
        "bucket": bucket,
        "items": [{"start": p.start, "plays": p.plays, "ms_played": p.ms_played} for p in points],
    }
