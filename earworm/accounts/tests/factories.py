from datetime import timedelta

import factory
from django.utils import timezone

from earworm.accounts.models import SpotifyAccount, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"spotify:user{n}")


class SpotifyAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpotifyAccount

    user = factory.SubFactory(UserFactory)
    spotify_id = factory.Sequence(lambda n: f"user{n}")
    account_id = factory.Sequence(lambda n: f"acct{n:06d}")
    display_name = factory.Sequence(lambda n: f"Listener {n}")
    access_token = factory.Sequence(lambda n: f"access-token-{n}")
    refresh_token = factory.Sequence(lambda n: f"refresh-token-{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    consented_at = factory.LazyFunction(timezone.now)
    scopes = "user-read-recently-played"
