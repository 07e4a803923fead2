"""Client for the Spotify Web API: typed values out, `SpotifyError`s raised (STYLE.md §1.2, §3, §5, §11.1-2).

One `httpx.Client` per instance, with the timeouts the caller passes in. The access token travels only in the
`Authorization: Bearer` header (SECURITY.md OA-10). Bodies are streamed and cut off at `max_response_bytes`
(RL-5). A 429 never makes this client sleep: it raises, and the task layer reschedules (RL-2).
"""

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

import httpx
from django.views.decorators.debug import sensitive_variables
from pydantic import BaseModel, ValidationError

from earworm.spotify.errors import (
    NOT_ALLOWLISTED_MARKER,
    PREMIUM_REQUIRED_MARKER,
    SpotifyAuthError,
    SpotifyBadRequest,
    SpotifyBadResponse,
    SpotifyError,
    SpotifyForbidden,
    SpotifyNotFound,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
    body_snippet,
    parse_retry_after,
    resume_time,
)
from earworm.spotify.gate import NullGate, SpotifyGate
from earworm.spotify.types import (
    AlbumData,
    ArtistData,
    PlayHistoryPage,
    SpotifyModel,
    TrackData,
    UserProfile,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_BATCH_IDS",
    "SpotifyClient",
    "parse_json_body",
    "parse_model",
]

logger = logging.getLogger("earworm.spotify")

DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024
# Spotify's documented maximum for `ids=` on the several-tracks and several-artists endpoints.
MAX_BATCH_IDS = 50
RECENTLY_PLAYED_MAX_LIMIT = 50
# Ordinary 429s from the 30-second window ask for seconds; anything longer than an hour is treated as an hour.
RATE_LIMIT_RETRY_AFTER_CAP = 3600.0
RATE_LIMIT_DEFAULT_RETRY_AFTER = 30.0
# Quota 429s have come with Retry-After of 48,925 to 86,400 s (spotify/FACTS.md §4); allow up to two days.
QUOTA_RETRY_AFTER_CAP = 2 * 86400.0
QUOTA_DEFAULT_RETRY_AFTER = 3600.0

# Spotify ids are base-62 strings (22 characters today). Checking them keeps a caller's value from changing
# the request path (`../me`) or smuggling extra query parameters.
_SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{1,64}")

_NULL_GATE = NullGate()

M = TypeVar("M", bound=BaseModel)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(body: bytes, *, status: int | None = None) -> object:
    """Decode a JSON response body strictly (no `NaN`/`Infinity`, bounded nesting).

    Returns the decoded value. Raises `SpotifyBadResponse` for anything that is not JSON.
    """
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # `from None`: the decode error keeps the whole document, which has no place in tracebacks.
        raise SpotifyBadResponse("Spotify sent a response that is not valid JSON.", status=status) from None


