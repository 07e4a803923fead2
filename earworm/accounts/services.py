"""Spotify accounts: connecting a login, and keeping a valid access token for background work."""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from earworm.accounts.models import SpotifyAccount, User
from earworm.accounts.spotify_api import spotify_client, spotify_oauth
from earworm.core.exceptions import SpotifyBusy, SpotifyReloginRequired
from earworm.core.ratelimit import quota_gate_clear_config_error, quota_gate_record_config_error
from earworm.spotify.client import SpotifyClient
from earworm.spotify.errors import SpotifyInvalidClient, SpotifyInvalidGrant
from earworm.spotify.types import TokenSet, UserProfile

logger = logging.getLogger(__name__)

# Refresh a token this long before it expires (Authlib's and spotipy's leeway; SECURITY.md RF-1).
EXPIRY_LEEWAY = timedelta(seconds=60)
# The refresh lease outlasts the token call's connect + read timeouts, so a live holder never loses it.
REFRESH_LEASE = timedelta(seconds=30)
LEASE_POLL_SECONDS = 0.2
# Spotify: refresh tokens expire 6 months after consent (FACTS §1.2).
CONSENT_LIFETIME = timedelta(days=182)


@dataclass(frozen=True)
class ConnectResult:
    user: User
    account: SpotifyAccount
    created: bool


@sensitive_variables("token_set")
def spotify_account_connect(*, token_set: TokenSet, profile: UserProfile) -> ConnectResult:
    """Create or update the user and Spotify account of a completed login, storing the new tokens.

    Links on Spotify's `account_id`, falling back to `id` for profiles without one (FACTS §3.5). A login is
    a new consent, so the 6-month refresh-token lifetime starts again and a `needs_relogin` account is active.
    """
    now = timezone.now()
    account = _account_for_profile(profile)
    with transaction.atomic():
        created = account is None
        if account is None:
            user = User.objects.create_user(username=f"spotify:{profile.id}"[:150])
            account = SpotifyAccount(user=user)
        account.spotify_id = profile.id
        account.account_id = profile.account_id or account.account_id
        account.display_name = (profile.display_name or profile.id)[:255]
        account.access_token = token_set.access_token
        # A login without a refresh token keeps the stored one (SECURITY.md T-A5).
        if token_set.refresh_token:
            account.refresh_token = token_set.refresh_token
        account.expires_at = now + timedelta(seconds=token_set.expires_in)
        account.scopes = (token_set.scope or "")[:512]
        account.consented_at = now
        account.status = SpotifyAccount.Status.ACTIVE
        account.status_reason = ""
        account.refresh_lease_until = None
        account.save()
        user = account.user
        if user.first_name != account.display_name[:150]:
            user.first_name = account.display_name[:150]
            user.save(update_fields=["first_name"])
        # A fresh login syncs within seconds, so a newcomer sees plays without waiting for the schedule.
        from earworm.history.services.sync import history_sync_request

        history_sync_request(account_id=account.pk, delay_seconds=2)
    quota_gate_clear_config_error()
    granted = set((token_set.scope or "").split())
    if granted != set(settings.SPOTIFY_SCOPES):
        # OA-7: record and flag a scope that differs from the request; Earworm works with what it got.
        logger.warning("Spotify granted scopes %s, requested %s.", sorted(granted), sorted(settings.SPOTIFY_SCOPES))
    logger.info("Spotify login for account %s (%s).", account.pk, "new" if created else "existing")
    return ConnectResult(user=user, account=account, created=created)


def _account_for_profile(profile: UserProfile) -> SpotifyAccount | None:
    query = Q(spotify_id=profile.id)
    if profile.account_id:
        query |= Q(account_id=profile.account_id)
    matches = sorted(
        SpotifyAccount.objects.select_related("user").filter(query),
        key=lambda account: account.account_id != profile.account_id,  # an account_id match wins
    )
    return matches[0] if matches else None


def spotify_account_consent_expires_at(*, account: SpotifyAccount) -> datetime | None:
    return account.consented_at + CONSENT_LIFETIME if account.consented_at else None


