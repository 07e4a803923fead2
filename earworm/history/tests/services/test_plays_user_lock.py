"""Plays have no database foreign keys (see `Play`): the user lock keeps them from outliving their user."""

import threading
import time

import pytest
from django.db import connection, transaction

from earworm.accounts.models import User
from earworm.accounts.tests.factories import UserFactory
from earworm.history.models import Play
from earworm.history.services.plays import NewPlay, history_plays_store, plays_user_lock
from earworm.history.tests.factories import TrackFactory, at
from earworm.stats.services import user_data_delete

pytestmark = pytest.mark.django_db(transaction=True)


def test_storing_plays_of_a_deleted_user_fails_and_writes_nothing() -> None:
    user = UserFactory()
    track = TrackFactory()
    user_id = user.pk
    user.delete()
    with pytest.raises(User.DoesNotExist):
        history_plays_store(
            user_id=user_id, plays=[NewPlay(track_id=track.pk, played_at=at(0), ms_played=None, source="api")]
        )
    assert not Play.objects.exists()


def test_deleting_a_user_in_the_admin_way_deletes_their_plays() -> None:
    user = UserFactory()
    track = TrackFactory()
    history_plays_store(
        user_id=user.pk, plays=[NewPlay(track_id=track.pk, played_at=at(0), ms_played=None, source="api")]
    )
    User.objects.filter(pk=user.pk).delete()  # the collector, as the admin deletes
    assert not Play.objects.exists()


@pytest.mark.postgres
@pytest.mark.parametrize("delete", ["service", "collector"])
def test_a_user_deleted_while_plays_are_being_written_keeps_no_play(delete: str) -> None:
    """The writer holds the lock and inserts a play; the deletion waits for it, then deletes that play too."""
    user = UserFactory()
    track = TrackFactory()
    user_id = user.pk
    locked = threading.Event()
    deleted = threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                plays_user_lock(user_id=user_id)
                locked.set()
                time.sleep(0.5)  # the deletion starts meanwhile and must wait
                assert not deleted.is_set()
                Play.objects.create(user_id=user_id, track=track, played_at=at(0), source="api")
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(5)
    if delete == "service":
        user_data_delete(user_id=user_id)
    else:
        User.objects.filter(pk=user_id).delete()
    deleted.set()
    thread.join()
    assert not Play.objects.filter(user_id=user_id).exists()
    assert not User.objects.filter(pk=user_id).exists()
