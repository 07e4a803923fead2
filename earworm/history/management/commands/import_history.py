"""`manage.py import_history PATH... --user SPOTIFY_USER_ID`: import Spotify data-export files (DESIGN.md §4).

Takes the export zip or its JSON files; runs the same service, parser and limits as the `/import/` upload.
Re-running the same command resumes an interrupted import (once its claim has expired) and adds nothing twice.
"""

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from earworm.accounts.models import SpotifyAccount
from earworm.history.services.imports import (
    ImportBusy,
    ImportProgress,
    history_import,
    import_job_for_paths,
)

REASONS = {
    "duplicate": "already stored or repeated in the export",
    "short_play": "played under 30 s",
    "episode": "podcast episodes",
    "audiobook": "audiobook chapters",
    "no_content": "records without a track",
}


class Command(BaseCommand):
    # Django's system checks load the URL configuration and with it the whole API (0.17 s of the start-up of
    # every run, counted in bench/import.py's end-to-end time); `manage.py check` and the server run them.
    requires_system_checks: list[str] = []
    help = "Import Spotify data-export files (my_spotify_data.zip or its JSON files) into a user's history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="the export zip or JSON files")
        parser.add_argument("--user", required=True, metavar="SPOTIFY_USER_ID", help="whose history")

    def handle(self, *args: Any, **options: Any) -> None:
        account = SpotifyAccount.objects.filter(spotify_id=options["user"]).values("user_id").first()
        if account is None:
            raise CommandError(f"No Spotify account with user id {options['user']!r}.")
        paths = [str(Path(path).resolve()) for path in options["paths"]]
        for path in paths:
            if not Path(path).is_file():
                raise CommandError(f"{path}: no such file.")
        job = import_job_for_paths(user_id=account["user_id"], source_paths=paths)
        bar = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
        try:
            summary = history_import(job_id=job.pk, progress=bar)
        except ImportBusy as exc:
            raise CommandError(exc.message) from None
        finally:
            if bar:
                bar.close()
        if summary is None:
            raise CommandError(
                f"Import {job.pk} is held by another process (or by one that was killed: it can be resumed "
                "once its claim expires, see IMPORT_CLAIM_SECONDS)."
            )
        for name in summary.ignored:
            self.stdout.write(f"ignored: {name} (not streaming history)")
        for error in summary.errors:
            self.stderr.write(f"rejected: {error}")
        self.stdout.write(f"{summary.records_done:,} records read, {summary.plays_added:,} plays added.")
        for reason, count in sorted(summary.skipped.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  skipped {count:>9,}  {reason}: {REASONS.get(reason, reason)}")
        if summary.unresolved:
            self.stdout.write(
                f"  {summary.unresolved:,} plays matched no Spotify track by name; they are kept under the names "
                "in the export."
            )
        if summary.status != "done":
            raise CommandError("The import failed.")
        self.stdout.write(self.style.SUCCESS(f"Import {summary.job_id} done."))


class _ProgressBar:
    """A one-line progress bar on a terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def __call__(self, progress: ImportProgress) -> None:
        width = 30
        filled = int(width * (progress.file_number - 1) / max(progress.files_total, 1))
        rate = progress.records_done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] file {progress.file_number}/{progress.files_total} "
            f"{progress.file[:40]:<40} {progress.records_done:>10,} records {rate:>9,.0f}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
