"""SpotifyClient against a strict mock transport (STYLE.md §9; SECURITY.md FZ-2, FZ-3, FZ-4, RL-2..RL-5)."""

import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from earworm.spotify.client import SpotifyClient
from earworm.spotify.errors import (
    SpotifyAuthError,
    SpotifyBadRequest,
    SpotifyBadResponse,
    SpotifyForbidden,
    SpotifyInvalidGrant,
    SpotifyNotFound,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from earworm.spotify.tests.conftest import ACCESS_TOKEN, SpotifyRouter
from earworm.spotify.types import PlayHistoryPage

MakeClient = Callable[..., SpotifyClient]
Payload = Callable[[str], Any]

ME = "/v1/me"
RECENT = "/v1/me/player/recently-played"
NOW = datetime(2026, 4, 20, 12, 0, 0, tzinfo=UTC)
TRACK_ID = "2QfiRTz5Yc8DdShCxG1tB2"
ARTIST_ID = "0oSGxfWSnnOXhD2fKuz2Gy"
ALBUM_ID = "6fQElzBNTiEMGdIeY0hy5l"


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, json=data)


class RecordingGate:
    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse = refuse
        self.before: list[str] = []
        self.after: list[dict[str, Any]] = []

    def before_request(self, *, kind: str) -> None:
        self.before.append(kind)
        if self.refuse is not None:
            raise self.refuse

    def after_response(self, *, status: int, retry_after: float | None, quota_exceeded: bool) -> None:
        self.after.append({"status": status, "retry_after": retry_after, "quota_exceeded": quota_exceeded})


# --- 200: typed values -------------------------------------------------------------------------------------------


