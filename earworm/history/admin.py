from django.contrib import admin

from earworm.history.models import ImportJob, Play, SyncRun


@admin.register(Play)
class PlayAdmin(admin.ModelAdmin):
    list_display = ("played_at", "user", "track", "ms_played", "source")
    list_filter = ("source",)
    search_fields = ("user__username", "track__name", "track__spotify_id")
    list_select_related = ("user", "track")
    raw_id_fields = ("user", "track")
    date_hierarchy = "played_at"
    show_full_result_count = False  # counting millions of plays on every page view is slow


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "account", "status", "new_plays", "calls_made", "gap_from", "error")
    list_filter = ("status",)
    search_fields = ("account__spotify_id", "account__display_name", "error")
    list_select_related = ("account",)
    raw_id_fields = ("account",)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "status", "records_done", "records_total", "plays_added")
    list_filter = ("status",)
    search_fields = ("user__username", "original_name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
