"""Run the emulator as a subprocess from tests (the Django app's and our own).

    with EmulatorProcess(seed=3, extra_args=["--frozen-clock"]) as emu:
        settings.SPOTIFY_ACCOUNTS_URL = emu.accounts_url
        settings.SPOTIFY_API_URL = emu.api_url
        emu.control.advance_clock(3600)
        truth = emu.control.ground_truth(emu.control.users()[0]["id"])

Needs httpx (a dev dependency); the emulator itself does not.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from .state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Control:
    """httpx client for ``/_emulator/``. Every method raises on a non-2xx answer."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/_emulator", timeout=timeout)

    def _json(self, resp: httpx.Response) -> Any:
        resp.raise_for_status()
        return resp.json()

    def info(self) -> dict[str, Any]:
        return self._json(self.http.get("/"))

    def reset(self) -> dict[str, Any]:
        return self._json(self.http.post("/reset"))

    def now_ms(self) -> int:
        return int(self._json(self.http.get("/clock"))["now_ms"])

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._json(self.http.post("/clock", json={"advance_seconds": seconds}))

    def set_clock(self, when: int | str) -> dict[str, Any]:
        return self._json(self.http.post("/clock", json={"set": when}))

    def users(self) -> list[dict[str, Any]]:
        return self._json(self.http.get("/users"))["users"]

    def play(
        self,
        user_id: str,
        plays: list[dict[str, Any]] | None = None,
        *,
        simulate_minutes: float | None = None,
        rate: float = 1.0,
        advance_clock: bool = False,
    ) -> list[dict[str, Any]]:
        """Explicit plays (``{"track_id", "played_at", "ms_played"?, "context"?}``) or simulated listening."""
        body: dict[str, Any] = {"advance_clock": advance_clock}
        if simulate_minutes is not None:
            body.update(simulate_minutes=simulate_minutes, rate=rate)
        else:
            body["plays"] = plays or []
        return self._json(self.http.post(f"/users/{user_id}/play", json=body))["added"]

    def inject_fault(self, kind: str, endpoint: str = "*", **options: Any) -> dict[str, Any]:
        """``kind`` in 429, quota, 500, 502, 503, timeout, malformed_json, truncated, revoked_refresh,
        expired_consent; options: count, fraction, retry_after, delay_seconds."""
        return self._json(self.http.post("/faults", json={"kind": kind, "endpoint": endpoint, **options}))

    def clear_faults(self) -> None:
        self._json(self.http.delete("/faults"))

    def counters(self) -> dict[str, Any]:
        return self._json(self.http.get("/counters"))

    def ground_truth(self, user_id: str, source: str | None = None, records: int | None = None) -> list[dict]:
        params: dict[str, Any] = {}
        if source:
            params["source"] = source
        if records is not None:
            params["records"] = records
        return self._json(self.http.get(f"/users/{user_id}/plays", params=params))["plays"]

    def set_config(self, **settings: Any) -> dict[str, Any]:
        """e.g. ``mode="extended"``, ``rate_limit=5``, ``refresh_policy="rotate"``, ``allow_list={uid: False}``."""
        return self._json(self.http.patch("/config", json=settings))

    def config(self) -> dict[str, Any]:
        return self._json(self.http.get("/config"))

    def revoke(self, user_id: str) -> dict[str, Any]:
        return self._json(self.http.post(f"/users/{user_id}/revoke"))

    def export_zip_bytes(self, user_id: str, records: int | None = None) -> bytes:
        params = {"records": records} if records is not None else {}
        resp = self.http.get(f"/users/{user_id}/export.zip", params=params)
        resp.raise_for_status()
        return resp.content

    def close(self) -> None:
        self.http.close()


class EmulatorProcess:
    """Start ``python -m spotify_emulator`` on a free port; stop it on exit."""

    def __init__(
        self,
        seed: int = 1,
        mode: str = "development",
        extra_args: list[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        python: str = sys.executable,
        startup_timeout: float = 20.0,
    ) -> None:
        self.seed, self.mode, self.host = seed, mode, host
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.client_id, self.client_secret = client_id, client_secret
        self.python, self.startup_timeout = python, startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self._control: Control | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accounts_url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def control(self) -> Control:
        if self._control is None:
            self._control = Control(self.base_url)
        return self._control

    def consent(self, authorize_url: str, user_id: str, agree: bool = True) -> str:
        """Open an ``/authorize`` URL the app built, press Agree (or Cancel) as ``user_id``;
        return the callback URL (with ``code``/``state`` or ``error``) the browser would follow."""
        with httpx.Client(timeout=10) as client:
            page = client.get(authorize_url)
            if page.status_code in (302, 303):
                return page.headers["location"]
            match = re.search(r'name="request_id" value="([^"]+)"', page.text)
            if page.status_code != 200 or match is None:
                raise RuntimeError(f"authorize failed ({page.status_code}): {page.text[:300]}")
            form = {"request_id": match.group(1), "user": user_id, ("agree" if agree else "cancel"): "1"}
            return client.post(f"{self.base_url}/authorize/consent", data=form).headers["location"]

    def start(self) -> EmulatorProcess:
        args = [self.python, "-m", "spotify_emulator", "--host", self.host, "--port", str(self.port),
                "--seed", str(self.seed), "--mode", self.mode, *self.extra_args]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + self.startup_timeout
        assert self.proc.stdout is not None
        output = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("READY "):
                break
        try:
            httpx.get(f"{self.base_url}/_emulator/clock", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            self.stop()
            raise RuntimeError(f"emulator did not start: {''.join(output)}") from exc
        # Keep draining stdout (errors are printed there) so the pipe never fills up.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        proc = self.proc
        if proc is not None and proc.stdout is not None:
            for line in proc.stdout:
                if re.search(r"error", line, re.I):
                    sys.stderr.write(f"[spotify_emulator] {line}")

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
