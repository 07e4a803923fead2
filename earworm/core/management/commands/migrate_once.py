"""`manage.py migrate_once`: `migrate`, with at most one runner at a time across every machine.

Compose runs it once, from the one-shot `migrate` service, before web and workers start. On PostgreSQL it
holds an advisory lock while it migrates, so a second machine started at the same moment waits for the
first and then finds nothing left to do, instead of applying the same migration twice. SQLite serves a
single machine, where compose alone keeps it to one runner.
"""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

# pg_advisory_lock takes any bigint; this one is "earworm migrations".
MIGRATION_LOCK_KEY = 0x6561_726D_6967


class Command(BaseCommand):
    help = "Apply migrations; on PostgreSQL one runner at a time (an advisory lock)."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options.get("verbosity", 1)
        if connection.vendor != "postgresql":
            call_command("migrate", interactive=False, verbosity=verbosity)
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        try:
            call_command("migrate", interactive=False, verbosity=verbosity)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
