import io
import json
import logging

import pytest

from earworm.core.logging import JsonFormatter, PlainFormatter, RequestIdFilter, logging_config, redact, request_id_var

SECRETS = ("AQD-access-secret", "AQB-refresh-secret", "auth-code-secret", "verifier-secret", "client-secret-value")


@pytest.mark.parametrize(
    "text",
    [
        "POST /api/token grant_type=refresh_token&refresh_token=AQB-refresh-secret&client_id=x",
        '{"access_token": "AQD-access-secret", "token_type": "Bearer", "refresh_token": "AQB-refresh-secret"}',
        "{'access_token': 'AQD-access-secret', 'expires_in': 3600}",
        "GET /api/callback/?code=auth-code-secret&state=abc",
        "TokenSet(access_token=AQD-access-secret, code_verifier=verifier-secret)",
        "Authorization: Bearer AQD-access-secret",
        "Authorization: Basic client-secret-value",
        'client_secret="client-secret-value"',
    ],
)
def test_redact_blanks_token_values_in_every_shape_they_are_logged_in(text):
    redacted = redact(text)

    assert not any(secret in redacted for secret in SECRETS), redacted
    assert "[redacted]" in redacted


def test_redact_leaves_ordinary_text_and_is_idempotent():
    text = "status_code=429 retry_after=30 track=Everlong played_at=2026-01-01T00:00:00Z"

    assert redact(text) == text
    once = redact("code=abc")
    assert redact(once) == once == "code=[redacted]"


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("earworm.tests.capture")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_the_request_id_extras_and_an_escaped_message():
    logger, stream = _capture(JsonFormatter())
    token = request_id_var.set("req-1234abcd")
    try:
        logger.warning("Display name %s", "evil\nFAKE LINE", extra={"account_id": 7})
    finally:
        request_id_var.reset(token)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # the newline in user text cannot forge a second line
    record = json.loads(lines[0])
    assert record["request_id"] == "req-1234abcd"
    assert record["level"] == "WARNING"
    assert record["account_id"] == 7
    assert record["message"] == "Display name evil\nFAKE LINE"


def test_exceptions_are_logged_with_their_traceback_redacted():
    logger, stream = _capture(JsonFormatter())
    try:
        raise ValueError('token endpoint said {"access_token": "AQD-access-secret"}')
    except ValueError:
        logger.exception("Refresh failed for refresh_token=AQB-refresh-secret")

    record = json.loads(stream.getvalue())
    assert "ValueError" in record["exception"]
    assert not any(secret in stream.getvalue() for secret in SECRETS)
    assert record["request_id"] is None  # outside a request


def test_plain_lines_for_make_run_are_redacted_too():
    logger, stream = _capture(PlainFormatter())

    logger.info("exchanging code=auth-code-secret")

    assert "auth-code-secret" not in stream.getvalue()
    assert "[None]" in stream.getvalue()


def test_logging_config_is_valid_for_dictconfig_in_both_formats():
    for json_logs in (True, False):
        config = logging_config(json_logs=json_logs, level="INFO")
        assert config["handlers"]["console"]["formatter"] == ("json" if json_logs else "plain")
        logging.config.dictConfig({**config, "root": {"handlers": [], "level": "INFO"}})


@pytest.mark.django_db
def test_a_request_logs_json_lines_with_its_request_id_and_no_secret(client):
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        response = client.get("/api/callback/", {"code": "auth-code-secret", "state": "not-a-known-state"})
        logging.getLogger("earworm.tests").info("after the request")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_id = response["X-Request-ID"]
    during = [r for r in records if r["request_id"] == request_id]
    access = [r for r in during if r["logger"] == "earworm.request"]
    assert len(access) == 1
    assert access[0]["path"] == "/api/callback/" and access[0]["status"] == response.status_code
    assert len(during) >= 2  # the callback view's own warning carries the id too
    assert records[-1]["request_id"] is None
    assert "auth-code-secret" not in stream.getvalue()
    assert "code=" not in stream.getvalue()
