"""Open what a user hands in — the export ZIP or the JSON files themselves — as a list of export files.

ZIP safety (SECURITY.md UP-1, UP-2, FZ-6): the member count and the sum of declared sizes are checked
before anything is read, and so is each member's compression ratio; each member is read through a byte
budget, because a declared size can lie. Member paths are never used for anything but recognising the file
name (nothing is extracted). Directories, symlinks, nested archives and files that are not streaming
history (Userdata.json, Payments.json, ...) are listed as ignored and never opened.
"""

import contextlib
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from earworm.history.importing.errors import ExportFileError
from earworm.history.importing.records import FileKind, kind_from_name

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 1000
    max_total_bytes: int = 4 * 1024**3
    max_ratio: int = 200


@dataclass(frozen=True)
class ExportSource:
    """One export file to import. `key` identifies it within the job for resuming (stable across runs)."""

    key: str
    name: str
    kind: FileKind | None
    size: int
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


@dataclass
class ExportContents:
    sources: list[ExportSource] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class _BudgetReader:
    """A read-only stream over a ZIP member that stops at its declared size and at the archive's budget."""

    def __init__(self, raw: IO[bytes], *, file: str, declared: int, budget: list[int]) -> None:
        self.raw = raw
        self.file = file
        self.left = declared
        self.budget = budget

    def read(self, size: int = -1) -> bytes:
        want = 1 << 20 if size < 0 else size
        try:
            data = self.raw.read(min(want, self.left + 1))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ExportFileError(f"cannot be read from the archive ({exc}).", file=self.file) from None
        self.left -= len(data)
        self.budget[0] -= len(data)
        if self.left < 0:
            raise ExportFileError("is larger than the archive declares (a ZIP bomb?).", file=self.file)
        if self.budget[0] < 0:
            raise ExportFileError("takes the archive over its size limit.", file=self.file)
        return data


def _safe_name(name: str) -> str:
    """The member's file name only: no directories, no drive letters (the name is never used as a path)."""
    return PurePosixPath(name.replace("\\", "/")).name.split(":")[-1]


@contextlib.contextmanager
def open_export(path: Path, *, display_name: str, limits: ArchiveLimits) -> Iterator[ExportContents]:
    """Open `path` (a ZIP or a JSON file) and list the export files in it.

    Raises `ExportFileError` for an archive that is not a ZIP, is empty or breaks a limit; a member that is
    encrypted or corrupt raises it when read.
    """
    with open(path, "rb") as handle:
        magic = handle.read(4)
    lower = display_name.lower()
    if magic == ZIP_MAGIC:
        with _open_zip(path, display_name=display_name, limits=limits) as contents:
            yield contents
        return
    if magic == EMPTY_ZIP_MAGIC:
        raise ExportFileError("is an empty ZIP archive.", file=display_name)
    if lower.endswith(".zip"):
        raise ExportFileError("is not a ZIP archive (its content does not start like one).", file=display_name)
    if not lower.endswith(".json"):
        raise ExportFileError("is neither a .zip nor a .json file.", file=display_name)

    @contextlib.contextmanager
    def open_file() -> Iterator[IO[bytes]]:
        with open(path, "rb") as stream:
            yield stream

    name = _safe_name(display_name)
    yield ExportContents(
        sources=[ExportSource(key=name, name=name, kind=kind_from_name(name), size=path.stat().st_size, open=open_file)]
    )


@contextlib.contextmanager
def _open_zip(path: Path, *, display_name: str, limits: ArchiveLimits) -> Iterator[ExportContents]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExportFileError(f"is not a readable ZIP archive ({exc}).", file=display_name) from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise ExportFileError(
                f"holds {len(members):,} files; the limit is {limits.max_members:,}.", file=display_name
            )
        contents = ExportContents()
        declared_total = 0
        budget = [limits.max_total_bytes]  # bytes still allowed out of the whole archive, shared by members
        for index, info in enumerate(members):
            name = _safe_name(info.filename)
            mode = info.external_attr >> 16
            if info.is_dir() or not name:
                continue
            if stat.S_ISLNK(mode):
                contents.ignored.append(f"{name} (symbolic link)")
                continue
            kind = kind_from_name(name)
            if kind is None:
                contents.ignored.append(name)
                continue
            declared_total += info.file_size
            if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > 1 << 20:
                raise ExportFileError(
                    f"{name} expands {info.file_size // max(info.compress_size, 1):,} times (a ZIP bomb?).",
                    file=display_name,
                )
            contents.sources.append(
                ExportSource(
                    key=f"{index}:{name}",
                    name=name,
                    kind=kind,
                    size=info.file_size,
                    open=_member_opener(archive, info, name, budget),
                )
            )
        if declared_total > limits.max_total_bytes:
            raise ExportFileError(
                f"expands to {declared_total / 1024**2:,.0f} MB; "
                f"the limit is {limits.max_total_bytes / 1024**2:,.0f} MB.",
                file=display_name,
            )
        yield contents


def _member_opener(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: list[int]
) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    @contextlib.contextmanager
    def open_member() -> Iterator[IO[bytes]]:
        if info.flag_bits & 0x1:
            raise ExportFileError("is encrypted; export the archive again without a password.", file=name)
        try:
            raw = archive.open(info)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, zlib.error) as exc:
            raise ExportFileError(f"cannot be read from the archive ({exc}).", file=name) from None
        with raw:
            yield _BudgetReader(raw, file=name, declared=info.file_size, budget=budget)  # type: ignore[misc]

    return open_member
