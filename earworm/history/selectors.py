"""Reads of plays. Statistics live in earworm.stats."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q

from earworm.catalog.models import TrackArtist
from earworm.core.exceptions import ApplicationError
from earworm.history.models import Play

PLAY_PAGE_MAX = 200


class InvalidCursor(ApplicationError):
    def __init__(self) -> None:
        super().__init__("The cursor is not valid; start again without it.", extra={"field": "cursor"})


@dataclass(frozen=True)
class PlayPage:
    items: list[Play]
    next_cursor: str | None


def _encode_cursor(play: Play) -> str:
    return base64.urlsafe_b64encode(f"{play.played_at.isoformat()}|{play.pk}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        played_at, pk = raw.split("|")
        parsed = datetime.fromisoformat(played_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor() from exc


def play_list_for_user(
    *,
    user_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> PlayPage:
    """A page of the user's plays, newest first, with track, album and ordered artists loaded.

    Keyset pagination on (played_at, id): a page never repeats or skips a play when new plays arrive
    meanwhile, unlike offsets. `since` is inclusive, `until` exclusive.
    """
    limit = max(1, min(limit, PLAY_PAGE_MAX))
    plays = Play.objects.filter(user_id=user_id)
    if since is not None:
        plays = plays.filter(played_at__gte=since)
    if until is not None:
        plays = plays.filter(played_at__lt=until)
    if cursor:
        played_at, pk = _decode_cursor(cursor)
        plays = plays.filter(Q(played_at__lt=played_at) | Q(played_at=played_at, pk__lt=pk))
    page = list(
        plays.select_related("track__album")
        .prefetch_related(
            Prefetch(
                "track__trackartist_set",
                queryset=TrackArtist.objects.select_related("artist").order_by("position"),
                to_attr="credits",
            )
        )
        .order_by("-played_at", "-pk")[: limit + 1]
    )
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return PlayPage(items=page[:limit], next_cursor=next_cursor)
