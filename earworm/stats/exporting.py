"""Every play of a user as flat rows, for `GET /api/v1/export`, in memory independent of history size.

Plays are read in keyset pages of EXPORT_PAGE on (played_at, id) through the (user, played_at) index; each
page loads the credited artists of its own tracks only, so nothing grows with the history.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from earworm.catalog.models import TrackArtist
from earworm.history.models import Play

EXPORT_PAGE = 5000
CSV_COLUMNS = [
    "played_at",
    "ms_played",
    "source",
    "context_uri",
    "track_spotify_id",
    "track_name",
    "album_spotify_id",
    "album_name",
    "artist_spotify_ids",
    "artist_names",
]
# Spreadsheets run cells starting with these as formulas (SECURITY.md AP-3); a leading ' makes them text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


FIELDS = (
    "id",
    "played_at",
    "ms_played",
    "source",
    "context_uri",
    "track_id",
    "track__spotify_id",
    "track__name",
    "track__album__spotify_id",
    "track__album__name",
)
Row = tuple[Any, ...]


def _export_pages(*, user_id: int) -> Iterator[tuple[list[Row], dict[int, list[tuple[str | None, str]]]]]:
    """Pages of plays (oldest first, as FIELDS tuples) with the ordered credited artists of their tracks."""
    after: tuple[datetime, int] | None = None
    plays = Play.objects.filter(user_id=user_id).order_by("played_at", "id").values_list(*FIELDS)
    while True:
        if after is None:
            rows = list(plays[:EXPORT_PAGE])
        else:
            # Two index range scans instead of one OR (which PostgreSQL would answer by rescanning from the start):
            # the rare plays at exactly the last timestamp, then the ones after it.
            rows = list(plays.filter(played_at=after[0], id__gt=after[1])[:EXPORT_PAGE])
            rows += plays.filter(played_at__gt=after[0])[: EXPORT_PAGE - len(rows)]
        if not rows:
            return
        artists: dict[int, list[tuple[str | None, str]]] = {}
        for track_id, spotify_id, name in (
            TrackArtist.objects.filter(track_id__in={row[5] for row in rows})
            .order_by("track_id", "position")
            .values_list("track_id", "artist__spotify_id", "artist__name")
        ):
            artists.setdefault(track_id, []).append((spotify_id, name))
        yield rows, artists
        after = (rows[-1][1], rows[-1][0])
        if len(rows) < EXPORT_PAGE:
            return


def play_export_rows(*, user_id: int) -> Iterator[dict[str, Any]]:
    """The user's plays, oldest first, each with its track, album and ordered artists (the /plays shape)."""
    for rows, artists in _export_pages(user_id=user_id):
        for _, played_at, ms, source, context, track_id, track_sid, track_name, album_sid, album_name in rows:
            yield {
                "played_at": _iso(played_at),
                "ms_played": ms,
                "source": source,
                "context_uri": context,
                "track": {
                    "spotify_id": track_sid,
                    "name": track_name,
                    "album": None if album_name is None else {"spotify_id": album_sid, "name": album_name},
                    "artists": [{"spotify_id": sid, "name": name} for sid, name in artists.get(track_id, ())],
                },
            }


def export_json_chunks(*, user_id: int) -> Iterator[str]:
    """`{"items": [...]}`, a few hundred plays per chunk."""
    yield '{"items": ['
    buffer: list[str] = []
    first = True
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    for row in play_export_rows(user_id=user_id):
        buffer.append(("" if first else ",") + dumps(row))
        first = False
        if len(buffer) >= 500:
            yield "".join(buffer)
            buffer = []
    yield "".join(buffer) + "]}\n"


def csv_safe(value: Any) -> Any:
    """Text that a spreadsheet would read as a formula, prefixed with ' so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_csv_chunks(*, user_id: int) -> Iterator[str]:
    """One header line, then one line per play; several artists are joined with '; '. One chunk per page."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for rows, artists in _export_pages(user_id=user_id):
        credits = {
            track_id: ("; ".join(sid or "" for sid, _ in names), csv_safe("; ".join(n for _, n in names)))
            for track_id, names in artists.items()
        }
        none = ("", "")
        writer.writerows(
            (
                _iso(played_at),
                "" if ms is None else ms,
                source,
                csv_safe(context),
                track_sid or "",
                csv_safe(track_name),
                album_sid or "",
                csv_safe(album_name or ""),
                *credits.get(track_id, none),
            )
            for _, played_at, ms, source, context, track_id, track_sid, track_name, album_sid, album_name in rows
        )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()
