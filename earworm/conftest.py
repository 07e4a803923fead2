"""Cross-app fixtures (STYLE.md §9)."""

import uuid

import pytest

from earworm.accounts.tests.factories import SpotifyAccountFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def spotify_account(db):
    return SpotifyAccountFactory()


@pytest.fixture
def auth_client(client, spotify_account):
    client.force_login(spotify_account.user)
    return client


# --- The Spotify emulator, over real HTTP ------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator_process():
    """One emulator process per test session (per xdist worker), with a frozen clock tests advance."""
    from spotify_emulator.testing import EmulatorProcess

    with EmulatorProcess(seed=11, extra_args=["--frozen-clock", "--start", "2026-06-01T12:00:00Z"]) as emulator:
        yield emulator


@pytest.fixture
def spotify_emulator(emulator_process, settings):
    """The emulator, reset, with Earworm's settings pointed at it (only environment-level settings change)."""
    emulator_process.control.reset()
    settings.SPOTIFY_ACCOUNTS_URL = emulator_process.accounts_url
    settings.SPOTIFY_API_URL = emulator_process.api_url
    settings.SPOTIFY_CLIENT_ID = emulator_process.client_id
    settings.SPOTIFY_CLIENT_SECRET = emulator_process.client_secret
    return emulator_process


@pytest.fixture(autouse=True)
def _isolated_spotify_gate(settings):
    """Each test gets its own Spotify gate keys in Redis, so parallel tests never share a window or a pause."""
    settings.SPOTIFY_GATE_REDIS_PREFIX = f"earworm-test:{uuid.uuid4().hex}"
