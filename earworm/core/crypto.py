"""Token encryption at rest with MultiFernet (SECURITY.md OA-14).

Keys come from TOKEN_ENCRYPTION_KEYS, newest first: the first encrypts, all decrypt, so a new key can be put
in front without downtime and `rotate_tokens` re-encrypts old values. With DEBUG on and no key configured, a
key is generated once into data/ and reused, so `make run` needs no set-up.
"""

from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _development_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEYS holds an invalid key: each must be 32 url-safe base64 bytes; make one "
            "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def token_fernet() -> MultiFernet:
    """Return the MultiFernet for the configured keys; raise ImproperlyConfigured when there are none."""
    keys = tuple(settings.TOKEN_ENCRYPTION_KEYS)
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS is not set.")
        keys = (_development_key(Path(settings.TOKEN_KEY_FILE)),)
    return _fernet(keys)


def encrypt(value: str) -> str:
    return token_fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    """Decrypt with any configured key; an undecryptable value means a key was removed too early."""
    try:
        return token_fernet().decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored token cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS; "
            "was a key removed before `manage.py rotate_tokens` ran?"
        ) from exc


def rotate(value: str) -> str:
    """Re-encrypt a stored value under the newest key."""
    return token_fernet().rotate(value.encode()).decode()
