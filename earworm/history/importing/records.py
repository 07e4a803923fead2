"""Export records to typed rows: format detection by file name and keys, strict validation, skip reasons.

Formats (`spotify/FACTS.md` §5): the extended streaming history (`Streaming_History_Audio_*.json`,
`endsong_*.json`, `Streaming_History_Video_*.json`; one record per stream with `ts`, `ms_played` and the
track URI) and the basic account data (`StreamingHistory*.json`, `StreamingHistory_music_*.json`; no URI,
`endTime` to the minute). Basic podcast and audiobook files are recognised and counted, never stored.
Only the fields Earworm uses are kept; IP addresses, user agents and user names are dropped here (UP-4).

Extended files take the fast path of `jsonstream.iter_converted_records`: msgspec decodes each record
into `_ExtendedRecord` (only the fields `_extended` reads, typed as `_extended` demands them: `ts` a string,
`ms_played` an integer and not a bool, the rest strings or null), and `_extended_batch` applies the same
checks through the same helpers. Where a record would fail anything, the reference path (`_extended` on
the dict from `iter_json_records`) takes over and gives the exact rows or error.
"""

import enum
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NamedTuple

import msgspec

from earworm.history.importing.errors import ExportFileError
from earworm.history.importing.jsonstream import iter_converted_records, iter_json_records

EARLIEST = datetime(2006, 1, 1, tzinfo=UTC)  # Spotify was founded in 2006.
# A clock a little ahead of the server's is not an error; a play dated tomorrow is.
FUTURE_TOLERANCE = timedelta(days=1)
MAX_MS_PLAYED = 24 * 3600 * 1000
DEFAULT_MAX_RECORDS = 5_000_000


class FileKind(enum.StrEnum):
    EXTENDED = "extended"  # audio or video: same keys
    BASIC_MUSIC = "basic_music"
    BASIC_PODCAST = "basic_podcast"
    BASIC_AUDIOBOOK = "basic_audiobook"


class Skip(enum.StrEnum):
    """Why a record was counted but not stored (the keys of `ImportJob.skipped`)."""

    EPISODE = "episode"  # podcast or video-podcast episode
    AUDIOBOOK = "audiobook"
    NO_CONTENT = "no_content"  # every content field null, or Spotify's "Unknown Artist"/"Unknown Track" rows
    SHORT_PLAY = "short_play"  # under IMPORT_MIN_MS_PLAYED (Spotify counts a stream from 30 s)
    DUPLICATE = "duplicate"  # overlaps a stored play or another record of the same listen (DESIGN.md §5)


class ExportPlay(NamedTuple):
    """A music play from an export. `track_id` is the Spotify id, or "" when the record has none (basic
    format, local files): the track is then found by `artist_name` and `track_name`."""

    played_at: datetime
    ms_played: int
    track_id: str
    track_name: str
    artist_name: str
    album_name: str


_NAME_PATTERNS: list[tuple[re.Pattern[str], FileKind]] = [
    (re.compile(r"Streaming_History_(Audio|Video)_[^/\\]*\.json$"), FileKind.EXTENDED),
    (re.compile(r"endsong(_\d+)?\.json$"), FileKind.EXTENDED),
    (re.compile(r"StreamingHistory_podcast_\d+\.json$"), FileKind.BASIC_PODCAST),
    (re.compile(r"StreamingHistory_audiobook_\d+\.json$"), FileKind.BASIC_AUDIOBOOK),
    (re.compile(r"StreamingHistory(_music_)?\d*\.json$"), FileKind.BASIC_MUSIC),
]


def kind_from_name(name: str) -> FileKind | None:
    """The format a file name announces, or None (Userdata.json, Payments.json, ... are never imported)."""
    for pattern, kind in _NAME_PATTERNS:
        if pattern.search(name):
            return kind
    return None


