"""Fixtures: one emulator process per test session (per xdist worker), reset before every test."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from spotify_emulator.testing import EmulatorProcess

START = "2026-06-01T12:00:00Z"
REDIRECT = "http://127.0.0.1:8000/api/callback/"
SCOPE = "user-read-recently-played user-read-private"


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(seed=7, extra_args=["--frozen-clock", "--start", START]) as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorProcess) -> EmulatorProcess:
    emulator.control.reset()
    return emulator


@pytest.fixture
def http(emu: EmulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, timeout=10) as client:
        yield client


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: httpx.Client, user_id: str, *, agree: bool = True, **params: str) -> httpx.Response:
    """GET /authorize, then submit the consent form; returns the redirect response."""
    query = {"client_id": "earworm-demo-client", "response_type": "code", "redirect_uri": REDIRECT,
             "scope": SCOPE, "state": "st4te", **params}  # fmt: skip
    page = http.get("/authorize", params=query)
    if page.status_code != 200 or "request_id" not in page.text:
        return page
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"request_id": request_id, "user": user_id, ("agree" if agree else "cancel"): "1"}
    return http.post("/authorize/consent", data=form)


def code_from(resp: httpx.Response) -> str:
    return re.search(r"[?&]code=([^&]+)", resp.headers["location"]).group(1)  # type: ignore[union-attr]


def login(http: httpx.Client, user_id: str, scope: str = SCOPE) -> dict[str, Any]:
    code = code_from(authorize(http, user_id, scope=scope))
    resp = http.post("/api/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                     auth=("earworm-demo-client", "earworm-demo-secret"))  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.json()


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def users(emu: EmulatorProcess) -> list[dict[str, Any]]:
    return emu.control.users()


@pytest.fixture
def token(http: httpx.Client, users: list[dict[str, Any]]) -> dict[str, Any]:
    return login(http, users[0]["id"])
