from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.history.models import Play
from earworm.history.tests.conftest import minutes, window_json

pytestmark = pytest.mark.django_db
RECENT = "/me/player/recently-played"


def test_sync_plays_for_one_user_prints_a_summary(fake_spotify, start):
    account = SpotifyAccountFactory(spotify_id="alice")
    fake_spotify.queue(RECENT, window_json([(n, minutes(start, 4 * n)) for n in range(3)]))
    out = StringIO()

    call_command("sync_plays", "--user", "alice", stdout=out)

    assert "alice: 3 new plays of 3 in the window" in out.getvalue()
    assert "Synced 1 accounts: 3 new plays" in out.getvalue()
    assert Play.objects.filter(user=account.user).count() == 3


def test_sync_plays_all(fake_spotify, start):
    SpotifyAccountFactory.create_batch(2)
    fake_spotify.queue(RECENT, window_json([(1, start)]), window_json([(2, start)]))
    out = StringIO()

    call_command("sync_plays", "--all", stdout=out)

    assert "Synced 2 accounts: 2 new plays" in out.getvalue()


def test_sync_plays_unknown_user():
    with pytest.raises(CommandError, match="No Spotify account"):
        call_command("sync_plays", "--user", "nobody")


def test_sync_plays_needs_a_choice():
    with pytest.raises(CommandError):
        call_command("sync_plays")
