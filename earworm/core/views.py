import logging
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from huey.contrib.djhuey import HUEY

from earworm.core.models import QuotaGate

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and operators: 503 when the database or the queue is down.

    Spotify's state (a pause, a configuration error) is reported but does not fail the check: a web node
    with a misconfigured client id still serves stored history.
    """
    checks: dict[str, object] = {}
    gates: list[dict[str, Any]] = []
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        gates = [
            dict(row) for row in QuotaGate.objects.values("client_id", "paused_until", "pause_reason", "config_error")
        ]
        checks["spotify"] = [
            {
                "client_id": gate["client_id"],
                "paused_until": gate["paused_until"].isoformat() if gate["paused_until"] else None,
                "pause_reason": gate["pause_reason"] or None,
                "configuration_error": gate["config_error"] or None,
            }
            for gate in gates
        ]
    except DatabaseError:
        logger.exception("Health check: database unavailable.")
        checks["database"] = "unavailable"
        healthy = False
    try:
        checks["queue"] = {"status": "ok", "pending": HUEY.pending_count()}
    except Exception:  # any storage error means the queue is down, whatever the backend raised
        logger.exception("Health check: job queue unavailable.")
        checks["queue"] = {"status": "unavailable"}
        healthy = False
    config_errors = any(gate["config_error"] for gate in gates)
    status = "ok" if healthy and not config_errors else ("degraded" if healthy else "unavailable")
    response = JsonResponse({"status": status, **checks}, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response
