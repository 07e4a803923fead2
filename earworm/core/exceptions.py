class ApplicationError(Exception):
    """An expected failure whose `message` is written for the user.

    `status_code` lets the JSON API tell a 409 from a 400 (STYLE.md §5); HTML views show `message`.
    """

    status_code = 400

    def __init__(self, message: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
