import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.history.models import Play

ROOT = Path(__file__).resolve().parents[4]


def _export_zip(path: Path, *, files: int, per_file: int, seed: int = 5) -> Path:
    """An extended-history zip: unsorted records, duplicate rows, short plays, episodes, null rows."""
    rng = random.Random(seed)
    moment = datetime(2019, 1, 1, tzinfo=UTC)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for number in range(files):
            records = []
            for _ in range(per_file):
                moment += timedelta(seconds=rng.randint(20, 400))
                track = rng.randint(0, 300)
                record = {
                    "ts": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ms_played": rng.choice([rng.randint(0, 29_000), rng.randint(30_000, 400_000)]),
                    "master_metadata_track_name": f"Track {track}",
                    "master_metadata_album_artist_name": f"Artist {track % 40}",
                    "master_metadata_album_album_name": f"Album {track % 90}",
                    "spotify_track_uri": f"spotify:track:{track:022d}",
                    "spotify_episode_uri": None,
                }
                roll = rng.random()
                if roll < 0.02:
                    record.update(
                        spotify_track_uri=None, master_metadata_track_name=None, spotify_episode_uri="spotify:episode:x"
                    )
                elif roll < 0.03:
                    record.update(spotify_track_uri=None, master_metadata_track_name=None)
                records.append(record)
                if rng.random() < 0.02:
                    later = moment + timedelta(seconds=rng.randint(1, 4))
                    records.append({**record, "ts": later.strftime("%Y-%m-%dT%H:%M:%SZ")})
            rng.shuffle(records)
            zf.writestr(
                f"Spotify Extended Streaming History/Streaming_History_Audio_{number}.json",
                json.dumps(records, indent=2),
            )
    return path


@pytest.mark.django_db
def test_the_command_prints_a_summary_by_reason(tmp_path, capsys):
    account = SpotifyAccountFactory()
    archive = _export_zip(tmp_path / "my_spotify_data.zip", files=2, per_file=300)

    call_command("import_history", str(archive), "--user", account.spotify_id)

    out = capsys.readouterr().out
    assert "plays added" in out and "skipped" in out and "short_play" in out
    assert f"{Play.objects.count():,} plays added" in out


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_user(tmp_path):
    with pytest.raises(CommandError, match=r"No Spotify account"):
        call_command("import_history", str(tmp_path / "x.zip"), "--user", "nobody")


# --- Crash and resume: a real process killed with SIGKILL, on a scratch database -------------------------------


def _scratch_database(tmp_path: Path, name: str) -> str:
    """A DATABASE_URL for an empty database of the kind the tests run on."""
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp_path / name}.sqlite3"
    params = connection.settings_dict
    db = f"{params['NAME']}_{name}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{db}"')
        cursor.execute(f'CREATE DATABASE "{db}"')
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{db}"


SNAPSHOT = """
import json
from earworm.history.models import ImportJob, Play
from earworm.catalog.models import Track
plays = sorted(
    (p.track.key, p.played_at.isoformat(), p.ms_played, p.source) for p in Play.objects.select_related("track")
)
tracks = sorted(
    (t.key, t.name, t.album.key if t.album else None, [a.key for a in t.artists.all()]) for t in Track.objects.all()
)
job = ImportJob.objects.get()
summary = [job.status, job.plays_added, job.records_done, job.skipped, sorted(job.files_done)]
print(json.dumps({"plays": plays, "tracks": tracks, "job": summary}))
"""
FILES = 12
SETUP = "from earworm.accounts.tests.factories import SpotifyAccountFactory; SpotifyAccountFactory(spotify_id='crash')"
EXPIRE = "from earworm.history.models import ImportJob; ImportJob.objects.update(claimed_until=None)"


def _files_done(url: str) -> int:
    """Read the job's progress straight from the scratch database (fast enough to poll)."""
    query = "SELECT files_done FROM history_importjob"
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=20) as db:
            row = db.execute(query).fetchone()
        return len(json.loads(row[0])) if row else 0
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
        row = db.execute(query).fetchone()
    return len(row[0]) if row else 0


def _manage(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    if args[0] == "shell":
        args = ("shell", "-v", "0", *args[1:])
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, f"manage.py {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def _popen(url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_with_sigkill_resumes_to_the_same_data(tmp_path):
    archive = _export_zip(tmp_path / "my_spotify_data.zip", files=FILES, per_file=5000)
    runs = {}
    for name in ("whole", "killed"):
        url = _scratch_database(tmp_path, name)
        _manage(url, "migrate", "-v", "0")
        _manage(url, "shell", "-c", SETUP)
        runs[name] = url

    _manage(runs["whole"], "import_history", str(archive), "--user", "crash")
    process = _popen(runs["killed"], "import_history", str(archive), "--user", "crash")
    # Killed after a random number of committed files, at a random moment of the next one. Counting files
    # rather than sleeping keeps the kill inside the import however fast this machine imports a file.
    target = random.randint(1, FILES - 4)
    deadline = time.monotonic() + 60
    while _files_done(runs["killed"]) < target:
        assert process.poll() is None, "the import finished before it could be killed"
        assert time.monotonic() < deadline
    time.sleep(random.uniform(0, 0.02))
    assert process.poll() is None, "the import finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_at_kill = _files_done(runs["killed"])
    _manage(runs["killed"], "shell", "-c", EXPIRE)  # the killed process's claim has run out
    _manage(runs["killed"], "import_history", str(archive), "--user", "crash")

    whole = json.loads(_manage(runs["whole"], "shell", "-c", SNAPSHOT).stdout)
    resumed = json.loads(_manage(runs["killed"], "shell", "-c", SNAPSHOT).stdout)
    assert target <= done_at_kill < FILES
    assert resumed == whole
    assert whole["job"][0] == "done" and whole["job"][1] > 10_000
