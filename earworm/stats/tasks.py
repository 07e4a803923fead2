from huey.contrib.djhuey import db_task


@db_task()
def stats_rollups_refresh_all(user_id: int) -> None:
    """Rebuild all of a user's rollups (after a time zone change)."""
    from earworm.stats.services import stats_rollups_refresh

    stats_rollups_refresh(user_id=user_id)
