"""Tiny request/response helpers over WSGI (standard library only)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    host: str

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        return cls(
            environ["REQUEST_METHOD"].upper(),
            path,
            parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers,
            body,
            host,
        )

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}/v1"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"
    # Set to a larger number than len(body) to simulate a truncated body.
    declared_length: int | None = None
    delay_seconds: float = 0.0


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(status, body, list(headers or []))


def api_error(status: int, message: str, headers: list[tuple[str, str]] | None = None, **extra: Any) -> Response:
    """Web API error body: ``{"error": {"status": N, "message": "..."}}`` (spec ``ErrorObject``)."""
    return json_response(status, {"error": {"status": status, "message": message, **extra}}, headers)


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """Accounts-service error body: ``{"error": "...", "error_description": "..."}``."""
    return json_response(status, {"error": error, "error_description": description})


def html_response(status: int, html: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, html.encode("utf-8"), list(headers or []), "text/html; charset=utf-8")


def redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, b"", [("Location", location), *(headers or [])], "text/plain")


STATUS_TEXT = {
    200: "OK", 204: "No Content", 302: "Found", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}  # fmt: skip