@sensitive_variables("rejected_token", "refresh_token", "token_set", "fresh")
def spotify_account_access_token_get(*, account_id: int, rejected_token: str | None = None) -> str:
    """Return an access token for the account that stays valid for at least a minute.

    Refreshes when the stored token expires within 60 s, or when `rejected_token` is the stored token
    (Spotify answered 401 to it). Exactly one caller across all processes refreshes, under a short lease
    taken with a conditional UPDATE (SECURITY.md RF-2); the others wait for its result. No transaction is
    open during the call to Spotify.

    Raises SpotifyReloginRequired when Spotify no longer accepts the refresh token, SpotifyInvalidClient
    when the app's credentials are wrong, SpotifyBusy when another refresher holds the lease too long, and
    the boundary's transient SpotifyErrors (unavailable, rate limited) unchanged.
    """
    account = SpotifyAccount.objects.get(pk=account_id)
    if _usable(account, rejected_token):
        return account.access_token
    deadline = time.monotonic() + REFRESH_LEASE.total_seconds() + 5
    while (lease := _claim_refresh_lease(account_id)) is None:
        time.sleep(LEASE_POLL_SECONDS)
        account.refresh_from_db()
        if _usable(account, rejected_token):
            return account.access_token
        if time.monotonic() > deadline:
            raise SpotifyBusy()
    try:
        return _refresh_holding_lease(account_id, rejected_token, lease)
    finally:
        SpotifyAccount.objects.filter(pk=account_id, refresh_lease_until=lease).update(refresh_lease_until=None)


def _usable(account: SpotifyAccount, rejected_token: str | None) -> bool:
    if account.status != SpotifyAccount.Status.ACTIVE:
        raise SpotifyReloginRequired(_relogin_message(account))
    fresh_enough = account.expires_at is not None and account.expires_at > timezone.now() + EXPIRY_LEEWAY
    return bool(account.access_token) and fresh_enough and account.access_token != rejected_token


def _claim_refresh_lease(account_id: int) -> datetime | None:
    """Take the lease in one conditional UPDATE; return its end, which also identifies the holder."""
    now = timezone.now()
    lease = now + REFRESH_LEASE
    claimed = (
        SpotifyAccount.objects.filter(pk=account_id)
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now))
        .update(refresh_lease_until=lease)
    )
    return lease if claimed == 1 else None


@sensitive_variables("rejected_token", "refresh_token", "token_set")
def _refresh_holding_lease(account_id: int, rejected_token: str | None, lease: datetime) -> str:
    account = SpotifyAccount.objects.get(pk=account_id)
    if _usable(account, rejected_token):
        return account.access_token  # another caller refreshed while this one waited for the lease
    refresh_token = account.refresh_token
    if not refresh_token:
        _mark_needs_relogin(account_id, "Earworm holds no refresh token for this account.")
        raise SpotifyReloginRequired()
    try:
        token_set = spotify_oauth().refresh(refresh_token=refresh_token)
    except SpotifyInvalidGrant:
        account.refresh_from_db()
        if account.refresh_token != refresh_token and account.status == SpotifyAccount.Status.ACTIVE:
            # Another caller rotated the token meanwhile (RF-5): theirs is the good one.
            return account.access_token
        _mark_needs_relogin(account_id, "Spotify no longer accepts Earworm's login (revoked or older than 6 months).")
        raise SpotifyReloginRequired() from None
    except SpotifyInvalidClient as exc:
        quota_gate_record_config_error(message=f"Token refresh failed: {exc.message}")
        raise
    expires_at = timezone.now() + timedelta(seconds=token_set.expires_in)
    updates: dict[str, object] = {"access_token": token_set.access_token, "expires_at": expires_at}
    # A response without refresh_token keeps the old one; one with it replaces it in the same single UPDATE,
    # which only lands while this caller still holds the lease.
    if token_set.refresh_token:
        updates["refresh_token"] = token_set.refresh_token
    stored = SpotifyAccount.objects.filter(pk=account_id, refresh_lease_until=lease).update(**updates)
    if not stored:
        logger.warning("Refresh of account %s finished after its lease lapsed; result not stored.", account_id)
    logger.info("Refreshed the Spotify token of account %s (rotated: %s).", account_id, bool(token_set.refresh_token))
    return token_set.access_token


def _mark_needs_relogin(account_id: int, reason: str) -> None:
    SpotifyAccount.objects.filter(pk=account_id).update(
        status=SpotifyAccount.Status.NEEDS_RELOGIN, status_reason=reason[:255], sync_claimed_until=None
    )
    logger.warning("Account %s needs a new Spotify login: %s", account_id, reason)


def _relogin_message(account: SpotifyAccount) -> str:
    if account.status == SpotifyAccount.Status.DISABLED:
        return "This account is disabled."
    return "Spotify needs you to log in again before Earworm can keep syncing."


def spotify_client_for_account(*, account_id: int, kind: str = "sync") -> SpotifyClient:
    """A Web API client that authenticates as the account and refreshes once on a 401 (RF-6)."""
    token = spotify_account_access_token_get(account_id=account_id)
    holder = {"token": token}

    def refresh() -> str:
        holder["token"] = spotify_account_access_token_get(account_id=account_id, rejected_token=holder["token"])
        return holder["token"]

    return spotify_client(access_token=token, kind=kind, refresh_access_token=refresh)


def spotify_account_disconnect(*, user: User) -> None:
    """Delete the user's Spotify account with its tokens; syncs stop because the account is gone (OA-16)."""
    SpotifyAccount.objects.filter(user=user).delete()
