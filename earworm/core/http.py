from typing import Any


def error_envelope(message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON error shape of the API: `{"message": str, "extra": {}}` (STYLE.md §5)."""
    return {"message": message, "extra": extra or {}}
