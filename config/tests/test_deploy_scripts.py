"""The container start scripts in docker/, run directly against the machine's PostgreSQL and Redis.

What a container runs is tested here even though no container engine runs on this machine: the scripts
start with production settings on a scratch database and a Redis database of their own, and are stopped the
way Docker stops them (SIGTERM), within the graceful timeouts compose.yaml allows.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from cryptography.fernet import Fernet
from huey import RedisHuey

ROOT = Path(__file__).resolve().parents[2]
HOST = "earworm.test"
# Not the suite's Redis database: a consumer started here must not take other tests' tasks, nor they its.
# One database per pytest-xdist process (gw0, gw1), since each starts consumers and flushes its queue.
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
DEPLOY_REDIS_DB = 14 + _XDIST_INDEX % 2
GRACEFUL_TIMEOUT = 10

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


@pytest.fixture(scope="module")
def deploy_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Production settings on a fresh scratch database, migrated by docker/migrate run twice at once."""
    # Module-scoped, so it runs before the root conftest's per-test skip: skip here the same way.
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        pytest.skip("needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
    name = f"earworm_deploy_{uuid.uuid4().hex[:10]}"
    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TOKEN_", "SPOTIFY_", "HUEY_", "PYTEST"))
    }
    env.update(
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DATABASE_URL=_with_path(database_url, f"/{name}"),
        REDIS_URL=_with_path(os.environ["REDIS_URL"], f"/{DEPLOY_REDIS_DB}"),
        DJANGO_SECRET_KEY="deploy-test-secret-" + uuid.uuid4().hex + uuid.uuid4().hex,
        DJANGO_ALLOWED_HOSTS=HOST,
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SPOTIFY_CLIENT_ID="deploy-test-client",
        SPOTIFY_CLIENT_SECRET="deploy-test-client-secret",
        SPOTIFY_ACCOUNTS_URL="http://127.0.0.1:9",
        SPOTIFY_API_URL="http://127.0.0.1:9/v1",
    )
    huey = RedisHuey("earworm", url=env["REDIS_URL"])
    huey.flush()
    try:
        # Two machines starting together: the advisory lock makes the second wait, then find nothing to do.
        runs = [
            subprocess.Popen(["docker/migrate"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=180)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert sum("Applying accounts.0001_initial... OK" in out for out in outputs) == 1, outputs
        yield env
    finally:
        huey.flush()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Service:
    """A docker/ script running in the background, its output in a file."""

    def __init__(self, script: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen([f"docker/{script}"], cwd=ROOT, env=env, stdout=self._file, stderr=self._file)

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.output()}"
            time.sleep(0.1)

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM, as `docker stop` sends; return the exit code and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._file.close()

    def json_lines(self) -> list[dict[str, object]]:
        """Every non-empty output line, each of which must be a JSON object."""
        lines = [line for line in self.output().splitlines() if line.strip()]
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON log line: {line!r}")
        return records


def _get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_web_serves_healthz_with_production_headers_logs_json_and_stops_on_sigterm(deploy_env, tmp_path):
    port = _free_port()
    env = {**deploy_env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT)}
    web = Service("web", env, tmp_path / "web.log")
    try:
        web.wait_for_output("Booting worker")
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = _get(port, "/healthz")
                break
            except ConnectionError:
                assert time.monotonic() < deadline, web.output()
                time.sleep(0.2)
        health = json.loads(body)
        assert status == 200, body
        assert health["status"] == "ok"
        assert health["database"] == "ok"
        assert health["queue"]["status"] == "ok"
        # The container's HEALTHCHECK command.
        probe = subprocess.run(["docker/healthcheck"], cwd=ROOT, env={**env, "PORT": str(port)}, timeout=20)
        assert probe.returncode == 0

        # Through the TLS proxy: HSTS, CSP and the request id; the callback's code stays out of the logs.
        status, headers, _ = _get(
            port, "/api/callback/?code=auth-code-secret&state=unknown-state", **{"X-Forwarded-Proto": "https"}
        )
        assert status == 403
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        callback_request_id = headers["x-request-id"]
        # Plain HTTP from outside the proxy is redirected to HTTPS.
        status, headers, _ = _get(port, "/")
        assert status == 301 and headers["location"] == f"https://{HOST}/"

        code, seconds = web.terminate(timeout=GRACEFUL_TIMEOUT + 10)
        assert code == 0, web.output()
        assert seconds < GRACEFUL_TIMEOUT
    finally:
        web.stop()

    records = web.json_lines()
    callback_lines = [r for r in records if r["request_id"] == callback_request_id]
    assert {r["logger"] for r in callback_lines} >= {"earworm.request", "earworm.accounts.views", "django.request"}
    assert any(r["logger"] == "gunicorn.error" and "Shutting down" in str(r["message"]) for r in records)
    assert "auth-code-secret" not in web.output()
    assert "code=" not in web.output()
    assert deploy_env["SPOTIFY_CLIENT_SECRET"] not in web.output()


def test_worker_consumes_tasks_and_finishes_a_running_one_on_sigterm(deploy_env, tmp_path):
    from earworm.core.tasks import queue_ping

    huey = RedisHuey("earworm", url=deploy_env["REDIS_URL"])
    ping = huey.task()(queue_ping.func)  # the same task name the worker registered
    worker = Service("worker", {**deploy_env, "HUEY_WORKERS": "2", "HUEY_SHUTDOWN_TIMEOUT": "20"}, tmp_path / "w.log")
    try:
        worker.wait_for_output("Periodic tasks are disabled.")
        assert ping("first").get(blocking=True, timeout=30) == "first"

        slow = ping("finished despite SIGTERM", seconds=3)
        deadline = time.monotonic() + 10
        while huey.pending_count():  # taken off the queue: a worker thread is running it
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.05)
        time.sleep(0.5)
        code, seconds = worker.terminate(timeout=30)

        assert code == 0, worker.output()
        assert 1.5 < seconds < 20
        assert slow.get(blocking=True, timeout=5) == "finished despite SIGTERM"
    finally:
        worker.stop()
    messages = [str(r["message"]) for r in worker.json_lines()]
    assert "Shutting down gracefully..." in messages
    assert "All workers have stopped." in messages


def test_scheduler_is_the_consumer_with_periodic_tasks_and_stops_on_sigterm(deploy_env, tmp_path):
    scheduler = Service("scheduler", deploy_env, tmp_path / "scheduler.log")
    try:
        scheduler.wait_for_output("Periodic tasks are enabled.")
        # Huey installs its signal handlers only after it has logged this and started its threads; a
        # SIGTERM in that instant would kill it before it can shut down gracefully.
        time.sleep(1)
        code, _ = scheduler.terminate(timeout=30)
        assert code == 0, scheduler.output()
    finally:
        scheduler.stop()
    assert all(r["logger"].startswith(("huey", "py.warnings")) for r in scheduler.json_lines())
