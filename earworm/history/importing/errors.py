"""The one error the import parser raises: a file (or archive) Earworm will not import, with a message for the user."""

from earworm.core.exceptions import ApplicationError


class ExportFileError(ApplicationError):
    """A data-export file, or the archive holding it, was rejected; nothing from it is written.

    The message names the file and, where it applies, the index of the offending record (0-based).
    """

    def __init__(self, message: str, *, file: str = "", index: int | None = None) -> None:
        where = file
        if index is not None:
            where = f"{file}, record {index}" if file else f"record {index}"
        super().__init__(f"{where}: {message}" if where else message, extra={"file": file, "index": index})
        self.file = file
        self.index = index
