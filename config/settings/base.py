"""Every Earworm setting, read from the environment (DESIGN.md §4, STYLE.md §6).

`production.py` only hardens these; `test.py` only adds speed and determinism.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF

from earworm.core.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / "data"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# --- Django core -------------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Development default only; production.py demands a real key.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789abcdefghij")
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = ["huey.contrib.djhuey", "ninja"]
LOCAL_APPS = [
    "earworm.core",
    "earworm.accounts",
    "earworm.catalog",
    "earworm.history",
    "earworm.stats",
    "earworm.web",
    "earworm.api",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # First, so every line logged while handling the request carries its id.
    "earworm.core.middleware.RequestIdMiddleware",
    "earworm.core.middleware.UploadSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "earworm.core.middleware.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "earworm.web.middleware.SpotifyErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "earworm" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "earworm.web.context_processors.earworm",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------------------
# SQLite by default (one person, nothing to install); PostgreSQL when DATABASE_URL is set.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'earworm.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(exist_ok=True)  # a fresh clone has no data/ yet; SQLite will not create the folder
    DATABASES["default"]["ENGINE"] = "earworm.core.backends.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process read while the consumer writes; IMMEDIATE makes a writer wait for the
        # lock (up to `timeout` seconds) instead of failing with "database is locked" mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# Reused connections: opening one per request costs about 10x on the web tier (DESIGN.md §2).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Huey (background jobs) --------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
HUEY_IMMEDIATE = False

# --- Sessions and security headers -------------------------------------------------------------------------
# Login state stays on the server (SECURITY.md OA-11), never the signed_cookies backend.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 14 * 24 * 3600
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the return from Spotify is a cross-site navigation that must carry the cookie (DJ-8).
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# django-csp 4 (SECURITY.md DJ-11). No CDN assets and no inline scripts; album art comes from Spotify's
# image CDN (i.scdn.co, also what the emulator hands out), hence https: for images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "img-src": [SELF, "https:", "data:"],
    }
}

# --- Uploads -----------------------------------------------------------------------------------------------
# The largest history upload (an export zip or JSON file); larger request bodies get a 413 before they are
# read (earworm.core.middleware.UploadSizeLimitMiddleware). Keep the proxy's body limit at least this big.
IMPORT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# Data-export import (earworm.history.services.imports, docs/import.md).
IMPORT_UPLOAD_DIR = DATA_DIR / "imports"
IMPORT_MIN_MS_PLAYED = 30_000  # Spotify counts a stream from 30 s
IMPORT_MAX_ARCHIVE_MEMBERS = 1000
IMPORT_MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
IMPORT_MAX_COMPRESSION_RATIO = 200  # JSON compresses 10-30x; far more is a ZIP bomb
# A claim outlives the slowest single file; a killed import can be resumed once it expires.
IMPORT_CLAIM_SECONDS = 600
# Uploaded imports whose task was lost (queue flushed, worker killed) are queued again by a periodic check
# (earworm.history.tasks.history_import_recover) once waiting this long; one unfinished after this many hours
# is failed with a message, so a file that crashes the worker cannot loop forever.
IMPORT_REQUEUE_AFTER_SECONDS = 300
IMPORT_GIVE_UP_HOURS = 24
# Non-file form data held in memory; files above FILE_UPLOAD_MAX_MEMORY_SIZE go to a temporary file.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Static files ------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "earworm" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Token encryption --------------------------------------------------------------------------------------
# Fernet keys, newest first; older keys still decrypt, so a new key can be put in front at any time.
# Never derived from SECRET_KEY (SECURITY.md OA-14). With DEBUG on and no key set, earworm.core.crypto
# generates one once into data/ and reuses it.
TOKEN_ENCRYPTION_KEYS = env.list("TOKEN_ENCRYPTION_KEYS", default=[])
TOKEN_KEY_FILE = DATA_DIR / "token_encryption.key"

# --- Spotify -----------------------------------------------------------------------------------------------
SPOTIFY_CLIENT_ID = env.str("SPOTIFY_CLIENT_ID", default="")
SPOTIFY_CLIENT_SECRET = env.str("SPOTIFY_CLIENT_SECRET", default="")
SPOTIFY_REDIRECT_URI = env.str("SPOTIFY_REDIRECT_URI", default="http://127.0.0.1:8000/api/callback/")
SPOTIFY_ACCOUNTS_URL = env.str("SPOTIFY_ACCOUNTS_URL", default="https://accounts.spotify.com").rstrip("/")
SPOTIFY_API_URL = env.str("SPOTIFY_API_URL", default="https://api.spotify.com/v1").rstrip("/")
SPOTIFY_BATCH_ENDPOINTS = env.bool("SPOTIFY_BATCH_ENDPOINTS", default=False)
SYNC_INTERVAL_MINUTES = env.int("SYNC_INTERVAL_MINUTES", default=20)
# Demo mode: no Spotify app configured, so `make run` starts the built-in emulator and points the app at it
# with the emulator's demo client. With real credentials nothing of the emulator runs.
DEMO_MODE = not SPOTIFY_CLIENT_ID
DEMO_EMULATOR_PORT = 8001
if DEMO_MODE:
    SPOTIFY_CLIENT_ID = "earworm-demo-client"
    SPOTIFY_CLIENT_SECRET = "earworm-demo-secret"  # the emulator's public demo credentials, not a secret
    SPOTIFY_ACCOUNTS_URL = f"http://127.0.0.1:{DEMO_EMULATOR_PORT}"
    SPOTIFY_API_URL = f"http://127.0.0.1:{DEMO_EMULATOR_PORT}/v1"
# Internal knobs (not environment variables).
SPOTIFY_CONNECT_TIMEOUT = 5.0
SPOTIFY_READ_TIMEOUT = 15.0
SPOTIFY_MAX_RESPONSE_BYTES = 5 * 1024 * 1024
SPOTIFY_SCOPES = ["user-read-recently-played"]
# The Spotify gate (earworm.core.ratelimit), shared by every process: calls per rolling window per client id.
# Spotify does not publish its limit; 90 per 30 s stays well below what apps report hitting.
SPOTIFY_WINDOW_SECONDS = 30
SPOTIFY_WINDOW_BUDGET = 90
# Enrichment yields to syncs: it may fill only this share of the window, and this many calls a day (reports
# put the development-mode quota at roughly 1,100 to 2,600 calls a day, spotify/FACTS.md §4).
SPOTIFY_ENRICH_WINDOW_SHARE = 0.5
SPOTIFY_ENRICH_DAILY_BUDGET = 500
SPOTIFY_GATE_REDIS_PREFIX = "earworm:spotify-gate"
# Sync engine (earworm.history.services.sync): a claim outlives one sync's HTTP calls and token refresh.
SYNC_CLAIM_SECONDS = 120
# Periodic enrichment: calls per run (earworm.catalog.tasks).
ENRICH_MAX_REQUESTS_PER_RUN = 60

# --- Logging -----------------------------------------------------------------------------------------------
# One JSON object per line with the request id, secrets redacted (earworm.core.logging); readable lines
# when DEBUG is on for `make run`. Production always logs JSON.
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = logging_config(json_logs=not DEBUG, level=LOG_LEVEL)
LOGGING_CONFIG = "earworm.core.logging.configure"

from config.huey import huey_settings  # noqa: E402

HUEY = huey_settings(redis_url=REDIS_URL, data_dir=DATA_DIR, immediate=HUEY_IMMEDIATE)
