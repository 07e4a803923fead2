"""Stream the records of a JSON array from a binary file with memory independent of the file's size.

Two readers give the same records and the same errors:

- `iter_json_records`, the reference (standard library only): the text is decoded incrementally and each
  element is decoded by the C scanner of `json.JSONDecoder.raw_decode`, so a 500 MB file is read in 1 MB
  chunks while keeping C speed per record. Defensive per SECURITY.md UP-3: `NaN`/`Infinity` are refused,
  integers over 4,300 digits and deep nesting are caught, `\\u0000` and lone surrogates are refused
  (PostgreSQL text cannot hold them), and a single record may not exceed a size cap.
- `iter_converted_records`, the fast path for UTF-8 files: msgspec decodes runs of records straight into
  typed structs, skipping the fields nobody reads. It reads the same 1 MB blocks and cuts the buffer
  after a `}` followed by `,`: JSON lexing is deterministic from the start of the text, so `[` + segment
  + `]` decodes only when the cut is a true record boundary (a cut inside a string or a nested object
  fails). A segment is never longer than the record size cap, so no record the reference would find too
  long gets through. Whatever msgspec accepts and the reference might refuse is looked for before a
  segment is accepted: `\\u0000`/surrogate escapes, long digit runs (the integer limit), more `[`/`{`
  than records (nesting), too many records, bytes that are not UTF-8 (msgspec checks only the strings it
  decodes; `_is_utf8` covers the rest). Rows are given out only once their block is known to be UTF-8 to
  its end, as the reference decodes a whole block before yielding from it. On any doubt (a decode or type
  error, one of those marks, a record the caller's converter rejects, odd bytes around the array) the rest
  of the file goes to the reference parser, resumed after the last record given out with the same block
  boundaries and record index, so it yields what the reference would have yielded from there, or raises
  its exact error. Memory stays about a block plus a segment.
"""

import bisect
import codecs
import collections
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, Generic, Literal, NamedTuple, TypeVar

import msgspec

from earworm.history.importing.errors import ExportFileError

CHUNK_BYTES = 1 << 20
# A real record is under 1 KB; this bounds the buffer (and any re-decoding) whatever the input.
MAX_RECORD_CHARS = 256 * 1024

_WS = re.compile(r"[ \t\n\r]*")
# Escapes that may decode to NUL or a surrogate; a record containing one gets a closer look.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")

_State = Literal["start", "open", "after"]  # before the '[', just after it, just after a record


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


def _read_blocks(stream: IO[bytes], chunk_bytes: int) -> Iterator[bytes]:
    while block := stream.read(chunk_bytes):
        yield block


def _text_chunks(blocks: Iterator[bytes], *, file: str, offset: int = 0, encoding: str | None = None) -> Iterator[str]:
    """Decode `blocks` (the first one starting at byte `offset`), one text chunk per block."""
    if encoding is None:
        head = next(blocks, b"")
        if not head:
            return
        # json.detect_encoding: UTF-8 (with or without BOM), UTF-16 and UTF-32 by BOM or by NUL-byte pattern.
        encoding = json.detect_encoding(head[:4])
        blocks = itertools.chain([head], blocks)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    for chunk in itertools.chain(blocks, [b""]):
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise ExportFileError(
                f"is not valid {encoding.upper()} text near byte {offset + exc.start}.", file=file
            ) from None
        if text:
            yield text
        offset += len(chunk)


