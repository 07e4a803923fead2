from django.contrib import admin

from earworm.catalog.models import Album, Artist, ArtistGenre, Genre, Track, TrackArtist


class TrackArtistInline(admin.TabularInline):
    model = TrackArtist
    raw_id_fields = ("artist",)
    extra = 0


class ArtistGenreInline(admin.TabularInline):
    model = ArtistGenre
    raw_id_fields = ("genre",)
    extra = 0


@admin.register(Artist)
class ArtistAdmin(admin.ModelAdmin):
    list_display = ("name", "spotify_id", "metadata_fetched_at", "not_found")
    list_filter = ("not_found", ("metadata_fetched_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "spotify_id", "key")
    inlines = [ArtistGenreInline]


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ("name", "spotify_id", "album_type", "release_date", "metadata_fetched_at")
    list_filter = ("album_type", "not_found")
    search_fields = ("name", "spotify_id", "key")


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ("name", "album", "spotify_id", "is_local", "metadata_fetched_at")
    list_filter = ("is_local", "not_found", ("metadata_fetched_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "spotify_id", "key", "isrc", "album__name")
    list_select_related = ("album",)
    raw_id_fields = ("album",)
    inlines = [TrackArtistInline]


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(TrackArtist)
class TrackArtistAdmin(admin.ModelAdmin):
    list_display = ("track", "artist", "position")
    search_fields = ("track__name", "artist__name")
    list_select_related = ("track", "artist")
    raw_id_fields = ("track", "artist")


@admin.register(ArtistGenre)
class ArtistGenreAdmin(admin.ModelAdmin):
    list_display = ("artist", "genre")
    search_fields = ("artist__name", "genre__name")
    list_filter = ("genre",)
    list_select_related = ("artist", "genre")
    raw_id_fields = ("artist", "genre")
