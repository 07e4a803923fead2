"""The sync engine against a running emulator, with its ground truth: nothing lost, nothing stored twice."""

from collections import Counter
from datetime import timedelta

import pytest
from huey.exceptions import RetryTask

from earworm.catalog.models import ArtistGenre
from earworm.catalog.services import catalog_enrich
from earworm.core.models import QuotaGate
from earworm.core.ratelimit import quota_gate_resume
from earworm.history import tasks
from earworm.history.models import Play, SyncRun
from earworm.history.services.sync import history_sync
from earworm.history.tests.e2e.conftest import connect
from earworm.spotify.errors import SpotifyError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

POLL_MINUTES = 20


def stored(account) -> list[tuple[str, int]]:
    return [
        (spotify_id, int(played_at.timestamp() * 1000))
        for spotify_id, played_at in Play.objects.filter(user=account.user_id).values_list(
            "track__spotify_id", "played_at"
        )
    ]


def window_at(truth: list[dict], at_ms: int) -> set[tuple[str, int]]:
    """What Spotify's recently-played showed at `at_ms`: the last 50 visible track plays."""
    visible = sorted((p for p in truth if p["visible_in_api"] and p["played_at_ms"] <= at_ms),
                     key=lambda p: p["played_at_ms"])  # fmt: skip
    return {(p["track_id"], p["played_at_ms"]) for p in visible[-50:] if p["kind"] == "track"}


def run_task(account_id: int, emu, *, max_attempts: int = 12) -> int:
    """Run the sync task as the consumer would, honouring its retries at once; returns the attempts."""
    for attempt in range(1, max_attempts + 1):
        try:
            tasks.history_sync.call_local(account_id, True)
            return attempt
        except RetryTask:
            gate = QuotaGate.objects.get()
            if gate.paused_until:
                # Nothing may reach Spotify while the gate is closed.
                before = emu.control.counters()["calls"].get("recently-played", 0)
                with pytest.raises(SpotifyError):
                    history_sync(account_id=account_id, force=True)
                assert emu.control.counters()["calls"].get("recently-played", 0) == before
                quota_gate_resume()  # the pause is over (the test's stand-in for waiting)
        except SpotifyError as exc:
            assert not exc.permanent or exc.status is None or type(exc).__name__ == "SpotifyBadResponse"
    raise AssertionError(f"sync of {account_id} did not succeed in {max_attempts} attempts")


def test_a_day_of_polling_with_faults_store_every_play_exactly_once(emulator_factory):
    emu = emulator_factory("--token-ttl", "3600", "--refresh-policy", "random")
    control = emu.control
    users = [u["id"] for u in control.users()[:2]]
    accounts = {user: connect(emu, user) for user in users}
    # A listener at an extreme rate: 60 short plays within one poll interval on day one.
    control.inject_fault("500", "recently-played", fraction=0.05)
    control.inject_fault("503", "recently-played", fraction=0.03)
    control.inject_fault("malformed_json", "recently-played", fraction=0.02)
    control.inject_fault("429", "recently-played", fraction=0.02, retry_after=3)
    control.inject_fault("timeout", "recently-played", count=2, delay_seconds=3)
    control.inject_fault("500", "token", count=1)
    polls: dict[str, list[int]] = {user: [] for user in users}

    for step in range(24 * 60 // POLL_MINUTES):  # a simulated day (a week runs in bench/sync.py)
        if step == 30:
            control.inject_fault("quota", "recently-played", count=1, retry_after=52_531)
        control.advance_clock(POLL_MINUTES * 60)
        for user, account in accounts.items():
            run_task(account.pk, emu)
            polls[user].append(control.now_ms())

    for user, account in accounts.items():
        truth = control.ground_truth(user, source="api")
        expected = set().union(*(window_at(truth, at) for at in polls[user]))
        got = stored(account)
        assert len(got) == len(set(got)), "a play was stored twice"
        assert expected <= set(got), f"{len(expected - set(got))} plays lost for {user}"
        everything = {(p["track_id"], p["played_at_ms"]) for p in truth}
        assert set(got) <= everything, "a play was invented"
    faults = control.counters()["faults_applied"]
    assert faults.get("quota") == 1 and faults.get("500", 0) > 0
    assert control.counters()["refresh_grants"] > 0  # tokens expired in emulator time: the 401 path ran

    # Genres where the emulator has them, after enrichment.
    result = catalog_enrich(max_requests=40)
    assert result.artists_enriched > 0
    assert ArtistGenre.objects.exists()


def test_more_than_50_plays_between_polls_is_a_recorded_gap(emulator_factory):
    emu = emulator_factory("--no-auto-listen")
    control = emu.control
    heavy, normal = (u["id"] for u in control.users()[:2])
    accounts = {user: connect(emu, user) for user in (heavy, normal)}
    # Explicit plays, not a simulated listening session: a simulated 10 minutes can hold no play at all,
    # and with nothing stored there is no last play to measure a gap from.
    for user in (heavy, normal):
        control.play(
            user, [{"track_index": 100 + i, "played_at": control.now_ms() + (i + 1) * 200_000} for i in range(3)]
        )
    control.advance_clock(15 * 60)
    for account in accounts.values():
        first = history_sync(account_id=account.pk, force=True)
        assert (first.new_plays, first.gap_from) == (3, None)

    control.play(heavy, [{"track_index": i, "played_at": control.now_ms() + (i + 1) * 20_000} for i in range(60)])
    control.play(normal, [{"track_index": i, "played_at": control.now_ms() + (i + 1) * 20_000} for i in range(40)])
    control.advance_clock(20 * 60 + 5)
    heavy_run = history_sync(account_id=accounts[heavy].pk, force=True)
    normal_run = history_sync(account_id=accounts[normal].pk, force=True)

    assert heavy_run.gap_from is not None and heavy_run.gap_to - heavy_run.gap_from > timedelta(0)
    assert normal_run.gap_from is None
    assert heavy_run.new_plays == 50  # the documented limit: the 10 oldest of the 60 are gone
    run = SyncRun.objects.filter(account=accounts[heavy], gap_from__isnull=False).get()
    assert (run.gap_from, run.gap_to) == (heavy_run.gap_from, heavy_run.gap_to)
    assert Counter(SyncRun.objects.values_list("status", flat=True)) == {"ok": 4}


def test_a_replay_after_a_skip_is_its_own_play(emulator_factory):
    """The API gives no ms_played: a skip after 56 s and a replay that ends within the track's duration of
    the skip are two listens, though their intervals overlap if each is taken to last the whole track."""
    from earworm.accounts.services import spotify_client_for_account

    emu = emulator_factory("--no-auto-listen")
    control = emu.control
    user = control.users()[0]["id"]
    account = connect(emu, user)
    now = control.now_ms()
    skip = control.play(user, [{"track_index": 7, "played_at": now + 56_000, "ms_played": 56_000}])[0]
    with spotify_client_for_account(account_id=account.pk) as spotify:
        duration = spotify.track(skip["track_id"]).duration_ms
    replay_end = skip["played_at_ms"] + duration - 10_000
    control.play(user, [{"track_index": 7, "played_at": replay_end, "ms_played": duration}])
    control.advance_clock(duration / 1000 + 600)

    run = history_sync(account_id=account.pk, force=True)

    assert run.new_plays == 2
    assert {played_at for _, played_at in stored(account)} == {skip["played_at_ms"], replay_end}
