from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.models import Artist, Track
from earworm.core.exceptions import SpotifyReloginRequired
from earworm.core.models import QuotaGate
from earworm.history.models import Play, SyncRun
from earworm.history.services.sync import history_sync
from earworm.history.tests.conftest import minutes, track_json, window_json
from earworm.spotify.errors import SpotifyQuotaExceeded, SpotifyUnavailable
from earworm.spotify.oauth import SpotifyOAuth
from earworm.spotify.types import TokenSet

pytestmark = pytest.mark.django_db

RECENT = "/me/player/recently-played"


def test_sync_stores_window_with_catalog_and_records_run(fake_spotify, spotify_account, start):
    fake_spotify.queue(RECENT, window_json([(n, minutes(start, 4 * n)) for n in range(5)]))

    result = history_sync(account_id=spotify_account.pk)

    assert (result.status, result.plays_seen, result.new_plays, result.new_tracks) == ("ok", 5, 5, 5)
    assert result.calls_made == 1
    plays = Play.objects.filter(user=spotify_account.user).order_by("played_at")
    assert [play.source for play in plays] == ["api"] * 5
    assert plays[0].played_at == start
    assert Track.objects.get(spotify_id=f"tr{0:020d}").album.name == "Album 0"
    assert Artist.objects.count() == 5
    run = SyncRun.objects.get(account=spotify_account)
    assert (run.status, run.new_plays, run.new_artists, run.calls_made, run.gap_from) == ("ok", 5, 5, 1, None)
    spotify_account.refresh_from_db()
    assert spotify_account.last_played_at == minutes(start, 16)
    assert spotify_account.last_synced_at is not None
    assert spotify_account.sync_claimed_until is None
    assert "limit=50" in str(fake_spotify.requests[0].url)
    assert "after=" not in str(fake_spotify.requests[0].url)


def test_sync_skips_plays_already_stored(fake_spotify, spotify_account, start):
    window = window_json([(n, minutes(start, 4 * n)) for n in range(5)])
    fake_spotify.queue(RECENT, window, window_json([(n, minutes(start, 4 * n)) for n in range(6)]))

    history_sync(account_id=spotify_account.pk)
    again = history_sync(account_id=spotify_account.pk, force=True)

    assert (again.new_plays, again.new_tracks, again.plays_seen) == (1, 1, 6)
    assert Play.objects.count() == 6


def test_sync_keeps_milliseconds(fake_spotify, spotify_account, start):
    at = start + timedelta(milliseconds=123)
    fake_spotify.queue(RECENT, window_json([(1, at)]))

    history_sync(account_id=spotify_account.pk)

    assert Play.objects.get().played_at == at


def test_sync_statement_count_does_not_depend_on_items(fake_spotify, start, settings):
    # One long gate window, opened by a first sync, so neither measured sync creates the row or rolls the window.
    settings.SPOTIFY_WINDOW_SECONDS = 86_400
    fake_spotify.queue(RECENT, window_json([(1, start)]))
    history_sync(account_id=SpotifyAccountFactory().pk)
    counts = []
    for size in (5, 50):
        account = SpotifyAccountFactory()
        fake_spotify.queue(RECENT, window_json([(1000 * size + n, minutes(start, 4 * n)) for n in range(size)]))
        with CaptureQueriesContext(connection) as queries:
            result = history_sync(account_id=account.pk)
        assert result.new_plays == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_sync_records_gap_when_full_window_misses_last_stored_play(fake_spotify, spotify_account, start):
    spotify_account.last_played_at = minutes(start, -30)
    spotify_account.save()
    fake_spotify.queue(RECENT, window_json([(n, minutes(start, n)) for n in range(50)]))

    result = history_sync(account_id=spotify_account.pk)

    assert (result.gap_from, result.gap_to) == (minutes(start, -30), start)
    run = SyncRun.objects.get()
    assert (run.gap_from, run.gap_to) == (minutes(start, -30), start)


def test_sync_records_no_gap_when_window_is_not_full(fake_spotify, spotify_account, start):
    spotify_account.last_played_at = minutes(start, -30)
    spotify_account.save()
    fake_spotify.queue(RECENT, window_json([(n, minutes(start, n)) for n in range(40)]))

    assert history_sync(account_id=spotify_account.pk).gap_from is None


def test_sync_records_no_gap_when_window_reaches_last_stored_play(fake_spotify, spotify_account, start):
    spotify_account.last_played_at = start
    spotify_account.save()
    fake_spotify.queue(RECENT, window_json([(n, minutes(start, n)) for n in range(50)]))

    assert history_sync(account_id=spotify_account.pk).gap_from is None


def test_sync_skips_items_without_track_local_files_and_episodes(fake_spotify, spotify_account, start):
    page = window_json([(1, start)])
    local = track_json(2) | {"id": None, "is_local": True, "uri": "spotify:local:A:B:Song:200", "album": None}
    page["items"] += [
        {"track": None, "played_at": "2026-03-01T11:00:00.000Z"},
        {"track": local, "played_at": "2026-03-01T11:10:00.000Z", "context": None},
        {"track": track_json(3) | {"type": "episode"}, "played_at": "2026-03-01T11:20:00Z", "context": None},
    ]
    fake_spotify.queue(RECENT, page)

    result = history_sync(account_id=spotify_account.pk)

    assert (result.plays_seen, result.new_plays) == (4, 2)
    assert Track.objects.filter(is_local=True, spotify_id=None).count() == 1


def test_sync_returns_at_once_when_another_worker_holds_the_claim(fake_spotify, spotify_account):
    spotify_account.sync_claimed_until = timezone.now() + timedelta(seconds=60)
    spotify_account.save()

    assert history_sync(account_id=spotify_account.pk).status == "skipped"
    assert fake_spotify.requests == []


