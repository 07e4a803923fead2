"""The fast path for extended files yields exactly what the reference path yields, then raises the same error."""

import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earworm.history.importing import ExportPlay, FileKind, iter_export_rows

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def outcome(data: bytes, *, fast: bool, chunk_bytes: int, max_record_chars: int, max_records: int):
    """Every value yielded, then the error raised (type, message, index), if any."""
    rows = []
    stream = iter_export_rows(
        io.BytesIO(data),
        file="endsong_0.json",
        kind=FileKind.EXTENDED,
        min_ms_played=30_000,
        now=NOW,
        max_records=max_records,
        fast=fast,
        chunk_bytes=chunk_bytes,
        max_record_chars=max_record_chars,
    )
    try:
        for row in stream:
            rows.append(row)
    except Exception as exc:  # any exception must be the same on both paths
        return rows, (type(exc).__name__, str(exc), getattr(exc, "index", None))
    return rows, None


# Raw JSON put in place of a "@@n@@" string after dumping: what msgspec might accept and the reference refuse.
RAW = [
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"9" * 4301,
    b"-" + b"9" * 4400,
    b"9" * 4300,
    b'"\\u0000"',
    b'"a\\ud800"',
    b'"\\ud83d\\ude00"',
    b'"\xff"',
    b'"\xed\xa0\x80"',
    b'"\xc3"',
    b"[" * 70 + b"]" * 70,
    b"[" * 1200 + b"]" * 1200,
    b'{"a": {"b": [1, {"c": null}]}}',
    b"true",
    b"1.5",
    b"-1",
    b"100000000000000000000000",
    b'"x\x01y"',
    b'"\\q"',
    b"01",
    b'"2024-01-05T14:23:00+01:00", "ms_played": 40000',
]
texts = st.lists(
    st.sampled_from([*'ab "\\},{[]:\n\té夜😀', "},{", "}, ", '"}', "\\u0000"]) | st.characters(), max_size=8
).map("".join)
timestamps = st.sampled_from(
    [
        "2024-01-05T14:23:00Z",
        "2019-07-30T08:00:59Z",
        "2024-01-05T14:23:00+05:30",
        "2024-01-05T14:23:00",
        "2005-12-31T23:59:59Z",
        "2031-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "yesterday",
        "",
    ]
)
uris = st.sampled_from(
    [
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        "spotify:track:0000000000000000000001",
        "spotify:track:",
        "spotify:local:Artist:Album:Song:210",
        "spotify:episode:1",
        "",
    ]
)
raw_marker = st.integers(0, len(RAW) - 1).map(lambda n: f"@@{n}@@")
nullable_text = st.none() | texts | st.just("Unknown Track")
record = st.fixed_dictionaries(
    {
        "ts": timestamps,
        "platform": st.just("android"),
        "ms_played": st.integers(0, 40_000) | st.sampled_from([250_000, 31_000, 24 * 3600 * 1000 + 1, -5]),
        "master_metadata_track_name": nullable_text,
        "master_metadata_album_artist_name": nullable_text,
        "master_metadata_album_album_name": nullable_text,
        "spotify_track_uri": st.none() | uris,
    },
    optional={
        "episode_name": nullable_text,
        "episode_show_name": nullable_text,
        "spotify_episode_uri": st.none() | st.just("spotify:episode:1"),
        "audiobook_title": nullable_text,
        "audiobook_chapter_uri": st.none() | st.just("spotify:chapter:1"),
        "offline_timestamp": st.integers(0, 2**53),
        "shuffle": st.booleans(),
        "ip_addr": texts,
    },
)
# A record with one field (used or not) set to something else: another type, or raw JSON from RAW.
odd_value = raw_marker | st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
odd_key = st.sampled_from(["ts", "ms_played", "spotify_track_uri", "master_metadata_track_name", "episode_name", "x"])
odd_record = st.tuples(record, odd_key, odd_value).map(lambda t: {**t[0], t[1]: t[2]})
layouts = st.sampled_from(
    [
        {"indent": 1, "ensure_ascii": False},
        {"indent": None, "ensure_ascii": False},
        {"indent": None, "separators": (",", ":"), "ensure_ascii": False},
        {"indent": 2, "ensure_ascii": True},
        {"indent": "\t", "ensure_ascii": False},
    ]
)


