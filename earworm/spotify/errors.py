"""Typed errors raised by the Spotify boundary (STYLE.md §5).

Every error carries `.permanent`: `True` means retrying the same call will not help (a task logs and stops),
`False` means it may succeed later (a task retries). Messages are short English sentences, safe to log and to
show; they never contain tokens or Spotify's raw body. The sanitized body snippet goes only into the
WARNING log line the client writes.
"""

import email.utils
import math
import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "SpotifyAuthError",
    "SpotifyBadRequest",
    "SpotifyBadResponse",
    "SpotifyError",
    "SpotifyForbidden",
    "SpotifyInvalidClient",
    "SpotifyInvalidGrant",
    "SpotifyNotFound",
    "SpotifyQuotaExceeded",
    "SpotifyRateLimited",
    "SpotifyUnavailable",
    "body_snippet",
    "parse_retry_after",
    "resume_time",
]

SNIPPET_MAX_CHARS = 200

# Spotify's 403 text for users missing from the app's allow-list (spotify/FACTS.md §1.4).
NOT_ALLOWLISTED_MARKER = "not registered in the developer dashboard"
# Spotify's 403 text when the app owner lost Premium (spotify/FACTS.md §1.4).
PREMIUM_REQUIRED_MARKER = "premium subscription required"


class SpotifyError(Exception):
    """Base of every error the Spotify boundary raises.

    `status` is the HTTP status when Spotify answered, `None` otherwise (timeout, refused by the gate).
    """

    def __init__(self, message: str, *, status: int | None = None, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, permanent={self.permanent!r})"


class SpotifyAuthError(SpotifyError):
    """The Web API answered 401. Not permanent by itself: one token refresh may fix it (SECURITY.md RF-6)."""

    def __init__(
        self,
        message: str = "Spotify rejected the access token.",
        *,
        status: int | None = 401,
        permanent: bool = False,
    ) -> None:
        super().__init__(message, status=status, permanent=permanent)


class SpotifyInvalidGrant(SpotifyAuthError):
    """The token endpoint answered `invalid_grant`: refresh token revoked or expired, or a bad code.

    Permanent.

    A subclass of `SpotifyAuthError` so that "permanent auth error → needs re-login" (STYLE.md §5) covers it.
    """

    def __init__(
        self,
        message: str = "Spotify no longer accepts this login; the user must log in again.",
        *,
        status: int | None = 400,
    ) -> None:
        super().__init__(message, status=status, permanent=True)


class SpotifyInvalidClient(SpotifyError):
    """The token endpoint answered `invalid_client`: the operator's client id or secret is wrong. Permanent.

    Deliberately not a `SpotifyAuthError`: it is no reason to send users back to the login page.
    """

    def __init__(
        self,
        message: str = "Spotify rejected the app's client credentials; check SPOTIFY_CLIENT_ID and SECRET.",
        *,
        status: int | None = 400,
    ) -> None:
        super().__init__(message, status=status, permanent=True)


class SpotifyForbidden(SpotifyError):
    """The Web API answered 403. Permanent.

    `not_allowlisted`: the user is missing from the app's allow-list in the Developer Dashboard.
    `premium_required`: the app owner has no Premium subscription.
    `endpoint_closed`: a batch endpoint refused a development-mode app; use the per-item endpoint instead.
    """

    def __init__(
        self,
        message: str = "Spotify refused access to this resource.",
        *,
        status: int | None = 403,
        not_allowlisted: bool = False,
        premium_required: bool = False,
        endpoint_closed: bool = False,
    ) -> None:
        super().__init__(message, status=status, permanent=True)
        self.not_allowlisted = not_allowlisted
        self.premium_required = premium_required
        self.endpoint_closed = endpoint_closed


class SpotifyNotFound(SpotifyError):
    """The Web API answered 404. Permanent."""

    def __init__(self, message: str = "Spotify does not know this item.", *, status: int | None = 404) -> None:
        super().__init__(message, status=status, permanent=True)


