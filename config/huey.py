"""Builds the HUEY setting: SqliteHuey for one machine, RedisHuey when REDIS_URL is set."""

from pathlib import Path
from typing import Any


def huey_settings(*, redis_url: str, data_dir: Path, immediate: bool) -> dict[str, Any]:
    """Return djhuey's HUEY dict.

    `immediate` is always explicit: djhuey defaults it to DEBUG, which would quietly run every task inside
    the web request whenever DJANGO_DEBUG is on.
    """
    common: dict[str, Any] = {
        "name": "earworm",
        "immediate": immediate,
        "utc": True,
        "consumer": {"workers": 2, "worker_type": "thread", "check_worker_health": True},
    }
    if redis_url:
        return {**common, "huey_class": "huey.RedisHuey", "url": redis_url}
    # Beside, not inside, the app database: the queue file sees far more writes.
    data_dir.mkdir(exist_ok=True)
    return {**common, "huey_class": "huey.SqliteHuey", "filename": str(data_dir / "huey.sqlite3")}
