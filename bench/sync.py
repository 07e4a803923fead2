"""Benchmark of the sync engine against the emulator (issue 5, item 7a).

    .venv/bin/python bench/sync.py            # SQLite in a temporary file
    DATABASE_URL=postgres://... .venv/bin/python bench/sync.py

Prints the results and appends them to docs/benchmarks.md: one sync of 50 plays whose tracks, albums and artists
are all new: SQL statements, Spotify calls, wall time (median of several runs, each on fresh accounts).
"""

import os
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
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

RUNS = 5


def main() -> None:
    from earworm.history.services.sync import history_sync
    from earworm.history.tests.e2e.conftest import connect
    from spotify_emulator.testing import EmulatorProcess

    call_command("migrate", verbosity=0)
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
    print("\n".join(lines))
    docs = ROOT / "docs" / "benchmarks.md"
    docs.parent.mkdir(exist_ok=True)
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    heading = "\n## Sync engine (bench/sync.py)\n"
    if heading not in text:
        text += heading + (
            "\nOne `history_sync` against the emulator: the statement count does not grow with the number of plays "
            "(`test_sync_statement_count_does_not_depend_on_items` pins it).\n\n"
        )
    text += "\n".join(lines) + "\n"
    docs.write_text(text)


if __name__ == "__main__":
    main()
