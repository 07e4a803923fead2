"""The newcomer's path (issue 8): `make run` on a clean clone, then demo mode in a real browser.

.ci/run starts `make run` in the background on its clean clone before anything else is installed (so the
README's first command creates the virtualenv), runs `make test`, then runs this test against the running
server with EARWORM_NEWCOMER_URL set. `make test` itself deselects it (marker `newcomer`): it needs that
server, which only the CI script starts.
"""

import os
import re
import time

import httpx
import pytest

pytestmark = pytest.mark.newcomer

SITE = os.environ.get("EARWORM_NEWCOMER_URL", "")
EMULATOR = os.environ.get("EARWORM_NEWCOMER_EMULATOR_URL", "http://127.0.0.1:8001")


def _number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text) or 0)


def test_demo_mode_login_sync_import_and_dashboard(page, screenshot, tmp_path):
    assert SITE, "set EARWORM_NEWCOMER_URL to the address `make run` serves (see .ci/run)"
    page.set_default_timeout(60_000)

    page.goto(SITE + "/")
    assert "Demo mode" in page.content()
    screenshot("newcomer-1-home")

    page.click("text=Log in with Spotify")
    page.wait_for_selector("#agree")
    user_id = page.input_value("#user")
    page.click("#agree")
    page.wait_for_selector("text=Your listening")

    # The first sync is queued at login and run by `make run`'s own consumer: nothing to press.
    deadline = time.monotonic() + 90
    while "new plays" not in page.inner_text("main") or "Last sync: not yet" in page.inner_text("main"):
        assert time.monotonic() < deadline, "no background sync within 90 s"
        time.sleep(2)
        page.reload()
    page.goto(SITE + "/?range=all")
    synced_plays = _number(page.inner_text(".tile-n >> nth=0"))
    screenshot("newcomer-2-synced")
    assert synced_plays > 0

    # The emulator's data export for the same listener, uploaded on /import/.
    export = tmp_path / "my_spotify_data.zip"
    export.write_bytes(httpx.get(f"{EMULATOR}/_emulator/users/{user_id}/export.zip", timeout=60).content)
    page.goto(SITE + "/import/")
    page.set_input_files("#files", str(export))
    page.click("button:has-text('Import')")
    # The page refreshes itself while the import runs (no JavaScript needed): just wait for the outcome.
    page.wait_for_selector(".import-status-done, .import-status-failed", timeout=240_000)
    screenshot("newcomer-3-imported")
    assert page.locator(".import-status-failed").count() == 0, page.inner_text("main")

    page.goto(SITE + "/?range=all")
    screenshot("newcomer-4-dashboard")
    all_plays = _number(page.inner_text(".tile-n >> nth=0"))
    assert all_plays > synced_plays + 1000, (synced_plays, all_plays)