def iter_json_records(
    stream: IO[bytes],
    *,
    file: str,
    max_records: int,
    chunk_bytes: int | None = None,
    max_record_chars: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each element of the top-level JSON array in `stream`, which must be an object.

    Raises `ExportFileError` naming `file` (and the record index) when the text is not JSON, not an array
    of objects, or breaks one of the limits above. `chunk_bytes` and `max_record_chars` default to the
    module's constants (tests make them small).
    """
    blocks = _read_blocks(stream, chunk_bytes or CHUNK_BYTES)
    chunks = _text_chunks(blocks, file=file)
    return _parse(chunks, file=file, max_records=max_records, max_record_chars=max_record_chars or MAX_RECORD_CHARS)


def _parse(
    chunks: Iterator[str],
    *,
    file: str,
    max_records: int,
    max_record_chars: int,
    index: int = 0,
    state: _State = "start",
) -> Iterator[dict[str, Any]]:
    """The reference parser over decoded `chunks`, which begin in `state` with `index` records already read."""
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

    if state == "start":
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
    after_record = state == "after"
    if not after_record and skip_ws() == "]":
        pos += 1
    else:
        while True:
            if not after_record:
                char = skip_ws()
                if char != "{":
                    if char == "":
                        raise ExportFileError(
                            "ends before the array is closed (truncated file?).", file=file, index=index
                        )
                    raise ExportFileError("is not a JSON object.", file=file, index=index)
                if index >= max_records:
                    raise ExportFileError(f"has more than {max_records:,} records.", file=file)
                while True:
                    try:
                        record, end = _DECODER.raw_decode(buf, pos)
                        break
                    except json.JSONDecodeError as exc:
                        # The record may be cut by the end of the buffer: read on, up to the size cap.
                        if len(buf) - pos < max_record_chars and more():
                            continue
                        if len(buf) - pos >= max_record_chars:
                            message = f"is not valid JSON or is over {max_record_chars // 1024} KB ({exc.msg})."
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
            after_record = False
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


T = TypeVar("T")
R = TypeVar("R")

_OPENING = re.compile(rb"[ \t\n\r]*\[")
# After a record's '}': a ',' (more records follow) or the closing ']' with only whitespace after it.
_AFTER_RECORD = re.compile(rb"[ \t\n\r]*(?:(,)|\][ \t\n\r]*)")
_SUSPECT_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
# More '[' and '{' in a segment than it has records means brackets in strings or nested values. Nesting this
# shallow is far within the reference parser's recursion limit; above it, the reference parser decides.
_MAX_EXTRA_BRACKETS = 64
_ASCII = bytes(range(128))
_NOT_MARKS = bytes(byte for byte in range(128) if byte not in b"{[\\")
_ENCODER = msgspec.json.Encoder()


def _has_long_digit_run(segment: bytes, limit: int) -> bool:
    """True when `segment` may hold a run of more than `limit` digits (an integer the reference refuses).

    Such a run covers two consecutive multiples of `step` with only digits between them, so only those
    pairs of sampled bytes need a look.
    """
    step = limit // 2
    samples = segment[::step].translate(_DIGITS_TO_ZERO)
    at = samples.find(b"00")
    while at >= 0:
        if segment[at * step : (at + 1) * step + 1].isdigit():
            return True
        at = samples.find(b"00", at + 1)
    return False


def _raise_later(exc: BaseException) -> Iterator[bytes]:
    raise exc
    yield b""  # pragma: no cover (makes this a generator, so the error comes when the block is asked for)


def iter_converted_records(
    stream: IO[bytes],
    *,
    file: str,
    max_records: int,
    decoder: msgspec.json.Decoder[Any],
    convert_batch: Callable[[Any, int], Sequence[R]],
    convert_record: Callable[[dict[str, Any], int], R],
    chunk_bytes: int | None = None,
    max_record_chars: int | None = None,
) -> Iterator[R]:
    """Yield what `iter_json_records` and `convert_record(record, index)` would, faster (see the module doc).

    `decoder` decodes a JSON array of records (`msgspec.json.Decoder(list[SomeStruct])`) and
    `convert_batch(records, first_index)` turns them into the same values `convert_record` gives for the
    equivalent dicts, raising (anything) where in doubt. Raises what the reference path raises.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    window = max_record_chars or MAX_RECORD_CHARS
    digit_limit = sys.get_int_max_str_digits()
    blocks: Iterator[bytes] = _read_blocks(stream, chunk_bytes)
    head = next(blocks, b"")
    opening = _OPENING.match(head)
    if opening is None or json.detect_encoding(head[:4]) != "utf-8":
        chunks = _text_chunks(itertools.chain([head], blocks), file=file)
        records = _parse(chunks, file=file, max_records=max_records, max_record_chars=window)
        yield from map(convert_record, records, itertools.count())
        return

    buf = head
    base = 0  # the file offset of buf[0]
    ends = [len(head)]  # file offsets where the blocks in buf end
    resume = opening.end()  # file offset where the reference parser would take over (after '[' or a '}')
    start = resume  # file offset where the next segment begins (after '[' or a ',')
    state: _State = "open"
    index = 0
    eof = False
    deferred: list[Iterator[bytes]] = []  # a read error, raised again when the reference parser reads on
    # Rows are given out once the block holding their last record is known to be UTF-8 to its end: the
    # reference parser decodes a whole block before yielding any record that ends in it.
    held: collections.deque[_Held[R]] = collections.deque()

    def hand_over() -> Iterator[R]:
        """The reference parser from the first value not given out, fed the same block boundaries as when it
        reads the file."""
        at, at_state, first = (held[0].resume, held[0].state, held[0].first) if held else (resume, state, index)
        pieces = []
        end_of_pieces = at
        for end in ends:
            if end > end_of_pieces:
                pieces.append(buf[end_of_pieces - base : end - base])
                end_of_pieces = end
        chunks = _text_chunks(itertools.chain(pieces, *deferred, blocks), file=file, offset=at, encoding="utf-8")
        records = _parse(
            chunks, file=file, max_records=max_records, max_record_chars=window, index=first, state=at_state
        )
        return map(convert_record, records, itertools.count(first))

    def convert(segment: bytes) -> Sequence[R] | None:
        """The segment's values, or None when in doubt."""
        try:
            records = decoder.decode(b"[" + segment + b"]")
        except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: bad UTF-8 in a decoded string
            return None
        marks = segment.translate(None, _NOT_MARKS)  # '{', '[', '\\' and the bytes of non-ASCII characters
        brackets = marks.count(b"{") + marks.count(b"[")
        escapes = marks.count(b"\\")
        if (
            index + len(records) > max_records
            or (escapes and _SUSPECT_ESCAPE_BYTES.search(segment))
            or brackets - len(records) >= _MAX_EXTRA_BRACKETS
            or (digit_limit and _has_long_digit_run(segment, digit_limit))
            or not _is_utf8(segment, records, len(marks) - brackets - escapes, escapes)
        ):
            return None
        try:
            return convert_batch(records, index)
        except Exception:  # the reference path raises it again, at the record where it belongs
            return None

    while True:
        # Keep more than a window of bytes after `start`: a boundary can then be found in it, or the reference
        # parser has to decide (one record longer than the size cap).
        while not eof and base + len(buf) - start <= window:
            try:
                block = next(blocks, b"")
            except (ExportFileError, OSError) as exc:  # the reference parser meets it when it reads on
                deferred.append(_raise_later(exc))
                yield from hand_over()
                return
            if not block:
                eof = True
                break
            keep = held[0].resume if held else resume
            buf = buf[keep - base :] + block
            base = keep
            ends = [end for end in ends if end > base]
            ends.append(base + len(buf))

        limit = start + window  # a segment [start, cut] is at most a window long
        while True:
            cut = buf.rfind(b"}", start - base, limit - base)
            if cut < 0:
                yield from hand_over()
                return
            after = _AFTER_RECORD.match(buf, cut + 1)
            final = after is not None and after[1] is None
            if after is None or (final and not (eof and after.end() == len(buf))):
                limit = base + cut
                continue
            values = convert(buf[start - base : cut + 1])
            if values is not None:
                break
            # A cut inside a string, or a record in doubt: try a shorter segment before handing over.
            limit = start + (base + cut + 1 - start) // 2
        held.append(_Held(values, base + cut, resume, state, index))
        index += len(values)
        resume = base + cut + 1
        state = "after"
        # Everything before `start` is now known to be UTF-8 (the bytes between segments are ASCII).
        start = base + after.end()
        while held and (final or _block_end(ends, held[0].cut) <= start):
            yield from held.popleft().values
        if final:
            return


class _Held(NamedTuple, Generic[R]):
    values: Sequence[R]
    cut: int  # file offset of the last record's '}'
    resume: int  # where the reference parser would take over to yield these values again
    state: _State
    first: int  # the index of the first value


def _block_end(ends: list[int], offset: int) -> int:
    return ends[bisect.bisect_right(ends, offset)]


def _is_utf8(segment: bytes, records: Any, non_ascii: int, escapes: int) -> bool:
    """Whether `segment` is valid UTF-8, cheaply when it can be told from what msgspec decoded.

    msgspec checks the UTF-8 of the strings it decodes, not of those it skips. Without escapes each decoded
    string is its bytes in the segment, so when the decoded strings hold every non-ASCII byte of the
    segment, nothing unchecked is left (encoding them again gives those bytes). Otherwise decode it all.
    """
    if not non_ascii:
        return True
    if not escapes and len(_ENCODER.encode(records).translate(None, _ASCII)) == non_ascii:
        return True
    try:
        segment.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