def test_recently_played_returns_a_typed_page(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", RECENT, ok(spotify_payload("recently_played")))

    page = make_client().recently_played()

    assert isinstance(page, PlayHistoryPage)
    assert [item.track.name for item in page.items if item.track] == ["Buddy Holly", "Sound and Vision"]
    assert page.items[0].played_at == datetime(2026, 4, 20, 10, 0, tzinfo=UTC)
    assert page.items[0].context is not None and page.items[0].context.type == "playlist"
    assert page.items[1].context is None
    assert page.cursors is not None and page.cursors.before == "1776672000000"
    assert page.items[1].track is not None and page.items[1].track.isrc == "USJT19900022"
    request = spotify_router.requests[0]
    assert request.url.params["limit"] == "50"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_recently_played_sends_one_cursor(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    empty = {"items": [], "next": None, "cursors": None}
    spotify_router.add("GET", RECENT, ok(empty), ok(empty))
    client = make_client()

    client.recently_played(limit=20, after_ms=1776672000000)
    client.recently_played(before_ms=1776672000000)

    first, second = (dict(r.url.params) for r in spotify_router.requests)
    assert first == {"limit": "20", "after": "1776672000000"}
    assert second == {"limit": "50", "before": "1776672000000"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 51},
        {"limit": True},
        {"limit": "50"},
        {"after_ms": 1, "before_ms": 2},
        {"after_ms": -1},
        {"before_ms": 1.5},
    ],
)
def test_recently_played_rejects_bad_arguments_without_calling_spotify(
    make_client: MakeClient, spotify_router: SpotifyRouter, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        make_client().recently_played(**kwargs)
    assert spotify_router.requests == []


def test_empty_page_has_no_cursors(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    """The real empty answer: `items: []`, `cursors: null`, `next: null` (spotify/FACTS.md §2.3)."""
    spotify_router.add("GET", RECENT, ok(spotify_payload("recently_played_empty")))

    page = make_client().recently_played()

    assert page.items == [] and page.cursors is None and page.next is None


def test_quirky_items_parse_and_are_kept_for_the_caller(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    """FZ-3: null track, local file with null id, `artists: []`, year-only release date, `+00:00` and
    millisecond-free `played_at`, an episode among tracks, unknown extra fields."""
    spotify_router.add("GET", RECENT, ok(spotify_payload("recently_played_quirks")))

    page = make_client().recently_played()

    null_track, local, bare, episode = page.items
    assert null_track.track is None
    assert local.track is not None and local.track.id is None and local.track.is_local
    assert local.track.uri == "spotify:local:Home+Recordings::Demo+Take+3:201"
    assert local.played_at == datetime(2026, 4, 20, 9, 30, tzinfo=UTC)
    assert bare.track is not None and bare.track.artists == []
    assert bare.track.album is not None and bare.track.album.release_date == "1981"
    assert bare.track.album.release_date_precision == "year"
    assert bare.track.album.images == []
    assert bare.track.isrc is None
    assert bare.played_at == datetime(2026, 4, 20, 9, 0, tzinfo=UTC)
    assert episode.track is not None and episode.track.type == "episode"
    assert episode.played_at == datetime(2026, 4, 20, 6, 0, 0, 500000, tzinfo=UTC)


def test_me_returns_the_profile_with_its_link_key(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, ok(spotify_payload("me")))

    profile = make_client().me()

    assert profile.link_key == "a7c1b2d3e4f5a6b7c8d9e0f1"
    assert profile.display_name == "Listener Example"


def test_single_item_endpoints_return_typed_values(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", f"/v1/tracks/{TRACK_ID}", ok(spotify_payload("track")))
    spotify_router.add("GET", f"/v1/artists/{ARTIST_ID}", ok(spotify_payload("artist")))
    spotify_router.add("GET", f"/v1/albums/{ALBUM_ID}", ok(spotify_payload("album")))
    client = make_client()

    assert client.track(TRACK_ID).name == "Sound and Vision"
    artist = client.artist(ARTIST_ID)
    assert artist.genres == ["art rock", "glam rock", "permanent wave"]
    assert artist.images[1].height is None
    album = client.album(ALBUM_ID)
    assert album.name == "Low" and album.artists[0].name == "David Bowie"
    assert client.calls_made == 3


def test_batch_endpoints_keep_order_and_nulls(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", "/v1/tracks", ok(spotify_payload("tracks_several")))
    spotify_router.add("GET", "/v1/artists", ok(spotify_payload("artists_several")))
    client = make_client()
    ids = [TRACK_ID, "0000000000000000000000", "3qukAI0I4gUx4JcIpwkgcv"]

    tracks = client.tracks(ids)
    artists = client.artists([ARTIST_ID, "0000000000000000000000", "3jOstUTkEu2JkjvRdBA5Gu"])

    assert [t.name if t else None for t in tracks] == ["Sound and Vision", None, "Buddy Holly"]
    assert [a.name if a else None for a in artists] == ["David Bowie", None, "Weezer"]
    assert artists[2] is not None and artists[2].genres == []
    assert spotify_router.requests[0].url.params["ids"] == ",".join(ids)


def test_batch_answer_of_the_wrong_length_is_a_bad_response(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", "/v1/tracks", ok(spotify_payload("tracks_several")))

    with pytest.raises(SpotifyBadResponse):
        make_client().tracks([TRACK_ID])


def test_batch_of_nothing_makes_no_request(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    client = make_client()
    assert client.tracks([]) == []
    assert client.artists([]) == []
    assert spotify_router.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.track("../me"),
        lambda c: c.artist("abc?ids=x"),
        lambda c: c.album(""),
        lambda c: c.track(None),
        lambda c: c.tracks(["a"] * 51),
        lambda c: c.artists("0oSGxfWSnnOXhD2fKuz2Gy"),
        lambda c: c.artists(["ok", "no,comma"]),
    ],
)
def test_bad_ids_raise_value_error_without_calling_spotify(
    make_client: MakeClient, spotify_router: SpotifyRouter, call: Callable[[SpotifyClient], object]
) -> None:
    with pytest.raises(ValueError):
        call(make_client())
    assert spotify_router.requests == []


# --- 401: one refresh, one retry, never a loop (RF-6) ------------------------------------------------------------


def test_401_refreshes_once_and_retries_with_the_new_token(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add(
        "GET", ME, httpx.Response(401, json=spotify_payload("error_401_expired")), ok(spotify_payload("me"))
    )
    refreshes: list[int] = []

    def refresh() -> str:
        refreshes.append(1)
        return "BQD-refreshed-token"

    client = make_client(refresh_access_token=refresh)
    assert client.me().id == "listener.example"

    assert len(refreshes) == 1
    assert [r.headers["Authorization"] for r in spotify_router.requests] == [
        f"Bearer {ACCESS_TOKEN}",
        "Bearer BQD-refreshed-token",
    ]
    assert client.calls_made == 2


def test_a_second_401_raises_auth_error_without_looping(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    unauthorized = spotify_payload("error_401_expired")
    spotify_router.add("GET", ME, httpx.Response(401, json=unauthorized), httpx.Response(401, json=unauthorized))
    refreshes: list[int] = []

    def refresh() -> str:
        refreshes.append(1)
        return "BQD-refreshed-token"

    with pytest.raises(SpotifyAuthError) as caught:
        make_client(refresh_access_token=refresh).me()

    assert caught.value.status == 401 and caught.value.permanent is False
    assert len(refreshes) == 1
    assert len(spotify_router.requests) == 2


def test_401_without_a_refresher_raises_at_once(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, httpx.Response(401, json=spotify_payload("error_401_expired")))

    with pytest.raises(SpotifyAuthError):
        make_client().me()
    assert len(spotify_router.requests) == 1


def test_a_failed_refresh_passes_its_error_through(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, httpx.Response(401, json=spotify_payload("error_401_expired")))

    def refresh() -> str:
        raise SpotifyInvalidGrant()

    with pytest.raises(SpotifyInvalidGrant):
        make_client(refresh_access_token=refresh).me()
    assert len(spotify_router.requests) == 1


def test_each_request_gets_its_own_single_refresh(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    """An hour-long enrichment may see the token expire again; one refresh per request, not per client."""
    unauthorized = spotify_payload("error_401_expired")
    me = spotify_payload("me")
    spotify_router.add(
        "GET", ME, httpx.Response(401, json=unauthorized), ok(me), httpx.Response(401, json=unauthorized), ok(me)
    )
    tokens = iter(["BQD-second", "BQD-third"])
    client = make_client(refresh_access_token=lambda: next(tokens))

    client.me()
    client.me()

    assert spotify_router.requests[-1].headers["Authorization"] == "Bearer BQD-third"


# --- 403, 404, other 4xx -----------------------------------------------------------------------------------------


def test_403_for_a_user_missing_from_the_allow_list(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, httpx.Response(403, json=spotify_payload("error_403_not_registered")))

    with pytest.raises(SpotifyForbidden) as caught:
        make_client().me()

    assert caught.value.not_allowlisted is True
    assert caught.value.endpoint_closed is False
    assert caught.value.permanent is True
    assert "Developer Dashboard" in caught.value.message


def test_403_for_an_owner_without_premium(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, httpx.Response(403, json=spotify_payload("error_403_premium")))

    with pytest.raises(SpotifyForbidden) as caught:
        make_client().me()
    assert caught.value.premium_required is True and caught.value.not_allowlisted is False


def test_403_on_a_batch_endpoint_means_it_is_closed_to_development_mode(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", "/v1/artists", httpx.Response(403, json=spotify_payload("error_403_forbidden")))

    with pytest.raises(SpotifyForbidden) as caught:
        make_client().artists([ARTIST_ID])
    assert caught.value.endpoint_closed is True and caught.value.not_allowlisted is False


def test_plain_403_on_a_single_endpoint_sets_no_flag(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, httpx.Response(403, json=spotify_payload("error_403_forbidden")))

    with pytest.raises(SpotifyForbidden) as caught:
        make_client().me()
    error = caught.value
    assert (error.not_allowlisted, error.premium_required, error.endpoint_closed) == (False, False, False)


def test_404_is_not_found(make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload) -> None:
    spotify_router.add("GET", f"/v1/tracks/{TRACK_ID}", httpx.Response(404, json=spotify_payload("error_404")))

    with pytest.raises(SpotifyNotFound) as caught:
        make_client().track(TRACK_ID)
    assert caught.value.permanent is True and caught.value.status == 404


@pytest.mark.parametrize("status", [400, 405, 418])
def test_other_4xx_is_a_refused_request(make_client: MakeClient, spotify_router: SpotifyRouter, status: int) -> None:
    spotify_router.add("GET", ME, httpx.Response(status, json={"error": {"status": status, "message": "no"}}))

    with pytest.raises(SpotifyBadRequest) as caught:
        make_client().me()
    assert caught.value.status == status and caught.value.permanent is True


def test_redirect_is_not_followed(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("GET", ME, httpx.Response(302, headers={"Location": "http://elsewhere.invalid/"}))

    with pytest.raises(SpotifyBadResponse):
        make_client().me()
    assert len(spotify_router.requests) == 1


# --- 429: rate limit and quota, never a sleep --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("Mon, 20 Apr 2026 11:59:00 GMT", 0.0),  # a date in the past
        ("abc", 30.0),  # unparsable → default
        ("999999", 3600.0),  # capped
        (None, 30.0),
    ],
)
def test_429_raises_rate_limited_with_a_bounded_retry_after(
    make_client: MakeClient,
    spotify_router: SpotifyRouter,
    spotify_payload: Payload,
    mocker: Any,
    header: str | None,
    expected: float,
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    spotify_router.add("GET", RECENT, httpx.Response(429, json=spotify_payload("error_429"), headers=headers))
    sleep = mocker.patch("time.sleep")

    with pytest.raises(SpotifyRateLimited) as caught:
        make_client(clock=lambda: NOW).recently_played()

    assert caught.value.retry_after == pytest.approx(expected)
    assert caught.value.permanent is False and caught.value.status == 429
    sleep.assert_not_called()
    assert len(spotify_router.requests) == 1


def test_429_quota_exceeded_gives_the_resume_time(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add(
        "GET", RECENT, httpx.Response(429, json=spotify_payload("error_429_quota"), headers={"Retry-After": "52531"})
    )

    with pytest.raises(SpotifyQuotaExceeded) as caught:
        make_client(clock=lambda: NOW).recently_played()

    assert caught.value.retry_after == 52531.0
    assert caught.value.resume_at == NOW + timedelta(seconds=52531)
    assert caught.value.resume_at.tzinfo is not None
    assert caught.value.permanent is False


def test_429_quota_without_retry_after_pauses_for_an_hour(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", RECENT, httpx.Response(429, json=spotify_payload("error_429_quota")))

    with pytest.raises(SpotifyQuotaExceeded) as caught:
        make_client(clock=lambda: NOW).recently_played()
    assert caught.value.resume_at == NOW + timedelta(hours=1)


# --- the gate ----------------------------------------------------------------------------------------------------


def test_the_gate_sees_every_call_and_every_answer(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    spotify_router.add("GET", ME, ok(spotify_payload("me")))
    spotify_router.add(
        "GET", RECENT, httpx.Response(429, json=spotify_payload("error_429_quota"), headers={"Retry-After": "600"})
    )
    gate = RecordingGate()
    client = make_client(gate=gate, kind="enrich", clock=lambda: NOW)

    client.me()
    with pytest.raises(SpotifyQuotaExceeded):
        client.recently_played()

    assert gate.before == ["enrich", "enrich"]
    assert gate.after == [
        {"status": 200, "retry_after": None, "quota_exceeded": False},
        {"status": 429, "retry_after": 600.0, "quota_exceeded": True},
    ]


@pytest.mark.parametrize("refusal", [SpotifyQuotaExceeded(60.0, NOW), SpotifyRateLimited(2.0)])
def test_a_closed_gate_stops_the_call_before_spotify(
    make_client: MakeClient, spotify_router: SpotifyRouter, refusal: Exception
) -> None:
    client = make_client(gate=RecordingGate(refuse=refusal))

    with pytest.raises(type(refusal)):
        client.recently_played()

    assert spotify_router.requests == []
    assert client.calls_made == 0


# --- 5xx, timeouts, connection errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_unavailable(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload, status: int
) -> None:
    spotify_router.add("GET", RECENT, httpx.Response(status, json=spotify_payload("error_500")))

    with pytest.raises(SpotifyUnavailable) as caught:
        make_client().recently_played()
    assert caught.value.status == status and caught.value.permanent is False
    assert len(spotify_router.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
def test_network_failures_are_unavailable(
    make_client: MakeClient, spotify_router: SpotifyRouter, exc: Exception
) -> None:
    spotify_router.add("GET", RECENT, exc)

    with pytest.raises(SpotifyUnavailable) as caught:
        make_client().recently_played()
    assert caught.value.status is None and caught.value.permanent is False


def test_a_connection_dropped_mid_body_is_unavailable(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"items": ['
        raise httpx.ReadError("connection reset by peer")

    spotify_router.add("GET", RECENT, httpx.Response(200, content=body()))

    with pytest.raises(SpotifyUnavailable):
        make_client().recently_played()


# --- bodies that are not what they should be ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Upstream error</body></html>",
        b"",
        b'{"items": [{"track": {"name": "Cut',  # truncated JSON
        b'{"items": [], "limit": NaN}',
        b"[" * 100_000,  # nesting beyond the recursion limit
        b"\xff\xfe\x00garbage",
    ],
)
def test_a_body_that_is_not_json_is_a_bad_response(
    make_client: MakeClient, spotify_router: SpotifyRouter, body: bytes
) -> None:
    spotify_router.add("GET", RECENT, httpx.Response(200, content=body))

    with pytest.raises(SpotifyBadResponse) as caught:
        make_client().recently_played()
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"items": None},
        {"items": "nope"},
        {"items": [{"track": None}]},  # no played_at
        {"items": [{"track": None, "played_at": "2026-04-20T10:00:00"}]},  # no time zone
        {"items": [{"track": None, "played_at": "yesterday"}]},
        {"items": [{"track": {"id": 5}, "played_at": "2026-04-20T10:00:00Z"}]},  # track without name
        {"items": [{"track": {"name": "x", "duration_ms": "long"}, "played_at": "2026-04-20T10:00:00Z"}]},
        {"items": [], "cursors": "1776672000000"},
        {"error": {"status": 200, "message": "surprise"}},
    ],
)
def test_a_body_of_the_wrong_shape_is_a_bad_response(
    make_client: MakeClient, spotify_router: SpotifyRouter, data: object
) -> None:
    spotify_router.add("GET", RECENT, ok(data))

    with pytest.raises(SpotifyBadResponse):
        make_client().recently_played()


def test_an_oversize_body_is_refused_without_reading_it_all(
    make_client: MakeClient, spotify_router: SpotifyRouter
) -> None:
    """RL-5: the body is streamed and reading stops past the cap, even without a Content-Length."""
    chunks_read: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            chunks_read.append(1)
            yield b" " * 65536

    spotify_router.add("GET", RECENT, httpx.Response(200, content=endless()))

    with pytest.raises(SpotifyBadResponse, match="too large"):
        make_client().recently_played()
    assert len(chunks_read) <= 5 * 1024 * 1024 // 65536 + 1


def test_a_declared_oversize_body_is_refused(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("GET", ME, httpx.Response(200, content=b"{}" + b" " * 2048))

    with pytest.raises(SpotifyBadResponse, match="too large"):
        make_client(max_response_bytes=1024).me()


def test_a_body_at_the_cap_is_read(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    body = json.dumps(spotify_payload("me")).encode()
    spotify_router.add("GET", ME, httpx.Response(200, content=body))

    assert make_client(max_response_bytes=len(body)).me().id == "listener.example"


# --- tokens stay out of URLs, logs and error reports -------------------------------------------------------------


def test_no_outgoing_url_carries_the_token(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload
) -> None:
    """OA-10: the bearer token goes in the Authorization header only."""
    spotify_router.add("GET", ME, ok(spotify_payload("me")))
    spotify_router.add("GET", RECENT, ok(spotify_payload("recently_played")))
    spotify_router.add("GET", "/v1/tracks", ok(spotify_payload("tracks_several")))
    client = make_client()

    client.me()
    client.recently_played(after_ms=1)
    client.tracks([TRACK_ID, "0000000000000000000000", "3qukAI0I4gUx4JcIpwkgcv"])

    assert len(spotify_router.requests) == 3
    for request in spotify_router.requests:
        assert "access_token=" not in str(request.url)
        assert ACCESS_TOKEN not in str(request.url)
        assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_failures_are_logged_with_status_and_a_short_body_but_no_token(
    make_client: MakeClient, spotify_router: SpotifyRouter, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"error": {"status": 500, "message": "boom\n" + "x" * 5000}})
    spotify_router.add("GET", RECENT, httpx.Response(500, content=body.encode()))

    with caplog.at_level(logging.WARNING, logger="earworm.spotify"), pytest.raises(SpotifyUnavailable):
        make_client().recently_played()

    (record,) = [r for r in caplog.records if r.name == "earworm.spotify"]
    text = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "500" in text and "boom" in text
    assert "\n" not in text
    assert len(text) < 400
    assert ACCESS_TOKEN not in text


def test_the_error_message_never_holds_spotifys_body(make_client: MakeClient, spotify_router: SpotifyRouter) -> None:
    spotify_router.add("GET", ME, httpx.Response(403, json={"error": {"status": 403, "message": "<b>raw</b>"}}))

    with pytest.raises(SpotifyForbidden) as caught:
        make_client().me()
    assert "raw" not in caught.value.message


def test_the_client_repr_shows_no_token(make_client: MakeClient) -> None:
    assert ACCESS_TOKEN not in repr(make_client())


def test_technical_error_reports_hide_the_access_tokens(
    make_client: MakeClient, spotify_router: SpotifyRouter, spotify_payload: Payload, settings: Any
) -> None:
    """LG-1: an unexpected exception inside a request, here the retry after a refresh, must not put either
    token in Django's 500 report."""
    from django.views.debug import ExceptionReporter

    settings.DEBUG = False
    refreshed = "BQD-refreshed-secret-token"
    spotify_router.add(
        "GET", ME, httpx.Response(401, json=spotify_payload("error_401_expired")), RuntimeError("unexpected")
    )
    client = make_client(refresh_access_token=lambda: refreshed)

    try:
        client.me()
    except RuntimeError:
        exc_type, exc_value, tb = sys.exc_info()
    else:  # pragma: no cover
        pytest.fail("expected the RuntimeError to escape")

    # The HTML report is the one that lists each frame's local variables. It starts below this test's own
    # frame, whose locals and source lines hold the tokens by construction.
    assert tb is not None
    report = ExceptionReporter(None, exc_type, exc_value, tb.tb_next).get_traceback_html()
    assert "_send" in report and "_get" in report  # the frames are in the report, their secrets are not
    assert ACCESS_TOKEN not in report
    assert refreshed not in report


def test_the_context_manager_closes_the_connection(make_client: MakeClient) -> None:
    with make_client() as client:
        pass
    assert client._http.is_closed


def test_the_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        SpotifyClient(api_url="ftp://x", access_token="t", timeout=httpx.Timeout(1.0))
    with pytest.raises(ValueError):
        SpotifyClient(api_url="http://x", access_token="", timeout=httpx.Timeout(1.0))
