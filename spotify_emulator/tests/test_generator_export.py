"""Determinism, scale, ground truth and the data export."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import time
import zipfile

from spotify_emulator.generator import World
from spotify_emulator.state import State, parse_time
from spotify_emulator.testing import REPO_ROOT

from .conftest import START

NEW_KEYS = {
    "ts", "platform", "ms_played", "conn_country", "ip_addr", "master_metadata_track_name",
    "master_metadata_album_artist_name", "master_metadata_album_album_name", "spotify_track_uri", "episode_name",
    "episode_show_name", "spotify_episode_uri", "audiobook_title", "audiobook_uri", "audiobook_chapter_uri",
    "audiobook_chapter_title", "reason_start", "reason_end", "shuffle", "skipped", "offline",
    "offline_timestamp", "incognito_mode",
}  # fmt: skip


def test_same_seed_same_data():
    a, b, c = World(11), World(11), World(12)
    t = parse_time(START)
    for w in (a, b, c):
        w.catalog.track(123)
    assert a.catalog.track(123) == b.catalog.track(123) != c.catalog.track(123)
    assert a.catalog.artist(9) == b.catalog.artist(9)
    assert a.users == b.users and a.users != c.users
    pa = a.plays_between(0, t - 30 * 86_400_000, t)
    pb = b.plays_between(0, t - 30 * 86_400_000, t)
    assert [(p.end_ms, p.track_index) for p in pa] == [(p.end_ms, p.track_index) for p in pb]
    assert len(pa) > 100


def test_catalog_shape():
    w = World(3)
    names = [w.catalog.artist(i).name for i in range(500)]
    assert any(not n.isascii() for n in names)
    genres = [w.catalog.artist(i).genres for i in range(500)]
    assert 0.2 < sum(1 for g in genres if not g) / 500 < 0.7
    assert any(len(w.catalog.track(i).artist_indices) > 1 for i in range(500))
    assert w.catalog.n_albums > 1000 and w.catalog.n_tracks == 20_000
    assert any(not u.display_name.isascii() for u in w.users)


def test_ten_times_scale_is_fast():
    start = time.monotonic()
    w = World(5, n_artists=50_000, n_tracks=200_000)
    sid = w.catalog.track(199_999).id
    assert w.catalog.lookup("track", sid) == 199_999
    assert time.monotonic() - start < 5


def test_listening_behaviour():
    w = World(4)
    t = parse_time(START)
    plays = w.plays_between(1, t - 60 * 86_400_000, t)
    kinds = {p.kind for p in plays}
    assert kinds == {"track", "local", "episode"}
    assert any(not p.visible_in_api for p in plays if p.kind == "track")  # short skips exist
    consecutive_repeats = sum(1 for x, y in itertools.pairwise(plays) if x.track_index == y.track_index)
    assert consecutive_repeats > 0
    ends = [p.end_ms for p in plays]
    assert all(b - a >= y.ms_played for a, b, y in zip(ends, ends[1:], plays[1:], strict=False))  # no overlap
    hours = [((p.end_ms // 3_600_000) + w.profile(1).tz_hours) % 24 for p in plays]
    assert sum(1 for h in hours if 2 <= h <= 5) < len(hours) * 0.05  # time-of-day rhythm


def test_export_zip_contents_and_ground_truth(emu, users):
    user = users[0]["id"]
    data = emu.control.export_zip_bytes(user)
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = [n for n in zf.namelist() if n.endswith(".json")]
    assert names and all(n.startswith("Spotify Extended Streaming History/Streaming_History_Audio_") for n in names)
    rows = [r for n in names for r in json.loads(zf.read(n))]
    assert all(set(r) == NEW_KEYS for r in rows)
    assert all(len(r["ts"]) == 20 and r["ts"].endswith("Z") for r in rows)  # whole seconds
    assert any(r["spotify_episode_uri"] for r in rows) and any(r["ms_played"] < 30_000 for r in rows)
    truth = emu.control.ground_truth(user, source="export")
    assert len(rows) == len(truth) + sum(p["duplicate_rows"] for p in truth)
    track_rows = {(r["spotify_track_uri"], r["ts"]) for r in rows if r["spotify_track_uri"]}
    assert all((p["uri"], p["export_ts"]) in track_rows for p in truth if p["kind"] == "track")
    # The export ends where the API's history begins: no play is in both.
    api = emu.control.ground_truth(user, source="api")
    assert max(p["played_at_ms"] for p in truth) < min(p["played_at_ms"] for p in api)
    assert emu.control.info()["api_history_from_ms"] > max(p["played_at_ms"] for p in truth)


def test_export_records_limit_and_cli(tmp_path, emu, users):
    user = users[0]["id"]
    out = tmp_path / "my_spotify_data.zip"
    subprocess.run(
        [sys.executable, "-m", "spotify_emulator", "export", "--seed", "7", "--start", START, "--user", user,
         "--out", str(out), "--records", "300"],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    assert out.read_bytes() == emu.control.export_zip_bytes(user, records=300)
    truth = emu.control.ground_truth(user, source="export", records=300)
    assert len(truth) == 300


def test_reset_restores_state():
    s = State(seed=2, start_ms=parse_time(START), frozen_clock=True)
    s.clock.advance(3600)
    s.materialize()
    n = sum(len(v) for v in s.plays.values())
    s.reset()
    assert s.now_ms() == parse_time(START)
    s.clock.advance(3600)
    s.materialize()
    assert sum(len(v) for v in s.plays.values()) == n


def test_recent_plays_gives_every_user_a_served_history_at_start():
    from spotify_emulator.testing import EmulatorProcess

    with EmulatorProcess(seed=1, extra_args=["--frozen-clock", "--recent-plays", "50"]) as emu:
        counts = {u["id"]: len(emu.control.ground_truth(u["id"], source="api")) for u in emu.control.users()}
        emu.control.reset()
        after_reset = {u["id"]: len(emu.control.ground_truth(u["id"], source="api")) for u in emu.control.users()}

    assert min(counts.values()) >= 50
    assert after_reset == counts
