from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from huey.exceptions import RetryTask

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.core.exceptions import SpotifyReloginRequired
from earworm.core.ratelimit import quota_gate_pause
from earworm.history import tasks
from earworm.history.models import SyncRun
from earworm.history.services.sync import history_accounts_due, history_sync_all_due
from earworm.spotify.errors import SpotifyBadResponse, SpotifyForbidden, SpotifyQuotaExceeded, SpotifyRateLimited

pytestmark = pytest.mark.django_db


def _sync_raising(mocker, exc):
    return mocker.patch("earworm.history.services.sync.history_sync", side_effect=exc)


def test_rate_limit_reschedules_after_retry_after(mocker):
    _sync_raising(mocker, SpotifyRateLimited(12))
    with pytest.raises(RetryTask) as retry:
        tasks.history_sync.call_local(1)
    assert 12 <= retry.value.delay <= 17


def test_quota_reschedules_at_resume_time(mocker):
    resume = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    _sync_raising(mocker, SpotifyQuotaExceeded(50_000, resume))
    with pytest.raises(RetryTask) as retry:
        tasks.history_sync.call_local(1)
    assert resume <= retry.value.eta <= resume + timedelta(seconds=tasks.QUOTA_RESUME_SPREAD_SECONDS)
    assert retry.value.eta.tzinfo is not None


def test_transient_errors_propagate_to_the_declared_retries(mocker):
    _sync_raising(mocker, SpotifyBadResponse())
    with pytest.raises(SpotifyBadResponse):
        tasks.history_sync.call_local(1)
    assert tasks.history_sync.retries == 3


@pytest.mark.parametrize("exc", [SpotifyReloginRequired(), SpotifyForbidden(not_allowlisted=True)])
def test_permanent_errors_end_the_task(mocker, exc):
    _sync_raising(mocker, exc)
    tasks.history_sync.call_local(1)


def test_due_accounts_are_never_synced_stale_unclaimed_and_active(settings, mocker):
    settings.SYNC_INTERVAL_MINUTES = 10
    mocker.patch("earworm.history.services.sync.SPREAD_SLACK", 100)  # no spreading: every due account at once
    now = timezone.now()
    never = SpotifyAccountFactory()
    stale = SpotifyAccountFactory(last_synced_at=now - timedelta(minutes=30))
    SpotifyAccountFactory(last_synced_at=now - timedelta(minutes=5))
    SpotifyAccountFactory(status=SpotifyAccount.Status.NEEDS_RELOGIN)
    SpotifyAccountFactory(sync_claimed_until=now + timedelta(minutes=1))
    failed = SpotifyAccountFactory(last_synced_at=now - timedelta(minutes=30))
    SyncRun.objects.create(account=failed, status="failed", started_at=now - timedelta(minutes=2))

    assert history_accounts_due(now=now) == [never.pk, stale.pk]


def test_due_accounts_are_spread_across_the_interval(settings):
    settings.SYNC_INTERVAL_MINUTES = 20
    SpotifyAccountFactory.create_batch(40)
    assert len(history_accounts_due()) == 3  # 40 / 20 x 1.5


def test_sync_all_due_enqueues_after_commit(mocker, django_capture_on_commit_callbacks):
    account = SpotifyAccountFactory()
    enqueue = mocker.patch("earworm.history.tasks.history_sync")
    with django_capture_on_commit_callbacks(execute=True):
        assert history_sync_all_due() == [account.pk]
    enqueue.assert_called_once_with(account.pk)


def test_sync_all_due_does_nothing_while_the_gate_is_paused(mocker):
    SpotifyAccountFactory()
    quota_gate_pause(until=timezone.now() + timedelta(hours=3), reason="quota")
    assert history_sync_all_due() == []


def test_login_schedules_a_sync_within_seconds(django_capture_on_commit_callbacks, mocker):
    from earworm.accounts.services import spotify_account_connect
    from earworm.spotify.types import TokenSet, UserProfile

    schedule = mocker.patch("earworm.history.tasks.history_sync.schedule")
    with django_capture_on_commit_callbacks(execute=True):
        result = spotify_account_connect(
            token_set=TokenSet(access_token="a", refresh_token="r", token_type="Bearer", expires_in=3600),
            profile=UserProfile(id="newcomer", account_id="acct-new", display_name="New"),
        )
    schedule.assert_called_once_with(args=(result.account.pk, True), delay=2)
