"""Structured logs: one JSON object per line, each with the request id, none with a secret.

`logging_config()` builds the LOGGING dict for settings and for gunicorn. Every line passes through
`redact()`, which blanks the values of token-like parameters (`access_token=`, `"refresh_token": "…"`,
`code=`, `Authorization: Bearer …`) wherever a message or a traceback carries them (SECURITY.md LG-1).
JSON encoding also escapes newlines and control characters in user-controlled text, so a display name or
a file name cannot forge a log line (LG-2).
"""

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Set by earworm.core.middleware.RequestIdMiddleware for the length of one request.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REDACTED = "[redacted]"
_SECRET_NAMES = r"access_token|refresh_token|id_token|code_verifier|code|client_secret|password|api_token|token|secret"
_SECRET_PATTERNS = [
    # Query strings, form bodies and repr()s of keyword arguments: access_token=AQD…, code=…
    re.compile(rf"""(?i)\b((?:{_SECRET_NAMES}))=["']?(?!{re.escape(REDACTED)})[^&\s"',;)]+["']?"""),
    # JSON bodies and dict reprs: "refresh_token": "AQB…", 'code': '…'
    re.compile(rf"""(?i)(["'](?:{_SECRET_NAMES})["']\s*:\s*)(["'])(?!{re.escape(REDACTED)}).*?\2"""),
    # Authorization headers.
    re.compile(r"(?i)\b(Bearer|Basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]+"),
]

# Attributes every LogRecord has; anything else was passed in `extra=` and goes into the JSON object.
_RECORD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    """Return `text` with the values of token-like parameters replaced by "[redacted]"."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class RequestIdFilter(logging.Filter):
    """Give every record a `request_id` attribute: the current request's, or None outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # django.request logs a response after the middleware has returned, but passes the request along.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key in payload:
                continue
            if key == "request":
                # django.request passes the HttpRequest, whose repr holds the query string (OAuth `code`).
                payload["path"] = getattr(value, "path", None)
            elif value is None or isinstance(value, bool | int | float):
                payload[key] = value
            else:
                payload[key] = redact(value if isinstance(value, str) else str(value))
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        # ensure_ascii also escapes U+2028 and friends, which some log shippers treat as line breaks.
        return json.dumps(payload, default=str, ensure_ascii=True)


class PlainFormatter(logging.Formatter):
    """Readable lines for `make run`, redacted like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return redact(super().format(record))


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: apply `config`, and send Python warnings through it as well (Django 5.2 does not)."""
    logging.captureWarnings(True)
    logging.config.dictConfig(config)


def logging_config(*, json_logs: bool, level: str) -> dict[str, Any]:
    """Return a `logging.config.dictConfig` dict: everything to stderr, JSON or plain, through redaction."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "earworm.core.logging.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "earworm.core.logging.JsonFormatter"},
            "plain": {"()": "earworm.core.logging.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json_logs else "plain",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give "django" handlers of its own; route it through ours instead.
            "django": {"handlers": [], "level": level, "propagate": True},
            # httpx logs every request URL at INFO; URLs never carry tokens (OA-10), but keep the noise down.
            # Django's defaults give Python warnings a DEBUG-only handler; route them through ours.
            "py.warnings": {"handlers": [], "propagate": True},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "gunicorn.error": {"handlers": [], "level": level, "propagate": True},
            # Access lines come from RequestIdMiddleware, without query strings (OAuth `code`, `state`).
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # A handler of its own: run_huey adds a plain-text one to a "huey" logger that has none.
            "huey": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }
