"""`manage.py enrich_catalog [--max-requests N]`: fetch missing metadata now, inline (DESIGN.md §4)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from earworm.catalog.services import catalog_enrich


class Command(BaseCommand):
    help = "Fetch genres and images of new artists, and full metadata of imported tracks, from Spotify."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-requests", type=int, default=500, help="at most this many Spotify calls")

    def handle(self, *args: Any, max_requests: int, **options: Any) -> None:
        result = catalog_enrich(max_requests=max_requests)
        self.stdout.write(
            f"{result.requests} Spotify calls: {result.artists_enriched} artists enriched "
            f"({result.genres_linked} genre links), {result.tracks_enriched} tracks enriched, "
            f"{result.not_found} not found, {result.provisional_removed} provisional rows merged away."
        )
        if result.stopped_reason:
            self.stdout.write(f"Stopped early: {result.stopped_reason}")
        self.stdout.write(
            self.style.SUCCESS(f"{result.artists_left} artists and {result.tracks_left} tracks still to enrich.")
        )
