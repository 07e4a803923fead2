from django.conf import settings
from django.db import models
from django.db.models import Q

from earworm.core.models import BaseModel


class Play(models.Model):
    """One listen. Unique per user, track and `played_at` (DESIGN.md §5).

    Beyond that key, two plays of one track whose listening intervals overlap are one play; the ingest
    services enforce that rule before inserting, since no portable constraint can express it.
    """

    class Source(models.TextChoices):
        API = "api", "API"
        EXPORT = "export", "Export"

    # No database constraint on either foreign key: PostgreSQL checks a deferred constraint once per inserted
    # row at COMMIT, which was half the cost of importing a large export (11 s of 21 s for 750,000 plays).
    # Integrity holds without it: tracks are never deleted by Earworm (PROTECT still applies in Django), and
    # every writer of plays takes `plays_user_lock` (the user row FOR KEY SHARE), while deleting a user locks
    # that row FOR UPDATE before its plays are deleted (`earworm.history.signals`).
    # No separate index on user_id: the unique key and `history_play_user_recent` both start with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plays", db_index=False, db_constraint=False
    )
    track = models.ForeignKey("catalog.Track", on_delete=models.PROTECT, related_name="plays", db_constraint=False)
    # UTC. From the API: Spotify's `played_at`, to the millisecond. From an export: the record's `ts`.
    played_at = models.DateTimeField()
    # Null when unknown (API plays do not say how long they were listened to).
    ms_played = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    context_uri = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "track", "played_at"], name="history_play_unique_listen"),
        ]
        indexes = [
            # play_list_for_user and every ranged statistic: WHERE user_id = ? ORDER BY played_at DESC.
            models.Index(fields=["user", "-played_at"], name="history_play_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} played {self.track_id} at {self.played_at:%Y-%m-%d %H:%M:%S}"


class SyncRun(BaseModel):
    """What one sync of one account did: shown to the user and the operator."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    account = models.ForeignKey("accounts.SpotifyAccount", on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    plays_seen = models.PositiveIntegerField(default=0)
    new_plays = models.PositiveIntegerField(default=0)
    new_tracks = models.PositiveIntegerField(default=0)
    new_artists = models.PositiveIntegerField(default=0)
    calls_made = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    # Plays may have been lost between these times: the window did not reach back to the last stored play.
    gap_from = models.DateTimeField(null=True, blank=True)
    gap_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Latest runs of an account on the home page: WHERE account_id = ? ORDER BY started_at DESC.
            models.Index(fields=["account", "-started_at"], name="history_syncrun_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(gap_from__isnull=True) | Q(gap_to__gte=models.F("gap_from")),
                name="history_syncrun_gap_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Sync of {self.account_id} at {self.started_at:%Y-%m-%d %H:%M}"


class ImportJob(BaseModel):
    """An import of data-export files: progress, counts by reason, errors, and which files are done."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # The uploaded file, kept until the job finishes (relative to the upload directory).
    upload_path = models.CharField(max_length=500, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    files_done = models.JSONField(default=list, blank=True)
    records_total = models.PositiveIntegerField(default=0)
    records_done = models.PositiveIntegerField(default=0)
    plays_added = models.PositiveIntegerField(default=0)
    # {"short_play": 12, "episode": 3, "duplicate": 40, ...}
    skipped = models.JSONField(default=dict, blank=True)
    unresolved = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Which process holds the claim (a random token), so a process whose claim expired stops writing.
    claimed_by = models.CharField(max_length=32, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Files given to `import_history` (absolute paths); empty for web uploads, which use `upload_path`.
    source_paths = models.JSONField(default=list, blank=True)
    files_total = models.PositiveIntegerField(default=0)
    # The span of the plays added, for refreshing the statistics once at the end.
    span_start = models.DateTimeField(null=True, blank=True)
    span_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The import page: WHERE user_id = ? ORDER BY created_at DESC.
            models.Index(fields=["user", "-created_at"], name="history_importjob_recent"),
        ]
        constraints = [
            # One running import per user (SECURITY.md UP-5): the claim's UPDATE fails on a second one.
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="running"), name="history_importjob_one_running_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} for {self.user_id} ({self.status})"
