"""The token service: refresh policy, rotation, re-login and the single-refresher lease (SECURITY.md §3)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.services import spotify_account_access_token_get
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.core.exceptions import SpotifyBusy, SpotifyReloginRequired
from earworm.core.models import QuotaGate
from earworm.spotify.errors import SpotifyInvalidClient, SpotifyInvalidGrant, SpotifyUnavailable
from earworm.spotify.oauth import SpotifyOAuth
from earworm.spotify.types import TokenSet


def _tokens(access: str, refresh: str | None = None) -> TokenSet:
    return TokenSet(access_token=access, token_type="Bearer", expires_in=3600, refresh_token=refresh)


def _expired_account(**kwargs) -> SpotifyAccount:
    return SpotifyAccountFactory(
        access_token="old-access",
        refresh_token="old-refresh",
        expires_at=timezone.now() + timedelta(seconds=30),
        **kwargs,
    )


@pytest.fixture
def refresh(mocker):
    return mocker.patch.object(SpotifyOAuth, "refresh", autospec=True)


@pytest.mark.django_db
def test_a_token_valid_for_more_than_a_minute_is_returned_without_refreshing(refresh):
    account = SpotifyAccountFactory(access_token="fresh", expires_at=timezone.now() + timedelta(minutes=5))

    assert spotify_account_access_token_get(account_id=account.pk) == "fresh"
    refresh.assert_not_called()


@pytest.mark.django_db
def test_a_token_expiring_within_a_minute_is_refreshed_and_the_old_refresh_token_kept_when_none_is_sent(
    refresh,
):
    refresh.return_value = _tokens("new-access")
    account = _expired_account()

    assert spotify_account_access_token_get(account_id=account.pk) == "new-access"

    account.refresh_from_db()
    assert refresh.call_args.kwargs == {"refresh_token": "old-refresh"}
    assert (account.access_token, account.refresh_token) == ("new-access", "old-refresh")
    assert account.expires_at > timezone.now() + timedelta(minutes=59)
    assert account.refresh_lease_until is None


@pytest.mark.django_db
def test_a_rotated_refresh_token_replaces_the_old_one(refresh):
    refresh.return_value = _tokens("new-access", "new-refresh")
    account = _expired_account()

    spotify_account_access_token_get(account_id=account.pk)

    account.refresh_from_db()
    assert (account.access_token, account.refresh_token) == ("new-access", "new-refresh")


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_spotify_is_called(refresh):
    def endpoint(self, *, refresh_token):
        assert not connection.in_atomic_block
        return _tokens("new-access")

    refresh.side_effect = endpoint
    spotify_account_access_token_get(account_id=_expired_account().pk)
    assert refresh.call_count == 1


@pytest.mark.django_db
def test_a_rejected_token_is_refreshed_even_if_it_looks_valid(refresh):
    refresh.return_value = _tokens("new-access")
    account = SpotifyAccountFactory(access_token="revoked", expires_at=timezone.now() + timedelta(hours=1))

    assert spotify_account_access_token_get(account_id=account.pk, rejected_token="revoked") == "new-access"


@pytest.mark.django_db
def test_invalid_grant_marks_the_account_for_relogin_and_stops_further_refreshes(refresh):
    refresh.side_effect = SpotifyInvalidGrant()
    account = _expired_account()

    with pytest.raises(SpotifyReloginRequired):
        spotify_account_access_token_get(account_id=account.pk)
    with pytest.raises(SpotifyReloginRequired):
        spotify_account_access_token_get(account_id=account.pk)

    account.refresh_from_db()
    assert account.status == SpotifyAccount.Status.NEEDS_RELOGIN
    assert "6 months" in account.status_reason
    assert refresh.call_count == 1


@pytest.mark.django_db
def test_invalid_grant_after_someone_else_rotated_the_token_uses_their_token(refresh):
    account = _expired_account()

    def endpoint(self, *, refresh_token):
        SpotifyAccount.objects.filter(pk=account.pk).update(
            access_token="their-access",
            refresh_token="their-refresh",
            expires_at=timezone.now() + timedelta(hours=1),
        )
        raise SpotifyInvalidGrant()

    refresh.side_effect = endpoint

    assert spotify_account_access_token_get(account_id=account.pk) == "their-access"
    account.refresh_from_db()
    assert account.status == SpotifyAccount.Status.ACTIVE


@pytest.mark.django_db
def test_invalid_client_is_recorded_for_the_operator_and_not_a_relogin(refresh):
    refresh.side_effect = SpotifyInvalidClient()
    account = _expired_account()

    with pytest.raises(SpotifyInvalidClient):
        spotify_account_access_token_get(account_id=account.pk)

    account.refresh_from_db()
    assert account.status == SpotifyAccount.Status.ACTIVE
    assert account.refresh_lease_until is None
    assert QuotaGate.objects.get().config_error


@pytest.mark.django_db
def test_a_transient_failure_releases_the_lease_and_propagates(refresh):
    refresh.side_effect = SpotifyUnavailable("Spotify did not answer in time.")
    account = _expired_account()

    with pytest.raises(SpotifyUnavailable):
        spotify_account_access_token_get(account_id=account.pk)

    account.refresh_from_db()
    assert account.refresh_lease_until is None and account.status == SpotifyAccount.Status.ACTIVE


@pytest.mark.django_db
def test_a_stale_lease_from_a_crashed_holder_does_not_block(refresh):
    refresh.return_value = _tokens("new-access")
    account = _expired_account(refresh_lease_until=timezone.now() - timedelta(seconds=1))

    assert spotify_account_access_token_get(account_id=account.pk) == "new-access"


@pytest.mark.django_db
def test_a_caller_whose_wait_outlives_the_lease_gets_a_retryable_error(refresh, mocker):
    mocker.patch("earworm.accounts.services.REFRESH_LEASE", timedelta(seconds=0.3))
    mocker.patch("earworm.accounts.services.time.sleep")
    clock = iter(range(0, 10_000, 10))
    mocker.patch("earworm.accounts.services.time.monotonic", side_effect=lambda: next(clock))
    account = _expired_account(refresh_lease_until=timezone.now() + timedelta(minutes=5))

    with pytest.raises(SpotifyBusy):
        spotify_account_access_token_get(account_id=account.pk)
    refresh.assert_not_called()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_callers_refresh_once_and_both_get_the_new_token(refresh):
    """Two threads with their own connections; Spotify rotates the token and kills the old one. On PostgreSQL
    only: SQLite's shared-cache in-memory test database fails a table lock at once ("database table is
    locked") instead of waiting out the busy timeout as Earworm's file database does."""
    account = _expired_account()
    calls = []

    def endpoint(self, *, refresh_token):
        calls.append(refresh_token)
        time.sleep(0.2)
        if refresh_token != "old-refresh":
            raise SpotifyInvalidGrant()
        return _tokens("new-access", "new-refresh")

    refresh.side_effect = endpoint
    results: list[str] = []
    errors: list[BaseException] = []

    def worker():
        try:
            results.append(spotify_account_access_token_get(account_id=account.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results == ["new-access", "new-access"]
    assert calls == ["old-refresh"]
    account.refresh_from_db()
    assert account.refresh_token == "new-refresh"


@pytest.mark.django_db
def test_a_crash_inside_refresh_leaves_no_token_in_the_technical_500_report(mocker, rf):
    """SECURITY.md LG-1: an unexpected error deep in the real refresh call (here in the HTTP stack)."""
    import sys

    import httpx
    from django.views.debug import ExceptionReporter

    mocker.patch.object(httpx.Client, "send", side_effect=RuntimeError("boom"))
    account = _expired_account()

    try:
        # The token comes from a variable: the report quotes source lines, and a literal would be found there.
        spotify_account_access_token_get(account_id=account.pk, rejected_token=account.access_token)
    except RuntimeError:
        exc_info = sys.exc_info()
    reporter = ExceptionReporter(rf.get("/"), *exc_info)
    report = reporter.get_traceback_text() + reporter.get_traceback_html()

    assert "boom" in report
    assert "old-refresh" not in report
    assert "old-access" not in report
