import os
import subprocess
import sys
from pathlib import Path

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
