"""Production: hardening only (STYLE.md §6). Secrets have no defaults here."""

from django.core.exceptions import ImproperlyConfigured

from earworm.core.logging import logging_config

from .base import *  # noqa: F403
from .base import LOG_LEVEL, env

DEBUG = False  # impossible to leave on by accident: DJANGO_DEBUG is ignored in production
# Rotating it: put the new key in DJANGO_SECRET_KEY and the old one in DJANGO_SECRET_KEY_FALLBACKS (read in
# base.py) until the old sessions and signed values have expired (docs/operations.md).
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the host names Earworm is served under, no '*'.")
# The HTTPS origins of those hosts, unless listed explicitly (e.g. with a port).
CSRF_TRUSTED_ORIGINS = env.list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", default=[f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS]
)
TOKEN_ENCRYPTION_KEYS = env.list("TOKEN_ENCRYPTION_KEYS")
if not TOKEN_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS must list at least one Fernet key.")

# Behind a TLS-terminating proxy that always overwrites X-Forwarded-Proto (SECURITY.md OA-17).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers and the container HEALTHCHECK probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# The header only allows preloading; nothing is preloaded until the operator submits the domain.
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"

# JSON lines whatever DJANGO_DEBUG says (base.py chose by DEBUG before it was forced off).
LOGGING = logging_config(json_logs=True, level=LOG_LEVEL)
