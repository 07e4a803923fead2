from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from earworm.core.fields import EncryptedTextField
from earworm.core.models import BaseModel


class User(AbstractUser):
    """An Earworm user. Logs in only through Spotify; no password or e-mail is needed (FACTS §3.5)."""

    time_zone = models.CharField(max_length=64, default="UTC")


class SpotifyAccount(BaseModel):
    """The Spotify side of a user: identity, encrypted tokens, and sync state."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        NEEDS_RELOGIN = "needs_relogin", "Needs re-login"
        DISABLED = "disabled", "Disabled"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="spotify_account")
    spotify_id = models.CharField(max_length=255)
    # Spotify's stable, immutable key for linking accounts (May 2026); empty for profiles that predate it.
    account_id = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)

    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=512, blank=True)
    # Refresh tokens die 6 months after consent, however often they are used (FACTS §1.2).
    consented_at = models.DateTimeField(null=True, blank=True)
    # Short lease so exactly one caller refreshes the token (SECURITY.md RF-2).
    refresh_lease_until = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=255, blank=True)

    # Sync state: a claim so one sync per account runs at a time, and what the last one did.
    sync_claimed_until = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.CharField(max_length=500, blank=True)
    # The newest play stored from the API; a window that no longer reaches it is a gap.
    last_played_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["spotify_id"], name="accounts_spotifyaccount_unique_spotify_id"),
            models.UniqueConstraint(
                fields=["account_id"],
                condition=~Q(account_id=""),
                name="accounts_spotifyaccount_unique_account_id",
            ),
        ]
        indexes = [
            # history_sync_all_due: active accounts whose last sync is older than the interval.
            models.Index(fields=["status", "last_synced_at"], name="accounts_due_for_sync"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.spotify_id} ({self.status})"


class ApiToken(BaseModel):
    """A personal API token. Only its SHA-256 is stored; the raw value is shown once (SECURITY.md AP-4)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64)
    # The first characters, so a user can tell tokens apart without the secret.
    prefix = models.CharField(max_length=16)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token_hash"], name="accounts_apitoken_unique_hash")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
