"""Builds the Spotify boundary's objects from settings: the one place where settings meet `earworm.spotify`."""

from collections.abc import Callable

import httpx
from django.conf import settings

from earworm.core.ratelimit import spotify_gate
from earworm.spotify.client import SpotifyClient
from earworm.spotify.oauth import SpotifyOAuth


def spotify_timeout() -> httpx.Timeout:
    return httpx.Timeout(settings.SPOTIFY_READ_TIMEOUT, connect=settings.SPOTIFY_CONNECT_TIMEOUT)


def spotify_oauth() -> SpotifyOAuth:
    return SpotifyOAuth(
        client_id=settings.SPOTIFY_CLIENT_ID,
        client_secret=settings.SPOTIFY_CLIENT_SECRET,
        accounts_url=settings.SPOTIFY_ACCOUNTS_URL,
        redirect_uri=settings.SPOTIFY_REDIRECT_URI,
        scopes=list(settings.SPOTIFY_SCOPES),
        timeout=spotify_timeout(),
    )


def spotify_client(
    *, access_token: str, kind: str = "sync", refresh_access_token: Callable[[], str] | None = None
) -> SpotifyClient:
    return SpotifyClient(
        api_url=settings.SPOTIFY_API_URL,
        access_token=access_token,
        refresh_access_token=refresh_access_token,
        kind=kind,
        gate=spotify_gate(),
        timeout=spotify_timeout(),
        max_response_bytes=settings.SPOTIFY_MAX_RESPONSE_BYTES,
    )
