"""Every real recently-played capture in the shared samples syncs through the same code path, over real HTTP."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from earworm.history.models import Play
from earworm.history.services.sync import history_sync

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[5] / "shared" / "samples" / "api"
CAPTURES = sorted(SAMPLES.glob("*recently*played*.json")) + sorted(SAMPLES.glob("*RecentlyPlayed*.json"))


@pytest.fixture
def sample_server(settings):
    body: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.path.startswith("/v1/me/player/recently-played")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body["page"])

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SPOTIFY_API_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield body
    server.shutdown()


@pytest.mark.skipif(not CAPTURES, reason="the shared samples/api folder is absent (samples/SOURCES.md)")
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.name)
def test_capture_syncs_without_error(sample_server, spotify_account, capture):
    sample_server["page"] = capture.read_bytes()
    items = json.loads(sample_server["page"])["items"]

    result = history_sync(account_id=spotify_account.pk)

    assert result.status == "ok"
    assert result.plays_seen == len(items)
    playable = [item for item in items if item.get("track") and item["track"].get("type", "track") == "track"]
    assert Play.objects.filter(user=spotify_account.user).count() == result.new_plays <= len(playable)
    assert result.new_plays > 0 or not playable
