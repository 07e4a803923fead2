import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.core import crypto

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _raw_columns(account_id: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM accounts_spotifyaccount WHERE id = %s", [account_id])
        return cursor.fetchone()


def test_stored_columns_hold_ciphertext_not_the_token():
    account = SpotifyAccountFactory(access_token="AQD-access-secret", refresh_token="AQB-refresh-secret")

    raw_access, raw_refresh = _raw_columns(account.pk)

    assert "AQD-access-secret" not in raw_access
    assert "AQB-refresh-secret" not in raw_refresh
    assert raw_access.startswith("gAAAA")  # a Fernet token
    reloaded = SpotifyAccount.objects.get(pk=account.pk)
    assert (reloaded.access_token, reloaded.refresh_token) == ("AQD-access-secret", "AQB-refresh-secret")


def test_a_value_written_under_an_old_key_reads_after_a_new_key_is_put_first(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    account = SpotifyAccountFactory(refresh_token="AQB-written-under-old-key")
    raw_before = _raw_columns(account.pk)[1]

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert SpotifyAccount.objects.get(pk=account.pk).refresh_token == "AQB-written-under-old-key"
    rotated = crypto.rotate(raw_before)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    assert crypto.decrypt(rotated) == "AQB-written-under-old-key"


def test_a_value_whose_key_was_removed_is_a_clear_configuration_error(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    ciphertext = crypto.encrypt("secret")
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(ImproperlyConfigured, match="rotate_tokens"):
        crypto.decrypt(ciphertext)


def test_without_keys_production_refuses_and_debug_generates_one_key_once(settings, tmp_path):
    settings.TOKEN_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="TOKEN_ENCRYPTION_KEYS"):
        crypto.encrypt("x")

    settings.DEBUG = True
    settings.TOKEN_KEY_FILE = tmp_path / "data" / "token.key"
    first = crypto.encrypt("hello")
    key = settings.TOKEN_KEY_FILE.read_text()
    assert crypto.decrypt(first) == "hello"
    crypto.encrypt("again")
    assert settings.TOKEN_KEY_FILE.read_text() == key
    assert settings.TOKEN_KEY_FILE.stat().st_mode & 0o077 == 0


def test_an_invalid_key_is_a_clear_configuration_error(settings):
    settings.TOKEN_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="invalid key"):
        crypto.encrypt("x")
