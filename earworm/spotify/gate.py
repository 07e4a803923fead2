"""The gate every Web API call passes through (DESIGN.md §5, SECURITY.md RL-1, RL-4).

Spotify counts calls per client id across all processes, so the real gate is a database row implemented in
`earworm/core/ratelimit.py`. This module only defines the protocol, keeping `earworm/spotify/` free of models.
"""

from typing import Protocol, runtime_checkable

__all__ = ["NullGate", "SpotifyGate"]


@runtime_checkable
class SpotifyGate(Protocol):
    """Admission control for Web API calls."""

    def before_request(self, *, kind: str) -> None:
        """Admit one call of `kind` ("sync", "enrich", "login", …) or refuse it.

        Returns nothing when the call may go ahead. Raises `SpotifyQuotaExceeded` while the quota pause lasts,
        or `SpotifyRateLimited` when the window is full; the client then makes no HTTP request.
        """
        ...

    def after_response(self, *, status: int, retry_after: float | None, quota_exceeded: bool) -> None:
        """Record Spotify's answer to an admitted call.

        `retry_after` is the parsed and capped `Retry-After` in seconds, or `None` when the header was absent;
        `quota_exceeded` is true for a 429 whose body says `QUOTA_EXCEEDED`. Not called when no answer arrived
        (timeout, connection error). Returns nothing; should not raise.
        """
        ...


class NullGate:
    """A gate that admits everything and records nothing: for tests, demo mode and the OAuth login."""

    def before_request(self, *, kind: str) -> None:
        """Admit the call. Returns nothing, raises nothing."""

    def after_response(self, *, status: int, retry_after: float | None, quota_exceeded: bool) -> None:
        """Ignore the answer. Returns nothing, raises nothing."""
