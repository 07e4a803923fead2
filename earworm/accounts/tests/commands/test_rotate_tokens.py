from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.tests.factories import SpotifyAccountFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw(account_id: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM accounts_spotifyaccount WHERE id = %s", [account_id])
        return cursor.fetchone()


def _rotate(**options: object) -> str:
    out = StringIO()
    call_command("rotate_tokens", stdout=out, **options)
    return out.getvalue()


def test_rotation_end_to_end_new_key_first_rotate_then_old_key_removed(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    accounts = [
        SpotifyAccountFactory(access_token=f"AQD-access-{n}", refresh_token=f"AQB-refresh-{n}") for n in range(5)
    ]
    without_tokens = SpotifyAccountFactory(access_token="", refresh_token="")
    before = {a.pk: _raw(a.pk) for a in accounts}

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    summary = _rotate(batch_size=2)  # 6 rows in batches of 2, 2 and 2, then an empty one

    assert "Checked 6 rows: 10 values re-encrypted under the newest key, 0 already under it, 0 unreadable" in summary
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    for n, account in enumerate(accounts):
        raw_access, raw_refresh = _raw(account.pk)
        assert raw_access != before[account.pk][0] and raw_refresh != before[account.pk][1]
        assert Fernet(NEW_KEY.encode()).decrypt(raw_refresh.encode()).decode() == f"AQB-refresh-{n}"
        reloaded = SpotifyAccount.objects.get(pk=account.pk)
        assert (reloaded.access_token, reloaded.refresh_token) == (f"AQD-access-{n}", f"AQB-refresh-{n}")
    assert _raw(without_tokens.pk) == ("", "")


def test_running_it_again_changes_nothing(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    account = SpotifyAccountFactory()
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    _rotate()
    after_first = _raw(account.pk)

    summary = _rotate()

    assert "0 values re-encrypted under the newest key, 2 already under it" in summary
    assert _raw(account.pk) == after_first


def test_a_value_no_key_can_read_fails_the_command_and_is_left_alone(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    account = SpotifyAccountFactory()
    raw_before = _raw(account.pk)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]  # the old key was removed too early

    with pytest.raises(CommandError, match="Put back the key"):
        _rotate()

    assert _raw(account.pk) == raw_before
