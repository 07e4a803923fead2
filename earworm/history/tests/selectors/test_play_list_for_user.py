import pytest

from earworm.catalog.models import Artist, TrackArtist
from earworm.core.exceptions import ApplicationError
from earworm.history.models import Play
from earworm.history.selectors import play_list_for_user
from earworm.history.tests.factories import TrackFactory, at

pytestmark = pytest.mark.django_db


def _play(user, track, minutes):
    return Play.objects.create(user=user, track=track, played_at=at(minutes), source="api")


def test_pages_walk_newest_first_without_repeats_even_when_plays_arrive_meanwhile(user):
    track = TrackFactory()
    for minute in range(0, 30, 3):
        _play(user, track, minute)

    first = play_list_for_user(user_id=user.pk, limit=4)
    _play(user, track, 100)  # a new play arrives between page requests
    second = play_list_for_user(user_id=user.pk, limit=4, cursor=first.next_cursor)
    third = play_list_for_user(user_id=user.pk, limit=4, cursor=second.next_cursor)

    seen = [p.played_at for page in (first, second, third) for p in page.items]
    assert seen == sorted((at(m) for m in range(0, 30, 3)), reverse=True)
    assert third.next_cursor is None


def test_only_the_users_own_plays_are_listed(user, django_user_model):
    other = django_user_model.objects.create(username="other")
    track = TrackFactory()
    _play(other, track, 1)
    mine = _play(user, track, 2)

    assert [p.pk for p in play_list_for_user(user_id=user.pk).items] == [mine.pk]


def test_artists_come_in_credit_order_with_a_fixed_number_of_queries(user, django_assert_num_queries):
    for n in range(5):
        track = TrackFactory()
        for position, name in enumerate(["B", "A"]):
            artist, _ = Artist.objects.get_or_create(key=f"{name}{n}", defaults={"name": f"{name}{n}"})
            TrackArtist.objects.create(track=track, artist=artist, position=position)
        _play(user, track, n)

    with django_assert_num_queries(2):
        page = play_list_for_user(user_id=user.pk)
        names = [[credit.artist.name for credit in play.track.credits] for play in page.items]

    assert names[0] == ["B4", "A4"]


def test_a_tampered_cursor_is_a_clear_error(user):
    with pytest.raises(ApplicationError, match="cursor"):
        play_list_for_user(user_id=user.pk, cursor="not-a-cursor!")
