"""Enrichment tests reuse the history tests' fake Spotify (only the network is replaced)."""

from earworm.history.tests.conftest import fake_spotify  # noqa: F401
