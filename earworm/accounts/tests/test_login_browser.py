"""Log in through the emulator's consent page in a real browser (issue 4)."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server, spotify_emulator, settings):
    settings.SPOTIFY_REDIRECT_URI = f"{live_server.url}/api/callback/"
    return live_server.url


def test_agree_on_the_consent_page_lands_logged_in_with_the_display_name(page, site, spotify_emulator, screenshot):
    name = spotify_emulator.control.users()[1]["display_name"]
    visited = []
    page.on("request", lambda request: visited.append(request.url))

    page.goto(site + "/")
    page.click("text=Log in with Spotify")
    page.wait_for_selector("#agree")
    page.select_option("#user", index=1)
    screenshot("login-consent-page")
    page.click("#agree")
    page.wait_for_selector(f"text=Hello, {name}")

    screenshot("login-logged-in-home")
    assert page.url == site + "/"
    assert not any("access_token" in url or "code_verifier" in url for url in visited)


def test_cancel_on_the_consent_page_shows_the_friendly_message(page, site, screenshot):
    page.goto(site + "/api/login/")
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    page.wait_for_selector("text=You cancelled the sign-in")

    screenshot("login-cancelled")
    assert "Log in with Spotify" in page.content()