def test_sync_takes_over_an_expired_claim(fake_spotify, spotify_account, start):
    spotify_account.sync_claimed_until = timezone.now() - timedelta(seconds=1)
    spotify_account.save()
    fake_spotify.queue(RECENT, window_json([(1, start)]))

    assert history_sync(account_id=spotify_account.pk).status == "ok"


def test_sync_skips_an_account_another_worker_synced_between_its_read_and_its_claim(
    fake_spotify, spotify_account, start, mocker
):
    from earworm.history.services import sync as sync_module

    real_claim = sync_module._claim

    def claim_after_another_sync(account_id, **kwargs):
        # A duplicate task read the account as due; another worker's sync commits and releases it meanwhile.
        SpotifyAccount.objects.filter(pk=account_id).update(last_synced_at=timezone.now())
        return real_claim(account_id, **kwargs)

    mocker.patch.object(sync_module, "_claim", side_effect=claim_after_another_sync)

    assert history_sync(account_id=spotify_account.pk).status == "skipped"
    assert fake_spotify.requests == []
    fake_spotify.queue(RECENT, window_json([(1, start)]))
    assert history_sync(account_id=spotify_account.pk, force=True).status == "ok"  # "Sync now" still syncs


def test_sync_skips_accounts_that_need_relogin(fake_spotify, spotify_account):
    spotify_account.status = SpotifyAccount.Status.NEEDS_RELOGIN
    spotify_account.save()

    assert history_sync(account_id=spotify_account.pk).status == "skipped"
    assert fake_spotify.requests == []


def test_sync_skips_an_account_synced_moments_ago_unless_forced(fake_spotify, spotify_account, start):
    spotify_account.last_synced_at = timezone.now() - timedelta(minutes=1)
    spotify_account.save()
    fake_spotify.queue(RECENT, window_json([(1, start)]))

    assert history_sync(account_id=spotify_account.pk).status == "skipped"
    assert history_sync(account_id=spotify_account.pk, force=True).status == "ok"


def test_sync_refreshes_once_on_401(fake_spotify, spotify_account, start, mocker):
    refresh = mocker.patch.object(
        SpotifyOAuth,
        "refresh",
        autospec=True,
        return_value=TokenSet(access_token="fresh-token", token_type="Bearer", expires_in=3600),
    )
    expired = httpx.Response(401, json={"error": {"status": 401, "message": "The access token expired"}})
    fake_spotify.queue(RECENT, expired, window_json([(1, start)]))

    result = history_sync(account_id=spotify_account.pk)

    assert result.new_plays == 1
    assert result.calls_made == 2
    assert refresh.call_count == 1
    assert fake_spotify.requests[1].headers["Authorization"] == "Bearer fresh-token"


def test_sync_marks_needs_relogin_when_refresh_is_refused(fake_spotify, spotify_account, mocker):
    from earworm.spotify.errors import SpotifyInvalidGrant

    mocker.patch.object(SpotifyOAuth, "refresh", autospec=True, side_effect=SpotifyInvalidGrant())
    spotify_account.expires_at = timezone.now() - timedelta(minutes=1)
    spotify_account.save()

    with pytest.raises(SpotifyReloginRequired):
        history_sync(account_id=spotify_account.pk)

    spotify_account.refresh_from_db()
    assert spotify_account.status == SpotifyAccount.Status.NEEDS_RELOGIN
    assert SyncRun.objects.get().status == "failed"
    assert fake_spotify.requests == []


def test_sync_records_a_transient_failure(fake_spotify, spotify_account):
    fake_spotify.queue(RECENT, httpx.Response(503, text="down"))

    with pytest.raises(SpotifyUnavailable):
        history_sync(account_id=spotify_account.pk)

    run = SyncRun.objects.get()
    assert (run.status, run.calls_made) == ("failed", 1)
    spotify_account.refresh_from_db()
    assert "server error" in spotify_account.last_sync_error
    assert spotify_account.sync_claimed_until is None
    assert spotify_account.last_synced_at is None


def test_sync_records_a_malformed_body(fake_spotify, spotify_account):
    from earworm.spotify.errors import SpotifyBadResponse

    fake_spotify.queue(RECENT, httpx.Response(200, text="{not json"))

    with pytest.raises(SpotifyBadResponse):
        history_sync(account_id=spotify_account.pk)
    assert SyncRun.objects.get().status == "failed"


def test_quota_429_closes_the_gate_and_later_syncs_make_no_request(fake_spotify, spotify_account, start):
    quota = httpx.Response(
        429,
        json={"error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}},
        headers={"Retry-After": "52531"},
    )
    fake_spotify.queue(RECENT, quota)

    with pytest.raises(SpotifyQuotaExceeded) as first:
        history_sync(account_id=spotify_account.pk)
    with pytest.raises(SpotifyQuotaExceeded) as second:
        history_sync(account_id=spotify_account.pk)

    assert len(fake_spotify.requests) == 1
    gate = QuotaGate.objects.get()
    assert gate.pause_reason == "quota"
    assert gate.paused_until > timezone.now() + timedelta(hours=14)
    assert abs((second.value.resume_at - first.value.resume_at).total_seconds()) < 5
    assert SyncRun.objects.count() == 0  # a closed gate is not a failure of the account


def test_statistics_include_the_new_plays_right_after_a_sync(fake_spotify, spotify_account, start):
    from earworm.stats.selectors import DateRange, stats_top_tracks

    fake_spotify.queue(RECENT, window_json([(n % 2, minutes(start, 4 * n)) for n in range(6)]))

    history_sync(account_id=spotify_account.pk)

    top = stats_top_tracks(user_id=spotify_account.user_id, date_range=DateRange("all", None, None, "All time"))
    assert [row["plays"] for row in top] == [3, 3]