def kind_from_keys(record: dict[str, Any]) -> FileKind | None:
    if "ts" in record and "ms_played" in record:
        return FileKind.EXTENDED
    if "endTime" in record and "msPlayed" in record:
        if "podcastName" in record or "episodeName" in record:
            return FileKind.BASIC_PODCAST
        if "audiobookName" in record or "chapterName" in record:
            return FileKind.BASIC_AUDIOBOOK
        if "trackName" in record and "artistName" in record:
            return FileKind.BASIC_MUSIC
    return None


_TRACK_ID = re.compile(r"[0-9A-Za-z]{1,64}")
_TRACK_ID_CACHE = 50_000
_BASIC_END_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?")


class _Validator:
    """Field checks that raise `ExportFileError` naming the file and record index."""

    def __init__(self, file: str, now: datetime, track_ids: dict[str, str] | None = None) -> None:
        self.file = file
        self.latest = now + FUTURE_TOLERANCE
        # Most plays are of tracks played before: their URIs need no second look. Shared by the files of an
        # import when the caller passes one (a track's first play in each file was half of the URI checks).
        self.track_ids: dict[str, str] = {} if track_ids is None else track_ids

    def fail(self, index: int, message: str) -> ExportFileError:
        return ExportFileError(message, file=self.file, index=index)

    def text(self, record: dict[str, Any], key: str, index: int) -> str:
        value = record.get(key)
        if value is None:
            return ""
        if type(value) is not str:
            raise self.fail(index, f"`{key}` must be a string or null, not {type(value).__name__}.")
        return value

    def ms_played(self, value: Any, key: str, index: int) -> int:
        if type(value) is not int:
            raise self.fail(index, f"`{key}` must be an integer, not {_type_name(value)}.")
        if value < 0:
            raise self.fail(index, f"`{key}` is negative ({value}).")
        if value > MAX_MS_PLAYED:
            raise self.fail(index, f"`{key}` is larger than a day ({value}).")
        return value

    def instant(self, value: datetime, key: str, raw: str, index: int) -> datetime:
        if value < EARLIEST:
            raise self.fail(index, f"`{key}` {raw!r} is before 2006.")
        if value > self.latest:
            raise self.fail(index, f"`{key}` {raw!r} is in the future.")
        return value

    def ts(self, raw: Any, index: int) -> datetime:
        if type(raw) is not str:
            raise self.fail(index, f"`ts` must be a string, not {_type_name(raw)}.")
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise self.fail(index, f"`ts` {raw[:40]!r} is not an ISO 8601 time.") from None
        if value.tzinfo is None:
            raise self.fail(index, f"`ts` {raw[:40]!r} has no time zone.")
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 pushed past datetime's range by its offset
            raise self.fail(index, f"`ts` {raw[:40]!r} is out of range.") from None
        if EARLIEST <= value <= self.latest:
            return value
        return self.instant(value, "ts", raw, index)

    def track_id(self, uri: str, index: int) -> str:
        """The Spotify id in a track URI; "" for no URI or a local file."""
        track_id = self.track_ids.get(uri)
        if track_id is not None:
            return track_id
        if uri.startswith("spotify:track:") and _TRACK_ID.fullmatch(uri, 14):
            track_id = uri[14:]
        elif uri and not uri.startswith("spotify:local:"):
            raise self.fail(index, f"`spotify_track_uri` {uri[:80]!r} is not a Spotify track URI.")
        else:
            track_id = ""
        if len(uri) <= 80 and len(self.track_ids) < _TRACK_ID_CACHE:  # bounded memory whatever the file
            self.track_ids[uri] = track_id
        return track_id

    def end_time(self, record: dict[str, Any], index: int) -> datetime:
        raw = record.get("endTime")
        if type(raw) is not str:
            raise self.fail(index, f"`endTime` must be a string, not {_type_name(raw)}.")
        if not _BASIC_END_TIME.fullmatch(raw):
            raise self.fail(index, f"`endTime` {raw[:40]!r} is not a 'YYYY-MM-DD HH:MM' time.")
        try:
            value = datetime.fromisoformat(raw).replace(tzinfo=UTC)  # UTC without a zone (FACTS.md §5.2)
        except ValueError:
            raise self.fail(index, f"`endTime` {raw!r} is not a valid time.") from None
        return self.instant(value, "endTime", raw, index)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def iter_export_rows(
    stream: IO[bytes],
    *,
    file: str,
    kind: FileKind | None,
    min_ms_played: int,
    now: datetime,
    max_records: int = DEFAULT_MAX_RECORDS,
    fast: bool = True,
    chunk_bytes: int | None = None,
    max_record_chars: int | None = None,
    track_ids: dict[str, str] | None = None,
) -> Iterator[ExportPlay | Skip]:
    """Yield an `ExportPlay` or a `Skip` reason for every record of one export file, in file order.

    `kind` None means the file name did not say; the first record's keys decide. Raises `ExportFileError`
    at the first bad record; callers write nothing from a file until it has been read to the end. `fast`
    False keeps an extended file off the fast path (same result, for tests); `chunk_bytes` and
    `max_record_chars` are the stream limits of `jsonstream`; `track_ids` caches checked track URIs across
    calls (it holds at most 50,000).
    """
    check = _Validator(file, now, track_ids)
    limits = {"chunk_bytes": chunk_bytes, "max_record_chars": max_record_chars}
    if kind is FileKind.EXTENDED and fast:
        yield from iter_converted_records(
            stream,
            file=file,
            max_records=max_records,
            decoder=_EXTENDED_DECODER,
            convert_batch=lambda records, first: _extended_batch(records, first, check, min_ms_played),
            convert_record=lambda record, index: _extended(record, index, check, min_ms_played),
            **limits,
        )
        return
    for index, record in enumerate(iter_json_records(stream, file=file, max_records=max_records, **limits)):
        if kind is None:
            kind = kind_from_keys(record)
            if kind is None:
                raise ExportFileError(
                    "is not a Spotify streaming-history file (unknown record keys).", file=file, index=index
                )
        if kind is FileKind.EXTENDED:
            yield _extended(record, index, check, min_ms_played)
        elif kind is FileKind.BASIC_MUSIC:
            yield _basic_music(record, index, check, min_ms_played)
        else:
            check.end_time(record, index)
            check.ms_played(record.get("msPlayed"), "msPlayed", index)
            yield Skip.EPISODE if kind is FileKind.BASIC_PODCAST else Skip.AUDIOBOOK


