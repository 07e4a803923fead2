from typing import Any

from django.db import models

from earworm.core import crypto


class EncryptedTextField(models.TextField):
    """A text column that holds only Fernet ciphertext; Python code sees the clear value.

    Empty strings are stored as empty strings so "no token" needs no encryption key.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
