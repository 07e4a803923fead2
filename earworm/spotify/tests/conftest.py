"""Fixtures for the Spotify boundary's tests: payload loader, a strict mock transport, client factories."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from earworm.spotify.client import SpotifyClient
from earworm.spotify.oauth import SpotifyOAuth

PAYLOADS = Path(__file__).parent / "payloads"

API_URL = "http://spotify.invalid/v1"
ACCOUNTS_URL = "http://spotify.invalid"
ACCESS_TOKEN = "BQD-initial-access-token-value"
CLIENT_ID = "earworm-test-client"
CLIENT_SECRET = "earworm-test-secret"
REDIRECT_URI = "http://127.0.0.1:8000/api/callback/"
SCOPES = ["user-read-recently-played"]

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def load_payload(name: str) -> Any:
    """Return a fresh copy of `payloads/<name>.json`, decoded."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def spotify_payload() -> Callable[[str], Any]:
    """`spotify_payload("recently_played")` → the decoded hand-written payload (a fresh copy each call)."""
    return load_payload


class SpotifyRouter:
    """A strict `httpx.MockTransport` handler, like allauth's `tests/mocking.py`.

    Replies are queued per (method, path) and used once each, in order; a request for an unknown route, or one
    more than was queued, fails the test. Every request is recorded in `requests`.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._routes: dict[tuple[str, str], list[Reply]] = {}

    def add(self, method: str, path: str, *replies: Reply) -> None:
        self._routes.setdefault((method.upper(), path), []).extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if key not in self._routes:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        queue = self._routes[key]
        if not queue:
            raise AssertionError(f"more requests than expected: {request.method} {request.url}")
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def spotify_router() -> Iterator[SpotifyRouter]:
    """A strict router; after the test, no recorded URL may carry `access_token=` (SECURITY.md OA-10)."""
    router = SpotifyRouter()
    yield router
    for request in router.requests:
        assert "access_token=" not in str(request.url)


@pytest.fixture
def make_client(spotify_router: SpotifyRouter) -> Iterator[Callable[..., SpotifyClient]]:
    """Build `SpotifyClient`s wired to `spotify_router`; keyword arguments override the defaults."""
    clients: list[SpotifyClient] = []

    def make(**overrides: Any) -> SpotifyClient:
        kwargs: dict[str, Any] = {
            "api_url": API_URL,
            "access_token": ACCESS_TOKEN,
            "timeout": httpx.Timeout(2.0),
            "transport": spotify_router.transport(),
        }
        kwargs.update(overrides)
        client = SpotifyClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_oauth(spotify_router: SpotifyRouter) -> Callable[..., SpotifyOAuth]:
    """Build `SpotifyOAuth`s wired to `spotify_router`; keyword arguments override the defaults."""

    def make(**overrides: Any) -> SpotifyOAuth:
        kwargs: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "accounts_url": ACCOUNTS_URL,
            "redirect_uri": REDIRECT_URI,
            "scopes": SCOPES,
            "timeout": httpx.Timeout(2.0),
            "transport": spotify_router.transport(),
        }
        kwargs.update(overrides)
        return SpotifyOAuth(**kwargs)

    return make
