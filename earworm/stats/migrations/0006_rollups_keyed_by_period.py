"""Rollups are keyed by their period: the surrogate `id` goes, (user, grain, start, track | weekday, hour) is the
primary key.

An import writes about as many track rollup rows as plays, and every index is written once per row: the `id`
key was one index more than the data needs (about a third of the rollup refresh). On PostgreSQL the new key
covers the counts (`INCLUDE (plays, ms_played)`, as the unique constraint it replaces did), so statistics
still read the rollups with index-only scans. Existing rows are kept.
"""

from django.db import migrations, models

TABLES = {
    "trackrollup": ("stats_trackrollup_unique_period_track", "user_id, grain, start, track_id"),
    "hourrollup": ("stats_hourrollup_unique_period_hour", "user_id, grain, start, weekday, hour"),
}
COLUMNS = {
    "trackrollup": "user_id, grain, start, track_id, plays, ms_played",
    "hourrollup": "user_id, grain, start, weekday, hour, plays, ms_played",
}


def forwards(apps, schema_editor):
    for model_name, (unique, key) in TABLES.items():
        table = f"stats_{model_name}"
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
            schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN id")
            schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {unique}")
            schema_editor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key}) INCLUDE (plays, ms_played)"
            )
            continue
        # SQLite cannot change a primary key in place: rebuild the table with Django's DDL for the new model.
        model = apps.get_model("stats", model_name)
        indexes = [index.name for index in model._meta.indexes]
        for name in [unique, *indexes]:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
        schema_editor.create_model(model)
        columns = COLUMNS[model_name]
        schema_editor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_old")  # noqa: S608
        schema_editor.execute(f"DROP TABLE {table}_old")


class Migration(migrations.Migration):
    dependencies = [("stats", "0005_no_track_day_rows_covering_unique")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="hourrollup", name="stats_hourrollup_unique_period_hour"),
                migrations.RemoveConstraint(model_name="trackrollup", name="stats_trackrollup_unique_period_track"),
                migrations.RemoveField(model_name="hourrollup", name="id"),
                migrations.RemoveField(model_name="trackrollup", name="id"),
                migrations.AddField(
                    model_name="hourrollup",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "user",
                        "grain",
                        "start",
                        "weekday",
                        "hour",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.AddField(
                    model_name="trackrollup",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "user",
                        "grain",
                        "start",
                        "track",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ]
        ),
        # Going back: restore the pre-upgrade dump (docs/upgrade.md).
        migrations.RunPython(forwards),
    ]
