"""The many-machines test (config/tests/test_many_machines.py), longer: more accounts, more sync intervals,
more disruptions, with the time each interval took. Prints a table and writes its section of docs/benchmarks.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/fleet.py [--accounts 300] [--cycles 8] [--workers 2] [--threads 2] [--no-docs]

Needs PostgreSQL (a scratch database is created on DATABASE_URL's server and dropped) and the redis-server
binary (a private server on a free port); never touches the machine's own Redis.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks_doc import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MARK_START, MARK_END = "<!-- fleet-bench:start -->", "<!-- fleet-bench:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="docker/worker processes (plus the scheduler)")
    parser.add_argument("--threads", type=int, default=2, help="HUEY_WORKERS of each worker")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

    from config.tests.fleet import Fleet, check_plays, run_cycles

    # A disruption every other interval: kill a worker, restart Redis, in turn.
    events = {n: ("kill-worker" if n % 4 == 2 else "restart-redis") for n in range(2, args.cycles + 1, 2)}
    fleet = Fleet(Path(tempfile.mkdtemp(prefix="earworm-fleet-")), accounts=args.accounts, workers=args.workers,
                  worker_threads=args.threads, emulator_args=("--token-ttl", "2400"))  # fmt: skip
    started = time.perf_counter()
    try:
        fleet.start()
        setup_s = time.perf_counter() - started
        print(f"fleet up with {args.accounts} accounts in {setup_s:.1f} s", flush=True)
        reports = run_cycles(fleet, cycles=args.cycles, events=events, cycle_timeout=600,
                             log=lambda line: print(line, flush=True))  # fmt: skip
        check = check_plays(fleet, reports)
        counters = fleet.emu.control.counters()
    finally:
        fleet.stop()
    everyone = set(fleet.accounts)
    missed = sum(len(everyone - cycle.synced) for cycle in reports)
    ok = not (missed or check.duplicates or check.missing or check.unexpected or counters["overlaps_by_user"])
    lines = render(args, reports, check, counters, setup_s, ok)
    print("\n".join(lines))
    if not args.no_docs:
        write_section("\n".join(lines), start=MARK_START, end=MARK_END)
    if not ok:
        raise SystemExit(1)


def render(args, reports, check, counters, setup_s: float, ok: bool) -> list[str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        MARK_START,
        "## Many machines on one (`bench/fleet.py`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit.stdout.strip()}` on {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}: 2 `docker/web`, {args.workers} `docker/worker` "
        f"({args.threads} threads each) and 1 `docker/scheduler` on a scratch PostgreSQL database and a private "
        f"Redis; {args.accounts} emulator accounts in extended mode, each listening all the time; sync intervals of "
        f"20 minutes played back to back (config/tests/fleet.py). Start-up (migrate, processes, {args.accounts} "
        f"OAuth logins): {setup_s:.0f} s. Load average at the end: {load}.",
        "",
        "| interval | disruption | accounts synced | syncs | new plays | scheduler ticks | seconds |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for cycle in reports:
        event = cycle.event or "–"
        if cycle.claims_expired:
            event += f" ({len(cycle.claims_expired)} claims of the killed worker lapsed)"
        lines.append(
            f"| {cycle.number} | {event} | {len(cycle.synced)} | {cycle.runs} | {cycle.new_plays:,} | "
            f"{cycle.ticks} | {cycle.seconds:.1f} |"
        )
    lines += [
        "",
        f"Plays stored: {check.stored:,}, of which Spotify's window showed {check.expected:,} music plays at the "
        f"syncs (the rest are local files); duplicates: {sum(check.duplicates.values())}, missing: "
        f"{sum(check.missing.values())}, not in the window: {sum(check.unexpected.values())}; accounts synced by "
        f"two workers at once: {len(counters['overlaps_by_user'])}; token refreshes: {counters['refresh_grants']}. "
        + ("**Passed.**" if ok else "**Failed.**"),
        "",
        "Interval 0 is the first sync that each login queues. A scheduler tick is one `history_sync_all_due`, "
        "which the scheduler runs once a minute (20 per real interval) and which enqueues at most 1.5 x "
        "accounts / 20 due accounts; ticks come every 0.2 s here.",
        MARK_END,
    ]
    return lines


if __name__ == "__main__":
    main()
