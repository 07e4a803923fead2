"""Rate limit, quota and injected faults: exact status, headers and body."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from spotify_emulator.validation import validate

from .conftest import bearer, login

RATE_BODY = {"error": {"status": 429, "message": "API rate limit exceeded"}}
QUOTA_BODY = {"error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}}


def test_rolling_window_rate_limit(emu, http, token):
    emu.control.set_config(rate_limit=3, rate_window_seconds=30)
    for _ in range(3):
        assert http.get("/v1/me", headers=bearer(token)).status_code == 200
    resp = http.get("/v1/me", headers=bearer(token))
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "30"
    assert resp.json() == RATE_BODY
    validate(resp.json(), "TooManyRequests")
    emu.control.advance_clock(10)
    assert http.get("/v1/me", headers=bearer(token)).headers["Retry-After"] == "20"
    emu.control.advance_clock(20)
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_daily_quota(emu, http, token):
    emu.control.set_config(quota_per_day=2)
    for _ in range(2):
        assert http.get("/v1/me", headers=bearer(token)).status_code == 200
    resp = http.get("/v1/me", headers=bearer(token))
    assert resp.status_code == 429
    assert resp.json() == QUOTA_BODY
    assert int(resp.headers["Retry-After"]) >= 3600  # hours, like the real quota
    validate(resp.json(), "TooManyRequests")
    emu.control.advance_clock(86_401)
    fresh = http.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                      auth=("earworm-demo-client", "earworm-demo-secret")).json()  # fmt: skip
    assert http.get("/v1/me", headers=bearer(fresh)).status_code == 200


@pytest.mark.parametrize(("kind", "body"), [("429", RATE_BODY), ("quota", QUOTA_BODY)])
def test_injected_429s(emu, http, token, kind, body):
    emu.control.inject_fault(kind, endpoint="recently-played", count=2, retry_after=7)
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200  # other endpoints unaffected
    for _ in range(2):
        resp = http.get("/v1/me/player/recently-played", headers=bearer(token))
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "7" and resp.json() == body
    assert http.get("/v1/me/player/recently-played", headers=bearer(token)).status_code == 200
    assert emu.control.counters()["statuses"]["recently-played"] == {"429": 2, "200": 1}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_5xx(emu, http, token, status):
    emu.control.inject_fault(str(status), endpoint="me")
    resp = http.get("/v1/me", headers=bearer(token))
    assert resp.status_code == status
    assert resp.json()["error"]["status"] == status
    validate(resp.json()["error"], "ErrorObject")
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_injected_5xx_on_token_endpoint(emu, http, token):
    emu.control.inject_fault("503", endpoint="token")
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    auth = ("earworm-demo-client", "earworm-demo-secret")
    assert http.post("/api/token", data=data, auth=auth).status_code == 503
    assert http.post("/api/token", data=data, auth=auth).status_code == 200


def test_malformed_json(emu, http, token):
    emu.control.inject_fault("malformed_json", endpoint="recently-played")
    resp = http.get("/v1/me/player/recently-played", headers=bearer(token))
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


def test_truncated_body(emu, http, token):
    emu.control.inject_fault("truncated", endpoint="me")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/me", headers=bearer(token))
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_timeout(emu, http, token):
    emu.control.inject_fault("timeout", endpoint="me", delay_seconds=1.5)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/me", headers=bearer(token), timeout=0.5)
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_fraction_of_calls(emu, http, token):
    emu.control.inject_fault("500", endpoint="me", fraction=0.5)
    statuses = [http.get("/v1/me", headers=bearer(token)).status_code for _ in range(40)]
    assert 5 <= statuses.count(500) <= 35 and statuses.count(200) + statuses.count(500) == 40
    emu.control.clear_faults()
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200


def test_counters_per_endpoint_client_user(emu, http, token, users):
    http.get("/v1/me", headers=bearer(token))
    http.get("/v1/me/player/recently-played", headers=bearer(token))
    c = emu.control.counters()
    assert c["calls"]["me"] == 1 and c["calls"]["recently-played"] == 1
    assert c["by_client"]["earworm-demo-client"]["me"] == 1
    assert c["by_user"][users[0]["id"]] == {"me": 1, "recently-played": 1}
    assert c["token_grants"]["authorization_code"] == 1


def test_overlapping_requests_of_one_user_are_counted(emu, http, token, users):
    with httpx.Client(base_url=emu.base_url, timeout=10) as browser:  # a browser of its own: another login
        other = login(browser, users[1]["id"])
    emu.control.inject_fault("timeout", endpoint="recently-played", count=1, delay_seconds=1.0)
    url = emu.base_url + "/v1/me/player/recently-played"
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(httpx.get, url, headers=bearer(token), timeout=10)
        deadline = time.monotonic() + 5
        while emu.control.counters()["calls"].get("recently-played", 0) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert http.get("/v1/me", headers=bearer(other)).status_code == 200  # another user: no overlap
        assert http.get("/v1/me", headers=bearer(token)).status_code == 200  # same user, while the slow one waits
        assert slow.result().status_code == 200
    assert http.get("/v1/me", headers=bearer(token)).status_code == 200  # after it: sequential, no overlap
    c = emu.control.counters()
    assert c["overlaps_by_user"] == {users[0]["id"]: 1}
    assert c["max_concurrent_by_user"] == {users[0]["id"]: 2, users[1]["id"]: 1}


def test_bad_fault_rejected(emu):
    with pytest.raises(httpx.HTTPStatusError):
        emu.control.inject_fault("explode")
