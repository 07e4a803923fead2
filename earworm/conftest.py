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


# --- A real browser: Debian's Chromium driven by Playwright --------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = __import__("pathlib").Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    """Debian's packaged Chromium (never a downloaded browser); .ci/run installs it when missing."""
    import os

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, and Django then refuses ORM calls from it;
    # the test code itself is synchronous, so this is the documented way to let it through.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under test-artifacts/screenshots/ (kept by CI as an artifact)."""

    def take(name: str, target=None) -> str:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return str(path)

    return take


@pytest.fixture(autouse=True)
def _isolated_spotify_gate(settings):
    """Each test gets its own Spotify gate keys in Redis, so parallel tests never share a window or a pause."""
    settings.SPOTIFY_GATE_REDIS_PREFIX = f"earworm-test:{uuid.uuid4().hex}"
