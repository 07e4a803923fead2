"""ZIP safety (SECURITY.md UP-1, FZ-6): limits before reading, a byte budget while reading, no paths used."""

import json
import stat
import zipfile
from pathlib import Path

import pytest

from earworm.history.importing import ArchiveLimits, ExportFileError, iter_export_rows, open_export

RECORD = {"ts": "2024-01-05T14:23:00Z", "ms_played": 40_000, "spotify_track_uri": "spotify:track:abc"}


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _names(path: Path, limits: ArchiveLimits | None = None) -> tuple[list[str], list[str]]:
    with open_export(path, display_name=path.name, limits=limits or ArchiveLimits()) as contents:
        return [source.name for source in contents.sources], contents.ignored


def _read_all(path: Path, limits: ArchiveLimits | None = None) -> int:
    from datetime import UTC, datetime

    count = 0
    with open_export(path, display_name=path.name, limits=limits or ArchiveLimits()) as contents:
        for source in contents.sources:
            with source.open() as stream:
                now = datetime(2026, 6, 1, tzinfo=UTC)
                count += len(
                    list(iter_export_rows(stream, file=source.name, kind=source.kind, min_ms_played=0, now=now))
                )
    return count


def test_member_paths_are_reduced_to_file_names_and_never_used(tmp_path):
    data = json.dumps([RECORD]).encode()
    archive = _zip(
        tmp_path / "x.zip",
        {"../../evil/endsong_0.json": data, "/abs/endsong_1.json": data, "C:\\win\\endsong_2.json": data},
    )

    names, _ = _names(archive)

    assert names == ["endsong_0.json", "endsong_1.json", "endsong_2.json"]
    assert _read_all(archive) == 3
    assert not (tmp_path.parent / "evil").exists()


def test_symlinks_nested_archives_and_other_files_are_ignored(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("endsong_9.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("inner.zip", _zip(tmp_path / "inner.zip", {"endsong_0.json": b"[]"}).read_bytes())
        zf.writestr("Userdata.json", b'{"email": "x"}')
        zf.writestr("folder/", b"")
        zf.writestr("endsong_1.json", json.dumps([RECORD]))

    names, ignored = _names(archive)

    assert names == ["endsong_1.json"]
    assert ignored == ["endsong_9.json (symbolic link)", "inner.zip", "Userdata.json"]


def test_too_many_members_is_refused_before_reading(tmp_path):
    archive = _zip(tmp_path / "x.zip", {f"endsong_{n}.json": b"[]" for n in range(5)})

    with pytest.raises(ExportFileError, match=r"x.zip: holds 5 files; the limit is 3"):
        _names(archive, ArchiveLimits(max_members=3))


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"endsong_0.json": b"[" + b" " * 20_000_000 + b"]"})

    with pytest.raises(ExportFileError, match=r"bomb.zip: endsong_0.json expands [0-9,]+ times"):
        _names(archive)


def test_declared_sizes_over_the_budget_are_refused_before_reading(tmp_path):
    archive = _zip(tmp_path / "x.zip", {"endsong_0.json": json.dumps([RECORD] * 100).encode()})

    with pytest.raises(ExportFileError, match=r"x.zip: expands to 0 MB; the limit is 0 MB"):
        _names(archive, ArchiveLimits(max_total_bytes=1000))


def test_a_member_larger_than_it_declares_is_stopped(tmp_path):
    archive = _zip(tmp_path / "x.zip", {"endsong_0.json": json.dumps([RECORD] * 100).encode()}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    # Make the central directory claim a smaller uncompressed size than the member has.
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))

    with pytest.raises(ExportFileError, match=r"endsong_0.json: (is larger than the archive declares|cannot be read)"):
        _read_all(archive)


def test_a_crc_error_is_a_clean_error(tmp_path):
    archive = _zip(tmp_path / "x.zip", {"endsong_0.json": json.dumps([RECORD] * 10).encode()}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    at = data.index(b"2024-01-05")
    data[at : at + 4] = b"2023"
    archive.write_bytes(bytes(data))

    with pytest.raises(ExportFileError, match=r"endsong_0.json: cannot be read from the archive.*CRC"):
        _read_all(archive)


def test_an_encrypted_member_is_a_clean_error(tmp_path):
    archive = _zip(tmp_path / "x.zip", {"endsong_0.json": b"[]"}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(magic) + offset
        data[at] |= 0x1
    archive.write_bytes(bytes(data))

    with pytest.raises(ExportFileError, match=r"endsong_0.json: is encrypted"):
        _read_all(archive)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("history.zip", b"[]", "history.zip: is not a ZIP archive"),
        ("history.txt", b"[]", "history.txt: is neither a .zip nor a .json file"),
        ("history.json", b"PK\x05\x06" + b"\0" * 18, "history.json: is an empty ZIP archive"),
        ("broken.zip", b"PK\x03\x04garbage", "broken.zip: is not a readable ZIP archive"),
    ],
)
def test_content_decides_not_the_extension(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(ExportFileError, match=message):
        _names(path)


def test_duplicate_member_names_are_both_read(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match=r"Duplicate name"):
        zf.writestr("endsong_0.json", json.dumps([RECORD]))
        zf.writestr("endsong_0.json", json.dumps([RECORD]))

    assert _read_all(archive) == 2
