"""Benchmarks of the sync engine against the emulator (issue 5, item 7).

    .venv/bin/python bench/sync.py                  # (a) and the week, SQLite in a temporary file
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/sync.py --parts a,cycle,week

Prints the results and appends them to the sync section of docs/benchmarks.md:
- (a) one sync of 50 plays whose tracks, albums and artists are all new: SQL statements, Spotify calls, wall time
  (median of several runs, each on fresh accounts);
- (b) `cycle`: one sync cycle over `--accounts` (1,000) emulator accounts (extended mode, generous limits) by 1, 2
  and 4 `run_huey` consumer processes on Redis and a scratch PostgreSQL database: accounts per minute, the ratio
  to 1 consumer measured in the same run, and the share of sync time spent in the Spotify gate (needs PostgreSQL
  and Redis);
- `week`: a simulated week of polling every 20 minutes for several listeners at realistic and extreme rates,
  with 10 % of recently-played calls failing (429, 5xx, timeouts, malformed JSON), a quota pause of hours and
  expiring tokens, checked against the emulator's ground truth.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
# The in-process parts use the database gate; the consumer cycle hands Redis to its consumers.
BENCH_REDIS_URL = os.environ.pop("REDIS_URL", "")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

RUNS = 5


def part_a() -> list[str]:
    from earworm.history.services.sync import history_sync
    from earworm.history.tests.e2e.conftest import connect
    from spotify_emulator.testing import EmulatorProcess

    settings.SPOTIFY_WINDOW_BUDGET = 10_000
    results = []
    with EmulatorProcess(seed=11, extra_args=["--frozen-clock", "--no-auto-listen", "--users", str(RUNS)]) as emu:
        settings.SPOTIFY_ACCOUNTS_URL, settings.SPOTIFY_API_URL = emu.accounts_url, emu.api_url
        settings.SPOTIFY_CLIENT_ID, settings.SPOTIFY_CLIENT_SECRET = emu.client_id, emu.client_secret
        users = emu.control.users()
        emu.control.set_config(allow_list={u["id"]: True for u in users})
        for run, user in enumerate(users):
            account = connect(emu, user["id"])
            now = emu.control.now_ms()
            plays = [{"track_index": 50 * run + i, "played_at": now + (i + 1) * 40_000} for i in range(50)]
            emu.control.play(user["id"], plays, advance_clock=True)
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                result = history_sync(account_id=account.pk, force=True)
            wall = time.perf_counter() - started
            assert result.new_plays == 50, result
            results.append((len(queries), result.calls_made, wall, result.new_tracks, result.new_artists))
    statements = results[-1][0]
    calls = results[-1][1]
    wall_ms = statistics.median(r[2] for r in results) * 1000
    vendor = connection.vendor
    lines = [
        f"- {datetime.now(UTC):%Y-%m-%d}, {vendor}: one sync of 50 plays, all tracks new "
        f"({results[-1][3]} tracks, {results[-1][4]} artists): **{statements} SQL statements**, "
        f"**{calls} Spotify call(s)**, **{wall_ms:.0f} ms** wall (median of {RUNS}, emulator on loopback, "
        f"includes token check and the gate).",
    ]
    return lines


def _emulator(*args: str, seed: int) -> object:
    from spotify_emulator.testing import EmulatorProcess

    return EmulatorProcess(seed=seed, extra_args=["--frozen-clock", *args], startup_timeout=120)


def part_cycle(accounts: int, consumer_counts: list[int], workers: int) -> list[str]:
    """(b) A cycle over `accounts` accounts by N consumer processes, N in `consumer_counts`, on Redis and PG."""
    import subprocess

    import redis
    from huey import RedisHuey

    from earworm.history.tests.e2e.processes import ScratchDatabase, cli, process_env, wait_for

    if connection.vendor != "postgresql" or not BENCH_REDIS_URL:
        print("cycle: skipped, needs DATABASE_URL=postgres://... and REDIS_URL")
        return []
    folder = Path(tempfile.mkdtemp())
    redis_url = BENCH_REDIS_URL.rsplit("/", 1)[0] + "/11"  # a database of its own; the Huey name is unique too
    database = ScratchDatabase("postgresql", folder)
    rows = []
    with _emulator("--no-auto-listen", "--mode", "extended", "--users", str(accounts), seed=23) as emu:
        control = emu.control
        users = [u["id"] for u in control.users()]
        control.set_config(rate_limit=10**7, quota_per_day=10**8, allow_list=dict.fromkeys(users, True))
        env = process_env(database_url=database.url, emu=emu, folder=folder, redis_url=redis_url,
                          SPOTIFY_BATCH_ENDPOINTS="true", BENCH_GATE_KEY="")  # fmt: skip
        huey = RedisHuey(env["EARWORM_E2E_NAME"], url=redis_url)
        store = redis.Redis.from_url(redis_url)
        track = 0
        procs: list[subprocess.Popen[bytes]] = []
        try:
            started = time.perf_counter()
            ids = [str(i) for i in cli(env, "setup", "--threads", "16", *users, timeout=1800).values()]
            print(f"cycle: {accounts} accounts connected in {time.perf_counter() - started:.0f} s")
            huey.flush()
            for cycle, consumers in enumerate(consumer_counts, start=1):
                now = control.now_ms()
                for user in users:  # 10 new plays per account and cycle, tracks new to the catalog at first
                    control.play(user, [{"track_index": (track + i) % 20_000, "played_at": now + (i + 1) * 40_000}
                                        for i in range(10)])  # fmt: skip
                    track += 10
                control.advance_clock(10 * 40 + 60)
                if cycle > 1:
                    cli(env, "age", "20")
                gate_key = f"bench-gate:{env['EARWORM_E2E_NAME']}:{cycle}"
                procs.clear()
                for n in range(consumers):
                    # No periodic tasks: the bench queues the cycle itself, and history_sync_all_due would
                    # also queue a few due accounts at start-up.
                    args = [sys.executable, "bench/sync_consumer.py", "--workers", str(workers),
                            "--worker-type", "thread", "--no-periodic"]  # fmt: skip
                    log = (folder / f"consumer-{cycle}-{n}.log").open("wb")
                    procs.append(subprocess.Popen(args, cwd=ROOT, env={**env, "BENCH_GATE_KEY": gate_key},
                                                  stdout=log, stderr=log))  # fmt: skip
                time.sleep(3)  # consumers up (Django loaded) before the clock starts
                done_before = database.scalar("SELECT count(*) FROM history_syncrun WHERE status = 'ok'")
                last_id = database.scalar("SELECT coalesce(max(id), 0) FROM history_syncrun")
                started = time.perf_counter()
                cli(env, "enqueue", *ids)
                wait_for(lambda b=done_before: database.scalar(
                    "SELECT count(*) FROM history_syncrun WHERE status = 'ok'") >= b + accounts,
                    timeout=3600, what="the cycle", interval=0.25)  # fmt: skip
                # From the first sync's start to the last one's end (the queueing process's start-up excluded).
                wall = database.scalar(f"SELECT extract(epoch FROM max(finished_at) - min(started_at)) "
                                       f"FROM history_syncrun WHERE id > {last_id}")  # fmt: skip
                wall = float(wall) if wall else time.perf_counter() - started
                for proc in procs:
                    proc.send_signal(signal.SIGINT)
                for proc in procs:
                    proc.wait(timeout=60)
                sync_ms = database.scalar(
                    f"SELECT coalesce(sum(duration_ms), 0) FROM history_syncrun WHERE id > {last_id}"
                )
                gate_s = float(store.get(gate_key) or 0)
                refused_s = float(store.get(f"{gate_key}:refused") or 0)
                failed = database.scalar("SELECT count(*) FROM history_syncrun WHERE status <> 'ok'")
                rows.append((consumers, wall, accounts / wall * 60, gate_s, refused_s, sync_ms / 1000, failed))
                print(f"cycle: {consumers} consumer(s) x {workers} threads: {wall:.1f} s, "
                      f"{accounts / wall * 60:.0f} accounts/min, gate {gate_s:.2f} s of {sync_ms / 1000:.1f} s "
                      f"sync time, refused wait {refused_s:.0f} s, failed runs {failed}")  # fmt: skip
                store.delete(gate_key, f"{gate_key}:refused")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            huey.flush()
            for key in store.scan_iter(match=f"earworm-e2e:{env['EARWORM_E2E_NAME']}:*"):
                store.delete(key)
            database.drop()
    base = next((r for r in rows if r[0] == 1), rows[0])
    lines = [
        "",
        f"(b) {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, PostgreSQL and Redis on the same machine: one "
        f"cycle over **{accounts:,} emulator accounts** (extended mode, generous limits, 10 new plays per account "
        f"and cycle), `history_sync` queued once per account and run by N `run_huey` processes of {workers} "
        "threads each; the emulator, the queueing process and the database share the machine. Gate = time inside "
        "`RedisGate.before_request` (one Lua call) as a share of the summed `SyncRun.duration_ms`; no call was "
        "refused at these limits, so no sync waited for a window. Ratio: against 1 consumer in the same run "
        "(cycles run in the order shown; the catalog grows from cycle to cycle).",
        "",
        "| consumers | cycle wall | accounts/min | × 1 consumer | gate share of sync time | refused wait | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for consumers, wall, per_min, gate_s, refused_s, sync_s, failed in rows:
        share = f"{gate_s / sync_s:.1%} ({gate_s:.1f} s of {sync_s:.0f} s)"
        lines.append(f"| {consumers} | {wall:.1f} s | {per_min:,.0f} | {per_min / base[2]:.2f} | {share} | "
                     f"{refused_s:.0f} s | {failed} |")  # fmt: skip
    return lines


def part_week(users: int) -> list[str]:
    """A simulated week of 20-minute polls for `users` listeners with 10 % faults, against ground truth."""
    from earworm.history.models import SyncRun
    from earworm.history.tests.e2e.conftest import connect
    from earworm.history.tests.e2e.test_sync_against_emulator import run_task, stored, window_at

    poll_minutes, steps = 20, 7 * 24 * 3
    started = time.perf_counter()
    with _emulator("--token-ttl", "3600", "--refresh-policy", "random", "--artists", "2000", "--tracks", "20000",
                   "--users", str(users), seed=31) as emu:  # fmt: skip
        settings.SPOTIFY_ACCOUNTS_URL, settings.SPOTIFY_API_URL = emu.accounts_url, emu.api_url
        settings.SPOTIFY_CLIENT_ID, settings.SPOTIFY_CLIENT_SECRET = emu.client_id, emu.client_secret
        settings.SPOTIFY_READ_TIMEOUT = 2.0
        settings.SPOTIFY_WINDOW_BUDGET = 10_000  # simulated days pass in real seconds
        control = emu.control
        ids = [u["id"] for u in control.users()]
        # The frozen clock never rolls Spotify's own window far enough: only the injected faults limit here.
        control.set_config(allow_list=dict.fromkeys(ids, True), rate_limit=10**7, quota_per_day=10**8)
        accounts = {user: connect(emu, user) for user in ids}
        extreme = ids[0]  # every evening 60 short tracks within one poll interval: more than Spotify keeps
        for kind, share in (("500", 0.03), ("503", 0.02), ("malformed_json", 0.02), ("429", 0.02)):
            control.inject_fault(kind, "recently-played", fraction=share, retry_after=3)
        control.inject_fault("timeout", "recently-played", fraction=0.01, delay_seconds=3)
        control.inject_fault("500", "token", count=2)
        polls: dict[str, list[int]] = {user: [] for user in ids}
        attempts = 0
        for step in range(steps):
            if step == 100:
                control.inject_fault("quota", "recently-played", count=1, retry_after=52_531)
            if step % 72 == 60:
                now = control.now_ms()
                control.play(extreme, [{"track_index": (step * 60 + i) % 20_000, "played_at": now + (i + 1) * 19_000}
                                       for i in range(60)])  # fmt: skip
            control.advance_clock(poll_minutes * 60)
            for user, account in accounts.items():
                attempts += run_task(account.pk, emu)
                polls[user].append(control.now_ms())
        counters = control.counters()
        expected_total = stored_total = lost = 0
        for user, account in accounts.items():
            truth = control.ground_truth(user, source="api")
            expected = set().union(*(window_at(truth, at) for at in polls[user]))
            got = stored(account)
            assert len(got) == len(set(got)), f"a play was stored twice for {user}"
            assert expected <= set(got), f"{len(expected - set(got))} plays lost for {user}"
            everything = {(p["track_id"], p["played_at_ms"]) for p in truth
                          if p["kind"] == "track" and p["visible_in_api"] and p["played_at_ms"] > polls[user][0]
                          - poll_minutes * 60_000}  # fmt: skip
            expected_total += len(expected)
            stored_total += len(got)
            lost += len(everything - set(got))
        gaps = SyncRun.objects.filter(gap_from__isnull=False)
        gap_accounts = set(gaps.values_list("account__spotify_id", flat=True))
        assert gap_accounts <= {extreme}, gap_accounts
    wall = time.perf_counter() - started
    faults = counters["faults_applied"]
    calls = counters["calls"].get("recently-played", 0)
    print(f"week: {users} users, {steps} polls each, {stored_total} plays stored = every play of every window, "
          f"{lost} beyond the window, {gaps.count()} gaps recorded, {sum(faults.values())} faults of {calls} "
          f"calls, {attempts} task attempts, {wall:.0f} s")  # fmt: skip
    return [
        "",
        f"Week ({datetime.now(UTC):%Y-%m-%d}, {connection.vendor}): {users} listeners polled every 20 min for 7 "
        f"simulated days ({steps} polls each; the emulator's listeners play at their own pace, one of them 60 "
        f"tracks ending 19 s apart every evening: more than a 20-minute window holds); "
        f"{sum(faults.values())} of {calls} recently-played calls faulted "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(faults.items()))}), tokens expiring hourly. "
        f"Ground truth: **{stored_total:,} plays stored, each exactly once, every play of every window the "
        f"polls saw**; {lost} plays never reached a window (the extreme listener's excess, by design), and "
        f"**{gaps.count()} gaps recorded** (all on that listener, asserted). {attempts} task attempts, "
        f"{wall:.0f} s wall.",
    ]


def write_docs(lines: list[str]) -> None:
    """Append to the sync section of docs/benchmarks.md (before the next section)."""
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    heading = "\n## Sync engine (bench/sync.py)\n"
    if heading not in text:
        text += heading + (
            "\nOne `history_sync` against the emulator: the statement count does not grow with the number of plays "
            "(`test_sync_statement_count_does_not_depend_on_items` pins it).\n\n"
        )
    start = text.index(heading) + len(heading)
    ends = [i for i in (text.find("\n## ", start), text.find("\n<!--", start)) if i != -1]
    end = min(ends) if ends else len(text)
    section = text[start:end].rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    docs.write_text(text[:start] + section + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="a,cycle,week", help="comma-separated: a, cycle, week")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--consumers", default="1,2,4", help="consumer processes per cycle, comma-separated")
    parser.add_argument("--workers", type=int, default=4, help="threads per consumer")
    parser.add_argument("--week-users", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up scratch databases and consumers
    call_command("migrate", verbosity=0)
    parts = args.parts.split(",")
    lines: list[str] = []
    if "a" in parts:
        lines += part_a()
    if "cycle" in parts:
        lines += part_cycle(args.accounts, [int(n) for n in args.consumers.split(",")], args.workers)
    if "week" in parts:
        lines += part_week(args.week_users)
    print("\n".join(lines))
    if lines and not args.no_docs:
        write_docs(lines)


if __name__ == "__main__":
    main()
