"""The track rollup keeps month and all-time rows only: year rows go (statistics sum a year's months).

A heavy listener plays most tracks of a year in one or two of its months, so year rows were about half as
many as month rows: a third of what an import or a full refresh wrote, to spare reads of up to twelve month
rows per track and year. All-time rows are now summed from months; they hold the same numbers. Going back
rebuilds the year rows from the months.
"""

from django.db import migrations

YEAR = 2


def year_rows_from_months(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        year = "CAST(date_trunc('year', CAST(start AS timestamp)) AS date)"
    else:
        year = "date(start, 'start of year')"
    schema_editor.execute(f"DELETE FROM stats_trackrollup WHERE grain = {YEAR}")
    schema_editor.execute(
        "INSERT INTO stats_trackrollup (user_id, grain, start, track_id, plays, ms_played) "
        f"SELECT user_id, {YEAR}, {year}, track_id, SUM(plays), SUM(ms_played) FROM stats_trackrollup "
        "WHERE grain = 1 GROUP BY user_id, 3, track_id"
    )


class Migration(migrations.Migration):
    dependencies = [("stats", "0006_rollups_keyed_by_period")]

    operations = [
        migrations.RunSQL(f"DELETE FROM stats_trackrollup WHERE grain = {YEAR}", reverse_sql=migrations.RunSQL.noop),
        migrations.RunPython(migrations.RunPython.noop, year_rows_from_months),
    ]
