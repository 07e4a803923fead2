"""Pure parsing of Spotify data exports: archives, streaming JSON, records to typed rows. No database."""

from earworm.history.importing.archive import ArchiveLimits, ExportContents, ExportSource, open_export
from earworm.history.importing.errors import ExportFileError
from earworm.history.importing.records import ExportPlay, FileKind, Skip, iter_export_rows, kind_from_name

__all__ = [
    "ArchiveLimits",
    "ExportContents",
    "ExportFileError",
    "ExportPlay",
    "ExportSource",
    "FileKind",
    "Skip",
    "iter_export_rows",
    "kind_from_name",
    "open_export",
]
