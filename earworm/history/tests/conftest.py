"""A fake Spotify Web API behind the real client, token service and gate: only the network is replaced."""

import functools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.db import connection

from earworm.spotify.client import SpotifyClient

Handler = Callable[[httpx.Request], httpx.Response]


def played_at_iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def track_json(n: int, *, artists: int = 1) -> dict[str, Any]:
    """A `TrackObject` for track n, credited to artists n..n+artists-1, on album n // 2."""
    credited = [{"id": f"ar{(n + i):020d}", "name": f"Artist {n + i}", "type": "artist"} for i in range(artists)]
    return {
        "id": f"tr{n:020d}",
        "name": f"Track {n}",
        "type": "track",
        "uri": f"spotify:track:tr{n:020d}",
        "duration_ms": 200_000,
        "explicit": False,
        "is_local": False,
        "artists": credited,
        "album": {
            "id": f"al{n // 2:020d}",
            "name": f"Album {n // 2}",
            "album_type": "album",
            "release_date": "2019",
            "release_date_precision": "year",
            "total_tracks": 10,
            "images": [],
            "artists": credited[:1],
        },
        "external_ids": {"isrc": f"GBAAA{n:07d}"},
    }


def window_json(plays: list[tuple[int, datetime]], **extra: Any) -> dict[str, Any]:
    """A recently-played page of (track number, played_at), newest first."""
    ordered = sorted(plays, key=lambda play: play[1], reverse=True)
    items = [{"track": track_json(n), "played_at": played_at_iso(at), "context": None} for n, at in ordered]
    cursors = None
    if ordered:
        cursors = {"after": str(int(ordered[0][1].timestamp() * 1000)), "before": "1"}
    return {"items": items, "next": None, "cursors": cursors, "limit": 50, "href": "x", **extra}


class FakeSpotify:
    """Answers Web API paths from queued replies (a dict, an `httpx.Response` or an exception), one each.

    Asserts that no database transaction is open while a request is in flight (DESIGN.md §3).
    """

    def __init__(self) -> None:
        self.replies: dict[str, list[Any]] = {}
        self.requests: list[httpx.Request] = []
        # The test case's own transaction (django_db) is the baseline; a service must add none around HTTP.
        self.baseline_atomic_depth = len(connection.atomic_blocks)

    def queue(self, path: str, *replies: Any) -> None:
        self.replies.setdefault(path, []).extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        depth = len(connection.atomic_blocks)
        assert depth == self.baseline_atomic_depth, "a transaction is open during a Spotify call"
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1")
        queue = self.replies.get(path)
        if not queue:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return httpx.Response(200, content=json.dumps(reply).encode(), headers={"Content-Type": "application/json"})


@pytest.fixture
def fake_spotify(db, mocker) -> Iterator[FakeSpotify]:
    """Route every Web API call of `spotify_client()` to a `FakeSpotify`."""
    fake = FakeSpotify()
    mocker.patch(
        "earworm.accounts.spotify_api.SpotifyClient",
        functools.partial(SpotifyClient, transport=httpx.MockTransport(fake)),
    )
    yield fake


@pytest.fixture
def start() -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def minutes(start: datetime, n: float) -> datetime:
    return start + timedelta(minutes=n)
