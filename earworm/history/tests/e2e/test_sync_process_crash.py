"""A sync process killed with SIGKILL at the worst moments, then restarted: nothing lost, nothing stored twice.

The sync runs in a process of its own on a database of its own (`processes.py`). The kill points are held open
from outside, without hooks in the code under test: the emulator holds the process inside its HTTP call (a delayed
answer); a lock held by this test on a table the sync's transaction must write holds it after the HTTP call and
before its commit; and "after the commit" is the moment its `SyncRun` row is visible.
"""

import signal
import subprocess
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection

from earworm.history.tests.e2e.processes import ScratchDatabase, cli, process_env, start_sync, wait_for

pytestmark = [pytest.mark.timeout(180)]

# Short, so a killed sync's claim runs out within the test; long enough for one sync on a loaded machine.
CLAIM_SECONDS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    if request.param == "sqlite" and connection.vendor != "sqlite":
        pytest.skip("the SQLite variant runs in the SQLite suite run")
    if request.param == "postgresql" and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    db = ScratchDatabase(request.param, tmp_path)
    yield db
    db.drop()


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def claimed_until(db: ScratchDatabase, account_id: int) -> datetime | None:
    value = db.scalar(f"SELECT sync_claimed_until FROM accounts_spotifyaccount WHERE id = {account_id}")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value


def wait_claim_expired(db: ScratchDatabase, account_id: int) -> None:
    def expired() -> bool:
        until = claimed_until(db, account_id)
        return until is None or until + timedelta(milliseconds=200) < datetime.now(until.tzinfo)

    wait_for(expired, timeout=CLAIM_SECONDS + 10, what="the dead sync's claim to expire", interval=0.1)


def sync_runs(db: ScratchDatabase) -> int:
    return int(db.scalar("SELECT count(*) FROM history_syncrun"))


def plays(db: ScratchDatabase) -> int:
    return int(db.scalar("SELECT count(*) FROM history_play"))


def test_sigkill_mid_sync_then_restart_stores_every_play_once(emulator_factory, database, tmp_path):
    emu = emulator_factory("--no-auto-listen", "--users", "1")
    control = emu.control
    user = control.users()[0]["id"]
    env = process_env(database_url=database.url, emu=emu, folder=tmp_path, claim_seconds=CLAIM_SECONDS)
    account_id = cli(env, "setup", user)[user]
    log = tmp_path / "sync.log"
    next_track = iter(range(10_000))

    def listen(count: int) -> None:
        now = control.now_ms()
        control.play(user, [{"track_index": next(next_track), "played_at": now + (i + 1) * 45_000}
                            for i in range(count)], advance_clock=True)  # fmt: skip

    def calls() -> int:
        return int(control.counters()["calls"].get("recently-played", 0))

    def restart(expected_new: int) -> None:
        wait_claim_expired(database, account_id)
        result = cli(env, "sync", str(account_id))
        assert (result["status"], result["new_plays"]) == ("ok", expected_new), result

    # 1. Killed inside the HTTP call: the emulator answers only after a minute.
    listen(20)
    control.inject_fault("timeout", "recently-played", count=1, delay_seconds=60)
    before = calls()
    proc = start_sync(env, account_id, log)
    wait_for(lambda: calls() > before, timeout=30, what="the sync's HTTP call")
    kill(proc)
    assert (sync_runs(database), plays(database)) == (0, 0)
    assert claimed_until(database, account_id) is not None  # the dead process still holds the account ...
    restart(20)  # ... until its claim expires; then the next run proceeds

    # 2. Killed after the HTTP call, inside the transaction, before its commit.
    listen(15)
    lock = database.connect()
    if database.vendor == "postgresql":
        # Writes to history_syncrun wait; reads do not. The sync's transaction writes its SyncRun last, after
        # the catalog, the plays, the rollups and the account: all of it is pending when the process dies.
        lock.execute("BEGIN")
        lock.execute("LOCK TABLE history_syncrun IN EXCLUSIVE MODE")
        proc = start_sync(env, account_id, log)
        waiting = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                   "WHERE NOT l.granted AND c.relname = 'history_syncrun'")  # fmt: skip
        wait_for(lambda: database.scalar(waiting), timeout=30, what="the sync to wait for the SyncRun table")
    else:
        # SQLite has one writer: the test takes the write lock while the process is inside its HTTP call (the
        # answer is delayed by a second), so its transaction (BEGIN IMMEDIATE) waits for it once the answer is in.
        control.inject_fault("timeout", "recently-played", count=1, delay_seconds=1.0)
        before = calls()
        proc = start_sync(env, account_id, log)
        wait_for(lambda: calls() > before, timeout=30, what="the sync's HTTP call")
        lock.execute("BEGIN IMMEDIATE")
        time.sleep(2.5)  # the delayed answer arrives; the process now waits on the write lock (20 s timeout)
        assert proc.poll() is None
    kill(proc)
    lock.execute("ROLLBACK")
    lock.close()
    assert (sync_runs(database), plays(database)) == (1, 20)
    restart(15)

    # 3. Killed after the commit, as soon as its SyncRun is visible.
    listen(10)
    proc = start_sync(env, account_id, log)
    wait_for(lambda: sync_runs(database) == 3, timeout=30, what="the sync to commit", interval=0.01)
    kill(proc)
    assert plays(database) == 45
    restart(0)

    truth = control.ground_truth(user, source="api")
    expected = {(p["track_id"], p["played_at_ms"]) for p in truth if p["visible_in_api"] and p["kind"] == "track"}
    dump = cli(env, "dump")[user]
    stored = [(track, ms) for track, ms, _album, _artists in dump["plays"]]
    assert len(stored) == len(set(stored)) == len(expected) == 45
    assert set(stored) == expected
    artists = {(p["track_id"], p["played_at_ms"]): p["artists"] for p in truth}
    for track, ms, album, track_artists in dump["plays"]:
        assert album and track_artists == artists[(track, ms)]
    assert dump["runs"] == [["ok", 20], ["ok", 15], ["ok", 10], ["ok", 0]]
    assert not dump["claimed"]
