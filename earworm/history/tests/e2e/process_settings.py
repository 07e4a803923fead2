"""Settings of the Earworm processes that the crash and multi-consumer tests start (see `processes.py`).

The production settings module with test knobs: each test gives its processes a job queue of their own (a Huey
name, and a SQLite queue file in the test's folder), a gate of their own in Redis, a generous Spotify budget, and
optionally a short sync claim, so a killed worker's claim runs out within the test.
"""

import os
from pathlib import Path

from config.huey import huey_settings
from config.settings.base import *  # noqa: F403
from config.settings.base import REDIS_URL

_NAME = os.environ["EARWORM_E2E_NAME"]

HUEY = {
    **huey_settings(redis_url=REDIS_URL, data_dir=Path(os.environ["EARWORM_E2E_DIR"]), immediate=False),
    "name": _NAME,
}
SPOTIFY_GATE_REDIS_PREFIX = f"earworm-e2e:{_NAME}:spotify-gate"
SPOTIFY_WINDOW_BUDGET = 100_000
SPOTIFY_READ_TIMEOUT = float(os.environ.get("EARWORM_E2E_READ_TIMEOUT", "15"))
SYNC_CLAIM_SECONDS = int(os.environ.get("EARWORM_E2E_CLAIM_SECONDS", "120"))
TOKEN_ENCRYPTION_KEYS = ["dGVzdC10ZXN0LXRlc3QtdGVzdC10ZXN0LXRlc3QtMDA="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
