import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.utils import timezone

from earworm.catalog.keys import album_key, artist_key, track_key
from earworm.catalog.models import Album, Artist, ArtistGenre, Genre, Track, TrackArtist
from earworm.spotify.client import MAX_BATCH_IDS
from earworm.spotify.errors import SpotifyError, SpotifyNotFound
from earworm.spotify.types import ArtistData, SimplifiedAlbumData, SimplifiedArtistData, TrackData

if TYPE_CHECKING:
    from earworm.spotify.client import SpotifyClient

logger = logging.getLogger(__name__)
_Item = TypeVar("_Item", ArtistData, TrackData)

UPSERT_BATCH_SIZE = 1000
# A batch that lost an insert race to a concurrent transaction is written again (see `_lost_insert_race`).
UPSERT_ATTEMPTS = 3
CatalogRow = TypeVar("CatalogRow", Artist, Album, Track)
# Column lengths: Spotify never sends longer names, but exports and local files can (SECURITY.md FZ-5).
NAME_MAX = 1000


@dataclass
class UpsertResult:
    """Primary keys by catalog key, and how many rows of each kind did not exist before."""

    track_ids: dict[str, int] = field(default_factory=dict)
    new_tracks: int = 0
    new_albums: int = 0
    new_artists: int = 0

    def add(self, other: "UpsertResult") -> None:
        self.track_ids.update(other.track_ids)
        self.new_tracks += other.new_tracks
        self.new_albums += other.new_albums
        self.new_artists += other.new_artists