def dump(records, layout) -> bytes:
    text = json.dumps(records, **layout)
    data = text.encode("utf-8", "surrogatepass")
    for number, raw in enumerate(RAW):
        data = data.replace(f'"@@{number}@@"'.encode(), raw)
    return data


corruptions = st.one_of(
    st.none(),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(
        st.just("insert"), st.floats(0, 1), st.sampled_from([b",", b"]", b"}", b"{", b" ", b'"', b"\xff", b"\x00"])
    ),
    st.tuples(st.just("head"), st.sampled_from([b"{", b" [", b"\xef\xbb\xbf[", b"", b"[]", b"\n\t\r ["])),
    st.tuples(st.just("tail"), st.sampled_from([b" x", b",", b"]", b" \n", b"\xff"])),
)


def corrupt(data: bytes, corruption) -> bytes:
    if corruption is None:
        return data
    kind, *args = corruption
    if kind == "truncate":
        return data[: int(len(data) * args[0])]
    if kind == "insert":
        at = int(len(data) * args[0])
        return data[:at] + args[1] + data[at:]
    if kind == "head":
        return args[0] + data[1:]
    return data + args[0]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    records=st.lists(record | odd_record, max_size=12) | st.lists(record, min_size=5, max_size=30),
    layout=layouts,
    corruption=st.none() | corruptions,
    chunk_bytes=st.integers(1, 300),
    max_record_chars=st.sampled_from([60, 300, 1000, 4096, 256 * 1024]),
    max_records=st.sampled_from([4, 1000]),
)
def test_fast_path_yields_and_raises_exactly_what_the_reference_does(
    records, layout, corruption, chunk_bytes, max_record_chars, max_records
):
    data = corrupt(dump(records, layout), corruption)
    limits = {"chunk_bytes": chunk_bytes, "max_record_chars": max_record_chars, "max_records": max_records}

    assert outcome(data, fast=True, **limits) == outcome(data, fast=False, **limits)


def test_fast_path_reads_a_long_file_in_small_blocks_with_false_cuts_in_names():
    names = ["A},{B", 'x"}, {"ts": 1', "Ünï 😀 [Live]", "{[}]", "plain"]
    records = [
        {
            "ts": f"2024-01-05T14:{m % 60:02d}:00Z",
            "ms_played": 40_000 + m,
            "spotify_track_uri": f"spotify:track:{m:022d}",
            "master_metadata_track_name": names[m % len(names)],
            "master_metadata_album_artist_name": "Artist",
            "master_metadata_album_album_name": None,
            "ip_addr": "192.0.2.1",
        }
        for m in range(2000)
    ]
    data = json.dumps(records, ensure_ascii=False, indent=1).encode()
    limits = {"chunk_bytes": 4096, "max_record_chars": 2048, "max_records": 10_000}

    fast = outcome(data, fast=True, **limits)

    assert fast == outcome(data, fast=False, **limits)
    assert fast[1] is None and len(fast[0]) == 2000 and all(isinstance(row, ExportPlay) for row in fast[0])


GOOD = {
    "ts": "2024-01-05T14:23:00Z",
    "ms_played": 40_000,
    "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
    "master_metadata_track_name": "Ünï",
}


@pytest.mark.parametrize("raw", RAW + [b"[" * depth + b"]" * depth for depth in range(960, 1000, 3)])
@pytest.mark.parametrize("key", ["x", "master_metadata_track_name", "ms_played"])
@pytest.mark.parametrize(("chunk_bytes", "max_record_chars"), [(7, 256 * 1024), (1 << 20, 256 * 1024), (3000, 500)])
def test_fast_path_meets_each_value_the_reference_refuses_or_reads_differently(raw, key, chunk_bytes, max_record_chars):
    records = [dict(GOOD) for _ in range(40)]
    records[25][key] = "@@raw@@"
    data = json.dumps(records, ensure_ascii=False, indent=1).encode().replace(b'"@@raw@@"', raw)
    limits = {"chunk_bytes": chunk_bytes, "max_record_chars": max_record_chars, "max_records": 1000}

    assert outcome(data, fast=True, **limits) == outcome(data, fast=False, **limits)


@pytest.mark.parametrize("max_records", [0, 1, 39, 40, 41])
def test_fast_path_keeps_the_record_cap(max_records):
    data = json.dumps([GOOD] * 40).encode()
    limits = {"chunk_bytes": 1 << 20, "max_record_chars": 256 * 1024, "max_records": max_records}

    assert outcome(data, fast=True, **limits) == outcome(data, fast=False, **limits)
