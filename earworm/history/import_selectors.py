"""Reads for the import page and `GET /api/v1/imports`: a user's import jobs, and how far enrichment has got.

Kept apart from `selectors.py` (plays) because they are read together by one page; the schedule they describe
is `earworm.catalog.tasks.catalog_enrich` (every 5 minutes) under the Spotify gate (`earworm.core.ratelimit`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.query import QuerySet
from django.utils import timezone

from earworm.catalog.models import Track
from earworm.core.models import QuotaGate
from earworm.history.models import ImportJob, Play

# earworm.catalog.tasks.catalog_enrich runs on crontab(minute="*/5") in UTC.
ENRICH_EVERY_MINUTES = 5
REASON_LABELS = {
    "duplicate": "already stored, or the same listen twice in the export",
    "short_play": "played under 30 seconds",
    "episode": "podcast episodes",
    "audiobook": "audiobook chapters",
    "no_content": "records without a track",
}


def import_job_list_for_user(*, user_id: int, limit: int = 20) -> QuerySet[ImportJob]:
    """The user's import jobs, newest first."""
    return ImportJob.objects.filter(user_id=user_id).order_by("-created_at", "-pk")[:limit]


@dataclass(frozen=True)
class MetadataStatus:
    """How many of the user's tracks enrichment has completed, and when it next runs."""

    tracks_total: int
    tracks_complete: int
    # Local files, tracks known only by name, and ids Spotify answered 404 for: never fetched.
    tracks_unfetchable: int
    next_batch_at: datetime | None
    # Set when the Spotify gate is closed (a 429 or the daily quota) or today's enrichment budget is spent.
    paused_until: datetime | None
    pause_reason: str

    @property
    def tracks_waiting(self) -> int:
        return self.tracks_total - self.tracks_complete - self.tracks_unfetchable


def _next_run(after: datetime) -> datetime:
    """The first `*/5` minute boundary at or after `after` (Huey checks its schedule at each minute's start)."""
    base = after.replace(second=0, microsecond=0)
    if base < after:
        base += timedelta(minutes=1)
    return base + timedelta(minutes=-base.minute % ENRICH_EVERY_MINUTES)


def import_metadata_status(*, user_id: int, now: datetime | None = None) -> MetadataStatus:
    """Counts over the tracks the user has played, and the next enrichment run, honestly.

    The next run is the next 5-minute boundary, pushed past the gate's `paused_until` when Spotify asked to
    wait, or past the end of the enrichment day when `SPOTIFY_ENRICH_DAILY_BUDGET` is used up (the database
    gate; with Redis the daily budget lives in Redis and only pauses are mirrored on the row). None when
    nothing is left to fetch.
    """
    now = now or timezone.now()
    counts = Track.objects.filter(pk__in=Play.objects.filter(user_id=user_id).values("track_id")).aggregate(
        total=Count("pk"),
        complete=Count("pk", filter=Q(metadata_fetched_at__isnull=False)),
        unfetchable=Count(
            "pk", filter=Q(metadata_fetched_at__isnull=True) & (Q(spotify_id__isnull=True) | Q(not_found=True))
        ),
    )
    gate = QuotaGate.objects.filter(client_id=settings.SPOTIFY_CLIENT_ID).first()
    paused_until: datetime | None = None
    reason = ""
    if gate is not None:
        if gate.paused_until and gate.paused_until > now:
            paused_until = gate.paused_until
            reason = "quota" if gate.pause_reason == "quota" else "rate_limit"
        elif (
            not settings.REDIS_URL
            and gate.day_started_at is not None
            and gate.day_enrich_requests >= settings.SPOTIFY_ENRICH_DAILY_BUDGET
            and gate.day_started_at + timedelta(days=1) > now
        ):
            paused_until = gate.day_started_at + timedelta(days=1)
            reason = "daily_budget"
    waiting = counts["total"] - counts["complete"] - counts["unfetchable"]
    next_batch_at = _next_run(max(now + timedelta(seconds=1), paused_until or now)) if waiting > 0 else None
    return MetadataStatus(
        tracks_total=counts["total"],
        tracks_complete=counts["complete"],
        tracks_unfetchable=counts["unfetchable"],
        next_batch_at=next_batch_at,
        paused_until=paused_until,
        pause_reason=reason,
    )
