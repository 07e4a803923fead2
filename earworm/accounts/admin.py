from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from earworm.accounts.models import ApiToken, SpotifyAccount, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Earworm", {"fields": ("time_zone",)}))  # type: ignore[misc]
    list_display = ("username", "first_name", "is_staff", "date_joined")


@admin.register(SpotifyAccount)
class SpotifyAccountAdmin(admin.ModelAdmin):
    # Tokens are never shown or editable (SECURITY.md OA-11): they are left out of every form and list.
    exclude = ("access_token", "refresh_token")
    readonly_fields = (
        "has_tokens",
        "expires_at",
        "consented_at",
        "refresh_lease_until",
        "sync_claimed_until",
    )
    list_display = ("spotify_id", "display_name", "user", "status", "last_synced_at", "consented_at")
    list_filter = ("status",)
    search_fields = ("spotify_id", "account_id", "display_name", "user__username")
    list_select_related = ("user",)
    raw_id_fields = ("user",)

    @admin.display(boolean=True, description="Tokens stored")
    def has_tokens(self, obj: SpotifyAccount) -> bool:
        return bool(obj.refresh_token)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    exclude = ("token_hash",)
    readonly_fields = ("prefix", "last_used_at")
    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    raw_id_fields = ("user",)

    def has_add_permission(self, request: object) -> bool:
        # Tokens are created by their owner on /settings/, where the raw value is shown once.
        return False
