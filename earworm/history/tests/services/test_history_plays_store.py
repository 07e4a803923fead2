import pytest

from earworm.history.models import Play
from earworm.history.services.plays import NewPlay, history_plays_store
from earworm.history.tests.factories import TrackFactory, at

pytestmark = pytest.mark.django_db


def _api(track, minutes, seconds=0.0):
    return NewPlay(track_id=track.pk, played_at=at(minutes, seconds=seconds), ms_played=None, source="api")


def _export(track, minutes, seconds=0.0, ms_played=180_000):
    return NewPlay(track_id=track.pk, played_at=at(minutes, seconds=seconds), ms_played=ms_played, source="export")


def test_storing_the_same_plays_twice_adds_nothing(user):
    track = TrackFactory()
    plays = [_api(track, 0), _api(track, 3), _api(track, 6)]

    first = history_plays_store(user_id=user.pk, plays=plays)
    second = history_plays_store(user_id=user.pk, plays=plays)

    assert (first.inserted, first.duplicates) == (3, 0)
    assert (second.inserted, second.duplicates) == (0, 3)
    assert Play.objects.count() == 3


def test_back_to_back_repeats_of_one_track_are_separate_plays(user):
    track = TrackFactory(duration_ms=180_000)

    result = history_plays_store(user_id=user.pk, plays=[_api(track, 0), _api(track, 3), _api(track, 6)])

    assert result.inserted == 3


def test_an_export_duplicate_a_few_seconds_apart_is_one_play(user):
    track = TrackFactory()

    result = history_plays_store(
        user_id=user.pk, plays=[_export(track, 10), _export(track, 10, seconds=4), _export(track, 20)]
    )

    assert (result.inserted, result.duplicates) == (2, 1)


def test_the_same_listen_from_the_api_and_the_export_is_stored_once(user):
    track = TrackFactory()
    history_plays_store(user_id=user.pk, plays=[_api(track, 30, seconds=0.731)])

    result = history_plays_store(user_id=user.pk, plays=[_export(track, 30, seconds=-1)])

    assert result.inserted == 0
    assert Play.objects.get().source == "api"


def test_different_tracks_at_the_same_time_are_both_kept(user):
    one, two = TrackFactory(), TrackFactory()

    result = history_plays_store(user_id=user.pk, plays=[_api(one, 5), _api(two, 5)])

    assert result.inserted == 2


def test_a_short_listen_inside_a_stored_long_one_is_a_duplicate(user):
    track = TrackFactory(duration_ms=3_600_000)
    history_plays_store(user_id=user.pk, plays=[_export(track, 60, ms_played=3_600_000)])

    result = history_plays_store(user_id=user.pk, plays=[_export(track, 20, ms_played=40_000)])

    assert result.inserted == 0


def test_other_users_plays_never_count_as_duplicates(user, django_user_model):
    other = django_user_model.objects.create(username="other")
    track = TrackFactory()
    history_plays_store(user_id=other.pk, plays=[_api(track, 0)])

    assert history_plays_store(user_id=user.pk, plays=[_api(track, 0)]).inserted == 1


def test_query_count_does_not_depend_on_the_number_of_plays(user, django_assert_num_queries):
    tracks = [TrackFactory() for _ in range(50)]
    few = [_api(track, i * 4) for i, track in enumerate(tracks[:5])]
    many = [_api(track, 500 + i * 4) for i, track in enumerate(tracks)]

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        history_plays_store(user_id=user.pk, plays=few)
    with CaptureQueriesContext(connection) as large:
        history_plays_store(user_id=user.pk, plays=many)

    assert len(small.captured_queries) == len(large.captured_queries)


def test_a_replay_after_a_skip_reported_by_the_api_is_kept(user):
    """The API gives no ms_played: a 56 s skip then a replay, 222 s apart, are two listens."""
    track = TrackFactory(duration_ms=284_000)
    skip, replay = _api(track, 0), _api(track, 0, seconds=222)

    assert history_plays_store(user_id=user.pk, plays=[skip]).inserted == 1
    assert history_plays_store(user_id=user.pk, plays=[replay]).inserted == 1
    assert history_plays_store(user_id=user.pk, plays=[skip, replay]).inserted == 0


def test_an_export_record_inside_an_api_play_is_still_a_duplicate(user):
    track = TrackFactory(duration_ms=284_000)
    history_plays_store(user_id=user.pk, plays=[_api(track, 0, seconds=222)])

    result = history_plays_store(user_id=user.pk, plays=[_export(track, 0, seconds=221, ms_played=56_000)])

    assert result.inserted == 0


def test_a_straight_repeat_whose_whole_second_timestamp_seems_to_start_early_is_kept(user):
    """Export `ts` is cut to whole seconds: the repeat's computed start lands 0.9 s before the first ends."""
    track = TrackFactory(duration_ms=180_000)
    first = _export(track, 10, ms_played=180_000)
    repeat = NewPlay(track.pk, at(13, seconds=-0.9), ms_played=180_000, source="export")

    assert history_plays_store(user_id=user.pk, plays=[first, repeat]).inserted == 2


def test_listens_shorter_than_the_tolerance_ending_together_are_one_play(user):
    """Too short to overlap by more than the tolerance, but the same key: one play, stored or offered."""
    track = TrackFactory()
    first = history_plays_store(
        user_id=user.pk, plays=[_export(track, 0, ms_played=1_000), _export(track, 0, ms_played=1_500)]
    )
    again = history_plays_store(user_id=user.pk, plays=[_export(track, 0, ms_played=500)])

    assert (first.inserted, first.duplicates, again.inserted, again.duplicates) == (1, 1, 0, 1)
    assert Play.objects.get().ms_played == 1_000
