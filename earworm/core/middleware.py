"""Request-wide middleware: request ids and access lines, the upload cap, and no-store for personal pages."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from earworm.core.http import error_envelope
from earworm.core.logging import request_id_var

logger = logging.getLogger("earworm.request")

# An id from the reverse proxy (nginx `$request_id`, Caddy `{http.request.uuid}`) is kept when it looks like
# one; anything else is replaced, so a client cannot put arbitrary text into every log line.
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
REQUEST_ID_HEADER = "X-Request-ID"
# Load balancers probe /healthz every few seconds; those lines are DEBUG.
_QUIET_PATHS = ("/healthz", "/static/")


class RequestIdMiddleware:
    """Tag the request, its log lines and its response with one id, and log one access line per request.

    The access line holds the path without its query string: the OAuth callback carries `code` and `state`
    there (SECURITY.md LG-1). Goes first in MIDDLEWARE so every other middleware's lines carry the id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            level = logging.DEBUG if request.path.startswith(_QUIET_PATHS) else logging.INFO
            logger.log(
                level,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class UploadSizeLimitMiddleware:
    """Refuse a body larger than IMPORT_MAX_UPLOAD_BYTES (plus room for multipart framing) before it is read.

    Django streams file uploads to disk without a total cap; this stops an oversized upload at its
    Content-Length (SECURITY.md ASVS 5.2.1). The import service checks the file's own size as well.
    """

    MULTIPART_OVERHEAD = 1024 * 1024

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.IMPORT_MAX_UPLOAD_BYTES + self.MULTIPART_OVERHEAD
        if length > limit:
            megabytes = settings.IMPORT_MAX_UPLOAD_BYTES // (1024 * 1024)
            message = f"The upload is too large: at most {megabytes} MB."
            logger.warning("Refused a %d-byte request body to %s.", length, request.path)
            if request.path.startswith("/api/"):
                return JsonResponse(error_envelope(message), status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response for a logged-in user and on the JSON API (ASVS 14.3.2).

    A view that sets its own Cache-Control keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            response["Cache-Control"] = "no-store"
        return response
