"""`manage.py sync_plays (--all | --user SPOTIFY_USER_ID)`: sync now, inline, and print a summary (DESIGN.md §4)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from earworm.accounts.models import SpotifyAccount
from earworm.core.exceptions import ApplicationError
from earworm.history.services.sync import history_sync
from earworm.spotify.errors import SpotifyError


class Command(BaseCommand):
    help = "Fetch recently played tracks from Spotify now, for one user or every active account."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="every active account")
        which.add_argument("--user", metavar="SPOTIFY_USER_ID", help="the account with this Spotify user id")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = SpotifyAccount.objects.order_by("pk")
        if options["user"]:
            accounts = accounts.filter(spotify_id=options["user"])
            if not accounts.exists():
                raise CommandError(f"No Spotify account with user id {options['user']!r}.")
        else:
            accounts = accounts.filter(status=SpotifyAccount.Status.ACTIVE)
        totals = {"synced": 0, "failed": 0, "skipped": 0, "new_plays": 0}
        for account_id, spotify_id in accounts.values_list("pk", "spotify_id"):
            try:
                result = history_sync(account_id=account_id, force=True)
            except (SpotifyError, ApplicationError) as exc:
                totals["failed"] += 1
                self.stderr.write(f"{spotify_id}: failed: {exc.message}")
                continue
            if result.status != "ok":
                totals["skipped"] += 1
                self.stdout.write(f"{spotify_id}: skipped (not active, or another sync is running)")
                continue
            totals["synced"] += 1
            totals["new_plays"] += result.new_plays
            line = (
                f"{spotify_id}: {result.new_plays} new plays of {result.plays_seen} in the window, "
                f"{result.new_tracks} new tracks, {result.new_artists} new artists, "
                f"{result.calls_made} Spotify calls, {result.duration_ms} ms"
            )
            if result.gap_from and result.gap_to:
                line += f"; possible gap between {result.gap_from:%Y-%m-%d %H:%M} and {result.gap_to:%H:%M} UTC"
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced {totals['synced']} accounts: {totals['new_plays']} new plays; "
                f"{totals['failed']} failed, {totals['skipped']} skipped."
            )
        )
        if options["user"] and totals["failed"]:
            raise CommandError("The sync failed.")
