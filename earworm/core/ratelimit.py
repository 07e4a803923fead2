"""The Spotify gate shared by every process: pause state and operator-facing configuration errors.

One `QuotaGate` row per Spotify client id (DESIGN.md §5). This module records what Spotify told us; the
request budgets that keep callers under the limits build on the same row.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from earworm.core.models import QuotaGate

logger = logging.getLogger(__name__)


def quota_gate_get(*, client_id: str | None = None) -> QuotaGate:
    gate, _ = QuotaGate.objects.get_or_create(client_id=client_id or settings.SPOTIFY_CLIENT_ID)
    return gate


def quota_gate_record_config_error(*, message: str, client_id: str | None = None) -> None:
    """Record an operator problem (e.g. `invalid_client`) for /healthz and the admin, and log it loudly."""
    gate = quota_gate_get(client_id=client_id)
    QuotaGate.objects.filter(pk=gate.pk).update(config_error=message[:2000], config_error_at=timezone.now())
    logger.error("Spotify configuration error for client %s: %s", gate.client_id, message)


def quota_gate_clear_config_error(*, client_id: str | None = None) -> None:
    """A successful token call proves the client credentials work again."""
    QuotaGate.objects.filter(client_id=client_id or settings.SPOTIFY_CLIENT_ID).exclude(config_error="").update(
        config_error="", config_error_at=None
    )


def quota_gate_paused_until(*, client_id: str | None = None) -> datetime | None:
    """When Spotify work for the client resumes, or None when it is not paused."""
    paused_until = (
        QuotaGate.objects.filter(client_id=client_id or settings.SPOTIFY_CLIENT_ID)
        .values_list("paused_until", flat=True)
        .first()
    )
    return paused_until if paused_until and paused_until > timezone.now() else None
