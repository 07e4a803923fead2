"""The parser on bad input: a clear message naming the file and record, or rows; never another exception."""

import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earworm.history.importing import ExportFileError, ExportPlay, FileKind, Skip, iter_export_rows, kind_from_name
from earworm.history.importing.jsonstream import iter_json_records

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rows(data: bytes, name: str = "endsong_0.json", kind: FileKind | None = FileKind.EXTENDED):
    return list(iter_export_rows(io.BytesIO(data), file=name, kind=kind, min_ms_played=30_000, now=NOW))


def test_file_names_say_the_format_and_personal_files_are_never_history():
    assert kind_from_name("Streaming_History_Audio_2019-2021_3.json") is FileKind.EXTENDED
    assert kind_from_name("Streaming_History_Video_2024.json") is FileKind.EXTENDED
    assert kind_from_name("endsong_12.json") is FileKind.EXTENDED
    assert kind_from_name("StreamingHistory3.json") is FileKind.BASIC_MUSIC
    assert kind_from_name("StreamingHistory_music_0.json") is FileKind.BASIC_MUSIC
    assert kind_from_name("StreamingHistory_podcast_0.json") is FileKind.BASIC_PODCAST
    assert kind_from_name("StreamingHistory_audiobook_0.json") is FileKind.BASIC_AUDIOBOOK
    for name in ("Userdata.json", "Payments.json", "YourLibrary.json", "SearchQueries.json", "Playlist1.json"):
        assert kind_from_name(name) is None


def test_unknown_file_names_are_recognised_by_their_keys():
    basic = [{"endTime": "2024-01-05 14:23", "artistName": "A", "trackName": "T", "msPlayed": 31_000}]
    podcast = [{"endTime": "2024-01-05 14:23", "podcastName": "P", "episodeName": "E", "msPlayed": 31_000}]

    assert rows(json.dumps(basic).encode(), name="history.json", kind=None)[0].track_name == "T"
    assert rows(json.dumps(podcast).encode(), name="history.json", kind=None) == [Skip.EPISODE]


def test_records_are_read_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr("earworm.history.importing.jsonstream.CHUNK_BYTES", 7)
    records = [
        {
            "ts": f"2024-01-05T14:{m:02d}:00Z",
            "ms_played": 40_000,
            "spotify_track_uri": "spotify:track:abc",
            "master_metadata_track_name": "Ünï 😀",
        }
        for m in range(30)
    ]

    parsed = rows(json.dumps(records, ensure_ascii=False, indent=2).encode())

    assert [row.played_at.minute for row in parsed] == list(range(30))
    assert all(isinstance(row, ExportPlay) and row.track_name == "Ünï 😀" for row in parsed)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_byte_order_marks_and_utf16_files_are_read(encoding):
    data = json.dumps([{"ts": "2024-01-05T14:23:00Z", "ms_played": 40_000, "spotify_track_uri": "spotify:track:abc"}])

    assert len(rows(data.encode(encoding))) == 1


GOOD = '{"ts": "2024-01-05T14:23:00Z", "ms_played": 40000, "spotify_track_uri": "spotify:track:abc"}'
DEEP = "[" * 100_000 + "]" * 100_000

BAD_FILES = [
    ("not json", b"hello", "is not JSON"),
    ("empty", b"", "is empty"),
    ("object", b'{"ts": 1}', "is a JSON object; expected a JSON array"),
    ("array of numbers", b"[1, 2]", "record 0: is not a JSON object"),
    ("truncated", f"[{GOOD}, {GOOD[:30]}".encode(), "record 1: is not valid JSON"),
    ("unclosed", f"[{GOOD}".encode(), "ends before the array is closed"),
    ("trailing data", f"[{GOOD}] x".encode(), "extra data after the JSON array"),
    ("trailing comma", f"[{GOOD},]".encode(), "record 1: is not a JSON object"),
    (
        "NaN",
        f'[{GOOD}, {{"ts": "2024-01-05T14:23:00Z", "ms_played": NaN}}]'.encode(),
        "record 1: holds a value Earworm refuses: NaN",
    ),
    ("Infinity", b'[{"ms_played": -Infinity}]', "record 0: holds a value Earworm refuses: -Infinity"),
    ("5000-digit integer", ('[{"ms_played": ' + "9" * 5000 + "}]").encode(), "record 0: holds a value Earworm refuses"),
    (
        "huge integer",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 100000000000000000000000000}]',
        "`ms_played` is larger than a day",
    ),
    ("negative ms_played", b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": -5}]', "record 0: `ms_played` is negative"),
    (
        "float ms_played",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 4e4}]',
        "`ms_played` must be an integer, not float",
    ),
    (
        "string ms_played",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": "40000"}]',
        "`ms_played` must be an integer, not str",
    ),
    ("deep nesting", ('[{"a": ' + DEEP + "}]").encode(), "record 0: is nested too deeply"),
    (
        "NUL",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 40000, "master_metadata_track_name": "a\\u0000b"}]',
        "record 0: contains a NUL character",
    ),
    (
        "lone surrogate",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 40000, "x": "\\ud800"}]',
        "record 0: contains a lone surrogate",
    ),
    ("unparsable ts", b'[{"ts": "yesterday", "ms_played": 40000}]', "`ts` 'yesterday' is not an ISO 8601 time"),
    ("ts without zone", b'[{"ts": "2024-01-05T14:23:00", "ms_played": 40000}]', "has no time zone"),
    ("ts in the future", b'[{"ts": "2031-01-05T14:23:00Z", "ms_played": 40000}]', "is in the future"),
    ("ts before 2006", b'[{"ts": "2005-12-31T23:59:59Z", "ms_played": 40000}]', "is before 2006"),
    ("ts out of range", b'[{"ts": "0001-01-01T00:00:00+01:00", "ms_played": 40000}]', "is out of range"),
    ("ts a number", b'[{"ts": 1704464580, "ms_played": 40000}]', "`ts` must be a string, not int"),
    (
        "name a number",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 40000, "master_metadata_track_name": 5}]',
        "must be a string or null, not int",
    ),
    (
        "bad uri",
        b'[{"ts": "2024-01-05T14:23:00Z", "ms_played": 40000, "spotify_track_uri": "http://x"}]',
        "is not a Spotify track URI",
    ),
    ("invalid utf-8", b'[{"ts": "2024-01-05T14:23:00Z", "x": "\xff\xfe\xfa"}]', "is not valid UTF-8 text"),
]


