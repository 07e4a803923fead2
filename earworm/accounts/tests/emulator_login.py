"""Drive the real login flow through the emulator's consent page with httpx (no browser)."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.test import Client


@dataclass(frozen=True)
class LoginTrace:
    response: object  # the Django callback response
    urls: list[str]  # every URL the "browser" visited, in order
    code: str | None


def login_via_emulator(
    client: Client, emulator, *, user_index: int = 0, agree: bool = True, next_url: str = ""
) -> LoginTrace:
    urls = []
    start = client.get("/api/login/", {"next": next_url} if next_url else {})
    authorize_url = start["Location"]
    urls.append(authorize_url)
    with httpx.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
        user_id = emulator.control.users()[user_index]["id"]
        form = {"request_id": request_id, "user": user_id, ("agree" if agree else "cancel"): "1"}
        consent = browser.post(f"{emulator.base_url}/authorize/consent", data=form)
    callback = consent.headers["location"]
    urls.append(callback)
    parts = urlsplit(callback)
    response = client.get(parts.path + "?" + parts.query)
    if response.status_code in (301, 302):
        urls.append(response["Location"])
    code = dict(p.split("=", 1) for p in parts.query.split("&")).get("code")
    return LoginTrace(response=response, urls=urls, code=code)
