"""`manage.py run_huey` that also times the Spotify gate, for bench/sync.py's consumer cycle.

Every `RedisGate.before_request` is timed and the seconds added to the Redis key BENCH_GATE_KEY (a float), and a
refused call adds the wait it imposes (`Retry-After`) to BENCH_GATE_KEY:refused. Arguments go to run_huey.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402

from earworm.core import ratelimit  # noqa: E402
from earworm.spotify.errors import SpotifyQuotaExceeded, SpotifyRateLimited  # noqa: E402

_store = redis.Redis.from_url(os.environ["REDIS_URL"])
_key = os.environ["BENCH_GATE_KEY"]
_before_request = ratelimit.RedisGate.before_request


def _timed_before_request(self: ratelimit.RedisGate, *, kind: str) -> None:
    started = time.perf_counter()
    try:
        _before_request(self, kind=kind)
    except (SpotifyRateLimited, SpotifyQuotaExceeded) as exc:
        _store.incrbyfloat(f"{_key}:refused", float(getattr(exc, "retry_after", 0) or 0))
        raise
    finally:
        _store.incrbyfloat(_key, time.perf_counter() - started)


ratelimit.RedisGate.before_request = _timed_before_request  # type: ignore[method-assign]

if __name__ == "__main__":
    call_command("run_huey", *sys.argv[1:])
