"""Real Spotify captures from the shared samples folder parse with `types.py` (samples/SOURCES.md).

The captures are never copied into the repository: they are read from `<repo>/../shared/samples/api/` or from
`$EARWORM_SHARED_DIR/samples/api/`, and the tests skip with the reason when that folder is absent.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from earworm.spotify.client import parse_model
from earworm.spotify.types import ArtistData, PlayHistoryPage, SpotifyModel, TrackData, UserProfile

REPO = Path(__file__).resolve().parents[3]


def _samples_dir() -> Path:
    shared = os.environ.get("EARWORM_SHARED_DIR")
    base = Path(shared) if shared else REPO.parent / "shared"
    return base / "samples" / "api"


SAMPLES = _samples_dir()


class _Artists(SpotifyModel):
    artists: list[ArtistData | None]


class _ArtistPage(SpotifyModel):
    items: list[ArtistData]


# File-name patterns → the model that endpoint's answer must parse into (samples/SOURCES.md, "api/").
KINDS: list[tuple[str, type[SpotifyModel]]] = [
    ("recently_played", PlayHistoryPage),
    ("RecentlyPlayed", PlayHistoryPage),
    ("top_50_artists", _ArtistPage),
    ("related_artists", _Artists),
    ("SeveralArtists", _Artists),
    ("artist", ArtistData),
    ("Artist", ArtistData),
    ("track", TrackData),
    ("Track", TrackData),
    ("_me.json", UserProfile),
    ("UsersProfile", UserProfile),
]


def _model_for(name: str) -> type[SpotifyModel] | None:
    return next((model for pattern, model in KINDS if pattern in name), None)


def _sample_names() -> list[Any]:
    if not SAMPLES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared samples folder not found at {SAMPLES}"))]
    return sorted(path.name for path in SAMPLES.glob("*.json"))


@pytest.mark.parametrize("name", _sample_names())
def test_every_capture_parses(name: str) -> None:
    model = _model_for(name)
    if model is None:
        pytest.skip(f"{name} is not a recently-played, artist, track or /me capture")
    data = json.loads((SAMPLES / name).read_text(encoding="utf-8"))

    parsed = parse_model(model, data)

    if isinstance(parsed, PlayHistoryPage):
        assert all(item.played_at.tzinfo is not None for item in parsed.items)
        if parsed.items:
            assert any(item.track is not None for item in parsed.items)
    if isinstance(parsed, UserProfile):
        assert parsed.link_key


def test_the_samples_cover_each_endpoint_kind() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples folder not found at {SAMPLES}")
    kinds = {_model_for(path.name) for path in SAMPLES.glob("*.json")}
    assert {PlayHistoryPage, ArtistData, TrackData, UserProfile} <= kinds
