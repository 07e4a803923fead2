"""Real consumers on real Redis and PostgreSQL: two `run_huey` processes share one queue and 50 accounts.

Every account is queued twice per cycle (as the scheduler and a retry may both queue it); each is synced exactly
once per cycle, and the emulator, which tracks the requests of each user in flight, sees no two of one account
overlap. The consumers run on a database created for this test and on a Redis database and Huey name of their own.
"""

import os
import signal
import subprocess
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from huey import RedisHuey

from earworm.history.tests.e2e.processes import ScratchDatabase, cli, process_env, start_consumer, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(120)]

ACCOUNTS = 50
PLAYS_PER_CYCLE = 10
# Not the suite's Redis database, nor the deploy tests' (14, 15): one per pytest-xdist process.
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_DB = 12 + _XDIST_INDEX % 2


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Huey's graceful stop: running tasks finish
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_consumers_sync_every_account_once_per_cycle_never_concurrently(emulator_factory, tmp_path):
    emu = emulator_factory("--no-auto-listen", "--users", str(ACCOUNTS))
    control = emu.control
    control.set_config(rate_limit=100_000)
    users = [user["id"] for user in control.users()]
    redis_url = urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{REDIS_DB}"))
    database = ScratchDatabase("postgresql", tmp_path)
    consumers: list[subprocess.Popen] = []
    env = process_env(database_url=database.url, emu=emu, folder=tmp_path, redis_url=redis_url)
    huey = RedisHuey(env["EARWORM_E2E_NAME"], url=redis_url)
    next_track = iter(range(100_000))

    def listen() -> None:
        now = control.now_ms()
        for user in users:
            control.play(user, [{"track_index": next(next_track), "played_at": now + (i + 1) * 40_000}
                                for i in range(PLAYS_PER_CYCLE)])  # fmt: skip
        control.advance_clock(PLAYS_PER_CYCLE * 40 + 60)

    def synced(runs: int) -> bool:
        done = database.scalar("SELECT count(*) FROM history_syncrun WHERE status = 'ok'") >= runs
        claimed = database.scalar("SELECT count(*) FROM accounts_spotifyaccount WHERE sync_claimed_until IS NOT NULL")
        return done and claimed == 0 and huey.pending_count() == 0

    try:
        accounts = cli(env, "setup", *users)
        ids = [str(accounts[user]) for user in users]
        huey.flush()  # the first syncs that connecting queued: each cycle is queued by the test
        logs = [tmp_path / "scheduler.log", tmp_path / "worker.log"]
        consumers = [start_consumer(env, logs[0], periodic=True), start_consumer(env, logs[1], periodic=False)]
        # Every answer takes 0.2 s, so two syncs of one account would overlap if both were let through.
        control.inject_fault("timeout", "recently-played", fraction=1.0, delay_seconds=0.2)

        for cycle in (1, 2):
            listen()
            if cycle > 1:
                cli(env, "age", "20")  # an interval later: every account is due again
            assert cli(env, "enqueue", "--times", "2", *ids) == 2 * ACCOUNTS
            wait_for(lambda c=cycle: synced(c * ACCOUNTS), timeout=45, what=f"cycle {cycle}", interval=0.2)
            assert database.scalar("SELECT count(*) FROM history_syncrun") == cycle * ACCOUNTS

        # Both consumers took work from the one queue, and no task failed: a failed task is retried and calls
        # Spotify again, which the counts below would show without the cause (a deadlock between two syncs'
        # catalog writes once; later two syncs inserting the same new artist, catalog.services.UPSERT_ATTEMPTS).
        texts = {log.name: log.read_text() for log in logs}
        executed = Counter({name: text.count("Executing earworm.history.tasks.history_sync")
                            for name, text in texts.items()})  # fmt: skip
        assert all(executed[name] > 0 for name in texts), executed
        failed = [line for text in texts.values() for line in text.splitlines() if "Unhandled exception" in line]
        assert not failed, failed[:3]
        counters = control.counters()
        assert counters["overlaps_by_user"] == {}
        assert set(counters["max_concurrent_by_user"].values()) == {1}
        assert {user: calls.get("recently-played") for user, calls in counters["by_user"].items()} == dict.fromkeys(
            users, 2
        )
        dump = cli(env, "dump")
        for user in users:
            truth = {(p["track_id"], p["played_at_ms"]) for p in control.ground_truth(user, source="api")
                     if p["visible_in_api"] and p["kind"] == "track"}  # fmt: skip
            stored = [(track, ms) for track, ms, _album, _artists in dump[user]["plays"]]
            assert len(stored) == len(set(stored)) == len(truth) and set(stored) == truth, user
            assert dump[user]["runs"] == [["ok", PLAYS_PER_CYCLE]] * 2, user
    finally:
        for proc in consumers:
            stop(proc)
        huey.flush()
        gate = redis.Redis.from_url(redis_url)
        for key in gate.scan_iter(match=f"earworm-e2e:{env['EARWORM_E2E_NAME']}:*"):
            gate.delete(key)
        database.drop()
