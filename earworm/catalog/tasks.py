"""Huey tasks for the catalog: periodic enrichment (STYLE.md §8)."""

import logging

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

logger = logging.getLogger(__name__)


# Every 5 minutes, a capped run (ENRICH_MAX_REQUESTS_PER_RUN calls): new artists get their genres soon after
# their first play, while the gate keeps enrichment to its share of each window and its daily budget, so syncs
# never wait for it. A run that meets the gate's refusal stops and the next one continues.
@db_periodic_task(crontab(minute="*/5"))
def catalog_enrich() -> None:
    from earworm.catalog.services import catalog_enrich as enrich
    from earworm.core.ratelimit import quota_gate_paused_until

    if quota_gate_paused_until() is not None:
        return
    result = enrich(max_requests=settings.ENRICH_MAX_REQUESTS_PER_RUN)
    if result.requests:
        logger.info(
            "Enrichment: %s calls, %s artists, %s tracks, %s not found; %s artists and %s tracks left.",
            result.requests,
            result.artists_enriched,
            result.tracks_enriched,
            result.not_found,
            result.artists_left,
            result.tracks_left,
        )
