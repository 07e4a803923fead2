import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TOKEN_", "SPOTIFY_"))}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings.production")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


OPERATOR_ENV = {
    "DJANGO_SECRET_KEY": "a-long-random-secret-for-the-deploy-check-0123456789-qwertyuiop",
    "DJANGO_ALLOWED_HOSTS": "earworm.example.org",
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "SPOTIFY_CLIENT_ID": "client-id",
    "SPOTIFY_CLIENT_SECRET": "client-secret",
}


def test_check_deploy_is_clean_with_the_variables_an_operator_sets():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **OPERATOR_ENV)

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key_or_encryption_keys():
    without_secret = {k: v for k, v in OPERATOR_ENV.items() if k != "DJANGO_SECRET_KEY"}
    without_keys = {k: v for k, v in OPERATOR_ENV.items() if k != "TOKEN_ENCRYPTION_KEYS"}

    assert "DJANGO_SECRET_KEY" in _manage("check", **without_secret).stderr
    assert "TOKEN_ENCRYPTION_KEYS" in _manage("check", **without_keys).stderr


def test_debug_cannot_be_switched_on_in_production():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DJANGO_DEBUG="true",
        **OPERATOR_ENV,
    )

    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


REQUEST_SCRIPT = """
import json
from django.conf import settings
from django.test import Client

client = Client()
host = {"HTTP_HOST": "earworm.example.org"}
secure = client.get("/no-such-page/", {"code": "auth-code-secret", "state": "s"}, secure=True, **host)
plain = client.get("/no-such-page/", **host)
health = client.get("/healthz", **host)
print("RESULT " + json.dumps({
    "secure": {"status": secure.status_code, "headers": dict(secure.headers)},
    "plain": {"status": plain.status_code, "location": plain.get("Location")},
    "health_redirected": health.status_code in (301, 302),
    "settings": {name: getattr(settings, name) for name in (
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_NAME",
        "CSRF_COOKIE_NAME", "SECURE_HSTS_SECONDS", "CSRF_TRUSTED_ORIGINS", "SECURE_PROXY_SSL_HEADER")},
}))
"""


@pytest.fixture(scope="module")
def production_request(tmp_path_factory):
    """One process with production settings (SQLite, no migrations needed) answering three requests."""
    database = tmp_path_factory.mktemp("prod") / "db.sqlite3"
    result = _manage(
        "shell", "-c", REQUEST_SCRIPT, DATABASE_URL=f"sqlite:///{database}", DJANGO_DEBUG="true", **OPERATOR_ENV
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines and lines[-1].startswith("RESULT "), result.stdout + result.stderr
    return json.loads(lines[-1].removeprefix("RESULT ")), result.stderr


def test_production_sends_hsts_csp_and_the_hardening_headers(production_request):
    answer, _ = production_request
    headers = answer["secure"]["headers"]

    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    policy = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_production_redirects_plain_http_except_the_health_check(production_request):
    answer, _ = production_request

    assert answer["plain"]["status"] == 301
    assert answer["plain"]["location"] == "https://earworm.example.org/no-such-page/"
    assert answer["health_redirected"] is False


def test_production_cookies_are_secure_host_prefixed_and_origins_https(production_request):
    answer, _ = production_request
    values = answer["settings"]

    assert values["SESSION_COOKIE_SECURE"] is values["CSRF_COOKIE_SECURE"] is values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert values["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://earworm.example.org"]
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_production_logs_json_lines_with_request_ids_and_no_secret(production_request):
    answer, stderr = production_request
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    request_id = answer["secure"]["headers"]["X-Request-ID"]

    assert [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")] == []
    mine = [r for r in records if r["request_id"] == request_id and r["logger"] != "py.warnings"]
    assert {r["logger"] for r in mine} == {"earworm.request", "django.request"}
    assert all(r["path"] == "/no-such-page/" for r in mine)  # never the query string
    for secret in (
        "auth-code-secret",
        "code=",
        OPERATOR_ENV["SPOTIFY_CLIENT_SECRET"],
        OPERATOR_ENV["DJANGO_SECRET_KEY"],
    ):
        assert secret not in stderr


def test_a_wildcard_host_is_refused_in_production():
    result = _manage("check", **{**OPERATOR_ENV, "DJANGO_ALLOWED_HOSTS": "*"})

    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_check_deploy_stays_clean_while_the_secret_key_rotates_through_a_fallback():
    rotating = {
        **OPERATOR_ENV,
        "DJANGO_SECRET_KEY_FALLBACKS": "the-previous-secret-key-still-long-and-random-0123456789abc",
    }
    weak = {**OPERATOR_ENV, "DJANGO_SECRET_KEY_FALLBACKS": "short"}

    assert _manage("check", "--deploy", "--fail-level", "WARNING", **rotating).returncode == 0
    assert "security.W025" in _manage("check", "--deploy", "--fail-level", "WARNING", **weak).stderr