@pytest.mark.parametrize(("label", "data", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_files_are_rejected_with_a_message_naming_file_and_record(label, data, message):
    with pytest.raises(ExportFileError) as caught:
        rows(data)

    assert caught.value.message.startswith("endsong_0.json")
    assert message in caught.value.message


def test_basic_end_time_must_be_a_minute():
    data = b'[{"endTime": "05/01/2024 14:23", "artistName": "A", "trackName": "T", "msPlayed": 40000}]'
    with pytest.raises(
        ExportFileError, match=r"record 0: `endTime` '05/01/2024 14:23' is not a 'YYYY-MM-DD HH:MM' time"
    ):
        rows(data, name="StreamingHistory0.json", kind=FileKind.BASIC_MUSIC)


def test_a_file_of_unknown_records_is_not_history():
    with pytest.raises(ExportFileError, match=r"not a Spotify streaming-history file"):
        rows(b'[{"username": "x", "email": "y"}]', name="data.json", kind=None)


def test_record_count_is_capped():
    data = ("[" + ",".join([GOOD] * 11) + "]").encode()
    with pytest.raises(ExportFileError, match=r"more than 10 records"):
        list(iter_json_records(io.BytesIO(data), file="f.json", max_records=10))


# --- Fuzzing (SECURITY.md §11): rows or ExportFileError, nothing else -------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
maybe = lambda strategy: st.none() | st.integers(-10, 10**13) | st.text(max_size=30) | strategy  # noqa: E731
spotify_shaped = st.fixed_dictionaries(
    {
        "ts": maybe(
            st.sampled_from(["2024-01-05T14:23:00Z", "2024-13-05T14:23:00Z", "2024-01-05", "", "2099-01-01T00:00:00Z"])
        ),
        "ms_played": maybe(st.integers(-(10**20), 10**20)),
        "spotify_track_uri": maybe(
            st.sampled_from(["spotify:track:4uLU6hMCjMI75M1A2tKUQC", "spotify:local:a:b:c:1", "spotify:episode:x"])
        ),
        "master_metadata_track_name": maybe(st.text()),
        "master_metadata_album_artist_name": maybe(st.text()),
        "spotify_episode_uri": maybe(st.just("spotify:episode:1")),
        "endTime": maybe(st.just("2024-01-05 14:23")),
        "msPlayed": maybe(st.integers(0, 10**6)),
    }
)


def _parse_or_reject(data: bytes, kind: FileKind | None) -> None:
    try:
        for row in rows(data, kind=kind):
            assert isinstance(row, ExportPlay | Skip)
    except ExportFileError as exc:
        assert exc.message.startswith("endsong_0.json")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, kind=st.sampled_from([None, FileKind.EXTENDED, FileKind.BASIC_MUSIC]))
def test_fuzz_any_json_gives_rows_or_an_export_file_error(value, kind):
    _parse_or_reject(json.dumps(value).encode(), kind)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(spotify_shaped, max_size=5), kind=st.sampled_from([None, FileKind.EXTENDED, FileKind.BASIC_MUSIC])
)
def test_fuzz_spotify_shaped_but_wrong_records(records, kind):
    _parse_or_reject(json.dumps(records).encode(), kind)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_fuzz_arbitrary_bytes(data):
    _parse_or_reject(data, None)
