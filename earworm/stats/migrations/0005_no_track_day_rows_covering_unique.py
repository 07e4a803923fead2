"""Track rollups lose their day rows; on PostgreSQL each rollup's unique index also covers the counts.

Day rows of the track rollup were about one row per play (a track is rarely played twice a day), half of
what an import of a long history wrote; pages now read the plays of the few days at the ends of a range
(docs/stats.md). The unique indexes take `INCLUDE (plays, ms_played)`, which makes the separate covering
indexes of migration 0003 redundant: one index fewer to write per rollup row, the same index-only scans.
"""

from django.db import migrations

COVERING = {
    "stats_trackrollup": ("stats_trackrollup_unique_period_track", "user_id, grain, start, track_id"),
    "stats_hourrollup": ("stats_hourrollup_unique_period_hour", "user_id, grain, start, weekday, hour"),
}
OLD_COVER = {
    "stats_trackrollup": "(user_id, grain, start) INCLUDE (track_id, plays, ms_played)",
    "stats_hourrollup": "(user_id, grain, start) INCLUDE (weekday, hour, plays, ms_played)",
}


def _unique(schema_editor, table: str, include: str) -> None:
    name, columns = COVERING[table]
    schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    schema_editor.execute(f"CREATE UNIQUE INDEX {name} ON {table} ({columns}){include}")
    schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")


def forwards(apps, schema_editor):
    schema_editor.execute("DELETE FROM stats_trackrollup WHERE grain = 0")
    if schema_editor.connection.vendor == "postgresql":
        for table in COVERING:
            _unique(schema_editor, table, " INCLUDE (plays, ms_played)")
            schema_editor.execute(f"DROP INDEX IF EXISTS {table.replace('rollup', 'rollup_period_cover')}")


def backwards(apps, schema_editor):
    # The day rows come back with a full refresh of each user (stats_rollups_refresh_all), as after a
    # time-zone change; restoring the pre-upgrade dump is the documented way down (docs/upgrade.md).
    if schema_editor.connection.vendor == "postgresql":
        for table, cover in OLD_COVER.items():
            _unique(schema_editor, table, "")
            schema_editor.execute(f"CREATE INDEX {table.replace('rollup', 'rollup_period_cover')} ON {table} {cover}")


class Migration(migrations.Migration):
    dependencies = [("stats", "0004_rollup_fks_no_db_constraint")]
    operations = [migrations.RunPython(forwards, backwards)]
