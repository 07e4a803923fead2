"""Settings of the processes `fleet.py` starts: the production settings, with three test knobs.

- The Spotify gate's window budget is raised: the emulator is the only Spotify here, in extended mode, and the
  many-machines test is about correctness across processes, not about waiting out a 30-second window.
- Enrichment may make no Spotify calls, so every Web API call of a user in the emulator's counters is a sync
  (the test asserts that no account was ever synced by two workers at once).
- The sync claim can be shortened (FLEET_SYNC_CLAIM_SECONDS), for benchmarks that kill consumers often.
"""

import os

from config.settings.production import *  # noqa: F403

SPOTIFY_WINDOW_BUDGET = 100_000
SPOTIFY_ENRICH_DAILY_BUDGET = 0
SYNC_CLAIM_SECONDS = int(os.environ.get("FLEET_SYNC_CLAIM_SECONDS", "120"))