def catalog_upsert(
    *,
    tracks: Iterable[TrackData],
    metadata_fetched_at: datetime | None = None,
    batch_size: int = UPSERT_BATCH_SIZE,
) -> UpsertResult:
    """Write tracks with their albums, artists and ordered track–artist links, creating or updating rows.

    Each batch is de-duplicated by key first (PostgreSQL refuses to update one row twice in a statement,
    SECURITY.md IN-4) and written with a fixed number of statements, whatever its size. Pass
    `metadata_fetched_at` when the tracks are Spotify's full objects, so enrichment skips them.

    Returns the primary key of every track by its catalog key, and counts of newly created rows.
    """
    result = UpsertResult()
    iterator = iter(tracks)
    while batch := tuple(islice(iterator, batch_size)):
        for attempt in range(1, UPSERT_ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    written = _upsert_batch(batch, metadata_fetched_at=metadata_fetched_at)
                break
            except IntegrityError as exc:
                if attempt == UPSERT_ATTEMPTS or not _lost_insert_race(exc):
                    raise
                logger.info("Catalog upsert met a row another transaction inserted at the same time; retrying.")
        result.add(written)
    return result


def _lost_insert_race(exc: IntegrityError) -> bool:
    """Whether `exc` is PostgreSQL refusing a Spotify id that a concurrent transaction inserted meanwhile.

    `ON CONFLICT (key)` arbitrates only the `key` index. When two transactions insert the same new row (two
    syncs meeting the same new artist), both can pass the conflict check on `key` before either has written
    it; the second then waits on the other unique index, `spotify_id`, and fails once the first commits. Its
    retry sees the committed row and updates it. Since a row with a Spotify id has that id as its key, a
    violation of that index is never a real clash between two different rows.
    """
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or ""
    return constraint.endswith("_unique_spotify_id")


def _upsert_batch(batch: Sequence[TrackData], *, metadata_fetched_at: datetime | None) -> UpsertResult:
    result = UpsertResult()
    tracks_by_key: dict[str, TrackData] = {track_key(track): track for track in batch}
    artists_by_key: dict[str, SimplifiedArtistData] = {}
    albums_by_key: dict[str, SimplifiedAlbumData] = {}
    album_key_of_track: dict[str, str] = {}
    for key, track in tracks_by_key.items():
        for artist in track.artists:
            artists_by_key.setdefault(artist_key(artist), artist)
        if track.album is not None and track.album.name:
            album_artists = track.album.artists or track.artists
            for artist in track.album.artists:
                artists_by_key.setdefault(artist_key(artist), artist)
            akey = album_key(track.album, artist_name=album_artists[0].name if album_artists else "")
            albums_by_key.setdefault(akey, track.album)
            album_key_of_track[key] = akey

    result.new_artists = len(artists_by_key) - Artist.objects.filter(key__in=artists_by_key).count()
    result.new_albums = len(albums_by_key) - Album.objects.filter(key__in=albums_by_key).count()
    result.new_tracks = len(tracks_by_key) - Track.objects.filter(key__in=tracks_by_key).count()

    artist_ids = _upsert(
        Artist,
        [Artist(key=key, spotify_id=artist.id, name=artist.name[:NAME_MAX]) for key, artist in artists_by_key.items()],
        update_fields=["name", "spotify_id"],
    )
    album_update_fields = ["name", "spotify_id", "album_type", "release_date", "release_date_precision"]
    album_update_fields += ["total_tracks", "image_url"]
    if metadata_fetched_at is not None:
        album_update_fields.append("metadata_fetched_at")
    album_ids = _upsert(
        Album,
        [_album_row(key, album, metadata_fetched_at) for key, album in albums_by_key.items()],
        update_fields=album_update_fields,
    )
    track_update_fields = ["name", "spotify_id", "album", "duration_ms", "isrc", "explicit", "is_local"]
    if metadata_fetched_at is not None:
        track_update_fields.append("metadata_fetched_at")
    track_ids = _upsert(
        Track,
        [
            Track(
                key=key,
                spotify_id=track.id,
                name=track.name[:NAME_MAX],
                album_id=album_ids.get(album_key_of_track.get(key, "")),
                duration_ms=track.duration_ms if track.duration_ms and track.duration_ms > 0 else None,
                isrc=(track.isrc or "")[:16],
                explicit=track.explicit,
                is_local=track.is_local,
                metadata_fetched_at=metadata_fetched_at,
            )
            for key, track in tracks_by_key.items()
        ],
        update_fields=track_update_fields,
    )

    # Credits can change order between answers, so a track's links are replaced as a whole.
    links: list[TrackArtist] = []
    for key, track in tracks_by_key.items():
        seen: set[int] = set()
        for artist in track.artists:
            artist_id = artist_ids[artist_key(artist)]
            if artist_id not in seen:
                links.append(TrackArtist(track_id=track_ids[key], artist_id=artist_id, position=len(seen)))
                seen.add(artist_id)
    TrackArtist.objects.filter(track_id__in=track_ids.values()).delete()
    # Three columns a row: 10,000 rows stay well under psycopg's 65,535 parameters (SECURITY.md IN-6).
    TrackArtist.objects.bulk_create(links, batch_size=10_000)
    result.track_ids.update(track_ids)
    return result


def _album_row(key: str, album: SimplifiedAlbumData, metadata_fetched_at: datetime | None) -> Album:
    return Album(
        key=key,
        spotify_id=album.id,
        name=album.name[:NAME_MAX],
        album_type=(album.album_type or "")[:32],
        release_date=(album.release_date or "")[:10],
        release_date_precision=(album.release_date_precision or "")[:5],
        total_tracks=album.total_tracks if album.total_tracks and album.total_tracks > 0 else None,
        image_url=album.images[0].url[:1000] if album.images else "",
        metadata_fetched_at=metadata_fetched_at if album.id else None,
    )


def _upsert(model: type[CatalogRow], rows: list[CatalogRow], *, update_fields: list[str]) -> dict[str, int]:
    """Insert or update rows on their `key`; return primary keys by key."""
    if not rows:
        return {}
    # Concurrent syncs write overlapping rows (the same artists, albums and tracks); PostgreSQL locks each row
    # on insert or update, so writing in one global order (by key) makes them wait for each other instead of
    # deadlocking, as two windows listing shared artists in different orders did.
    created = model.objects.bulk_create(
        sorted(rows, key=lambda row: row.key),
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=update_fields,
        batch_size=UPSERT_BATCH_SIZE,
    )
    return {row.key: row.pk for row in created}


# --- Enrichment ------------------------------------------------------------------------------------------------
# Per-item requests are written in chunks of this many, so a rate limit mid-run keeps what was fetched.
ENRICH_CHUNK = 20
GENRE_NAME_MAX = 255


@dataclass
class EnrichResult:
    """What one `catalog_enrich` run did, and what is left."""

    requests: int = 0
    artists_enriched: int = 0
    genres_linked: int = 0
    tracks_enriched: int = 0
    not_found: int = 0
    provisional_removed: int = 0
    artists_left: int = 0
    tracks_left: int = 0
    stopped_reason: str = ""


def _artists_to_enrich() -> QuerySet[Artist]:
    return Artist.objects.filter(metadata_fetched_at__isnull=True, not_found=False, spotify_id__isnull=False)


def _tracks_to_enrich() -> QuerySet[Track]:
    return Track.objects.filter(metadata_fetched_at__isnull=True, not_found=False, spotify_id__isnull=False)


def catalog_enrich(*, max_requests: int) -> EnrichResult:
    """Fetch what recently-played and exports do not carry, at most `max_requests` Spotify calls.

    First artists never fetched (genres and images; `GET /artists/{id}` each, or `GET /artists?ids=` by 50 when
    `SPOTIFY_BATCH_ENDPOINTS`), then tracks never fetched, most-played first (`GET /tracks/{id}`, or by 50): a
    track's provisional `name:` album and artists from an export are replaced by the real ones, and provisional
    rows left without links are deleted. A 404 marks the item `not_found`, never asked again. Calls go through
    the gate as `kind="enrich"`, which leaves room in every window for syncs and has its own daily budget; the
    run stops at the first refusal, 429, outage or auth problem, keeping what it fetched.

    Returns an `EnrichResult`. Raises nothing from Spotify: the reason a run stopped is in `stopped_reason`.
    """
    from earworm.accounts.models import SpotifyAccount
    from earworm.accounts.services import spotify_client_for_account
    from earworm.core.exceptions import ApplicationError

    result = EnrichResult()
    # Artist and track endpoints accept any user's token; use the account that synced most recently.
    account_id = (
        SpotifyAccount.objects.filter(status=SpotifyAccount.Status.ACTIVE)
        .order_by(F("last_synced_at").desc(nulls_last=True), "pk")
        .values_list("pk", flat=True)
        .first()
    )
    if account_id is None:
        result.stopped_reason = "no active Spotify account to ask with"
    elif max_requests > 0:
        try:
            with spotify_client_for_account(account_id=account_id, kind="enrich") as client:
                try:
                    _enrich_artists(client, result, max_requests)
                    _enrich_tracks(client, result, max_requests)
                finally:
                    result.requests = client.calls_made
        except (SpotifyError, ApplicationError) as exc:
            result.stopped_reason = exc.message
            logger.info("Enrichment stopped after %s calls: %s", result.requests, exc.message)
    result.artists_left = _artists_to_enrich().count()
    result.tracks_left = _tracks_to_enrich().count()
    return result


def _fetch(
    client: "SpotifyClient",
    ids: list[str],
    *,
    one: Callable[[str], _Item],
    many: Callable[[list[str]], list[_Item | None]],
    max_requests: int,
) -> dict[str, _Item | None]:
    """Fetch items by Spotify id: `None` for unknown ones. Stops at `max_requests` calls; on an error, what was
    fetched so far travels on the exception as `fetched`."""
    fetched: dict[str, _Item | None] = {}
    try:
        if settings.SPOTIFY_BATCH_ENDPOINTS:
            for start in range(0, len(ids), MAX_BATCH_IDS):
                if client.calls_made >= max_requests:
                    break
                chunk = ids[start : start + MAX_BATCH_IDS]
                fetched.update(zip(chunk, many(chunk), strict=True))
        else:
            for spotify_id in ids:
                if client.calls_made >= max_requests:
                    break
                try:
                    fetched[spotify_id] = one(spotify_id)
                except (SpotifyNotFound, ValueError):  # ValueError: not a Spotify id, so Spotify cannot know it
                    fetched[spotify_id] = None
    except SpotifyError as exc:
        exc.fetched = fetched  # type: ignore[attr-defined]
        raise
    return fetched


def _enrich_artists(client: "SpotifyClient", result: EnrichResult, max_requests: int) -> None:
    def next_rows(limit: int) -> dict[str, int]:
        ids = _artists_to_enrich().order_by("pk").values_list("spotify_id", "pk")[:limit]
        return {spotify_id: pk for spotify_id, pk in ids if spotify_id}

    _enrich_in_chunks(
        client, result, max_requests, next_rows=next_rows, one=client.artist, many=client.artists, store=_store_artists
    )


def _enrich_in_chunks(
    client: "SpotifyClient",
    result: EnrichResult,
    max_requests: int,
    *,
    next_rows: Callable[[int], dict[str, int]],
    one: Callable[[str], Any],
    many: Callable[[list[str]], list[Any]],
    store: Callable[[dict[str, int], dict[str, Any], EnrichResult], None],
) -> None:
    """Fetch the rows `next_rows` picks, chunk by chunk, until the request cap; what was fetched before a
    failure (a 429 mid-chunk) is stored before the error propagates."""
    per_call = MAX_BATCH_IDS if settings.SPOTIFY_BATCH_ENDPOINTS else 1
    while client.calls_made < max_requests:
        rows = next_rows(min(ENRICH_CHUNK * per_call, (max_requests - client.calls_made) * per_call))
        if not rows:
            return
        try:
            fetched = _fetch(client, list(rows), one=one, many=many, max_requests=max_requests)
        except SpotifyError as exc:
            store(rows, getattr(exc, "fetched", {}), result)
            raise
        store(rows, fetched, result)


def _store_artists(rows: dict[str, int], fetched: dict[str, ArtistData | None], result: EnrichResult) -> None:
    if not fetched:
        return
    now = timezone.now()
    found = {spotify_id: data for spotify_id, data in fetched.items() if data is not None}
    missing = [rows[spotify_id] for spotify_id, data in fetched.items() if data is None]
    genre_names = {
        spotify_id: sorted({genre.strip()[:GENRE_NAME_MAX] for genre in data.genres if genre.strip()})
        for spotify_id, data in found.items()
    }
    with transaction.atomic():
        if missing:
            Artist.objects.filter(pk__in=missing).update(not_found=True)
        Artist.objects.bulk_update(
            [
                Artist(
                    pk=rows[spotify_id],
                    name=data.name[:NAME_MAX],
                    image_url=data.images[0].url[:1000] if data.images else "",
                    metadata_fetched_at=now,
                )
                for spotify_id, data in found.items()
            ],
            ["name", "image_url", "metadata_fetched_at"],
            batch_size=UPSERT_BATCH_SIZE,
        )
        all_names = {name for names in genre_names.values() for name in names}
        Genre.objects.bulk_create([Genre(name=name) for name in all_names], ignore_conflicts=True)
        genre_ids = dict(Genre.objects.filter(name__in=all_names).values_list("name", "pk"))
        artist_ids = [rows[spotify_id] for spotify_id in found]
        ArtistGenre.objects.filter(artist_id__in=artist_ids).delete()
        links = [
            ArtistGenre(artist_id=rows[spotify_id], genre_id=genre_ids[name])
            for spotify_id, names in genre_names.items()
            for name in names
        ]
        ArtistGenre.objects.bulk_create(links, batch_size=UPSERT_BATCH_SIZE)
    result.artists_enriched += len(found)
    result.genres_linked += len(links)
    result.not_found += len(missing)


def _enrich_tracks(client: "SpotifyClient", result: EnrichResult, max_requests: int) -> None:
    def next_rows(limit: int) -> dict[str, int]:
        most_played = _tracks_to_enrich().annotate(play_count=Count("plays")).order_by("-play_count", "pk")
        return {spotify_id: pk for spotify_id, pk in most_played.values_list("spotify_id", "pk")[:limit] if spotify_id}

    _enrich_in_chunks(
        client, result, max_requests, next_rows=next_rows, one=client.track, many=client.tracks, store=_store_tracks
    )


def _store_tracks(rows: dict[str, int], fetched: dict[str, TrackData | None], result: EnrichResult) -> None:
    if not fetched:
        return
    # Spotify may answer with a relinked track under another id; the row asked about is the one to complete.
    found = [data.model_copy(update={"id": spotify_id}) for spotify_id, data in fetched.items() if data is not None]
    missing = [rows[spotify_id] for spotify_id, data in fetched.items() if data is None]
    track_ids = [rows[data.id] for data in found if data.id]
    with transaction.atomic():
        if missing:
            Track.objects.filter(pk__in=missing).update(not_found=True)
        old_artists = set(TrackArtist.objects.filter(track_id__in=track_ids).values_list("artist_id", flat=True))
        old_albums = set(Track.objects.filter(pk__in=track_ids, album__isnull=False).values_list("album_id", flat=True))
        catalog_upsert(tracks=found, metadata_fetched_at=timezone.now())
        # Provisional rows from exports (`name:` keys) that no track uses any more were duplicates of real ones.
        removed_artists, _ = (
            Artist.objects.filter(pk__in=old_artists, key__startswith="name:")
            .exclude(Exists(TrackArtist.objects.filter(artist_id=OuterRef("pk"))))
            .delete()
        )
        removed_albums, _ = (
            Album.objects.filter(pk__in=old_albums, key__startswith="name:")
            .exclude(Exists(Track.objects.filter(album_id=OuterRef("pk"))))
            .delete()
        )
    result.tracks_enriched += len(found)
    result.not_found += len(missing)
    result.provisional_removed += removed_artists + removed_albums
