"""Suite-wide rules: service-backed tests skip cleanly when their service is absent, and CI may forbid that.

`make test` runs the suite on SQLite (no DATABASE_URL, no REDIS_URL), then again on PostgreSQL and Redis when
their URLs are set. Tests marked `postgres` or `redis` need those services; with EARWORM_REQUIRE_SERVICES=1
(set by .ci/run) any such test skipped in the service run fails instead, so CI cannot go green without them.
"""

import os

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
