"""Every page in Chromium at desktop and phone widths, light and dark, with screenshots to look at."""

import pytest
from django.conf import settings as django_settings
from django.test import Client

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.catalog.models import Album, Artist, Track
from earworm.stats.tests.demo_data import demo_history_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def logged_in_context(chromium, live_server):
    account = SpotifyAccountFactory(display_name="Robin")
    user = account.user
    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    demo_history_create(user=user)
    client = Client()
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    def make(viewport: str, scheme: str):
        context = chromium.new_context(viewport=VIEWPORTS[viewport], color_scheme=scheme)
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        return context

    return make, live_server.url


def _pages():
    artist = Artist.objects.filter(key__startswith="demo-ar").order_by("key").first()
    album = Album.objects.filter(key__startswith="demo-al").order_by("key").first()
    track = Track.objects.filter(key__startswith="demo-tr").order_by("key").first()
    return {
        "dashboard": "/?range=12m",
        "plays": "/plays/",
        "genres": "/genres/?range=all",
        "artist": f"/artists/{artist.pk}/",
        "album": f"/albums/{album.pk}/",
        "track": f"/tracks/{track.pk}/",
        "year": "/year/",
        "settings": "/settings/",
    }


@pytest.mark.parametrize(("viewport", "scheme"), [("desktop", "light"), ("phone", "dark")])
def test_every_page_renders_with_data(logged_in_context, screenshots_dir, viewport, scheme):
    make, base = logged_in_context
    context = make(viewport, scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
    )
    for name, path in _pages().items():
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        assert page.locator("main h1").count() >= 1
        if name in ("dashboard", "artist", "year"):
            assert page.locator("svg.chart").count() >= 1
        # Nothing wider than the screen: no sideways scrolling on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {viewport}"
        page.screenshot(path=str(screenshots_dir / f"stats-{name}-{viewport}-{scheme}.png"), full_page=True)
        if viewport == "phone":
            page.screenshot(path=str(screenshots_dir / f"stats-{name}-{viewport}-{scheme}-first-screen.png"))
    assert not errors
    context.close()