def parse_model(model: type[M], data: object, *, status: int | None = None) -> M:
    """Validate decoded JSON against one of the `types.py` models.

    Returns the model instance. Raises `SpotifyBadResponse` when the shape is wrong; the log line names the
    failing fields and error types, never the values.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['type']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)[:5]
        ]
        logger.warning("Spotify response did not match %s: %s", model.__name__, "; ".join(problems))
        raise SpotifyBadResponse("Spotify sent a response in an unexpected shape.", status=status) from None


class _SeveralTracks(SpotifyModel):
    """`GET /tracks?ids=` answer: one entry per requested id, `null` for unknown ids."""

    tracks: list[TrackData | None]


class _SeveralArtists(SpotifyModel):
    """`GET /artists?ids=` answer (`ManyArtists`): one entry per requested id, `null` for unknown ids."""

    artists: list[ArtistData | None]


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes | None  # None when the body was over the size cap
    retry_after: float | None
    quota_exceeded: bool


class _BodyTooLarge(Exception):
    pass


def _check_id(value: object) -> str:
    if not isinstance(value, str) or not _SPOTIFY_ID.fullmatch(value):
        raise ValueError(f"not a Spotify id: {value!r:.80}")
    return value


def _check_ids(values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise ValueError("pass a sequence of ids, not one string")
    ids = [_check_id(value) for value in values]
    if len(ids) > MAX_BATCH_IDS:
        raise ValueError(f"at most {MAX_BATCH_IDS} ids per request, got {len(ids)}")
    return ids


def _error_object(body: bytes | None) -> Mapping[str, object]:
    """Return the `{"error": {...}}` object of a Web API error body, or an empty mapping."""
    if not body or len(body) > 64 * 1024:
        return {}
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _is_quota_body(body: bytes | None) -> bool:
    reason = _error_object(body).get("reason")
    return isinstance(reason, str) and reason.upper() == "QUOTA_EXCEEDED"


class SpotifyClient:
    """A Web API client for one access token.

    `refresh_access_token`, when given, is called at most once per request after a 401 and must return a new
    access token (it may raise `SpotifyInvalidGrant` and friends, which pass through). `gate` is asked before
    every request and told about every answer. `calls_made` counts requests that went out.
    Use as a context manager, or call `close()`.
    """

    @sensitive_variables("access_token", "refresh_access_token")
    def __init__(
        self,
        *,
        api_url: str,
        access_token: str,
        refresh_access_token: Callable[[], str] | None = None,
        gate: SpotifyGate = _NULL_GATE,
        kind: str = "sync",
        timeout: httpx.Timeout,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retry_after_cap: float = RATE_LIMIT_RETRY_AFTER_CAP,
        quota_retry_after_cap: float = QUOTA_RETRY_AFTER_CAP,
    ) -> None:
        if not api_url.startswith(("https://", "http://")):
            raise ValueError("api_url must be an http(s) URL")
        if not access_token:
            raise ValueError("access_token must not be empty")
        if max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be positive")
        self._api_url = api_url.rstrip("/")
        self._access_token = access_token
        self._refresh_access_token = refresh_access_token
        self._gate = gate
        self._kind = kind
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._retry_after_cap = retry_after_cap
        self._quota_retry_after_cap = quota_retry_after_cap
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self.calls_made = 0

    def __repr__(self) -> str:
        return f"<SpotifyClient {self._api_url} kind={self._kind!r} calls_made={self.calls_made}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connections. Returns nothing."""
        self._http.close()

    # https://developer.spotify.com/documentation/web-api/reference/get-current-users-profile
    def me(self) -> UserProfile:
        """Fetch the current user's profile (`GET /me`).

        Returns a `UserProfile`; its `link_key` (`account_id`, else `id`) identifies the user.
        Raises `SpotifyError` subclasses (see the module's error mapping).
        """
        return parse_model(UserProfile, self._get("/me"))

    # https://developer.spotify.com/documentation/web-api/reference/get-recently-played
    def recently_played(
        self, *, limit: int = 50, after_ms: int | None = None, before_ms: int | None = None
    ) -> PlayHistoryPage:
        """Fetch the user's most recent plays (`GET /me/player/recently-played`), newest first.

        `after_ms`/`before_ms` are Unix milliseconds and mutually exclusive. Items whose `track` is null are
        kept for the caller to skip. Returns a `PlayHistoryPage` (an empty one has `cursors: None`).
        Raises `ValueError` for bad arguments, `SpotifyError` subclasses for Spotify's failures.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= RECENTLY_PLAYED_MAX_LIMIT:
            raise ValueError(f"limit must be an int from 1 to {RECENTLY_PLAYED_MAX_LIMIT}")
        if after_ms is not None and before_ms is not None:
            raise ValueError("after_ms and before_ms are mutually exclusive")
        params: dict[str, int] = {"limit": limit}
        for name, value in (("after", after_ms), ("before", before_ms)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}_ms must be a non-negative int")
            params[name] = value
        return parse_model(PlayHistoryPage, self._get("/me/player/recently-played", params))

    # https://developer.spotify.com/documentation/web-api/reference/get-track
    def track(self, track_id: str) -> TrackData:
        """Fetch one track (`GET /tracks/{id}`). Available in development mode.

        Returns a `TrackData`. Raises `ValueError` for a malformed id, `SpotifyNotFound` for an unknown one,
        other `SpotifyError` subclasses for Spotify's failures.
        """
        return parse_model(TrackData, self._get(f"/tracks/{_check_id(track_id)}"))

    # https://developer.spotify.com/documentation/web-api/reference/get-several-tracks
    def tracks(self, track_ids: Sequence[str]) -> list[TrackData | None]:
        """Fetch up to 50 tracks in one request (`GET /tracks?ids=`).

        Development-mode apps get 403 here (spotify/FACTS.md §3.3): `SpotifyForbidden` with `endpoint_closed`.
        Returns one entry per id, in order, `None` for ids Spotify does not know; `[]` for no ids, without a
        request. Raises `ValueError` for bad or too many ids, `SpotifyError` subclasses for failures.
        """
        ids = _check_ids(track_ids)
        if not ids:
            return []
        data = self._get("/tracks", {"ids": ",".join(ids)}, batch=True)
        several = parse_model(_SeveralTracks, data)
        if len(several.tracks) != len(ids):
            raise SpotifyBadResponse("Spotify answered for a different number of tracks than asked.")
        return several.tracks

    # https://developer.spotify.com/documentation/web-api/reference/get-an-artist
    def artist(self, artist_id: str) -> ArtistData:
        """Fetch one artist with genres and images (`GET /artists/{id}`). Available in development mode.

        Returns an `ArtistData` (`genres` is often empty; that is a normal answer). Raises `ValueError` for a
        malformed id, `SpotifyNotFound` for an unknown one, other `SpotifyError` subclasses for failures.
        """
        return parse_model(ArtistData, self._get(f"/artists/{_check_id(artist_id)}"))

    # https://developer.spotify.com/documentation/web-api/reference/get-multiple-artists
    def artists(self, artist_ids: Sequence[str]) -> list[ArtistData | None]:
        """Fetch up to 50 artists in one request (`GET /artists?ids=`).

        Development-mode apps get 403 here (spotify/FACTS.md §3.1): `SpotifyForbidden` with `endpoint_closed`.
        Returns one entry per id, in order, `None` for ids Spotify does not know; `[]` for no ids, without a
        request. Raises `ValueError` for bad or too many ids, `SpotifyError` subclasses for failures.
        """
        ids = _check_ids(artist_ids)
        if not ids:
            return []
        data = self._get("/artists", {"ids": ",".join(ids)}, batch=True)
        several = parse_model(_SeveralArtists, data)
        if len(several.artists) != len(ids):
            raise SpotifyBadResponse("Spotify answered for a different number of artists than asked.")
        return several.artists

    # https://developer.spotify.com/documentation/web-api/reference/get-an-album
    def album(self, album_id: str) -> AlbumData:
        """Fetch one album (`GET /albums/{id}`). Available in development mode.

        Returns an `AlbumData`. Raises `ValueError` for a malformed id, `SpotifyNotFound` for an unknown one,
        other `SpotifyError` subclasses for Spotify's failures.
        """
        return parse_model(AlbumData, self._get(f"/albums/{_check_id(album_id)}"))

    @sensitive_variables("new_token")
    def _get(self, path: str, params: Mapping[str, str | int] | None = None, *, batch: bool = False) -> object:
        """GET `path`, refreshing the token once on a 401 (SECURITY.md RF-6). Returns the decoded JSON."""
        answer = self._send(path, params)
        if answer.status == 401 and self._refresh_access_token is not None:
            logger.info("Spotify GET %s answered 401; refreshing the access token once.", path)
            new_token = self._refresh_access_token()
            if not isinstance(new_token, str) or not new_token:
                raise SpotifyAuthError("Refreshing the Spotify access token gave no token.", status=None)
            self._access_token = new_token
            answer = self._send(path, params)
        if answer.body is None:
            logger.warning(
                "Spotify GET %s answered %s with more than %s bytes.",
                path,
                answer.status,
                self._max_response_bytes,
            )
            raise SpotifyBadResponse("Spotify sent a response that is too large.", status=answer.status)
        if 200 <= answer.status < 300:
            try:
                return parse_json_body(answer.body, status=answer.status)
            except SpotifyBadResponse:
                logger.warning(
                    "Spotify GET %s answered %s with a body that is not JSON: %s",
                    path,
                    answer.status,
                    body_snippet(answer.body),
                )
                raise
        error = self._error_for(answer, batch=batch)
        logger.warning(
            "Spotify GET %s answered %s (%s): %s",
            path,
            answer.status,
            type(error).__name__,
            body_snippet(answer.body),
        )
        raise error

    # Every local here and in the frames below (httpx) may hold the bearer token: hide them all from error
    # reports (SECURITY.md LG-1).
    @sensitive_variables()
    def _send(self, path: str, params: Mapping[str, str | int] | None) -> _Answer:
        """Ask the gate, send one GET, read the body up to the cap.

        Returns the answer. Raises transport errors as `SpotifyUnavailable`/`SpotifyBadResponse`; passes the
        gate's refusals through.
        """
        self._gate.before_request(kind=self._kind)
        self.calls_made += 1
        try:
            with self._http.stream(
                "GET",
                f"{self._api_url}{path}",
                params=params,
                # httpx.Headers masks Authorization in its repr. A plain dict would show the token in error
                # reports: `Client.stream` is a generator, and Django's `sensitive_variables` cannot see
                # through generator frames.
                headers=httpx.Headers({"Authorization": f"Bearer {self._access_token}"}),
            ) as response:
                status = response.status_code
                retry_after_header = response.headers.get("Retry-After")
                try:
                    body: bytes | None = self._read_capped(response)
                except _BodyTooLarge:
                    body = None
        except httpx.TimeoutException as exc:
            logger.warning("Spotify GET %s timed out (%s).", path, type(exc).__name__)
            raise SpotifyUnavailable("Spotify did not answer in time.") from None
        except httpx.DecodingError:
            logger.warning("Spotify GET %s sent a body that could not be decoded.", path)
            raise SpotifyBadResponse("Spotify sent a response that could not be decoded.") from None
        except httpx.RequestError as exc:
            logger.warning("Spotify GET %s failed: %s.", path, type(exc).__name__)
            raise SpotifyUnavailable("Could not reach Spotify.") from None
        quota_exceeded = status == 429 and _is_quota_body(body)
        retry_after = self._retry_after(retry_after_header, status=status, quota_exceeded=quota_exceeded)
        self._gate.after_response(status=status, retry_after=retry_after, quota_exceeded=quota_exceeded)
        return _Answer(status=status, body=body, retry_after=retry_after, quota_exceeded=quota_exceeded)

    def _read_capped(self, response: httpx.Response) -> bytes:
        """Read the decoded body, giving up past `max_response_bytes` (SECURITY.md RL-5)."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_response_bytes:
            raise _BodyTooLarge
        buffer = bytearray()
        for chunk in response.iter_bytes():
            buffer += chunk
            if len(buffer) > self._max_response_bytes:
                raise _BodyTooLarge
        return bytes(buffer)

    def _retry_after(self, header: str | None, *, status: int, quota_exceeded: bool) -> float | None:
        if quota_exceeded:
            return parse_retry_after(
                header, now=self._clock(), default=QUOTA_DEFAULT_RETRY_AFTER, cap=self._quota_retry_after_cap
            )
        if status == 429:
            return parse_retry_after(
                header, now=self._clock(), default=RATE_LIMIT_DEFAULT_RETRY_AFTER, cap=self._retry_after_cap
            )
        if header is None:
            return None
        return parse_retry_after(
            header, now=self._clock(), default=RATE_LIMIT_DEFAULT_RETRY_AFTER, cap=self._retry_after_cap
        )

    def _error_for(self, answer: _Answer, *, batch: bool) -> SpotifyError:
        """Map a non-2xx answer to a typed error (STYLE.md §5)."""
        status = answer.status
        if status == 401:
            return SpotifyAuthError()
        if status == 403:
            raw_message = _error_object(answer.body).get("message")
            text = raw_message.lower() if isinstance(raw_message, str) else ""
            if NOT_ALLOWLISTED_MARKER in text:
                return SpotifyForbidden(
                    "This Spotify user is not on the app's user list in the Spotify Developer Dashboard.",
                    not_allowlisted=True,
                )
            if PREMIUM_REQUIRED_MARKER in text:
                return SpotifyForbidden(
                    "The owner of this Spotify app needs an active Premium subscription.",
                    premium_required=True,
                )
            if batch:
                return SpotifyForbidden(
                    "Spotify does not offer this batch endpoint to this app (development mode).",
                    endpoint_closed=True,
                )
            return SpotifyForbidden()
        if status == 404:
            return SpotifyNotFound()
        if status == 429:
            retry_after = answer.retry_after if answer.retry_after is not None else RATE_LIMIT_DEFAULT_RETRY_AFTER
            if answer.quota_exceeded:
                return SpotifyQuotaExceeded(retry_after, resume_time(self._clock(), retry_after), status=status)
            return SpotifyRateLimited(retry_after, status=status)
        if status >= 500:
            return SpotifyUnavailable(f"Spotify answered with a server error ({status}).", status=status)
        if 300 <= status < 400:
            return SpotifyBadResponse("Spotify answered with an unexpected redirect.", status=status)
        if status < 200:
            return SpotifyBadResponse("Spotify answered with an unexpected status.", status=status)
        return SpotifyBadRequest(f"Spotify refused the request ({status}).", status=status)
