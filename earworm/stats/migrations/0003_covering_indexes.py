"""PostgreSQL only: covering indexes, so range queries read rollups by index-only scans (docs/stats.md)."""

from django.db import migrations

CREATE = [
    "CREATE INDEX IF NOT EXISTS stats_trackrollup_period_cover ON stats_trackrollup "
    "(user_id, grain, start) INCLUDE (track_id, plays, ms_played)",
    "CREATE INDEX IF NOT EXISTS stats_hourrollup_period_cover ON stats_hourrollup "
    "(user_id, grain, start) INCLUDE (weekday, hour, plays, ms_played)",
]
DROP = ["DROP INDEX IF EXISTS stats_trackrollup_period_cover", "DROP INDEX IF EXISTS stats_hourrollup_period_cover"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in CREATE:
            schema_editor.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("stats", "0002_rollupstate")]
    operations = [migrations.RunPython(forwards, backwards)]
