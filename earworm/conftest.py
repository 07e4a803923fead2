"""Cross-app fixtures (STYLE.md §9)."""

import pytest

from earworm.accounts.tests.factories import SpotifyAccountFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def spotify_account(db):
    return SpotifyAccountFactory()


@pytest.fixture
def auth_client(client, spotify_account):
    client.force_login(spotify_account.user)
    return client
