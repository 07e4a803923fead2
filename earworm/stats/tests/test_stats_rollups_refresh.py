"""The rollups agree with a brute-force recomputation from the plays, across time zones and DST changes."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earworm.catalog.models import ArtistGenre, Track, TrackArtist
from earworm.history.models import Play
from earworm.stats.models import HourRollup, TrackRollup
from earworm.stats.selectors import (
    DateRange,
    range_tiles,
    stats_heatmap,
    stats_timeline,
    stats_top_artists,
    stats_top_genres,
    stats_top_tracks,
    stats_totals,
)
from earworm.stats.services import stats_rollups_refresh
from earworm.stats.tests.factories import make_catalog, make_play

pytestmark = pytest.mark.django_db

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia"]
# Instants near DST changes and year ends, where local days and hours are easiest to get wrong.
ANCHORS = [
    datetime(2024, 3, 31, 0, 30, tzinfo=UTC),  # Europe springs forward at 01:00 UTC
    datetime(2024, 10, 27, 0, 30, tzinfo=UTC),  # Europe falls back
    datetime(2024, 3, 10, 6, 30, tzinfo=UTC),  # New York springs forward
    datetime(2024, 11, 3, 5, 30, tzinfo=UTC),  # New York falls back
    datetime(2023, 12, 31, 22, 0, tzinfo=UTC),  # a year boundary somewhere
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
]

plays_strategy = st.lists(
    st.tuples(
        st.sampled_from(ANCHORS),
        st.integers(min_value=-36 * 3600, max_value=36 * 3600),
        st.integers(min_value=0, max_value=5),
        st.one_of(st.none(), st.integers(min_value=0, max_value=400_000)),
    ),
    min_size=0,
    max_size=40,
)


def _brute(plays: list[Play], zone: ZoneInfo, first: date, last: date) -> dict:
    tracks: Counter = Counter()
    ms_by_track: Counter = Counter()
    heat = [[0] * 24 for _ in range(7)]
    days: Counter = Counter()
    for play in plays:
        local = play.played_at.astimezone(zone)
        if not first <= local.date() <= last:
            continue
        ms = play.ms_played if play.ms_played is not None else (play.track.duration_ms or 0)
        tracks[play.track_id] += 1
        ms_by_track[play.track_id] += ms
        heat[local.weekday()][local.hour] += 1
        days[local.date()] += 1
    artists: Counter = Counter()
    genres: Counter = Counter()
    for track_id, count in tracks.items():
        credited = list(TrackArtist.objects.filter(track_id=track_id).values_list("artist_id", flat=True))
        for artist_id in credited:
            artists[artist_id] += count
        for genre_id in set(ArtistGenre.objects.filter(artist_id__in=credited).values_list("genre_id", flat=True)):
            genres[genre_id] += count
    return {"tracks": tracks, "ms": ms_by_track, "heat": heat, "days": days, "artists": artists, "genres": genres}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=plays_strategy,
    zone_name=st.sampled_from(ZONES),
    incremental=st.booleans(),
    window=st.tuples(st.integers(-3, 3), st.integers(0, 400)),
)
def test_rollups_match_brute_force(user, raw, zone_name, incremental, window):
    Play.objects.all().delete()
    TrackRollup.objects.all().delete()
    HourRollup.objects.all().delete()
    user.time_zone = zone_name
    user.save(update_fields=["time_zone"])
    if not Track.objects.exists():
        make_catalog()
    tracks = list(Track.objects.order_by("key"))
    seen = set()
    for anchor, offset, track_n, ms in raw:
        played_at = anchor + timedelta(seconds=offset)
        if (track_n, played_at) in seen:
            continue
        seen.add((track_n, played_at))
        make_play(user=user, track=tracks[track_n], played_at=played_at, ms_played=ms)
        if incremental:
            stats_rollups_refresh(user_id=user.pk, start=played_at, end=played_at)
    if not incremental:
        stats_rollups_refresh(user_id=user.pk)
    # A second refresh changes nothing.
    stats_rollups_refresh(user_id=user.pk, start=ANCHORS[0] - timedelta(days=3), end=ANCHORS[0] + timedelta(days=3))

    zone = ZoneInfo(zone_name)
    first = date(2024, 1, 1) + timedelta(days=window[0] * 30)
    last = first + timedelta(days=window[1])
    plays = list(Play.objects.filter(user=user).select_related("track"))
    expected = _brute(plays, zone, first, last)
    date_range = DateRange("custom", first, last, "custom")

    top = stats_top_tracks(user_id=user.pk, date_range=date_range, limit=100)
    assert {t["id"]: t["plays"] for t in top} == dict(expected["tracks"])
    assert {t["id"]: t["ms_played"] for t in top} == dict(expected["ms"])
    artists = stats_top_artists(user_id=user.pk, date_range=date_range, limit=100)
    assert {a["id"]: a["plays"] for a in artists} == dict(expected["artists"])
    genres = stats_top_genres(user_id=user.pk, date_range=date_range, limit=100)
    assert {g["id"]: g["plays"] for g in genres} == dict(expected["genres"])
    assert stats_heatmap(user_id=user.pk, date_range=date_range) == expected["heat"]
    totals = stats_totals(user_id=user.pk, date_range=date_range)
    assert totals["plays"] == sum(expected["tracks"].values())
    assert totals["ms_played"] == sum(expected["ms"].values())
    assert totals["tracks"] == len(expected["tracks"])
    _, points = stats_timeline(user_id=user.pk, date_range=date_range, bucket="day")
    assert {p.start: p.plays for p in points if p.plays} == dict(expected["days"])

    everything = DateRange("all", None, None, "All time")
    all_top = stats_top_tracks(user_id=user.pk, date_range=everything, limit=100)
    assert sum(t["plays"] for t in all_top) == len(plays)


@given(first=st.dates(date(2019, 1, 1), date(2026, 12, 31)), length=st.integers(0, 2000))
def test_range_tiles_cover_each_day_exactly_once(first, length):
    last = first + timedelta(days=length)
    covered: Counter = Counter()
    for grain, lo, hi in range_tiles(first, last):
        day = lo
        while day <= hi:
            if grain == 0:
                covered[day] += 1
                day += timedelta(days=1)
            elif grain == 1:
                end = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                for n in range((end - day).days):
                    covered[day + timedelta(days=n)] += 1
                day = end
            else:
                end = date(day.year + 1, 1, 1)
                for n in range((end - day).days):
                    covered[day + timedelta(days=n)] += 1
                day = end
    assert set(covered) == {first + timedelta(days=n) for n in range(length + 1)}
    assert set(covered.values()) == {1}


def test_refresh_of_a_day_removes_deleted_plays(user):
    tracks = make_catalog()
    play = make_play(user=user, track=tracks[0], played_at=datetime(2024, 5, 1, 12, tzinfo=UTC), ms_played=1000)
    stats_rollups_refresh(user_id=user.pk)
    assert TrackRollup.objects.filter(user=user, grain=3).get().plays == 1
    play.delete()
    stats_rollups_refresh(user_id=user.pk, start=play.played_at, end=play.played_at)
    assert not TrackRollup.objects.filter(user=user).exists()
    assert not HourRollup.objects.filter(user=user).exists()


def test_artist_stats_follow_a_catalog_change_without_refresh(user):
    tracks = make_catalog()
    make_play(user=user, track=tracks[0], played_at=datetime(2024, 5, 1, 12, tzinfo=UTC), ms_played=1000)
    stats_rollups_refresh(user_id=user.pk)
    everything = DateRange("all", None, None, "All time")
    before = stats_top_artists(user_id=user.pk, date_range=everything)
    # Enrichment replaces a track's credits by delete + insert (catalog_upsert).
    TrackArtist.objects.filter(track=tracks[0]).delete()
    TrackArtist.objects.create(track=tracks[0], artist=tracks[2].artists.first(), position=0)
    after = stats_top_artists(user_id=user.pk, date_range=everything)
    assert [a["id"] for a in before] != [a["id"] for a in after]
    assert after[0]["id"] == tracks[2].artists.first().pk


def test_rollups_of_one_user_do_not_mix_with_another(user, django_user_model):
    other = django_user_model.objects.create(username="other")
    tracks = make_catalog()
    make_play(user=user, track=tracks[0], played_at=datetime(2024, 5, 1, 12, tzinfo=UTC))
    make_play(user=other, track=tracks[1], played_at=datetime(2024, 5, 1, 12, tzinfo=UTC))
    stats_rollups_refresh(user_id=user.pk)
    stats_rollups_refresh(user_id=other.pk)
    everything = DateRange("all", None, None, "All time")
    assert [t["id"] for t in stats_top_tracks(user_id=user.pk, date_range=everything)] == [tracks[0].pk]
    assert [t["id"] for t in stats_top_tracks(user_id=other.pk, date_range=everything)] == [tracks[1].pk]


@pytest.mark.parametrize("touched_max", [1, 500])
def test_incremental_refresh_equals_a_full_rebuild(user, monkeypatch, touched_max):
    """Month rows are diffed against the plays: changed tracks one by one (chunks of one here), or whole
    months when more tracks than TOUCHED_TRACKS_MAX changed; either way the rows equal a full rebuild."""
    from earworm.stats import services

    monkeypatch.setattr(services, "TOUCHED_TRACKS_MAX", touched_max)
    monkeypatch.setattr(services, "CHUNK", 1)
    tracks = make_catalog()
    base = datetime(2024, 1, 30, 22, tzinfo=UTC)
    for n in range(12):
        make_play(user=user, track=tracks[n % 3], played_at=base + timedelta(hours=7 * n), ms_played=1000 * n)
    stats_rollups_refresh(user_id=user.pk)
    # New plays over a month boundary, and one deleted play, refreshed by their span only.
    later = [base + timedelta(hours=5 * n, minutes=30) for n in range(6)]
    added = [make_play(user=user, track=tracks[n % 4], played_at=moment) for n, moment in enumerate(later)]
    gone = Play.objects.filter(user=user).order_by("played_at")[3]
    gone.delete()
    stats_rollups_refresh(user_id=user.pk, start=added[0].played_at, end=added[-1].played_at)
    stats_rollups_refresh(user_id=user.pk, start=gone.played_at, end=gone.played_at)

    def rows() -> set:
        return set(
            TrackRollup.objects.filter(user=user).values_list("grain", "start", "track_id", "plays", "ms_played")
        )

    incremental = rows()
    stats_rollups_refresh(user_id=user.pk)
    assert incremental == rows()
    assert TrackRollup.objects.filter(user=user, grain=3).count() == 4


def test_views_by_year_sum_the_months_of_the_track_rollup(user):
    """The track rollup has no year rows: the genre timeline over more than two years and an artist's yearly
    timeline sum months, in the user's time zone (a play at 23:30 UTC on 31 December is January in Berlin)."""
    from earworm.catalog.models import Genre
    from earworm.stats.selectors import artist_tracks_sql, stats_genre_timeline

    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    zone = ZoneInfo("Europe/Berlin")
    tracks = make_catalog()
    moments = [datetime(2021, 1, 1, 10, tzinfo=UTC) + timedelta(days=37 * n, hours=n) for n in range(40)]
    moments += [datetime(2022, 12, 31, 23, 30, tzinfo=UTC), datetime(2023, 12, 31, 22, 59, tzinfo=UTC)]
    for n, moment in enumerate(moments):
        make_play(user=user, track=tracks[n % len(tracks)], played_at=moment, ms_played=60_000)
    stats_rollups_refresh(user_id=user.pk)
    assert not TrackRollup.objects.filter(user=user, grain=2).exists()

    first, last = date(2021, 1, 1), date(2025, 12, 31)
    date_range = DateRange("custom", first, last, "custom")
    plays = list(Play.objects.filter(user=user))
    genre_ids = list(Genre.objects.values_list("pk", flat=True))
    expected: dict[date, Counter] = {}
    for play in plays:
        year = date(play.played_at.astimezone(zone).year, 1, 1)
        credited = TrackArtist.objects.filter(track_id=play.track_id).values_list("artist_id", flat=True)
        for genre_id in set(ArtistGenre.objects.filter(artist_id__in=credited).values_list("genre_id", flat=True)):
            expected.setdefault(year, Counter())[genre_id] += 1
    timeline = stats_genre_timeline(user_id=user.pk, date_range=date_range, genre_ids=genre_ids)
    assert timeline == {year: dict(counts) for year, counts in sorted(expected.items())}
    assert date(2023, 1, 1) in timeline and sum(map(sum, (c.values() for c in timeline.values()))) > len(plays) // 2

    artist = tracks[0].artists.order_by("pk").first()
    own = set(TrackArtist.objects.filter(artist=artist).values_list("track_id", flat=True))
    by_year = Counter(date(p.played_at.astimezone(zone).year, 1, 1) for p in plays if p.track_id in own)
    _, points = stats_timeline(
        user_id=user.pk,
        date_range=date_range,
        bucket="year",
        track_ids_sql=artist_tracks_sql(),
        scope_params=[artist.pk],
    )
    assert {p.start: p.plays for p in points if p.plays} == dict(by_year)


def test_results_cached_by_the_previous_rollup_layout_are_not_served(user):
    """An old release's process, running against migrated tables during an upgrade, caches what it computes
    from rows that are gone (its keys carry no layout); this release must compute its own."""
    import hashlib

    from django.core.cache import cache

    from earworm.stats.selectors import _stats_version

    tracks = make_catalog()
    make_play(user=user, track=tracks[0], played_at=datetime(2023, 5, 1, 12, tzinfo=UTC), ms_played=1000)
    stats_rollups_refresh(user_id=user.pk)
    date_range = DateRange("2023", date(2023, 1, 1), date(2023, 12, 31), "2023")
    kwargs = {"user_id": user.pk, "date_range": date_range, "limit": 10}
    args = hashlib.sha256(repr(sorted(kwargs.items())).encode()).hexdigest()[:32]
    old_key = f"stats:stats_top_tracks:{user.pk}:{_stats_version(user.pk)}:{args}"
    cache.set(old_key, [])  # what the previous release read from the migrated track rollup: no year rows

    assert [t["id"] for t in stats_top_tracks(**kwargs)] == [tracks[0].pk]
