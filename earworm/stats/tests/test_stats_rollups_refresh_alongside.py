"""A large refresh on PostgreSQL outside a transaction rebuilds the hour rollups and the all-time rows in a second
connection while the caller rebuilds the track months: same rows as the one-connection refresh, all or nothing."""

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

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


def test_both_connections_of_a_large_refresh_sort_in_memory_without_jit_and_only_in_their_transaction(
    history, monkeypatch
):
    seen = []

    def settings_then(rebuild):
        def spied(cursor, *args):
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            seen.append((threading.current_thread() is threading.main_thread(), cursor.fetchone()))
            return rebuild(cursor, *args)

        return spied

    def session_settings():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
            return cursor.fetchone()

    monkeypatch.setattr(services, "_replace_track_months", settings_then(services._replace_track_months))
    monkeypatch.setattr(services, "_rebuild_hour_days", settings_then(services._rebuild_hour_days))
    before = session_settings()
    stats_rollups_refresh(user_id=history.pk)

    large = (services.LARGE_REFRESH_WORK_MEM, "off")
    assert before != large
    # The caller's track months, the second connection's hour rows and its share of the track months.
    assert sorted(seen) == [(False, large), (False, large), (True, large)]
    assert session_settings() == before


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


@pytest.mark.parametrize(
    ("month", "previous"),
    [
        (date(2024, 1, 1), date(2023, 12, 1)),
        (date(2024, 3, 1), date(2024, 2, 1)),
        (date(2024, 12, 1), date(2024, 11, 1)),
    ],
)
def test_previous_month(month, previous):
    assert services._previous_month(month) == previous


def test_the_split_of_a_full_rebuild_is_a_quarter_of_the_listening_span_before_its_end(history):
    with connection.cursor() as cursor:
        # Plays from 2021-12-30 22:00 UTC every 7 hours, 400 of them: the span ends on 2022-04-26, and its last
        # quarter begins on 2022-03-28.
        assert services._split_month(cursor, history.pk, ZoneInfo("Europe/Berlin")) == date(2022, 3, 1)
