import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_stats_cache():
    """Cached statistics are keyed by ids, which a rolled-back test database may hand out again."""
    cache.clear()
    yield
    cache.clear()
