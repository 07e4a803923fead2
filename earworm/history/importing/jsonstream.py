"""Stream the records of a JSON array from a binary file with memory independent of the file's size.

Standard library only: the text is decoded incrementally and each element is decoded by the C scanner of
`json.JSONDecoder.raw_decode`, so a 500 MB file is read in 1 MB chunks while keeping C speed per record.
Defensive per SECURITY.md UP-3: `NaN`/`Infinity` are refused, integers over 4,300 digits and deep nesting
are caught, `\\u0000` and lone surrogates are refused (PostgreSQL text cannot hold them), and a single
record may not exceed a size cap.
"""

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from earworm.history.importing.errors import ExportFileError

CHUNK_BYTES = 1 << 20
# A real record is under 1 KB; this bounds the buffer (and any re-decoding) whatever the input.
MAX_RECORD_CHARS = 256 * 1024

_WS = re.compile(r"[ \t\n\r]*")
# Escapes that may decode to NUL or a surrogate; a record containing one gets a closer look.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _check_strings(value: Any, *, file: str, index: int) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ExportFileError("contains a NUL character (\\u0000).", file=file, index=index)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ExportFileError(
                "contains a lone surrogate (an invalid \\uD800-\\uDFFF escape).", file=file, index=index
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, file=file, index=index)
            _check_strings(item, file=file, index=index)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, file=file, index=index)


def _text_chunks(stream: IO[bytes], *, file: str) -> Iterator[str]:
    head = stream.read(CHUNK_BYTES)
    if not head:
        return
    # json.detect_encoding: UTF-8 (with or without BOM), UTF-16 and UTF-32 by BOM or by NUL-byte pattern.
    encoding = json.detect_encoding(head[:4])
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    chunk = head
    while True:
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise ExportFileError(
                f"is not valid {encoding.upper()} text near byte {offset + exc.start}.", file=file
            ) from None
        if text:
            yield text
        if not chunk:
            return
        offset += len(chunk)
        chunk = stream.read(CHUNK_BYTES)


def iter_json_records(stream: IO[bytes], *, file: str, max_records: int) -> Iterator[dict[str, Any]]:
    """Yield each element of the top-level JSON array in `stream`, which must be an object.

    Raises `ExportFileError` naming `file` (and the record index) when the text is not JSON, not an array
    of objects, or breaks one of the limits above.
    """
    chunks = _text_chunks(stream, file=file)
    buf = ""
    pos = 0
    eof = False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        try:
            text = next(chunks)
        except StopIteration:
            eof = True
            return False
        buf = buf[pos:] + text
        pos = 0
        return True

    def skip_ws() -> str:
        """The next non-whitespace character ('' at the end of the input), without consuming it."""
        nonlocal pos
        while True:
            pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    first = skip_ws()
    if first == "\ufeff":  # a BOM decoded by an encoding that keeps it
        pos += 1
        first = skip_ws()
    if first == "":
        raise ExportFileError("is empty; expected a JSON array of records.", file=file)
    if first == "{":
        raise ExportFileError("is a JSON object; expected a JSON array of records.", file=file)
    if first != "[":
        raise ExportFileError("is not JSON (it should start with '[').", file=file)
    pos += 1
    index = 0
    if skip_ws() == "]":
        pos += 1
    else:
        while True:
            char = skip_ws()
            if char != "{":
                if char == "":
                    raise ExportFileError("ends before the array is closed (truncated file?).", file=file, index=index)
                raise ExportFileError("is not a JSON object.", file=file, index=index)
            if index >= max_records:
                raise ExportFileError(f"has more than {max_records:,} records.", file=file)
            while True:
                try:
                    record, end = _DECODER.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    # The record may be cut by the end of the buffer: read on, up to the size cap.
                    if len(buf) - pos < MAX_RECORD_CHARS and more():
                        continue
                    if len(buf) - pos >= MAX_RECORD_CHARS:
                        message = f"is not valid JSON or is over {MAX_RECORD_CHARS // 1024} KB ({exc.msg})."
                        raise ExportFileError(message, file=file, index=index) from None
                    raise ExportFileError(f"is not valid JSON ({exc.msg}).", file=file, index=index) from None
                except RecursionError:
                    raise ExportFileError("is nested too deeply.", file=file, index=index) from None
                except ValueError as exc:  # NaN/Infinity (parse_constant), integers over 4,300 digits
                    message = f"holds a value Earworm refuses: {exc}."
                    raise ExportFileError(message, file=file, index=index) from None
            if _SUSPECT_ESCAPE.search(buf, pos, end):
                _check_strings(record, file=file, index=index)
            pos = end
            yield record
            index += 1
            char = skip_ws()
            if char == ",":
                pos += 1
                continue
            if char == "]":
                pos += 1
                break
            if char == "":
                raise ExportFileError("ends before the array is closed (truncated file?).", file=file, index=index)
            raise ExportFileError(f"expected ',' or ']' after record {index - 1}.", file=file)
    if skip_ws() != "":
        raise ExportFileError("has extra data after the JSON array.", file=file)
