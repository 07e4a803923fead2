from datetime import UTC, datetime, timedelta

import factory

from earworm.catalog.models import Track


class TrackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Track

    key = factory.Sequence(lambda n: f"t{n:021d}")
    spotify_id = factory.LazyAttribute(lambda o: o.key)
    name = factory.Sequence(lambda n: f"Track {n}")
    duration_ms = 180_000


def at(minutes: float, *, seconds: float = 0) -> datetime:
    """A fixed UTC instant, `minutes` after 2026-03-01 12:00."""
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes, seconds=seconds)