class SpotifyBadRequest(SpotifyError):
    """Spotify refused the request itself (400 or another unexpected 4xx). Permanent.

    `error_code` is the token endpoint's OAuth error code (`invalid_request`, `invalid_scope`, …), if any.
    """

    def __init__(
        self,
        message: str = "Spotify refused the request.",
        *,
        status: int | None = 400,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, permanent=True)
        self.error_code = error_code


class SpotifyRateLimited(SpotifyError):
    """A 429 from the rolling 30-second limit, or the gate's refusal. Transient: retry in `retry_after` s."""

    def __init__(
        self,
        retry_after: float,
        message: str | None = None,
        *,
        status: int | None = None,
    ) -> None:
        if not math.isfinite(retry_after) or retry_after < 0:
            raise ValueError("retry_after must be a finite, non-negative number of seconds")
        super().__init__(
            message or f"Spotify asked to slow down; retry in {retry_after:.0f} seconds.",
            status=status,
            permanent=False,
        )
        self.retry_after = retry_after


class SpotifyQuotaExceeded(SpotifyError):
    """A 429 whose body says `QUOTA_EXCEEDED`, or the gate closed for it. Transient: resume at `resume_at`.

    `resume_at` must be an aware datetime: Huey reads a naive `eta` as local time (STYLE.md §8).
    """

    def __init__(
        self,
        retry_after: float,
        resume_at: datetime,
        message: str | None = None,
        *,
        status: int | None = None,
    ) -> None:
        if not math.isfinite(retry_after) or retry_after < 0:
            raise ValueError("retry_after must be a finite, non-negative number of seconds")
        if resume_at.tzinfo is None or resume_at.utcoffset() is None:
            raise ValueError("resume_at must be an aware datetime")
        super().__init__(
            message or f"The Spotify request quota is used up until {resume_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
            status=status,
            permanent=False,
        )
        self.retry_after = retry_after
        self.resume_at = resume_at


class SpotifyUnavailable(SpotifyError):
    """Spotify answered 5xx, timed out or could not be reached. Transient."""

    def __init__(self, message: str = "Spotify is unavailable right now.", *, status: int | None = None) -> None:
        super().__init__(message, status=status, permanent=False)


class SpotifyBadResponse(SpotifyError):
    """Spotify's answer was not JSON, not the expected shape, or over the size cap. Permanent."""

    def __init__(
        self, message: str = "Spotify sent a response Earworm cannot read.", *, status: int | None = None
    ) -> None:
        super().__init__(message, status=status, permanent=True)


_DELTA_SECONDS = re.compile(r"[+-]?\d{1,20}(?:\.\d{1,6})?")


def parse_retry_after(value: str | None, *, now: datetime, default: float = 30.0, cap: float) -> float:
    """Read a `Retry-After` header (SECURITY.md RL-2, RL-3).

    Accepts delay-seconds (`"3"`) or an HTTP-date. Returns the wait in seconds, clamped to `0 ≤ wait ≤ cap`:
    negative values and past dates give 0, a missing or unparsable value gives `default` (capped too).
    `now` is the reference for HTTP-dates; a naive `now` is read as UTC. Raises nothing.
    """
    default = min(max(default, 0.0), cap)
    if value is None:
        return default
    text = value.strip()
    if not text:
        return default
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return default
    return min(max(seconds, 0.0), cap)


def resume_time(now: datetime, retry_after: float) -> datetime:
    """Return the aware time `retry_after` seconds after `now` (naive `now` is read as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now + timedelta(seconds=retry_after)


_TOKEN_VALUE = re.compile(r'("?(?:access_token|refresh_token|code|code_verifier)"?\s*[:=]\s*"?)[^"&\s,}]+')


def body_snippet(body: bytes | str | None, *, limit: int = SNIPPET_MAX_CHARS) -> str:
    """Return a log-safe excerpt of a response body: token-like values redacted, control characters escaped,
    at most `limit` characters (SECURITY.md LG-1, LG-2). Raises nothing."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    # Cut generously first so the regex never scans a 5 MB body, then redact, escape and cut exactly.
    text = _TOKEN_VALUE.sub(r"\1[redacted]", text[: limit * 4])
    text = text.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
