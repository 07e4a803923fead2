from django.contrib import admin

from earworm.core.models import QuotaGate


@admin.register(QuotaGate)
class QuotaGateAdmin(admin.ModelAdmin):
    list_display = ("client_id", "paused_until", "pause_reason", "day_requests", "config_error_at")
    list_filter = ("pause_reason",)
    search_fields = ("client_id", "config_error")
