import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from earworm.core.models import QuotaGate
from earworm.core.ratelimit import (
    DatabaseGate,
    RedisGate,
    quota_gate_paused_until,
    quota_gate_resume,
    spotify_gate,
)
from earworm.spotify.errors import SpotifyQuotaExceeded, SpotifyRateLimited


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    # The start of a 30-second window.
    return Clock(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def small_budget(settings):
    settings.SPOTIFY_WINDOW_SECONDS = 30
    settings.SPOTIFY_WINDOW_BUDGET = 4
    settings.SPOTIFY_ENRICH_WINDOW_SHARE = 0.5
    settings.SPOTIFY_ENRICH_DAILY_BUDGET = 3


@pytest.mark.django_db
class TestDatabaseGate:
    def test_admits_the_window_budget_then_refuses_without_sleeping(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        for _ in range(4):
            gate.before_request(kind="sync")
        with pytest.raises(SpotifyRateLimited) as refused:
            gate.before_request(kind="sync")
        assert 0 < refused.value.retry_after <= 30

    def test_rolling_window_carries_the_previous_window(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        for _ in range(4):
            gate.before_request(kind="sync")
        clock.advance(30)  # next window: all 4 calls of the previous one still count in full
        with pytest.raises(SpotifyRateLimited):
            gate.before_request(kind="sync")
        clock.advance(15)  # half of the previous window has rolled out: 2 calls of room
        gate.before_request(kind="sync")
        gate.before_request(kind="sync")
        with pytest.raises(SpotifyRateLimited):
            gate.before_request(kind="sync")
        clock.advance(60)
        gate.before_request(kind="sync")

    def test_enrichment_leaves_room_for_syncs(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        gate.before_request(kind="enrich")
        gate.before_request(kind="enrich")
        with pytest.raises(SpotifyRateLimited):
            gate.before_request(kind="enrich")
        gate.before_request(kind="sync")
        gate.before_request(kind="sync")

    def test_enrichment_has_a_daily_budget(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        for _ in range(3):
            gate.before_request(kind="enrich")
            clock.advance(60)
        with pytest.raises(SpotifyRateLimited) as refused:
            gate.before_request(kind="enrich")
        assert refused.value.retry_after > 3600
        gate.before_request(kind="sync")
        clock.advance(86_400)
        gate.before_request(kind="enrich")

    def test_quota_429_pauses_every_kind_until_its_time(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        gate.before_request(kind="sync")
        gate.after_response(status=429, retry_after=52_531, quota_exceeded=True)
        for kind in ("sync", "enrich", "login"):
            with pytest.raises(SpotifyQuotaExceeded) as refused:
                gate.before_request(kind=kind)
            assert refused.value.resume_at == clock.at + timedelta(seconds=52_531)
        clock.advance(52_532)
        gate.before_request(kind="sync")

    def test_short_429_pauses_for_its_retry_after(self, clock, small_budget):
        gate = DatabaseGate(clock=clock)
        gate.after_response(status=429, retry_after=3, quota_exceeded=False)
        with pytest.raises(SpotifyRateLimited) as refused:
            gate.before_request(kind="sync")
        assert refused.value.retry_after == pytest.approx(3)
        clock.advance(3)
        gate.before_request(kind="sync")

    def test_a_pause_is_never_shortened(self, clock):
        gate = DatabaseGate(clock=clock)
        gate.after_response(status=429, retry_after=3600, quota_exceeded=True)
        gate.after_response(status=429, retry_after=5, quota_exceeded=False)
        row = QuotaGate.objects.get()
        assert (row.paused_until, row.pause_reason) == (clock.at + timedelta(hours=1), "quota")

    def test_other_answers_leave_the_gate_open(self, clock):
        gate = DatabaseGate(clock=clock)
        for status in (200, 401, 404, 500):
            gate.after_response(status=status, retry_after=None, quota_exceeded=False)
        assert not QuotaGate.objects.exclude(paused_until=None).exists()

    def test_paused_until_and_resume(self, settings):
        DatabaseGate().after_response(status=429, retry_after=600, quota_exceeded=True)
        assert quota_gate_paused_until() is not None
        quota_gate_resume()
        assert quota_gate_paused_until() is None

    def test_gates_are_per_client(self, clock, small_budget):
        for _ in range(4):
            DatabaseGate(client_id="a", clock=clock).before_request(kind="sync")
        DatabaseGate(client_id="b", clock=clock).before_request(kind="sync")
        with pytest.raises(SpotifyRateLimited):
            DatabaseGate(client_id="a", clock=clock).before_request(kind="sync")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_overshoot_the_window(settings):
    """Eight threads (own connections) race for a budget of 20: exactly 20 are admitted."""
    settings.SPOTIFY_WINDOW_SECONDS = 86_400  # one window for the whole test
    settings.SPOTIFY_WINDOW_BUDGET = 20
    DatabaseGate().before_request(kind="sync")
    admitted = []
    lock = threading.Lock()

    def worker() -> None:
        gate = DatabaseGate()
        try:
            for _ in range(10):
                try:
                    gate.before_request(kind="sync")
                except SpotifyRateLimited:
                    continue
                with lock:
                    admitted.append(1)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 19


@pytest.mark.redis
@pytest.mark.django_db
class TestRedisGate:
    def test_spotify_gate_uses_redis_when_configured(self):
        assert isinstance(spotify_gate(), RedisGate)

    def test_admits_the_window_budget_then_refuses(self, small_budget):
        gate = RedisGate()
        for _ in range(4):
            gate.before_request(kind="sync")
        with pytest.raises(SpotifyRateLimited) as refused:
            gate.before_request(kind="sync")
        assert 0 < refused.value.retry_after <= 30

    def test_enrichment_share_and_daily_budget(self, small_budget, settings):
        gate = RedisGate()
        gate.before_request(kind="enrich")
        gate.before_request(kind="enrich")
        with pytest.raises(SpotifyRateLimited):
            gate.before_request(kind="enrich")
        gate.before_request(kind="sync")
        settings.SPOTIFY_WINDOW_BUDGET = 100
        gate.before_request(kind="enrich")
        with pytest.raises(SpotifyRateLimited, match="enrichment budget"):
            gate.before_request(kind="enrich")

    def test_quota_429_pauses_in_redis_and_on_the_row(self):
        gate = RedisGate()
        gate.after_response(status=429, retry_after=3600, quota_exceeded=True)
        with pytest.raises(SpotifyQuotaExceeded):
            RedisGate().before_request(kind="sync")
        assert quota_gate_paused_until() is not None
        quota_gate_resume()
        RedisGate().before_request(kind="sync")
