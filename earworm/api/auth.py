"""Personal API tokens: `Authorization: Bearer ew_...`, stored only as a SHA-256 hash (SECURITY.md AP-4)."""

import hashlib
import secrets
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from earworm.accounts.models import ApiToken, User

TOKEN_PREFIX = "ew_"
# Don't write last_used_at on every request: once a minute is enough to show it.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def api_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; return it with the raw value, which is shown once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], token_hash=api_token_hash(raw), prefix=raw[:10])
    return token, raw


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        found = ApiToken.objects.select_related("user").filter(token_hash=api_token_hash(token)).first()
        if found is None or not found.user.is_active:
            return None
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at > LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.user = found.user
        return found.user
