"""The shared music catalog: artists, albums, tracks and genres.

Every row has a non-null `key`, the upsert target: the Spotify id when there is one, otherwise a stable
surrogate (`local:` for local files, `name:` for rows known only by name from a data export). NULLs never
collide in unique keys, so a nullable Spotify id could not be the conflict target (SECURITY.md IN-5).
`spotify_id` holds the real id or is null.
"""

from django.db import models
from django.db.models import Q

from earworm.core.models import BaseModel


class CatalogItem(BaseModel):
    key = models.CharField(max_length=64)
    spotify_id = models.CharField(max_length=64, null=True, blank=True)
    name = models.CharField(max_length=1000)
    # Set when Spotify's full object was fetched (enrichment); null means still to do.
    metadata_fetched_at = models.DateTimeField(null=True, blank=True)
    # Spotify answered 404: never ask again.
    not_found = models.BooleanField(default=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Genre(BaseModel):
    name = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name"], name="catalog_genre_unique_name")]

    def __str__(self) -> str:
        return self.name


class Artist(CatalogItem):
    image_url = models.URLField(max_length=1000, blank=True)
    genres = models.ManyToManyField(Genre, through="ArtistGenre", related_name="artists")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key"], name="catalog_artist_unique_key"),
            models.UniqueConstraint(
                fields=["spotify_id"],
                condition=Q(spotify_id__isnull=False),
                name="catalog_artist_unique_spotify_id",
            ),
        ]
        indexes = [
            # catalog_enrich: artists with a Spotify id whose metadata was never fetched.
            models.Index(fields=["metadata_fetched_at"], name="catalog_artist_to_enrich"),
        ]


class Album(CatalogItem):
    album_type = models.CharField(max_length=32, blank=True)
    release_date = models.CharField(max_length=10, blank=True)
    release_date_precision = models.CharField(max_length=5, blank=True)
    total_tracks = models.PositiveIntegerField(null=True, blank=True)
    image_url = models.URLField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key"], name="catalog_album_unique_key"),
            models.UniqueConstraint(
                fields=["spotify_id"],
                condition=Q(spotify_id__isnull=False),
                name="catalog_album_unique_spotify_id",
            ),
        ]


class Track(CatalogItem):
    album = models.ForeignKey(Album, on_delete=models.SET_NULL, null=True, blank=True, related_name="tracks")
    artists = models.ManyToManyField(Artist, through="TrackArtist", related_name="tracks")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    isrc = models.CharField(max_length=16, blank=True)
    explicit = models.BooleanField(null=True, blank=True)
    is_local = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key"], name="catalog_track_unique_key"),
            models.UniqueConstraint(
                fields=["spotify_id"],
                condition=Q(spotify_id__isnull=False),
                name="catalog_track_unique_spotify_id",
            ),
        ]
        indexes = [
            # catalog_enrich: imported tracks whose metadata was never fetched.
            models.Index(fields=["metadata_fetched_at"], name="catalog_track_to_enrich"),
        ]


class TrackArtist(models.Model):
    """Ordered link: position 0 is the first-credited artist."""

    # No index of its own: both unique constraints begin with the track (one index less to write per link).
    track = models.ForeignKey(Track, on_delete=models.CASCADE, db_index=False)
    artist = models.ForeignKey(Artist, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["track", "artist"], name="catalog_trackartist_unique_pair"),
            models.UniqueConstraint(fields=["track", "position"], name="catalog_trackartist_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.track_id} #{self.position}: {self.artist_id}"


class ArtistGenre(models.Model):
    artist = models.ForeignKey(Artist, on_delete=models.CASCADE)
    genre = models.ForeignKey(Genre, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artist", "genre"], name="catalog_artistgenre_unique_pair")]

    def __str__(self) -> str:
        return f"{self.artist_id}: {self.genre_id}"