def _extended(record: dict[str, Any], index: int, check: _Validator, min_ms_played: int) -> ExportPlay | Skip:
    played_at = check.ts(record.get("ts"), index)
    ms_played = check.ms_played(record.get("ms_played"), "ms_played", index)
    text = check.text
    uri = text(record, "spotify_track_uri", index)
    track_name = text(record, "master_metadata_track_name", index)
    artist_name = text(record, "master_metadata_album_artist_name", index)
    album_name = text(record, "master_metadata_album_album_name", index)
    track_id = check.track_id(uri, index)
    if not track_id:
        # Every other kind: the content fields decide (and must have the right types).
        episode = text(record, "spotify_episode_uri", index) or text(record, "episode_name", index)
        episode = episode or text(record, "episode_show_name", index)
        audiobook = text(record, "audiobook_uri", index) or text(record, "audiobook_chapter_uri", index)
        audiobook = (
            audiobook or text(record, "audiobook_title", index) or text(record, "audiobook_chapter_title", index)
        )
        skip = _content_skip(episode, audiobook, track_name)
        if skip is not None:
            return skip
    if ms_played < min_ms_played:
        return Skip.SHORT_PLAY
    return ExportPlay(played_at, ms_played, track_id, track_name, artist_name, album_name)


def _content_skip(episode: str | None, audiobook: str | None, track_name: str) -> Skip | None:
    """Why a record without a Spotify track id is not a play, or None for a local file or a track found by
    its names like a basic-format record."""
    if episode:
        return Skip.EPISODE
    if audiobook:
        return Skip.AUDIOBOOK
    if not track_name:
        return Skip.NO_CONTENT
    return None


