"""Real captured Spotify responses pass the same validation the emulator's responses must pass,
and fail it in exactly the documented ways when departures are not allowed."""

from __future__ import annotations

import json

import pytest

from spotify_emulator.validation import samples_dir, validate

SAMPLES = samples_dir() / "api"
# Which component each capture is an instance of (file name fragment -> component), first match wins.
KINDS = [
    ("top_50_artists", "PagingArtistObject"),
    ("related_artists", "ManyArtists"),
    ("GetSeveralArtists", "ManyArtists"),
    ("recently_played", "CursorPagingPlayHistoryObject"),
    ("RecentlyPlayed", "CursorPagingPlayHistoryObject"),
    ("artist", "ArtistObject"),
    ("Artist", "ArtistObject"),
    ("Profile", "PrivateUserObject"),
    ("_me", "PrivateUserObject"),
    ("rack", "TrackObject"),
]
FILES = sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason=f"real Spotify captures not found in {SAMPLES}")


def kind_of(name: str) -> str:
    return next(kind for fragment, kind in KINDS if fragment in name)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_capture_validates(path):
    validate(json.loads(path.read_text(encoding="utf-8")), kind_of(path.name))


def test_departures_are_needed():
    """Each allowed departure is actually exercised by a capture (else it should not be allowed)."""
    strict_failures = set()
    for path in FILES:
        try:
            validate(json.loads(path.read_text(encoding="utf-8")), kind_of(path.name), strict=True)
        except Exception as exc:
            strict_failures.add(path.name.split("_")[0] + ":" + str(list(exc.absolute_path)[-1]))
    assert any(f.endswith(":context") for f in strict_failures)
    assert any(f.endswith(":next") or f.endswith(":cursors") for f in strict_failures)
    assert any(f.endswith(":album") for f in strict_failures)
