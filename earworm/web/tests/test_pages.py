"""The pages: they render with data, show only the user's own data, and the settings actions work."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from earworm.accounts.models import ApiToken, User
from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.models import Artist, Track
from earworm.history.models import Play
from earworm.stats.models import HourRollup, TrackRollup
from earworm.stats.services import stats_rollups_refresh
from earworm.stats.tests.factories import make_catalog, make_play

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener(client):
    tracks = make_catalog(tracks=8)
    user = SpotifyAccountFactory().user
    now = timezone.now()
    for n in range(30):
        make_play(user=user, track=tracks[n % 5], played_at=now - timedelta(hours=n * 7), ms_played=120_000)
    make_play(user=user, track=tracks[0], played_at=datetime(2023, 6, 1, 12, tzinfo=UTC), source="api")
    stats_rollups_refresh(user_id=user.pk)
    client.force_login(user)
    return user, tracks


PAGES = [
    "/",
    "/?range=all",
    "/?range=12m",
    "/?from=2023-01-01&to=2023-12-31",
    "/plays/",
    "/genres/",
    "/settings/",
    "/year/2023/",
]


@pytest.mark.parametrize("url", PAGES)
def test_pages_render_for_a_listener_and_are_not_cached(client, listener, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_dashboard_shows_top_lists_and_charts(client, listener):
    _, tracks = listener
    body = client.get("/?range=all").content.decode()
    assert tracks[0].name in body
    assert '<svg class="chart"' in body
    assert "heatmap" in body
    assert "31" in body  # plays


def test_entity_pages_render_and_hide_what_only_others_played(client, listener):
    _user, tracks = listener
    artist = tracks[0].artists.first()
    for url in (f"/artists/{artist.pk}/", f"/albums/{tracks[0].album_id}/", f"/tracks/{tracks[0].pk}/"):
        assert client.get(url).status_code == 200, url
    never_played = tracks[7]
    assert client.get(f"/tracks/{never_played.pk}/").status_code == 404
    assert client.get("/artists/999999/").status_code == 404


def test_year_redirects_to_latest_and_unknown_year_404(client, listener):
    response = client.get("/year/")
    assert response.status_code == 302
    assert response["Location"] == f"/year/{timezone.now().year}/" or response["Location"].startswith("/year/")
    assert client.get("/year/2001/").status_code == 404


def test_plays_page_paginates_with_cursor(client, listener, monkeypatch):
    monkeypatch.setattr("earworm.web.views.PlayListView.page_size", 10)
    first = client.get("/plays/")
    assert "Older" in first.content.decode()
    cursor = first.context["page"].next_cursor
    second = client.get("/plays/", {"cursor": cursor})
    assert second.status_code == 200
    assert client.get("/plays/", {"cursor": "garbage!"}).status_code == 404


def test_anonymous_visitors_see_the_introduction(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Log in with Spotify" in response.content.decode()
    assert client.get("/settings/").status_code == 302


def test_changing_time_zone_recomputes_rollups(client, listener, django_capture_on_commit_callbacks):
    user, _ = listener
    user_plays = Play.objects.filter(user=user, played_at__year=2023).get()
    assert HourRollup.objects.filter(user=user, grain=0, start="2023-06-01", hour=12).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/time-zone/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.time_zone == "Asia/Tokyo"
    assert user_plays.played_at.hour == 12
    assert HourRollup.objects.filter(user=user, grain=0, start="2023-06-01", hour=21).exists()
    assert not HourRollup.objects.filter(user=user, hour=12, start="2023-06-01").exists()


def test_an_unknown_time_zone_is_refused(client, listener):
    user, _ = listener
    client.post("/settings/time-zone/", {"time_zone": "Mars/Olympus"})
    user.refresh_from_db()
    assert user.time_zone == "UTC"


def test_browser_suggestion_applies_only_while_zone_is_default(client, listener, django_capture_on_commit_callbacks):
    user, _ = listener
    with django_capture_on_commit_callbacks(execute=True):
        status = client.post("/settings/time-zone/", {"time_zone": "Europe/Paris", "automatic": "1"}).status_code
    assert status == 204
    user.refresh_from_db()
    assert user.time_zone == "Europe/Paris"
    client.post("/settings/time-zone/", {"time_zone": "Asia/Tokyo", "automatic": "1"})
    user.refresh_from_db()
    assert user.time_zone == "Europe/Paris"


def test_api_token_is_shown_once_and_can_be_revoked(client, listener):
    user, _ = listener
    client.post("/settings/tokens/", {"name": "backup"})
    page = client.get("/settings/").content.decode()
    token = ApiToken.objects.get(user=user)
    assert "ew_" in page and "backup" in page
    raw = page.split('class="token-value" type="text" readonly value="')[1].split('"')[0]
    assert raw.startswith(token.prefix)
    assert raw not in client.get("/settings/").content.decode()
    script = Client()
    assert script.get("/api/v1/stats/summary", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert script.get("/api/v1/stats/summary", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_a_user_cannot_revoke_anothers_token(client, listener):
    other = SpotifyAccountFactory().user
    token = ApiToken.objects.create(user=other, name="x", token_hash="a" * 64, prefix="ew_x")
    assert client.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_delete_my_data_needs_confirmation_then_removes_everything_but_the_catalog(client, listener):
    user, _ = listener
    other = SpotifyAccountFactory().user
    make_play(user=other, track=Track.objects.first(), played_at=datetime(2024, 1, 1, tzinfo=UTC))
    ApiToken.objects.create(user=user, name="x", token_hash="b" * 64, prefix="ew_y")
    tracks_before, artists_before = Track.objects.count(), Artist.objects.count()

    client.post("/settings/delete/", {"confirm": "delete"})
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post("/settings/delete/", {"confirm": "DELETE"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Play.objects.filter(user_id=user.pk).exists()
    assert not ApiToken.objects.filter(user_id=user.pk).exists()
    assert not TrackRollup.objects.filter(user_id=user.pk).exists()
    assert Play.objects.filter(user=other).count() == 1
    assert (Track.objects.count(), Artist.objects.count()) == (tracks_before, artists_before)
    assert client.get("/settings/").status_code == 302  # logged out


def test_plays_page_groups_by_local_day(client, listener):
    user, _ = listener
    user.time_zone = "Pacific/Auckland"
    user.save(update_fields=["time_zone"])
    body = client.get("/plays/").content.decode()
    days = [part.split("</li>")[0] for part in body.split('<li class="day-head">')[1:]]
    assert len(days) == len(set(days))


@pytest.mark.parametrize("url", ["/", "/?range=all", "/genres/", "/plays/", "/settings/"])
def test_pages_render_for_a_new_user_without_plays(client, url):
    client.force_login(SpotifyAccountFactory().user)
    response = client.get(url)
    assert response.status_code == 200
    assert client.get("/year/").status_code == 302