class _ExtendedRecord(msgspec.Struct, gc=False):
    """The fields `_extended` reads, with the types it accepts; msgspec skips the others."""

    ts: str
    ms_played: int
    spotify_track_uri: str | None = None
    master_metadata_track_name: str | None = None
    master_metadata_album_artist_name: str | None = None
    master_metadata_album_album_name: str | None = None
    spotify_episode_uri: str | None = None
    episode_name: str | None = None
    episode_show_name: str | None = None
    audiobook_uri: str | None = None
    audiobook_chapter_uri: str | None = None
    audiobook_title: str | None = None
    audiobook_chapter_title: str | None = None


_EXTENDED_DECODER = msgspec.json.Decoder(list[_ExtendedRecord])


def _extended_batch(
    records: list[_ExtendedRecord], first: int, check: _Validator, min_ms_played: int
) -> list[ExportPlay | Skip]:
    """`_extended` for decoded records (whose types msgspec has checked), raising where it would raise.

    The common case is checked inline (a Python call per field was most of the parser's time): a `ts` in UTC
    within range, an `ms_played` within range, a URI seen before; anything else goes through the validator's
    helpers, which convert it or raise as `_extended` does."""
    rows: list[ExportPlay | Skip] = []
    append = rows.append
    new_tuple = tuple.__new__
    fromisoformat = datetime.fromisoformat
    earliest, latest = EARLIEST, check.latest
    known_ids = check.track_ids
    for index, record in enumerate(records, first):
        raw = record.ts
        try:
            played_at = fromisoformat(raw)
        except ValueError:
            played_at = check.ts(raw, index)  # raises the reference's message
        if played_at.tzinfo is not UTC or not earliest <= played_at <= latest:
            played_at = check.ts(raw, index)  # another offset, converted; or out of range, raised
        ms_played = record.ms_played
        if not 0 <= ms_played <= MAX_MS_PLAYED:
            check.ms_played(ms_played, "ms_played", index)
        uri = record.spotify_track_uri or ""
        track_id = known_ids.get(uri)
        if track_id is None:
            track_id = check.track_id(uri, index)
        track_name = record.master_metadata_track_name or ""
        if not track_id:
            skip = _content_skip(
                record.spotify_episode_uri or record.episode_name or record.episode_show_name,
                record.audiobook_uri
                or record.audiobook_chapter_uri
                or record.audiobook_title
                or record.audiobook_chapter_title,
                track_name,
            )
            if skip is not None:
                append(skip)
                continue
        if ms_played < min_ms_played:
            append(Skip.SHORT_PLAY)
            continue
        artist_name = record.master_metadata_album_artist_name or ""
        album_name = record.master_metadata_album_album_name or ""
        # tuple.__new__ is what NamedTuple._make uses; the generated __new__ is a Python call per row.
        append(new_tuple(ExportPlay, (played_at, ms_played, track_id, track_name, artist_name, album_name)))
    return rows


UNKNOWN_ARTIST = "Unknown Artist"
UNKNOWN_TRACK = "Unknown Track"


def _basic_music(record: dict[str, Any], index: int, check: _Validator, min_ms_played: int) -> ExportPlay | Skip:
    played_at = check.end_time(record, index)
    ms_played = check.ms_played(record.get("msPlayed"), "msPlayed", index)
    artist_name = check.text(record, "artistName", index)
    track_name = check.text(record, "trackName", index)
    if not track_name or track_name == UNKNOWN_TRACK or artist_name == UNKNOWN_ARTIST:
        return Skip.NO_CONTENT
    if ms_played < min_ms_played:
        return Skip.SHORT_PLAY
    return ExportPlay(played_at, ms_played, "", track_name, artist_name, "")
