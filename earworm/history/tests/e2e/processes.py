"""Earworm in processes of its own, for the crash and multi-consumer tests (and bench/sync.py).

An in-memory test database cannot be shared with another process, so these tests give their processes a
database of their own (`ScratchDatabase`: a PostgreSQL database created and dropped here, or a SQLite file), set
through DATABASE_URL with `process_settings` (a Huey name, queue file and gate prefix of their own). The test
process drives them from outside: it starts `manage.py run_huey` consumers or one sync (`start_sync`), kills them,
and reads and writes their database through this module's small command line:

    python -m earworm.history.tests.e2e.processes setup USER_ID...   # migrate, connect accounts: {user: account id}
    python -m earworm.history.tests.e2e.processes sync ACCOUNT_ID     # one forced history_sync: the SyncResult
    python -m earworm.history.tests.e2e.processes enqueue --times N ACCOUNT_ID...   # the history_sync task
    python -m earworm.history.tests.e2e.processes age MINUTES         # the last syncs happened MINUTES earlier
    python -m earworm.history.tests.e2e.processes dump                # plays and sync runs per Spotify user
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[4]
SETTINGS = "earworm.history.tests.e2e.process_settings"


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


class ScratchDatabase:
    """A database for other processes: a new PostgreSQL database on DATABASE_URL's server, or a SQLite file."""

    def __init__(self, vendor: str, folder: Path) -> None:
        self.vendor = vendor
        if vendor == "postgresql":
            import psycopg

            self.name = f"earworm_e2e_{uuid.uuid4().hex[:10]}"
            self._admin_url = _with_path(os.environ["DATABASE_URL"], "/postgres")
            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = _with_path(os.environ["DATABASE_URL"], f"/{self.name}")
        else:
            self.path = folder / "earworm.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def connect(self) -> Any:
        """A raw DB-API connection in autocommit mode (psycopg or sqlite3)."""
        if self.vendor == "postgresql":
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        return sqlite3.connect(self.path, isolation_level=None, timeout=30)

    def scalar(self, sql: str) -> Any:
        conn = self.connect()
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()

    def drop(self) -> None:
        if self.vendor == "postgresql":
            import psycopg

            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def process_env(
    *, database_url: str, emu: Any, folder: Path, redis_url: str = "", claim_seconds: int = 120, **extra: str
) -> dict[str, str]:
    """The environment of an Earworm process on `database_url`, talking to the emulator `emu`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SPOTIFY_", "PYTEST", "EARWORM_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SPOTIFY_CLIENT_ID=emu.client_id,
        SPOTIFY_CLIENT_SECRET=emu.client_secret,
        SPOTIFY_ACCOUNTS_URL=emu.accounts_url,
        SPOTIFY_API_URL=emu.api_url,
        EARWORM_E2E_NAME=f"e2e-{uuid.uuid4().hex[:10]}",
        EARWORM_E2E_DIR=str(folder),
        EARWORM_E2E_CLAIM_SECONDS=str(claim_seconds),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> Any:
    """Run this module's command line in a new process; returns its JSON answer."""
    done = subprocess.run([sys.executable, "-m", __name__, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_sync(env: dict[str, str], account_id: int, log: Path) -> subprocess.Popen[bytes]:
    """One forced sync of `account_id` in a new process (the work a consumer does for one task)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", __name__, "sync", str(account_id)], cwd=ROOT, env=env,
                                stdout=out, stderr=out)  # fmt: skip


def start_consumer(env: dict[str, str], log: Path, *, periodic: bool, workers: int = 4) -> subprocess.Popen[bytes]:
    """`manage.py run_huey` with thread workers; only one consumer of a queue may run periodic tasks."""
    args = [sys.executable, "manage.py", "run_huey", "--workers", str(workers), "--worker-type", "thread"]
    if not periodic:
        args.append("--no-periodic")
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=out)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- the command line, run inside the process ---------------------------------------------------------------


def _setup(user_ids: list[str], threads: int) -> dict[str, int]:
    from django.core.management import call_command
    from django.db import connection

    from earworm.history.tests.e2e.conftest import connect
    from spotify_emulator.testing import EmulatorProcess

    call_command("migrate", verbosity=0)
    base = os.environ["SPOTIFY_ACCOUNTS_URL"].rstrip("/")
    emu = EmulatorProcess(port=urlsplit(base).port)

    def one(user_id: str) -> tuple[str, int]:
        try:
            return user_id, connect(emu, user_id).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(pool.map(one, user_ids))


def _sync(account_id: int) -> dict[str, Any]:
    from earworm.history.services.sync import history_sync

    result = history_sync(account_id=account_id, force=True)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dataclasses.asdict(result).items()}


def _enqueue(account_ids: list[int], times: int) -> int:
    from earworm.history import tasks

    for _ in range(times):
        for account_id in account_ids:
            tasks.history_sync(account_id)
    return len(account_ids) * times


def _age(minutes: float) -> int:
    from datetime import timedelta

    from django.db.models import F

    from earworm.accounts.models import SpotifyAccount
    from earworm.history.models import SyncRun

    shift = timedelta(minutes=minutes)
    SyncRun.objects.update(started_at=F("started_at") - shift)
    return SpotifyAccount.objects.exclude(last_synced_at=None).update(last_synced_at=F("last_synced_at") - shift)


def _dump() -> dict[str, Any]:
    from earworm.accounts.models import SpotifyAccount
    from earworm.catalog.models import TrackArtist
    from earworm.history.models import Play, SyncRun

    artists: dict[int, list[str]] = {}
    for track_id, artist in TrackArtist.objects.order_by("track_id", "position").values_list(
        "track_id", "artist__spotify_id"
    ):
        artists.setdefault(track_id, []).append(artist)
    out: dict[str, Any] = {}
    for account in SpotifyAccount.objects.order_by("pk"):
        plays = Play.objects.filter(user_id=account.user_id).order_by("played_at")
        runs = SyncRun.objects.filter(account=account).order_by("started_at")
        out[account.spotify_id] = {
            "account_id": account.pk,
            "claimed": account.sync_claimed_until is not None,
            "plays": [
                [track, int(played_at.timestamp() * 1000), album, artists.get(track_pk, [])]
                for track, played_at, album, track_pk in plays.values_list(
                    "track__spotify_id", "played_at", "track__album__spotify_id", "track_id"
                )
            ],
            "runs": [[status, new] for status, new in runs.values_list("status", "new_plays")],
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="processes")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("user_ids", nargs="+")
    setup.add_argument("--threads", type=int, default=8)
    sync = sub.add_parser("sync")
    sync.add_argument("account_id", type=int)
    enqueue = sub.add_parser("enqueue")
    enqueue.add_argument("account_ids", nargs="+", type=int)
    enqueue.add_argument("--times", type=int, default=1)
    age = sub.add_parser("age")
    age.add_argument("minutes", type=float)
    sub.add_parser("dump")
    args = parser.parse_args(argv)

    import django

    django.setup()
    if args.command == "setup":
        answer: Any = _setup(args.user_ids, args.threads)
    elif args.command == "sync":
        answer = _sync(args.account_id)
    elif args.command == "enqueue":
        answer = _enqueue(args.account_ids, args.times)
    elif args.command == "age":
        answer = _age(args.minutes)
    else:
        answer = _dump()
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
