class ApplicationError(Exception):
    """An expected failure whose `message` is written for the user.

    `status_code` lets the JSON API tell a 409 from a 400 (STYLE.md §5); HTML views show `message`.
    """

    status_code = 400

    def __init__(self, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class SpotifyReloginRequired(ApplicationError):
    """Spotify no longer accepts the account's login (revoked, or the 6-month consent ran out)."""

    status_code = 409

    def __init__(self, message: str = "Spotify needs you to log in again before Earworm can keep syncing.") -> None:
        super().__init__(message, extra={"code": "spotify_relogin_required"})


class SpotifyBusy(ApplicationError):
    """Another process is refreshing the account's token and did not finish in time; try again shortly."""

    status_code = 503
    retry_after = 5

    def __init__(self, message: str = "Spotify is busy for your account; try again in a few seconds.") -> None:
        super().__init__(message, extra={"code": "spotify_busy"})
