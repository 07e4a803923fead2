"""Earworm as an organization runs it, squeezed onto one machine, for test_many_machines.py and bench/fleet.py.

`Fleet` starts what compose.yaml starts, through the same docker/ scripts and production settings
(`fleet_settings`): web processes (`docker/web`, gunicorn), worker consumers (`docker/worker`) and the one
`docker/scheduler`, sharing a PostgreSQL database created and dropped here and a private `redis-server` on a
free port (with `--appendonly yes`, as compose runs it), which can be restarted without touching the machine's
shared Redis. Spotify is the emulator in extended mode with many users and a frozen clock.

`run_cycles` then plays sync intervals: each cycle moves the emulator's clock and Earworm's notion of "the last
sync" forward by SYNC_INTERVAL_MINUTES, and ticks the periodic `history_sync_all_due` task (as the scheduler
does every minute, only faster) until every account has synced again, while a disruption may run: SIGKILL of
a worker (restarted at once) or a restart of Redis. Afterwards `check_plays` compares every stored play with
the emulator's ground truth of what recently-played showed at each cycle's instant.

Accounts are connected through the real OAuth code flow by this module's command line, run in a process with
the fleet's environment: `python -m config.tests.fleet setup EMULATOR_URL USER_ID...` prints
`{spotify_id: [account id, personal API token]}`.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "config.tests.fleet_settings"
HOST = "earworm.test"
INTERVAL_MINUTES = 20
SYNC_TASK = "earworm.history.tasks.history_sync_all_due"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


class RedisServer:
    """A private redis-server on a free loopback port, its append-only file in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
                "--appendonly", "yes", "--save", "", "--logfile", str(self.folder / "redis.log")]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, timeout=10, what="redis-server")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, as `docker stop` sends: Redis writes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Service:
    """One docker/ script running in the background, its output in a log file."""

    def __init__(self, name: str, script: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.script, self.env = name, script, env
        self.log = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([f"docker/{self.script}"], cwd=ROOT, env=self.env, stdout=out,
                                            stderr=out, start_new_session=True)  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL: the machine lost power. Tasks the process had taken from the queue die with it."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def http_get(port: int, path: str, **headers: str) -> tuple[int, bytes]:
    """A GET through a web process as the TLS proxy in front of it would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": HOST, "X-Forwarded-Proto": "https", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Cycle:
    number: int
    emulator_ms: int
    event: str = ""
    seconds: float = 0.0
    ticks: int = 0
    synced: set[str] = field(default_factory=set)
    runs: int = 0
    new_plays: int = 0
    claims_expired: list[str] = field(default_factory=list)


class Fleet:
    """Everything `run_cycles` needs, started by `start()` and stopped (database dropped) by `stop()`."""

    def __init__(
        self,
        folder: Path,
        *,
        accounts: int = 100,
        web: int = 2,
        workers: int = 2,
        worker_threads: int = 2,
        seed: int = 11,
        emulator_args: tuple[str, ...] = (),
        database_url: str | None = None,
    ) -> None:
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.accounts_wanted, self.web_count, self.worker_count = accounts, web, workers
        self.worker_threads, self.seed, self.emulator_args = worker_threads, seed, emulator_args
        self.admin_url = _with_path(database_url or os.environ["DATABASE_URL"], "/postgres")
        self.db_name = f"earworm_fleet_{uuid.uuid4().hex[:10]}"
        self.redis = RedisServer(folder / "redis")
        self.emu: Any = None
        self.env: dict[str, str] = {}
        self.web: list[Service] = []
        self.web_ports: list[int] = []
        self.workers: list[Service] = []
        self.scheduler: Service | None = None
        self.accounts: dict[str, tuple[int, str]] = {}
        self._db_created = False

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Fleet:
        import psycopg
        from cryptography.fernet import Fernet

        from spotify_emulator.testing import EmulatorProcess

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True
        self.redis.start()
        self.emu = EmulatorProcess(seed=self.seed, mode="extended", extra_args=[
            "--frozen-clock", "--users", str(self.accounts_wanted + 1), "--artists", "600", "--tracks", "3000",
            "--start", "2026-06-01T16:00:00Z", "--backlog-hours", "3", *self.emulator_args,
        ]).start()  # fmt: skip
        # Extended mode has no allow-list, but the generator still marks one user in five as not allowed.
        self.emu.control.set_config(allow_list={user["id"]: True for user in self.emu.control.users()})
        inherited = ("DJANGO_", "TOKEN_", "SPOTIFY_", "HUEY_", "GUNICORN_", "WEB_", "PYTEST", "EARWORM_", "FLEET_")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
        self.env.update(
            PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE=SETTINGS,
            DATABASE_URL=_with_path(self.admin_url, f"/{self.db_name}"),
            REDIS_URL=self.redis.url,
            DJANGO_SECRET_KEY="fleet-" + uuid.uuid4().hex + uuid.uuid4().hex,
            DJANGO_ALLOWED_HOSTS=HOST,
            DJANGO_LOG_LEVEL="WARNING",
            TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            SPOTIFY_CLIENT_ID=self.emu.client_id,
            SPOTIFY_CLIENT_SECRET=self.emu.client_secret,
            SPOTIFY_ACCOUNTS_URL=self.emu.accounts_url,
            SPOTIFY_API_URL=self.emu.api_url,
            SPOTIFY_BATCH_ENDPOINTS="true",
            SYNC_INTERVAL_MINUTES=str(INTERVAL_MINUTES),
        )
        migrate = subprocess.run(["docker/migrate"], cwd=ROOT, env=self.env, capture_output=True, text=True,
                                 timeout=300)  # fmt: skip
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        for index in range(self.web_count):
            port = free_port()
            env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
            self.web.append(Service(f"web{index + 1}", "web", env, self.logs).start())
            self.web_ports.append(port)
        worker_env = {**self.env, "HUEY_WORKERS": str(self.worker_threads)}
        self.workers = [Service(f"worker{i + 1}", "worker", worker_env, self.logs).start()
                        for i in range(self.worker_count)]  # fmt: skip
        self.scheduler = Service("scheduler", "scheduler", self.env, self.logs).start()
        users = [user["id"] for user in self.emu.control.users()][: self.accounts_wanted]
        connected = self.cli("setup", self.emu.base_url, *users)
        self.accounts = {user: (pk, token) for user, (pk, token) in connected.items()}
        for port in self.web_ports:
            wait_for(lambda port=port: self._healthy(port), timeout=60, what=f"web on {port}")
        return self

    def stop(self) -> None:
        for service in [*self.web, *self.workers, *([self.scheduler] if self.scheduler else [])]:
            service.stop()
        if self.emu is not None:
            self.emu.stop()
        self.redis.stop()
        if self._db_created:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def cli(self, *args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", __name__, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"fleet {args[0]} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _healthy(self, port: int) -> bool:
        try:
            return http_get(port, "/healthz")[0] == 200
        except OSError:
            return False

    def restart_worker(self, index: int = 0) -> None:
        """SIGKILL one worker consumer, then start it again (the container's restart policy)."""
        self.workers[index].kill()
        self.workers[index].start()

    # --- the database, read and written from outside -----------------------------------------------------

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def synced_since(self, since: datetime) -> tuple[set[str], int, int]:
        """Spotify ids of the accounts with a successful sync started at or after `since`; runs; new plays."""
        rows = self.sql(
            "SELECT a.spotify_id, count(*), sum(r.new_plays) FROM history_syncrun r "
            "JOIN accounts_spotifyaccount a ON a.id = r.account_id WHERE r.status = 'ok' AND r.started_at >= %s "
            "GROUP BY a.spotify_id",
            (since,),
        )
        return {row[0] for row in rows}, sum(row[1] for row in rows), sum(row[2] for row in rows)

    def age(self, *, minutes: float) -> None:
        """Earworm's side of a passing interval: every recorded sync happened `minutes` earlier."""
        self.sql("UPDATE history_syncrun SET started_at = started_at - make_interval(mins => %s)", (minutes,))
        self.sql(
            "UPDATE accounts_spotifyaccount SET last_synced_at = last_synced_at - make_interval(mins => %s) "
            "WHERE last_synced_at IS NOT NULL",
            (minutes,),
        )

    def claims(self) -> dict[str, datetime]:
        """The sync claims held now: Spotify id -> the claim's end, which also identifies its holder."""
        rows = self.sql("SELECT spotify_id, sync_claimed_until FROM accounts_spotifyaccount "
                        "WHERE sync_claimed_until > now()")  # fmt: skip
        return {row[0]: row[1] for row in rows}

    def expire_claims(self, claims: dict[str, datetime]) -> list[str]:
        """Let these claims (and the accounts' refresh leases) lapse now, as they do SYNC_CLAIM_SECONDS after
        the consumer holding them died; a claim taken since is left alone. Returns whose lapsed."""
        lapsed = []
        for spotify_id, until in claims.items():
            if self.sql(
                "UPDATE accounts_spotifyaccount SET sync_claimed_until = now() - interval '1 second', "
                "refresh_lease_until = NULL WHERE spotify_id = %s AND sync_claimed_until = %s RETURNING id",
                (spotify_id, until),
            ):
                lapsed.append(spotify_id)
        return sorted(lapsed)

    def stored_plays(self) -> dict[str, list[tuple[str | None, int]]]:
        """(track Spotify id, played_at in Unix ms) of every stored play, per Spotify user id."""
        out: dict[str, list[tuple[str | None, int]]] = {user: [] for user in self.accounts}
        rows = self.sql(
            "SELECT a.spotify_id, t.spotify_id, (extract(epoch FROM p.played_at) * 1000)::bigint "
            "FROM history_play p JOIN accounts_spotifyaccount a ON a.user_id = p.user_id "
            "JOIN catalog_track t ON t.id = p.track_id"
        )
        for user, track, played_at in rows:
            out[user].append((track, int(played_at)))
        return out


class Ticker:
    """Enqueues `history_sync_all_due` on the fleet's Redis, as the scheduler does once a minute.

    The test process is not an Earworm process (its Django settings are the test suite's), so it sends the
    message through a Huey of the same name whose task stub has the real task's module and name, which is
    all a consumer looks a message up by.
    """

    def __init__(self, redis_url: str) -> None:
        from huey import RedisHuey

        self.huey = RedisHuey("earworm", url=redis_url, utc=True)
        module, name = SYNC_TASK.rsplit(".", 1)

        def stub() -> None:
            raise AssertionError("runs only in an Earworm consumer")

        stub.__module__ = module
        self.task = self.huey.task(name=name)(stub)

    def tick(self) -> bool:
        """Enqueue one run; False when Redis is down (it is being restarted)."""
        import redis

        try:
            self.task()
        except redis.exceptions.ConnectionError:
            return False
        return True


def run_cycles(
    fleet: Fleet,
    *,
    cycles: int,
    events: dict[int, str] | None = None,
    tick_seconds: float = 0.2,
    cycle_timeout: float = 60,
    stall_seconds: float = 4.0,
    listen: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> list[Cycle]:
    """Cycle 0 is the first sync every login queues; cycles 1..`cycles` are sync intervals, in which (with
    `listen`) every user also listens all the time (about 6 plays), besides the emulator's own listening.

    `events` maps a cycle number to "kill-worker" or "restart-redis", done once a third of the accounts have
    synced in that cycle, so syncs are in flight. When progress stalls for `stall_seconds` after a kill, the
    claims the killed consumer held lapse (SYNC_CLAIM_SECONDS does that within a real interval, which is far
    longer than a claim), so those accounts sync in the same cycle; they are recorded on the cycle.
    """
    events = events or {}
    ticker = Ticker(fleet.redis.url)
    control = fleet.emu.control
    everyone = set(fleet.accounts)
    reports: list[Cycle] = []
    for number in range(cycles + 1):
        if number > 0:
            if listen:
                for user in everyone:
                    control.play(user, simulate_minutes=INTERVAL_MINUTES, rate=1.0)
            control.advance_clock(INTERVAL_MINUTES * 60)
            fleet.age(minutes=INTERVAL_MINUTES)
        cycle = Cycle(number=number, emulator_ms=control.now_ms(), event=events.get(number, ""))
        # Cycle 0 counts the syncs queued by the logins since the first of them.
        started_at = datetime.now(UTC) if number > 0 else datetime(2000, 1, 1, tzinfo=UTC)
        started = time.monotonic()
        event_done = not cycle.event
        dead_claims: dict[str, datetime] = {}
        last_progress, last_count = time.monotonic(), -1
        while True:
            synced, runs, new_plays = fleet.synced_since(started_at)
            cycle.synced, cycle.runs, cycle.new_plays = synced, runs, new_plays
            if synced >= everyone:
                break
            now = time.monotonic()
            if len(synced) != last_count:
                last_progress, last_count = now, len(synced)
            if not event_done and len(synced) >= len(everyone) // 3:
                log(f"cycle {number}: {cycle.event} with {len(synced)} of {len(everyone)} accounts synced")
                if cycle.event == "kill-worker":
                    fleet.restart_worker(0)
                    # Claims held right after the kill; those of live consumers end within a second.
                    dead_claims.update(fleet.claims())
                elif cycle.event == "restart-redis":
                    fleet.redis.restart()
                else:
                    raise ValueError(cycle.event)
                event_done = True
            if dead_claims and now - last_progress > stall_seconds:
                lapsed = fleet.expire_claims(dead_claims)
                dead_claims.clear()
                if lapsed:
                    cycle.claims_expired += lapsed
                    log(f"cycle {number}: the killed consumer's claims lapsed: {lapsed}")
            if now - started > cycle_timeout:
                raise AssertionError(f"cycle {number}: {sorted(everyone - synced)} not synced in {cycle_timeout} s")
            if number > 0 and ticker.tick():
                cycle.ticks += 1
            time.sleep(tick_seconds)
        cycle.seconds = time.monotonic() - started
        log(f"cycle {number}: {len(cycle.synced)} accounts, {cycle.runs} syncs, {cycle.new_plays} new plays, "
            f"{cycle.ticks} ticks, {cycle.seconds:.1f} s")  # fmt: skip
        reports.append(cycle)
    return reports


def window_at(truth: list[dict[str, Any]], at_ms: int, kinds: tuple[str, ...]) -> set[tuple[str | None, int]]:
    """What recently-played showed at `at_ms` (the last 50 plays over 30 s), of the given kinds."""
    visible = sorted((p for p in truth if p["visible_in_api"] and p["played_at_ms"] <= at_ms),
                     key=lambda p: p["played_at_ms"])  # fmt: skip
    return {(p["track_id"], p["played_at_ms"]) for p in visible[-50:] if p["kind"] in kinds}


@dataclass
class PlayCheck:
    stored: int = 0
    expected: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)


def check_plays(fleet: Fleet, reports: list[Cycle]) -> PlayCheck:
    """Every play that recently-played showed at a cycle's instant is stored, once; nothing else is.

    A music track play must be stored; a local file's play may be (its URI stands in for the missing id);
    the first sync after a login happens at cycle 0's instant.
    """
    control = fleet.emu.control
    instants = [cycle.emulator_ms for cycle in reports]
    result = PlayCheck()
    for user, plays in fleet.stored_plays().items():
        truth = control.ground_truth(user, source="api")
        must = set().union(*(window_at(truth, at, ("track",)) for at in instants))
        may = set().union(*(window_at(truth, at, ("track", "local")) for at in instants))
        got = set(plays)
        result.stored += len(plays)
        result.expected += len(must)
        if len(plays) != len(got):
            result.duplicates[user] = len(plays) - len(got)
        if must - got:
            result.missing[user] = len(must - got)
        extra = {(track, at) for track, at in got - may if track is not None}
        if extra:
            result.unexpected[user] = len(extra)
    return result


# --- the command line, run inside a process with the fleet's environment -------------------------------------


def _setup(emulator_url: str, user_ids: list[str]) -> dict[str, list[Any]]:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from earworm.api.auth import api_token_create
    from earworm.history.tests.e2e.conftest import connect

    class Emulator:
        base_url = emulator_url

    def one(user_id: str) -> tuple[str, list[Any]]:
        try:
            account = connect(Emulator(), user_id)  # type: ignore[arg-type]
            _, raw = api_token_create(user=account.user, name="fleet")
            return user_id, [account.pk, raw]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, user_ids))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "setup":
        raise SystemExit("usage: python -m config.tests.fleet setup EMULATOR_URL USER_ID...")
    import django

    django.setup()
    print(json.dumps(_setup(args[1], args[2:])))


if __name__ == "__main__":
    main()
