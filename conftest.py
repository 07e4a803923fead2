"""Suite-wide rules: service-backed tests skip cleanly when their service is absent, and CI may forbid that.

`make test` runs the suite on SQLite (no DATABASE_URL, no REDIS_URL), then again on PostgreSQL and Redis when
their URLs are set. Tests marked `postgres` or `redis` need those services; with EARWORM_REQUIRE_SERVICES=1
(set by .ci/run) any such test skipped in the service run fails instead, so CI cannot go green without them.
"""

import os
from pathlib import Path

import pytest


def _service_run() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


@pytest.fixture(autouse=True)
def _skip_without_services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL: set DATABASE_URL")
    if request.node.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: set REDIS_URL")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    required = os.environ.get("EARWORM_REQUIRE_SERVICES") == "1" and _service_run()
    needs_service = item.get_closest_marker("postgres") or item.get_closest_marker("redis")
    if report.skipped and required and needs_service:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped, but EARWORM_REQUIRE_SERVICES=1 requires PostgreSQL and Redis"
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("EARWORM_REQUIRE_SERVICES") == "1" and _service_run():
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
        if missing or not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError(
                f"EARWORM_REQUIRE_SERVICES=1 needs a PostgreSQL DATABASE_URL and REDIS_URL ({missing})"
            )


# --- A real browser: Debian's Chromium driven by Playwright --------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "test-artifacts" / "screenshots"


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
def screenshots_dir() -> Path:
    """Where browser tests save screenshots (test-artifacts/screenshots/, kept by CI as an artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under test-artifacts/screenshots/ (kept by CI as an artifact)."""

    def take(name: str, target=None) -> str:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return str(path)

    return take
