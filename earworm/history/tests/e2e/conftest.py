"""End-to-end fixtures: a real emulator process, accounts connected through the real OAuth code flow."""

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from earworm.accounts.models import SpotifyAccount
from earworm.accounts.services import spotify_account_connect
from earworm.accounts.spotify_api import spotify_client, spotify_oauth
from spotify_emulator.testing import EmulatorProcess


@pytest.fixture
def emulator_factory(settings) -> Iterator:
    """Start emulators with extra arguments, point the app at the last one, stop them all after the test."""
    started: list[EmulatorProcess] = []

    def start(*extra_args: str, seed: int = 7) -> EmulatorProcess:
        emu = EmulatorProcess(seed=seed, extra_args=["--frozen-clock", "--artists", "400", "--tracks", "2000",
                                                     *extra_args]).start()  # fmt: skip
        started.append(emu)
        settings.SPOTIFY_ACCOUNTS_URL = emu.accounts_url
        settings.SPOTIFY_API_URL = emu.api_url
        settings.SPOTIFY_CLIENT_ID = emu.client_id
        settings.SPOTIFY_CLIENT_SECRET = emu.client_secret
        settings.SPOTIFY_WINDOW_BUDGET = 10_000
        settings.SPOTIFY_READ_TIMEOUT = 2.0
        emu.control.set_config(allow_list={user["id"]: True for user in emu.control.users()})
        return emu

    yield start
    for emu in started:
        emu.stop()


def connect(emu: EmulatorProcess, user_id: str) -> SpotifyAccount:
    """Log `user_id` in through the emulator's consent form and Earworm's own code exchange and connect."""
    oauth = spotify_oauth()
    authorization = oauth.authorization_request()
    with httpx.Client(base_url=emu.base_url, timeout=10) as browser:
        page = browser.get(authorization.url)
        request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
        assert request_id, page.text
        answer = browser.post("/authorize/consent", data={"request_id": request_id.group(1), "user": user_id,
                                                          "agree": "1"})  # fmt: skip
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == [authorization.state]
    token_set = oauth.exchange_code(code=query["code"][0], code_verifier=authorization.code_verifier)
    with spotify_client(access_token=token_set.access_token, kind="login") as client:
        profile = client.me()
    return spotify_account_connect(token_set=token_set, profile=profile).account
