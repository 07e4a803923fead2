"""Many machines on one: 2 web processes, 2 workers and the scheduler from docker/, on PostgreSQL and Redis,
syncing 100 emulator accounts (extended mode) through sync intervals while a worker is SIGKILLed and restarted
and Redis is restarted (fleet.py explains how the intervals are driven). Every play that Spotify's
recently-played showed at a sync is stored exactly once, every account syncs in every interval, no account is
ever synced by two workers at once, and both web processes show each user their own play count.

A longer run with more accounts and intervals: `bench/fleet.py`.
"""

import json
import os

import pytest

from config.tests.fleet import Fleet, check_plays, http_get, run_cycles

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

ACCOUNTS = 100
EVENTS = {2: "kill-worker", 3: "restart-redis"}
CYCLES = 4


@pytest.fixture
def fleet(tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    # Tokens expire in the emulator's time every other interval, so refreshes run on every consumer.
    fleet = Fleet(tmp_path, accounts=ACCOUNTS, emulator_args=("--token-ttl", "2400"))
    try:
        yield fleet.start()
    finally:
        fleet.stop()


def test_syncs_on_many_processes_store_every_play_once_through_a_worker_kill_and_a_redis_restart(fleet):
    lines: list[str] = []

    def log(line: str) -> None:
        print(line)
        lines.append(line)

    reports = run_cycles(fleet, cycles=CYCLES, events=EVENTS, log=log)

    everyone = set(fleet.accounts)
    assert [sorted(everyone - cycle.synced) for cycle in reports] == [[]] * (CYCLES + 1), lines
    assert sum(cycle.new_plays for cycle in reports[1:]) > ACCOUNTS, "the intervals brought new plays"
    check = check_plays(fleet, reports)
    assert check.duplicates == {}, check
    assert check.missing == {}, check
    assert check.unexpected == {}, check
    counters = fleet.emu.control.counters()
    assert counters["overlaps_by_user"] == {}, "an account was synced by two workers at once"
    assert counters["refresh_grants"] >= ACCOUNTS, "expired tokens were refreshed"

    # What each user sees, through either web process: their own plays, all of them.
    stored = fleet.stored_plays()
    for index, (user, (_, token)) in enumerate(sorted(fleet.accounts.items())):
        port = fleet.web_ports[index % len(fleet.web_ports)]
        status, body = http_get(port, "/api/v1/me", Authorization=f"Bearer {token}")
        assert status == 200, body
        me = json.loads(body)
        assert (me["spotify_id"], me["play_count"]) == (user, len(stored[user]))
    for port in fleet.web_ports:
        status, body = http_get(port, "/healthz")
        assert status == 200 and json.loads(body)["queue"]["status"] == "ok", body
