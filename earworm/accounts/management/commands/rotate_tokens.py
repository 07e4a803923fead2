"""`manage.py rotate_tokens`: re-encrypt every stored token under the newest TOKEN_ENCRYPTION_KEYS key.

Key rotation without downtime (SECURITY.md OA-14, docs/operations.md):
1. put a new key first in TOKEN_ENCRYPTION_KEYS, keep the old ones after it, restart every process;
2. run this command (batched, safe to run again, safe while the app runs);
3. remove the old key and restart again.
"""

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Model

from earworm.core import crypto
from earworm.core.fields import EncryptedTextField


@dataclass
class RotationSummary:
    rows: int = 0
    rotated: int = 0
    current: int = 0
    unreadable: int = 0
    raced: int = 0


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column (Spotify access and refresh tokens) under the newest key."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        crypto.token_fernet()  # fail early, with the usual message, when no key is configured
        summary = RotationSummary()
        for model in apps.get_models():
            fields = [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField) and f.column]
            if fields:
                _rotate_model(model, fields, batch_size=batch_size, summary=summary)
        self.stdout.write(
            f"Checked {summary.rows} rows: {summary.rotated} values re-encrypted under the newest key, "
            f"{summary.current} already under it, {summary.unreadable} unreadable, "
            f"{summary.raced} changed by the app meanwhile (run again to check them)."
        )
        if summary.unreadable:
            raise CommandError(
                f"{summary.unreadable} values cannot be decrypted with any key in TOKEN_ENCRYPTION_KEYS. "
                "Put back the key they were written with, then run rotate_tokens again; do not remove keys yet."
            )


def _newest_key() -> Fernet | MultiFernet:
    keys = settings.TOKEN_ENCRYPTION_KEYS
    # Without configured keys (DEBUG) there is one generated key, so the MultiFernet is the newest key.
    return Fernet(keys[0].encode()) if keys else crypto.token_fernet()


def _reads(fernet: Fernet | MultiFernet, value: str) -> bool:
    try:
        fernet.decrypt(value.encode())
    except InvalidToken:
        return False
    return True


def _rotate_model(model: type[Model], columns: list[str], *, batch_size: int, summary: RotationSummary) -> None:
    """Walk the table by primary key in batches, reading and writing the raw ciphertext.

    The ORM field would decrypt on read and encrypt on write, so this uses SQL on the columns themselves.
    Each row is written with a compare-and-swap on its old ciphertext: a token the app refreshed meanwhile
    was already written under the newest key and is left alone.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    assert model._meta.pk is not None and model._meta.pk.column is not None
    pk = quote(model._meta.pk.column)
    cols = ", ".join(quote(c) for c in columns)
    select = f"SELECT {pk}, {cols} FROM {table} WHERE {pk} > %s ORDER BY {pk} LIMIT %s"  # noqa: S608
    assignments = ", ".join(f"{quote(c)} = %s" for c in columns)
    guards = " AND ".join(f"{quote(c)} = %s" for c in columns)
    update = f"UPDATE {table} SET {assignments} WHERE {pk} = %s AND {guards}"  # noqa: S608
    newest, every_key = _newest_key(), crypto.token_fernet()
    last_pk: Any = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(select, [last_pk, batch_size])
                rows = cursor.fetchall()
            for row_pk, *values in rows:
                summary.rows += 1
                new_values = []
                for value in values:
                    if not value:
                        new_values.append(value)
                    elif _reads(newest, value):
                        summary.current += 1
                        new_values.append(value)
                    else:
                        try:
                            new_values.append(every_key.rotate(value.encode()).decode())
                            summary.rotated += 1
                        except InvalidToken:
                            summary.unreadable += 1
                            new_values.append(value)
                if new_values != list(values):
                    with connection.cursor() as cursor:
                        cursor.execute(update, [*new_values, row_pk, *values])
                        if cursor.rowcount != 1:
                            summary.raced += 1
        if len(rows) < batch_size:
            return
        last_pk = rows[-1][0]
