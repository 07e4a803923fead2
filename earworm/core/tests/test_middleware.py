import re

import pytest

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_proxy_request_id_is_kept_and_a_forged_one_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="a1b2c3d4-e5f6")["X-Request-ID"] == "a1b2c3d4-e5f6"
    forged = client.get("/healthz", HTTP_X_REQUEST_ID='x" injected=1')["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged)


def test_a_body_over_the_upload_cap_is_refused_before_it_is_read(client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
    too_big = str(settings.IMPORT_MAX_UPLOAD_BYTES + 2 * 1024 * 1024)

    api = client.generic("POST", "/api/v1/imports", b"x", CONTENT_LENGTH=too_big)
    page = client.generic("POST", "/import/", b"x", CONTENT_LENGTH=too_big)

    assert api.status_code == 413
    assert api.json() == {"message": "The upload is too large: at most 10 MB.", "extra": {}}
    assert page.status_code == 413


def test_a_body_within_the_cap_passes_through(client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

    response = client.generic("POST", "/healthz", b"x", CONTENT_LENGTH=str(10 * 1024 * 1024))

    assert response.status_code != 413


def test_pages_for_a_logged_in_user_and_the_api_are_not_stored(auth_client, client):
    assert auth_client.get("/")["Cache-Control"] == "no-store"
    assert auth_client.get("/api/v1/me")["Cache-Control"] == "no-store"
    assert client.get("/api/v1/me")["Cache-Control"] == "no-store"  # a 401, still under /api/


def test_anonymous_public_pages_keep_default_caching(client):
    assert not client.get("/no-such-page/").has_header("Cache-Control")


def test_the_content_security_policy_is_sent(client):
    policy = client.get("/no-such-page/")["Content-Security-Policy"]

    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["img-src"] == ["'self'", "https:", "data:"]
