"""Benchmark of the statistics pages, the stats API and the export on PostgreSQL (docs/stats.md).

Creates the database `earworm_bench_stats` (dropped at the end unless --keep), fills it with a catalog,
one user with 1,000,000 plays over ten years, one with 10,000 plays and 20 lighter users (COPY), builds
the rollups, then measures every page and stats endpoint in-process (Django test client, the full
middleware stack) for every range: p50 and p95 over repeated requests. Then exports, with rows/s and
the growth of the process's resident memory. Prints a table and writes its section of docs/benchmarks.md.

    .venv/bin/python bench/stats.py [--plays 1000000] [--repeat 15] [--keep]
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks_doc import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "earworm_bench_stats"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
MARK_START, MARK_END = "<!-- stats-bench:start -->", "<!-- stats-bench:end -->"


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_catalog(rng: random.Random) -> list[tuple[int, int]]:
    """60,000 tracks on 15,000 albums by 6,000 artists (1–2 each), 300 genres on 70% of artists."""
    from django.db import connection

    n_artists, n_albums, n_tracks, n_genres = 6000, 15000, 60000, 300
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy("COPY catalog_genre (id, created_at, updated_at, name) FROM STDIN") as copy:
            for i in range(1, n_genres + 1):
                copy.write_row((i, now, now, f"genre {i} {rng.choice(['pop', 'rock', 'indie', 'jazz', 'house'])}"))
        with raw.copy(
            "COPY catalog_artist (id, created_at, updated_at, key, spotify_id, name, not_found, image_url) FROM STDIN"
        ) as copy:
            for i in range(1, n_artists + 1):
                sid = f"ar{i:020d}"
                copy.write_row((i, now, now, sid, sid, f"Artist {i}", False, ""))
        with raw.copy("COPY catalog_artistgenre (artist_id, genre_id) FROM STDIN") as copy:
            for i in range(1, n_artists + 1):
                if rng.random() < 0.7:
                    for genre in rng.sample(range(1, n_genres + 1), rng.randint(1, 3)):
                        copy.write_row((i, genre))
        with raw.copy(
            "COPY catalog_album (id, created_at, updated_at, key, spotify_id, name, not_found, album_type, "
            "release_date, release_date_precision, image_url) FROM STDIN"
        ) as copy:
            for i in range(1, n_albums + 1):
                sid = f"al{i:020d}"
                copy.write_row((i, now, now, sid, sid, f"Album {i}", False, "album", "2015", "year", ""))
        tracks = []
        with raw.copy(
            "COPY catalog_track (id, created_at, updated_at, key, spotify_id, name, not_found, album_id, duration_ms, "
            "isrc, is_local) FROM STDIN"
        ) as copy:
            for i in range(1, n_tracks + 1):
                sid = f"tr{i:020d}"
                duration = rng.randint(120_000, 360_000)
                copy.write_row((i, now, now, sid, sid, f"Track {i}", False, (i % n_albums) + 1, duration, "", False))
                tracks.append((i, duration))
        with raw.copy("COPY catalog_trackartist (track_id, artist_id, position) FROM STDIN") as copy:
            for i in range(1, n_tracks + 1):
                first = (i * 7919) % n_artists + 1
                copy.write_row((i, first, 0))
                if i % 4 == 0:
                    copy.write_row((i, first % n_artists + 1, 1))
        for table in ("catalog_genre", "catalog_artist", "catalog_album", "catalog_track"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    return tracks


def make_user(name: str, tz: str):
    from earworm.accounts.models import SpotifyAccount, User

    user = User.objects.create(username=f"spotify:{name}", time_zone=tz)
    SpotifyAccount.objects.create(user=user, spotify_id=name, display_name=name.title())
    return user


def fill_plays(rng: random.Random, user_id: int, tracks: list[tuple[int, int]], count: int, years: float) -> None:
    """`count` plays over the last `years`: daytime-weighted, tastes drifting every half year, Zipf-ish repeats."""
    from django.db import connection

    end = datetime.now(UTC)
    span = years * 365.25 * 86400
    hours_weight = [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2, 2, 2, 2, 2.2, 2, 2, 2, 2.2, 2.5, 3, 3, 2.8, 2.4, 2, 1.5]
    stamps = sorted(rng.random() * span for _ in range(count))
    era_pools: dict[int, list[int]] = {}
    seen: set[tuple[int, int]] = set()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY history_play (user_id, track_id, played_at, ms_played, source, context_uri) FROM STDIN"
        ) as copy,
    ):
        for offset in stamps:
            day_start = end - timedelta(seconds=span - offset)
            hour = rng.choices(range(24), hours_weight)[0]
            played_at = day_start.replace(
                hour=hour, minute=rng.randrange(60), second=rng.randrange(60), microsecond=rng.randrange(1_000_000)
            )
            era = int(offset // (182 * 86400))
            pool = era_pools.get(era)
            if pool is None:
                pool = era_pools[era] = rng.sample(range(len(tracks)), 4000)
            index = pool[
                min(int(rng.paretovariate(1.1)) - 1, len(pool) - 1) if rng.random() < 0.7 else rng.randrange(len(pool))
            ]
            track_id, duration = tracks[index]
            key = (track_id, int(played_at.timestamp() * 1_000_000))
            if key in seen:
                continue
            seen.add(key)
            recent = (end - played_at).days < 400
            if recent and rng.random() < 0.5:
                copy.write_row((user_id, track_id, played_at, None, "api", ""))
            else:
                copy.write_row((user_id, track_id, played_at, rng.randint(30_000, duration), "export", ""))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(client, url: str, repeat: int, *, cold: bool = False) -> tuple[float, float]:
    """p50 and p95 in ms. Warm: repeated requests (the statistics cache serves them). Cold: the cache is
    emptied before each request, so every statistic is computed from the rollups."""
    from django.core.cache import cache

    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    samples = []
    for _ in range(repeat):
        if cold:
            cache.clear()
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, url
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def export_rate(client, fmt: str) -> tuple[int, float, float]:
    from django.core.cache import cache

    cache.clear()
    before = rss_kb()
    peak = before
    start = time.perf_counter()
    response = client.get(f"/api/v1/export?format={fmt}")
    lines = 0
    for i, chunk in enumerate(response.streaming_content):
        lines += chunk.count(b"\n") if fmt == "csv" else chunk.count(b'"played_at"')
        if i % 50 == 0:
            peak = max(peak, rss_kb())
    seconds = time.perf_counter() - start
    rows = lines - 1 if fmt == "csv" else lines
    return rows, rows / seconds, (peak - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plays", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--light-users", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--cold-repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()

    admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin_sql(f"CREATE DATABASE {DB_NAME}")
    try:
        report = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    print(report)
    if not args.no_write:
        write_section(report, start=MARK_START, end=MARK_END)


def run(args) -> str:
    setup_django()
    from django.db import connection
    from django.test import Client

    from earworm.stats.selectors import stats_range_parse, stats_top_albums, stats_top_artists, stats_top_tracks
    from earworm.stats.services import stats_rollups_refresh

    rng = random.Random(2026)
    t0 = time.perf_counter()
    tracks = make_catalog(rng)
    heavy = make_user("heavy", "Europe/Berlin")
    small = make_user("small", "America/New_York")
    fill_plays(rng, heavy.pk, tracks, args.plays, 10)
    fill_plays(rng, small.pk, tracks, args.small, 2)
    light = [make_user(f"light{i}", "UTC") for i in range(args.light_users)]
    for user in light:
        fill_plays(rng, user.pk, tracks, 20_000, 3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    fill_s = time.perf_counter() - t0
    build_ms = {}
    for user in [heavy, small, *light]:
        build_ms[user.pk] = timed(lambda u=user: stats_rollups_refresh(user_id=u.pk))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT COUNT(*) FROM history_play")
        total_plays = cursor.fetchone()[0]
        cursor.execute(
            "SELECT grain, COUNT(*) FROM stats_trackrollup WHERE user_id = %s GROUP BY grain ORDER BY 1", [heavy.pk]
        )
        heavy_rows = dict(cursor.fetchall())
    # A sync: 50 new plays in the last hour, then a refresh of that hour.
    now = datetime.now(UTC)
    from earworm.history.models import Play

    Play.objects.bulk_create(
        [
            Play(user=heavy, track_id=tracks[i][0], played_at=now - timedelta(seconds=60 * i + 7), source="api")
            for i in range(50)
        ]
    )
    sync_refresh_ms = timed(lambda: stats_rollups_refresh(user_id=heavy.pk, start=now - timedelta(hours=1), end=now))

    year = now.year - 3
    ranges = ["4w", "6m", "12m", "all", str(year), f"{year - 2}-03-15..{year}-08-20"]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load: index-only scans work
    results: list[tuple[str, str, str, float, float, float, float]] = []
    for label, user in (("1M", heavy), ("10k", small)):
        client = Client()
        client.force_login(user)
        everything = stats_range_parse(value="all", today=now.date())
        top_artist = stats_top_artists(user_id=user.pk, date_range=everything, limit=1)[0]["id"]
        top_album = stats_top_albums(user_id=user.pk, date_range=everything, limit=1)[0]["id"]
        top_track = stats_top_tracks(user_id=user.pk, date_range=everything, limit=1)[0]["id"]
        user_year = year if label == "1M" else now.year - 1
        ranged = ["/", "/genres/", f"/artists/{top_artist}/", f"/albums/{top_album}/", f"/tracks/{top_track}/"]
        ranged += [
            f"/api/v1/stats/{e}"
            for e in ("top-artists", "top-tracks", "top-albums", "top-genres", "summary", "heatmap", "timeline")
        ]
        ranged += ["/api/v1/genres"]
        for url in ranged:
            for rng_key in ranges:
                sep = "&" if "?" in url else "?"
                full = f"{url}{sep}range={rng_key}"
                p50, p95 = measure(client, full, args.repeat)
                c50, c95 = measure(client, full, args.cold_repeat, cold=True)
                results.append((label, url, rng_key, p50, p95, c50, c95))
                print(
                    f"{label:>4} {url:<32} {rng_key:<24} p50 {p50:7.1f} p95 {p95:7.1f}  cold p50 {c50:7.1f} "
                    f"p95 {c95:7.1f} ms",
                    flush=True,
                )
        for url in ["/plays/", f"/year/{user_year}/", "/settings/", "/api/v1/plays?limit=50", "/api/v1/me"]:
            p50, p95 = measure(client, url, args.repeat)
            c50, c95 = measure(client, url, args.cold_repeat, cold=True)
            results.append((label, url, "–", p50, p95, c50, c95))
            print(
                f"{label:>4} {url:<32} {'–':<24} p50 {p50:7.1f} p95 {p95:7.1f}  cold p50 {c50:7.1f} p95 {c95:7.1f} ms",
                flush=True,
            )

    exports = []
    for label, user in (("1M", heavy), ("10k", small)):
        client = Client()
        client.force_login(user)
        for fmt in ("csv", "json"):
            rows, rate, growth = export_rate(client, fmt)
            exports.append((label, fmt, rows, rate, growth))
            print(f"export {label} {fmt}: {rows} rows, {rate:,.0f} rows/s, RSS +{growth:.1f} MB", flush=True)

    return render(
        args, results, exports, total_plays, fill_s, build_ms[heavy.pk], build_ms[small.pk], heavy_rows, sync_refresh_ms
    )


def render(args, results, exports, total_plays, fill_s, heavy_build, small_build, heavy_rows, sync_ms) -> str:
    import platform

    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    worst = max(results, key=lambda r: r[4])
    worst_cold = max(results, key=lambda r: r[6])
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    lines = [
        MARK_START,
        "## Statistics, pages and export (`bench/stats.py`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, PostgreSQL {pg_version}, "
        f"Python {platform.python_version()}, Django {django.get_version()}; in-process Django test client through "
        f"the whole middleware stack, {args.repeat} timed requests after 2 warm-ups per row. Data: {total_plays:,} "
        f"plays in all ({args.plays:,} for one user over 10 years in Europe/Berlin, {args.small:,} for one user "
        f"over 2 years, {args.light_users} users × 20,000), 60,000 tracks, 6,000 artists, 300 genres. "
        f"Filled with COPY in {fill_s:.0f} s. Load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other work shared the machine).",
        "",
        f"- Full rollup build: {heavy_build / 1000:.1f} s for the 1M-play user, {small_build:.0f} ms for the "
        f"10k user. Rollup rows of the 1M user by grain (day, month, year, all): "
        f"{', '.join(f'{heavy_rows.get(g, 0):,}' for g in range(4))}.",
        f"- Incremental refresh after a sync of 50 plays (one hour): {sync_ms:.0f} ms.",
        f"- Slowest p95: {worst[4]:.1f} ms ({worst[0]}, `{worst[1]}`, range `{worst[2]}`); target ≤ 150 ms: "
        f"{'met' if worst[4] <= 150 else 'MISSED'}. Slowest cold p95 (statistics cache emptied before every "
        f"request): {worst_cold[6]:.1f} ms ({worst_cold[0]}, `{worst_cold[1]}`, range `{worst_cold[2]}`).",
        "",
        "Milliseconds. *Warm*: repeated requests, as someone clicking through their pages sees them; every "
        "statistic comes from the versioned statistics cache (docs/stats.md), which a sync invalidates. *Cold*: "
        "the cache emptied before each request, so every statistic is aggregated from the rollups.",
        "",
        "| path | range | 10k p50 | 10k p95 | 1M p50 | 1M p95 | 1M cold p50 | 1M cold p95 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def generic(path: str) -> str:
        parts = path.split("/")
        if parts[1] in ("artists", "albums", "tracks"):
            return f"/{parts[1]}/<id>/"
        if parts[1] == "year":
            return "/year/<year>/"
        return path

    keyed = {(r[0], generic(r[1]), r[2]): r for r in results}
    seen = []
    for _label, path, rng_key in keyed:
        if (path, rng_key) not in seen:
            seen.append((path, rng_key))
    for path, rng_key in seen:
        small_row = keyed.get(("10k", path, rng_key))
        heavy_row = keyed.get(("1M", path, rng_key))
        cells = []
        for row in (small_row, heavy_row):
            cells += [f"{row[3]:.1f}", f"{row[4]:.1f}"] if row else ["", ""]
        cells += [f"{heavy_row[5]:.1f}", f"{heavy_row[6]:.1f}"] if heavy_row else ["", ""]
        lines.append(f"| `{path}` | {rng_key} | " + " | ".join(cells) + " |")
    lines += ["", "| export | format | rows | rows/s | RSS growth |", "|---|---|---:|---:|---:|"]
    for label, fmt, rows, rate, growth in exports:
        lines.append(f"| {label} | {fmt} | {rows:,} | {rate:,.0f} | {growth:.1f} MB |")
    lines += ["", MARK_END]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
