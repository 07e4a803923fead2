"""A large refresh on PostgreSQL outside a transaction rebuilds the hour rollups and the all-time rows in a second
connection while the caller rebuilds the track months: same rows as the one-connection refresh, all or nothing."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from earworm.catalog.models import Track
from earworm.stats import services
from earworm.stats.models import HourRollup, RollupState, TrackRollup
from earworm.stats.services import stats_rollups_refresh
from earworm.stats.tests.factories import make_catalog, make_play

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _rollups():
    return (
        sorted(TrackRollup.objects.values_list("grain", "start", "track_id", "plays", "ms_played")),
        sorted(HourRollup.objects.values_list("grain", "start", "weekday", "hour", "plays", "ms_played")),
    )


@pytest.fixture
def history(user):
    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    make_catalog()
    tracks = list(Track.objects.order_by("key"))
    start = datetime(2021, 12, 30, 22, 0, tzinfo=UTC)
    for n in range(400):
        make_play(
            user=user,
            track=tracks[n % len(tracks)],
            played_at=start + timedelta(hours=7 * n),
            ms_played=None if n % 9 == 0 else 1_000 * n,
        )
    return user


def test_a_full_refresh_alongside_builds_the_rows_of_a_refresh_in_one_transaction(history, monkeypatch):
    with transaction.atomic():  # inside a transaction: one connection
        stats_rollups_refresh(user_id=history.pk)
    expected = _rollups()
    TrackRollup.objects.all().delete()
    HourRollup.objects.all().delete()
    threads = []
    in_own_transaction = services._in_own_transaction

    def spied(*args):
        threads.append(threading.current_thread() is not threading.main_thread())
        return in_own_transaction(*args)

    monkeypatch.setattr(services, "_in_own_transaction", spied)
    stats_rollups_refresh(user_id=history.pk)

    assert threads == [True]
    assert _rollups() == expected
    assert expected[0] and expected[1]


def test_a_failure_alongside_rolls_the_whole_refresh_back(history, monkeypatch):
    stats_rollups_refresh(user_id=history.pk)
    before = (_rollups(), RollupState.objects.get(user=history).version)
    make_play(user=history, track=Track.objects.first(), played_at=datetime(2024, 5, 1, tzinfo=UTC), ms_played=60_000)

    def failing(cursor, user_id):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(services, "_rebuild_all_time_from_plays", failing)
    with pytest.raises(RuntimeError, match="connection lost"):
        stats_rollups_refresh(user_id=history.pk)

    assert (_rollups(), RollupState.objects.get(user=history).version) == before
