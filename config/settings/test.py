"""Test settings: speed and determinism only."""

from config.huey import huey_settings

from .base import *  # noqa: F403
from .base import DATA_DIR, REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A fixed key so tests never write data/; tests that rotate keys override this.
TOKEN_ENCRYPTION_KEYS = ["dGVzdC10ZXN0LXRlc3QtdGVzdC10ZXN0LXRlc3QtMDA="]
HUEY = huey_settings(redis_url=REDIS_URL, data_dir=DATA_DIR, immediate=True)
SPOTIFY_CLIENT_ID = "earworm-test-client"
SPOTIFY_CLIENT_SECRET = "earworm-test-secret"
SPOTIFY_ACCOUNTS_URL = "http://spotify.invalid"
SPOTIFY_API_URL = "http://spotify.invalid/v1"
DEMO_MODE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the source folders (no collectstatic in tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# pytest-django's xdist suffixing only recognises Django's own SQLite engine by name; name the in-memory
# test database explicitly so our SQLite backend subclass gets one per worker too.
if DATABASES["default"]["ENGINE"] == "earworm.core.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}  # noqa: F405
