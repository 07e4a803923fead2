from datetime import UTC, datetime, timedelta, timezone

import pytest

from earworm.spotify.errors import (
    SpotifyAuthError,
    SpotifyBadRequest,
    SpotifyBadResponse,
    SpotifyError,
    SpotifyForbidden,
    SpotifyInvalidClient,
    SpotifyInvalidGrant,
    SpotifyNotFound,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
    body_snippet,
    parse_retry_after,
)

NOW = datetime(2026, 4, 20, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-5", 0.0),
        ("999999", 3600.0),
        ("99999999999999999999", 3600.0),
        ("abc", 30.0),
        ("", 30.0),
        (None, 30.0),
        ("1e3", 30.0),
        ("inf", 30.0),
        ("NaN", 30.0),
        ("Mon, 20 Apr 2026 11:00:00 GMT", 0.0),  # in the past
        ("Mon, 20 Apr 2026 12:00:10 GMT", 10.0),
        ("Tue, 21 Apr 2026 12:00:00 GMT", 3600.0),  # a day ahead, capped
        ("Mon, 32 Apr 2026 12:00:00 GMT", 30.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates_within_bounds(value: str | None, expected: float) -> None:
    """RL-2/RL-3: seconds or HTTP-date; negative or past → 0; unparsable → default; over the cap → cap."""
    assert parse_retry_after(value, now=NOW, cap=3600.0) == pytest.approx(expected)


def test_parse_retry_after_caps_the_default_too() -> None:
    assert parse_retry_after(None, now=NOW, default=120.0, cap=60.0) == 60.0


def test_parse_retry_after_reads_a_naive_now_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Mon, 20 Apr 2026 12:00:10 GMT", now=naive, cap=60.0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("error", "permanent", "status"),
    [
        (SpotifyAuthError(), False, 401),
        (SpotifyInvalidGrant(), True, 400),
        (SpotifyInvalidClient(), True, 400),
        (SpotifyForbidden(), True, 403),
        (SpotifyNotFound(), True, 404),
        (SpotifyBadRequest(), True, 400),
        (SpotifyRateLimited(3.0), False, None),
        (SpotifyQuotaExceeded(10.0, NOW), False, None),
        (SpotifyUnavailable(), False, None),
        (SpotifyBadResponse(), True, None),
    ],
)
def test_each_error_says_whether_retrying_can_help(error: SpotifyError, permanent: bool, status: int | None) -> None:
    assert isinstance(error, SpotifyError)
    assert error.permanent is permanent
    assert error.status == status
    assert error.message == str(error)
    assert error.message.endswith(".")


def test_invalid_grant_is_a_permanent_auth_error_but_invalid_client_is_not_an_auth_error() -> None:
    """STYLE.md §5: a permanent auth error means re-login; a broken client secret must not log everyone out."""
    assert isinstance(SpotifyInvalidGrant(), SpotifyAuthError)
    assert not isinstance(SpotifyInvalidClient(), SpotifyAuthError)


def test_quota_and_rate_limit_are_separate_classes() -> None:
    """A task catching SpotifyRateLimited first must not swallow the quota pause."""
    assert not isinstance(SpotifyQuotaExceeded(1.0, NOW), SpotifyRateLimited)


def test_quota_exceeded_needs_an_aware_resume_time() -> None:
    with pytest.raises(ValueError):
        SpotifyQuotaExceeded(1.0, NOW.replace(tzinfo=None))
    other_zone = NOW.astimezone(timezone(timedelta(hours=2)))
    assert "12:00 UTC" in SpotifyQuotaExceeded(1.0, other_zone).message


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_retry_after_must_be_finite_and_non_negative(bad: float) -> None:
    with pytest.raises(ValueError):
        SpotifyRateLimited(bad)
    with pytest.raises(ValueError):
        SpotifyQuotaExceeded(bad, NOW)


def test_body_snippet_redacts_tokens_escapes_control_characters_and_truncates() -> None:
    body = b'{"access_token": "BQD-secret", "refresh_token":"AQB-secret", "x": "line1\r\nFAKE LOG LINE"}' + b"y" * 1000
    snippet = body_snippet(body)
    assert "secret" not in snippet
    assert "[redacted]" in snippet
    assert "\n" not in snippet and "\r" not in snippet
    assert len(snippet) <= 200


def test_body_snippet_redacts_form_encoded_tokens() -> None:
    assert "AQB" not in body_snippet("grant_type=refresh_token&refresh_token=AQB-secret")


def test_body_snippet_of_nothing_is_empty() -> None:
    assert body_snippet(None) == ""
    assert body_snippet(b"") == ""
