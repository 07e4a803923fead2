"""Load test of the web tier: 50 concurrent clients against the dashboard and `/api/v1/plays`, on loopback.

Creates a scratch PostgreSQL database (dropped at the end), a private redis-server, fills the catalog and one
user's plays (bench/stats.py's generator), gives the user a session and a personal API token, starts
`docker/web` (gunicorn with its defaults: 2 processes x 4 threads, production settings) and runs `wrk` against
each path for a bounded time: requests per second, p50/p95/p99 and errors. `/healthz` runs first and last as
the baseline of the same run, since this machine is shared and its speed varies. Prints a table and writes its
section of docs/benchmarks.md.

    .venv/bin/python bench/load.py [--seconds 20] [--connections 50] [--plays 50000] [--no-docs]

Needs `wrk` (Debian package); installed with apt-get when missing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks_doc import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
MARK_START, MARK_END = "<!-- load-bench:start -->", "<!-- load-bench:end -->"
HOST = "earworm.test"
SECRET_KEY = "load-bench-" + uuid.uuid4().hex + uuid.uuid4().hex

# wrk prints its own summary; this adds one machine-readable line with the percentiles it keeps (in µs).
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50\\": %d, \\"p95\\": %d, "
    .. "\\"p99\\": %d, \\"max\\": %d, \\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, \\"status\\": %d, "
    .. "\\"timeout\\": %d}\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    return shutil.which("wrk") or "wrk"


def seed(db_url: str, plays: int) -> tuple[str, str, int]:
    """Migrate, fill the catalog and one user's plays; return a session key, an API token and the play count."""
    os.environ.update(DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_SECRET_KEY=SECRET_KEY,
                      DJANGO_LOG_LEVEL="WARNING")  # fmt: skip
    import random

    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection

    sys.path.insert(0, str(ROOT / "bench"))
    from stats import fill_plays, make_catalog, make_user  # bench/stats.py

    from earworm.api.auth import api_token_create
    from earworm.history.models import Play
    from earworm.stats.services import stats_rollups_refresh

    call_command("migrate", verbosity=0)
    rng = random.Random(2026)
    tracks = make_catalog(rng)
    user = make_user("listener", "Europe/Berlin")
    fill_plays(rng, user.pk, tracks, plays, 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    stats_rollups_refresh(user_id=user.pk)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    _, token = api_token_create(user=user, name="load bench")
    count = Play.objects.filter(user=user).count()
    connection.close()
    assert session.session_key is not None
    return session.session_key, token, count


def wrk(binary: str, port: int, path: str, headers: dict[str, str], *, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    args = [binary, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", script.name]
    for name, value in {"Host": HOST, "X-Forwarded-Proto": "https", **headers}.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True)
    os.unlink(script.name)
    match = re.search(r"^WRK_JSON (.*)$", done.stdout, re.M)
    assert match, done.stdout + done.stderr
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="per path")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--plays", type=int, default=50_000)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    binary = ensure_wrk()

    import psycopg
    from cryptography.fernet import Fernet

    from config.tests.fleet import RedisServer, Service, free_port, http_get, wait_for

    db_name = f"earworm_bench_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    folder = Path(tempfile.mkdtemp(prefix="earworm-load-"))
    redis = RedisServer(folder / "redis")
    web: Service | None = None
    try:
        redis.start()
        t0 = time.perf_counter()
        session_key, token, plays = seed(f"{PG}/{db_name}", args.plays)
        print(f"seeded {plays:,} plays in {time.perf_counter() - t0:.1f} s", flush=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SPOTIFY_", "GUNICORN_", "WEB_"))}
        env.update(
            PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DATABASE_URL=f"{PG}/{db_name}",
            REDIS_URL=redis.url,
            DJANGO_SECRET_KEY=SECRET_KEY,
            DJANGO_ALLOWED_HOSTS=HOST,
            DJANGO_LOG_LEVEL="WARNING",
            TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            SPOTIFY_CLIENT_ID="load-bench-client",
            SPOTIFY_CLIENT_SECRET="load-bench-secret",
            GUNICORN_BIND=f"127.0.0.1:{port}",
        )
        folder.joinpath("logs").mkdir()
        web = Service("web", "web", env, folder / "logs").start()
        wait_for(lambda: _up(http_get, port), timeout=60, what="gunicorn")
        targets = [
            ("/healthz", "baseline", {}),
            ("/", "dashboard (session)", {"Cookie": f"__Host-sessionid={session_key}"}),
            ("/api/v1/plays", "plays API (token)", {"Authorization": f"Bearer {token}"}),
            ("/healthz", "baseline again", {}),
        ]
        for path, _, headers in targets:  # warm up, and make sure each path answers 200 to this user
            for _ in range(3):
                status, body = http_get(port, path, **headers)
                assert status == 200, (path, status, body[:300])
        results = []
        for path, label, headers in targets:
            result = wrk(binary, port, path, headers, seconds=args.seconds, connections=args.connections)
            results.append((path, label, result))
            print(f"{label:22} {path:15} {result['rps']:8.1f} req/s  p50 {result['p50'] / 1000:7.1f} ms  "
                  f"p95 {result['p95'] / 1000:7.1f} ms  p99 {result['p99'] / 1000:7.1f} ms  "
                  f"errors {result['errors']}", flush=True)  # fmt: skip
        report = render(args, results, plays)
        print(report)
        if not args.no_docs:
            write_section(report, start=MARK_START, end=MARK_END)
    finally:
        if web is not None:
            web.stop()
        redis.stop()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


def _up(http_get, port: int) -> bool:
    try:
        return http_get(port, "/healthz")[0] == 200
    except OSError:
        return False


def render(args, results, plays: int) -> str:
    import platform

    import psycopg

    with psycopg.connect(f"{PG}/postgres") as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "earworm/web", "earworm/stats", "earworm/api", "earworm/templates")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        MARK_START,
        "## Web tier under load (`bench/load.py`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit}`"
        + (" (with uncommitted changes in the web, stats or API code)" if dirty else "")
        + f" on {os.cpu_count()} CPUs, PostgreSQL {pg_version.split()[0]}, Python {platform.python_version()}. "
        f"One `docker/web` (gunicorn, production settings, its defaults: 2 processes x 4 threads) on loopback, "
        f"`wrk` with {args.connections} connections for {args.seconds} s per path, on the same 2 CPUs as the "
        f"server. The user has {plays:,} plays over 2 years (bench/stats.py's generator). `/healthz` (one "
        f"`SELECT 1`, one Redis call) ran first and last: the baseline of this run. Load average at the end: {load} "
        "(other work shared the machine).",
        "",
        "| path | what | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for path, label, r in results:
        lines.append(
            f"| `{path}` | {label} | {r['rps']:.0f} | {r['p50'] / 1000:.1f} | {r['p95'] / 1000:.1f} | "
            f"{r['p99'] / 1000:.1f} | {r['errors']} |"
        )
    lines += [
        "",
        "Errors count connection errors, timeouts (10 s) and non-2xx/3xx answers; every path answered 200 before "
        "the run. The dashboard's and the API's work per request is that of the commit above.",
        MARK_END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
