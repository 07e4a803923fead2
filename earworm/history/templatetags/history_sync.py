"""`{% sync_status_of account as status %}`: the sync status block's data (history/sync_status.html)."""

from django import template

from earworm.accounts.models import SpotifyAccount
from earworm.history.selectors import SyncStatus, sync_status_for_account

register = template.Library()


@register.simple_tag
def sync_status_of(account: SpotifyAccount | None) -> SyncStatus | None:
    if account is None:
        return None
    return sync_status_for_account(account_id=account.pk)
