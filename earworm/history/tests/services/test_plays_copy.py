"""The COPY + SQL merge stores exactly the rows `history_plays_store` stores, on the same inputs."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earworm.catalog.models import Track
from earworm.history.models import Play
from earworm.history.services.plays import NewPlay, history_plays_store
from earworm.history.services.plays_copy import StagedPlays, copy_row, history_plays_store_copy
from earworm.history.tests.factories import TrackFactory, at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Few tracks, short spans and lengths around a track's duration: overlaps, ties and runs of three or more.
play_strategy = st.tuples(
    st.integers(0, 2),  # track
    # end, in seconds after the start: dense, or hours apart (plays ending 2 h or more after the track's play
    # before cannot overlap it: the merge walks such runs separately)
    st.integers(0, 40 * 60) | st.integers(0, 4).map(lambda n: n * 7200) | st.integers(2 * 3600 - 5, 2 * 3600 + 5),
    st.one_of(st.none(), st.just(0), st.integers(1_000, 400_000), st.just(10_000_000)),  # ms_played
    st.sampled_from(["api", "export"]),
)


def _rows(user):
    return sorted(
        Play.objects.filter(user=user).values_list("track_id", "played_at", "ms_played", "source", "context_uri")
    )


def _plays(tracks, specs):
    return [
        NewPlay(track_id=tracks[t].pk, played_at=at(0, seconds=s), ms_played=ms, source=src, context_uri="ctx")
        for t, s, ms, src in specs
    ]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(stored=st.lists(play_strategy, max_size=8), offered=st.lists(play_strategy, max_size=25))
def test_copy_merge_stores_the_same_rows_as_the_python_path(user, stored, offered):
    tracks = [TrackFactory(duration_ms=180_000), TrackFactory(duration_ms=None), TrackFactory(duration_ms=0)]
    outcomes = []
    for store in (history_plays_store, history_plays_store_copy):
        with transaction.atomic():
            history_plays_store(user_id=user.pk, plays=_plays(tracks, stored))
            result = store(user_id=user.pk, plays=_plays(tracks, offered))
            outcomes.append((result, _rows(user)))
            transaction.set_rollback(True)
    (python_result, python_rows), (copy_result, copy_rows) = outcomes

    assert copy_rows == python_rows
    assert copy_result == python_result


def _both_paths(user, plays):
    """The copy path's result, and the Python path's result and rows (rolled back before the copy path ran)."""
    with transaction.atomic():
        expected = history_plays_store(user_id=user.pk, plays=plays)
        rows = _rows(user)
        transaction.set_rollback(True)
    return history_plays_store_copy(user_id=user.pk, plays=plays), expected, rows


def test_a_long_run_of_overlapping_duplicates_is_walked_like_the_python_path(user):
    track = TrackFactory(duration_ms=180_000)
    # Plays 50 s apart, 100 s long: each overlaps the one before; the greedy keeps every other one.
    plays = [
        NewPlay(track_id=track.pk, played_at=at(0, seconds=50 * n), ms_played=100_000, source="export")
        for n in range(9)
    ]

    result, expected, rows = _both_paths(user, plays)

    assert result == expected and result.inserted == 5
    assert _rows(user) == rows
    assert [p.played_at for p in Play.objects.order_by("played_at")] == [
        at(0) + timedelta(seconds=100 * n) for n in range(5)
    ]


def test_a_run_with_long_gaps_between_ends_is_walked_whole_like_the_python_path(user):
    """Ends 90 minutes apart can still be the same listen when the later one is long: the walk takes the run
    from its first play (a run starts only 2 hours or more after the play before, MAX_LENGTH)."""
    track = TrackFactory()
    plays = [
        NewPlay(track_id=track.pk, played_at=at(0), ms_played=600_000, source="export"),  # 11:50-12:00
        NewPlay(track_id=track.pk, played_at=at(90), ms_played=7_200_000, source="export"),  # 11:30-13:30
        NewPlay(track_id=track.pk, played_at=at(91), ms_played=7_200_000, source="export"),  # 11:31-13:31
        NewPlay(track_id=track.pk, played_at=at(211), ms_played=60_000, source="export"),  # 2 h later: a new run
    ]

    result, expected, rows = _both_paths(user, plays)

    assert result == expected and result.inserted == 2
    assert _rows(user) == rows


def test_api_plays_that_overlap_merge_only_on_the_exact_key_like_the_python_path(user):
    track = TrackFactory(duration_ms=180_000)
    stored = [NewPlay(track_id=track.pk, played_at=at(0), ms_played=None, source="api")]
    # Each API play overlaps the stored one and the others; only the repeat of the stored key is a duplicate.
    offered = [
        NewPlay(track_id=track.pk, played_at=at(0, seconds=s), ms_played=None, source="api") for s in (0, 1, 2, 2)
    ] + [NewPlay(track_id=track.pk, played_at=at(0, seconds=3), ms_played=60_000, source="export")]
    outcomes = []
    for store in (history_plays_store, history_plays_store_copy):
        with transaction.atomic():
            history_plays_store(user_id=user.pk, plays=stored)
            outcomes.append((store(user_id=user.pk, plays=offered), _rows(user)))
            transaction.set_rollback(True)

    assert outcomes[1] == outcomes[0]
    assert [row[1] for row in outcomes[1][1]] == [at(0), at(0, seconds=1), at(0, seconds=2)]


def test_staged_rows_must_be_numbered_after_the_rows_already_staged(user):
    track = TrackFactory()
    with transaction.atomic():
        staged = StagedPlays(user_id=user.pk)
        staged.add_rows(copy_row(0, track.pk, at(0), 60_000), 0, 1, at(0), at(0))
        with pytest.raises(ValueError, match=r"numbered from 0, not after the staged plays \(up to 0\)"):
            staged.add_rows(copy_row(0, track.pk, at(1), 60_000), 0, 1, at(1), at(1))
        staged.add_rows(copy_row(5, track.pk, at(1), 60_000), 5, 1, at(1), at(1))  # a gap is fine
        staged.add([NewPlay(track_id=track.pk, played_at=at(2), ms_played=60_000, source="export")])
        result = staged.merge()
    assert (result.inserted, result.duplicates) == (3, 0)
    assert [p.played_at for p in Play.objects.order_by("played_at")] == [at(0), at(1), at(2)]


def test_tracks_staged_in_several_calls_are_all_created(user):
    with transaction.atomic():
        staged = StagedPlays(user_id=user.pk)
        staged.add_tracks([("k1", "One", None, "", None, "")])
        staged.add_tracks([])  # nothing new: the first call's track is still to be made
        staged.create_tracks()
        staged.add_tracks([("k2", "Two", None, "", None, "")])
        staged.merge()

    assert sorted(Track.objects.values_list("key", flat=True)) == ["k1", "k2"]
    assert set(staged.track_ids) == {"k1", "k2"}


def test_provisional_tracks_are_written_in_code_point_order_whatever_the_collation(user):
    """`catalog_upsert` writes catalog rows in Python's (code-point) order; the import's SQL must lock them in the
    same order, or an import and a sync writing the same tracks can deadlock. Under a linguistic collation (ICU's
    root locale here, en_US elsewhere) `aB` sorts before `Ab`: with the key columns in that collation, the tracks
    still get their ids, in the order they are written, in code-point order."""
    keys = ["ab", "aB", "Ab", "AB"]
    with transaction.atomic():
        staged = StagedPlays(user_id=user.pk)  # creates the staging tables
        with connection.cursor() as cursor:
            for table, type_ in [
                ("catalog_track", "varchar(64)"),
                ("import_tracks", "text"),
                ("import_new_tracks", "text"),
            ]:
                cursor.execute(f'ALTER TABLE {table} ALTER COLUMN key TYPE {type_} COLLATE "und-x-icu"')
            cursor.execute('SELECT array_agg(k ORDER BY k COLLATE "und-x-icu") FROM unnest(%s::text[]) k', [keys])
            assert cursor.fetchone()[0] == keys  # the collation does order them otherwise
        staged.add_tracks([(key, f"Track {key}", None, "", None, "") for key in keys])
        staged.create_tracks()
        written = list(Track.objects.order_by("pk").values_list("key", flat=True))
        transaction.set_rollback(True)  # the columns' collation too

    assert written == sorted(keys) == ["AB", "Ab", "aB", "ab"]
