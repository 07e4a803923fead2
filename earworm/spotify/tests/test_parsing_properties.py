"""Property: whatever JSON Spotify sends, the recently-played parser yields a page or a SpotifyBadResponse
(SECURITY.md §11)."""

import contextlib
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earworm.spotify.client import SpotifyClient, parse_json_body, parse_model
from earworm.spotify.errors import SpotifyBadResponse
from earworm.spotify.types import PlayHistoryPage

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right value, or null, or any other JSON value."""
    return st.one_of(strategy, st.none(), json_values)


timestamps = st.sampled_from(
    ["2026-04-20T10:00:00.000Z", "2026-04-20T10:00:00Z", "2026-04-20T10:00:00+00:00", "2026-04-20T10:00:00", ""]
)
artists = st.lists(
    st.fixed_dictionaries({"id": maybe(st.text(max_size=22)), "name": maybe(st.text(max_size=10))}), max_size=2
)
tracks = st.fixed_dictionaries(
    {
        "id": maybe(st.text(max_size=22)),
        "name": maybe(st.text(max_size=10)),
        "is_local": maybe(st.booleans()),
        "duration_ms": maybe(st.integers(min_value=0, max_value=10**7)),
        "artists": maybe(artists),
        "album": maybe(
            st.fixed_dictionaries(
                {"name": maybe(st.text(max_size=10)), "release_date": maybe(st.sampled_from(["1981", "1981-02"]))}
            )
        ),
        "external_ids": maybe(st.dictionaries(st.text(max_size=5), maybe(st.text(max_size=12)), max_size=2)),
    }
)
items = st.fixed_dictionaries(
    {"track": maybe(tracks), "played_at": maybe(timestamps), "context": maybe(st.fixed_dictionaries({}))}
)
spotify_shaped_pages = st.fixed_dictionaries(
    {
        "items": maybe(st.lists(items, max_size=3)),
        "next": maybe(st.text(max_size=10)),
        "cursors": maybe(st.fixed_dictionaries({"after": maybe(st.text(max_size=13))})),
        "limit": maybe(st.integers()),
    }
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(json_values, spotify_shaped_pages))
def test_any_json_yields_a_page_or_a_bad_response(data: Any) -> None:
    try:
        page = parse_model(PlayHistoryPage, data)
    except SpotifyBadResponse:
        return
    assert isinstance(page, PlayHistoryPage)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), spotify_shaped_pages.map(lambda page: json.dumps(page).encode())))
def test_any_body_through_the_client_yields_a_page_or_a_bad_response(body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with SpotifyClient(
        api_url="http://spotify.invalid/v1",
        access_token="BQD-property-test",
        timeout=httpx.Timeout(1.0),
        transport=transport,
    ) as client:
        try:
            page = client.recently_played()
        except SpotifyBadResponse:
            return
    assert isinstance(page, PlayHistoryPage)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=100))
def test_any_bytes_decode_to_json_or_a_bad_response(body: bytes) -> None:
    with contextlib.suppress(SpotifyBadResponse):
        parse_json_body(body)
