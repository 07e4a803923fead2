from django.db import models


class BaseModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class QuotaGate(BaseModel):
    """One row per Spotify client id, shared by every process and machine (DESIGN.md §1, §5).

    `paused_until` is set by any 429 (a short Retry-After or a QUOTA_EXCEEDED of hours); nothing calls
    Spotify for this client before it. The window and daily counters budget requests across workers.
    `config_error` holds an operator-facing problem such as `invalid_client`, shown on /healthz and in admin.
    """

    client_id = models.CharField(max_length=255)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=32, blank=True)
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_requests = models.PositiveIntegerField(default=0)
    # Calls in the window before `window_started_at`: the rolling window is estimated from both (ratelimit.py).
    window_prev_requests = models.PositiveIntegerField(default=0)
    day_started_at = models.DateTimeField(null=True, blank=True)
    day_requests = models.PositiveIntegerField(default=0)
    day_enrich_requests = models.PositiveIntegerField(default=0)
    config_error = models.TextField(blank=True)
    config_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id"], name="core_quotagate_unique_client")]

    def __str__(self) -> str:
        return f"Spotify gate for {self.client_id}"
