"""WSGI application and threaded server: routes, call counters, injected faults."""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import accounts, control, webapi
from .http import STATUS_TEXT, Request, Response, api_error, html_response, json_response
from .state import State

GENERIC_FAULTS = ("429", "quota", "500", "502", "503", "timeout", "malformed_json", "truncated")
_5XX_MESSAGES = {"500": "Server error", "502": "Bad gateway", "503": "Service unavailable"}


def _apply_fault(kind: str, retry_after: int, response: Callable[[], Response], delay: float) -> Response:
    if kind == "429":
        return webapi.rate_limited("rate", retry_after)
    if kind == "quota":
        return webapi.rate_limited("quota", retry_after)
    if kind in _5XX_MESSAGES:
        return api_error(int(kind), _5XX_MESSAGES[kind])
    real = response()
    if kind == "timeout":
        # Answer only after the client has given up; the request still took effect server-side.
        real.delay_seconds = delay
    elif kind == "malformed_json":
        real.body = real.body[: max(1, len(real.body) // 2)] + b"<!-- upstream error"
    elif kind == "truncated":
        real.declared_length = len(real.body)
        real.body = real.body[: max(1, len(real.body) // 2)]
    return real


def _index(state: State, req: Request) -> Response:
    clients = "".join(f"<li><code>{html.escape(c)}</code></li>" for c in state.clients)
    return html_response(
        200,
        "<!doctype html><html><head><meta charset='utf-8'><title>Spotify emulator</title></head><body>"
        f"<h1>Spotify emulator</h1><p>Accounts: <code>{req.base_url}</code>; Web API: "
        f"<code>{req.api_url}</code>; control: <code>{req.base_url}/_emulator/</code></p>"
        f"<p>Clients:</p><ul>{clients}</ul></body></html>",
    )


class App:
    def __init__(self, state: State) -> None:
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = Request.from_environ(environ)
        # In flight from arrival until the answer is handed to the server, including an injected delay.
        tok = webapi.peek_token(self.state, req) if req.path.startswith("/v1/") else None
        user_id = tok.user_id if tok else None
        if user_id:
            self.state.request_started(user_id)
        try:
            try:
                resp = self.dispatch(req)
            except Exception as exc:  # an emulator bug must still answer like a server would
                print(f"emulator error on {req.method} {req.path}: {exc!r}", file=sys.stderr)
                resp = api_error(500, "Server error")
            if resp.delay_seconds:
                time.sleep(resp.delay_seconds)
        finally:
            if user_id:
                self.state.request_finished(user_id)
        length = resp.declared_length if resp.declared_length is not None else len(resp.body)
        headers = [("Content-Type", resp.content_type), ("Content-Length", str(length)), *resp.headers]
        start_response(f"{resp.status} {STATUS_TEXT.get(resp.status, 'Status')}", headers)
        return [resp.body]

    def dispatch(self, req: Request) -> Response:
        state, path = self.state, req.path
        if path.startswith("/_emulator"):
            return control.handle(state, req)
        if path == "/":
            return _index(state, req)
        if path == "/authorize":
            state.count("authorize")
            return accounts.authorize(state, req)
        if path == "/authorize/consent" and req.method == "POST":
            state.count("consent")
            return accounts.consent(state, req)
        if path == "/api/token":
            return self._guarded(req, "token", None, None, lambda: accounts.token(state, req))
        if path.startswith("/v1/"):
            endpoint, ident = webapi.endpoint_name(path)
            tok = webapi.peek_token(state, req)
            return self._guarded(
                req, endpoint, tok.client_id if tok else None, tok.user_id if tok else None,
                lambda: webapi.handle(state, req, endpoint, ident),
            )  # fmt: skip
        return json_response(404, {"error": {"status": 404, "message": "Service not found"}})

    def _guarded(
        self,
        req: Request,
        endpoint: str,
        client_id: str | None,
        user_id: str | None,
        handler: Callable[[], Response],
    ) -> Response:
        """Count the call, apply an injected fault if one matches, else run the handler."""
        state = self.state
        if endpoint == "token":
            client_id = _token_client(req)
        state.count(endpoint, client_id, user_id or None)
        fault = state.take_fault(endpoint, GENERIC_FAULTS)
        if fault is None:
            resp = handler()
        else:
            delay = fault.delay_seconds if fault.delay_seconds is not None else state.settings.timeout_seconds
            resp = _apply_fault(fault.kind, fault.retry_after, handler, delay)
        state.count_status(endpoint, resp.status)
        return resp


def _token_client(req: Request) -> str | None:
    import base64
    import binascii

    auth = req.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:].strip()).decode("utf-8", "replace").partition(":")[0] or None
        except binascii.Error:
            return None
    return req.form().get("client_id")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a sleeping "timeout" fault must not block shutdown
    allow_reuse_address = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    verbose = False

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


def make(state: State, host: str, port: int, verbose: bool = False) -> ThreadingWSGIServer:
    QuietHandler.verbose = verbose
    return make_server(host, port, App(state), server_class=ThreadingWSGIServer, handler_class=QuietHandler)  # type: ignore[return-value]
