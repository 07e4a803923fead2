"""Django's SQLite backend, told the real bound-parameter limit of the SQLite library in use.

Django assumes SQLite's pre-3.32 limit of 999 parameters, which splits every bulk write of a dozen columns
into statements of about 80 rows. SQLite 3.32+ allows 32,766, and Python 3.11 can ask the library.
"""

import sqlite3

from django.db.backends.sqlite3 import base, features


def _variable_limit() -> int:
    connection = sqlite3.connect(":memory:")
    try:
        return connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        connection.close()


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = _variable_limit()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
