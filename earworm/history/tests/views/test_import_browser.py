"""Upload the emulator's export zip on /import/ in a real browser, watch it finish, see the counts (issue 6)."""

import pytest
from django.conf import settings
from django.test import Client

from earworm.accounts.tests.factories import SpotifyAccountFactory
from earworm.history import tasks
from earworm.history.models import ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

RECORDS = 3_000


@pytest.fixture
def signed_in(page, live_server):
    """A page signed in as a new listener (the login flow itself has its own browser test)."""
    account = SpotifyAccountFactory(display_name="Ada")
    client = Client()
    client.force_login(account.user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return account


def test_upload_the_export_zip_and_watch_it_finish(
    page, live_server, signed_in, spotify_emulator, screenshot, tmp_path, settings, mocker
):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    user = spotify_emulator.control.users()[0]["id"]
    export = tmp_path / "my_spotify_data.zip"
    export.write_bytes(spotify_emulator.control.export_zip_bytes(user, records=RECORDS))
    # Hold the queued task, as a busy worker would, so the page can be seen waiting; the test runs it below.
    queued = mocker.patch("earworm.history.services.uploads._enqueue")

    page.goto(live_server.url + "/import/")
    assert page.locator("text=At most 200 MB").count() == 1
    screenshot("import-empty")

    page.set_input_files("#files", str(export))
    page.click("button:has-text('Import')")
    page.wait_for_selector(".import-status-pending")
    assert "Uploaded my_spotify_data.zip" in page.content()
    assert page.locator("#files").is_disabled()
    screenshot("import-waiting")
    job = ImportJob.objects.get(user=signed_in.user)
    queued.assert_called_once_with(job.pk)

    # The worker picks it up; the page refreshes itself (Refresh header, no JavaScript needed) and shows the end.
    tasks.history_import.call_local(job.pk)
    page.wait_for_selector(".import-status-done", timeout=15_000)
    job.refresh_from_db()
    assert job.plays_added > 2000 and job.errors == []
    text = page.inner_text(f"#import-{job.pk}")
    assert f"{job.plays_added:,}" in text and "plays added" in text
    assert "played under 30 seconds" in text and "podcast episodes" in text
    metadata = page.inner_text("#metadata")
    assert "tracks have full metadata; next batch at" in metadata
    assert not list((tmp_path / "imports").iterdir())
    screenshot("import-done")

    # Statistics from the export's names right away.
    page.goto(live_server.url + "/?range=all")
    page.wait_for_selector("text=Your listening")
    screenshot("import-dashboard-after")


def test_a_running_import_shows_its_progress(page, live_server, signed_in, screenshot):
    ImportJob.objects.create(
        user=signed_in.user,
        status="running",
        original_name="my_spotify_data.zip",
        files_total=4,
        files_done=["0:a", "1:b"],
        records_done=24_000,
        plays_added=19_512,
        skipped={"short_play": 3_900, "duplicate": 310, "episode": 278},
        unresolved=12,
    )
    response = page.goto(live_server.url + "/import/")
    assert response.headers.get("refresh") == "3"
    assert "File 3 of 4" in page.inner_text(".import-job")
    assert page.locator("text=An import is in progress").count() == 1
    screenshot("import-running")


def test_files_over_the_limit_are_flagged_before_sending(page, live_server, signed_in, screenshot, settings, tmp_path):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1024 * 1024
    big = tmp_path / "Streaming_History_Audio_2020.json"
    big.write_bytes(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    page.goto(live_server.url + "/import/")
    page.set_input_files("#files", str(big))
    warning = page.locator(".import-too-large")
    warning.wait_for(state="visible")
    assert warning.inner_text() == "These files are 3 MB together; the limit is 1 MB."
    assert page.locator("button:has-text('Import')").is_disabled()
    screenshot("import-too-large")
