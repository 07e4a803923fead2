"""Rollups of plays, so statistics never scan the Play table on a page view (docs/stats.md).

Each rollup row covers one *period* of the user's local calendar at one *grain*: a day or a year (hour rollups
only), a month, or all time (track rollups only). A range of days is answered by the fewest periods that tile
it: whole years (hour rollups), then whole months, then single days, which track statistics read from the
plays (a track rollup row per track and day would be about one per play; per track and year, still about one
per two plays, so track statistics sum months). Rows are derived data:
`stats_rollups_refresh` rebuilds them from plays, and nothing else writes them.
"""

from django.conf import settings
from django.db import models


class Grain(models.IntegerChoices):
    DAY = 0, "day"
    MONTH = 1, "month"
    YEAR = 2, "year"
    ALL = 3, "all time"


# The `start` of the all-time period: one fixed date, so all-time rows share one key shape.
ALL_TIME_START = "2000-01-01"


class TrackRollup(models.Model):
    """Plays and listening time of one track by one user in one period.

    Artist, album and genre statistics join this through TrackArtist, Track and ArtistGenre at query time,
    so a catalog change (enrichment replacing a track's artists) shows at once without a refresh.

    Keyed by (user, grain, start, track) itself: a surrogate id would be one more index to write per row, and
    an import writes about as many rollup rows as plays (on PostgreSQL the key also covers the counts, for
    index-only scans; migration stats 0006).
    """

    pk = models.CompositePrimaryKey("user", "grain", "start", "track")
    # No database constraint on the rollups' foreign keys (derived data, rebuilt from plays): PostgreSQL would
    # check each of the ~1.5M rows of a full rebuild at commit. Deletes still cascade through Django's collector.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    grain = models.SmallIntegerField(choices=Grain.choices)
    # First local day of the period (the day itself, the 1st of the month, 1 January; ALL_TIME_START).
    start = models.DateField()
    track = models.ForeignKey(
        "catalog.Track", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    plays = models.PositiveIntegerField()
    # ms_played where known, else the track's duration (API plays do not say how long they lasted).
    ms_played = models.BigIntegerField()

    class Meta:
        indexes = [
            # Artist, album and track pages: one track's periods.
            models.Index(fields=["user", "track", "grain", "start"], name="stats_trackrollup_by_track"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {Grain(self.grain).label} {self.start}: track {self.track_id} x{self.plays}"


class HourRollup(models.Model):
    """Plays and listening time of one user per local hour of day and weekday, in one period.

    Day rows have one weekday; month and year rows sum days. Totals, the timeline and the heatmap read it.
    Keyed by its period and hour, like TrackRollup.
    """

    pk = models.CompositePrimaryKey("user", "grain", "start", "weekday", "hour")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    grain = models.SmallIntegerField(choices=Grain.choices)
    start = models.DateField()
    # 0 = Monday … 6 = Sunday, local time.
    weekday = models.SmallIntegerField()
    hour = models.SmallIntegerField()
    plays = models.PositiveIntegerField()
    ms_played = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.user_id} {Grain(self.grain).label} {self.start}: {self.weekday}/{self.hour} x{self.plays}"


class RollupState(models.Model):
    """Bumped by every refresh of a user's rollups: cached statistics are keyed by it (docs/stats.md)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.PositiveBigIntegerField(default=0)
    refreshed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} v{self.version}"
