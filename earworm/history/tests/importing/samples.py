"""Where the shared real export samples are (never copied into the repo: samples/SOURCES.md)."""

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("EARWORM_SHARED_DIR") or Path(__file__).resolve().parents[4] / ".." / "shared")
EXPORTS = SHARED.resolve() / "samples" / "exports"


def sample_files() -> list[Path]:
    return sorted(EXPORTS.rglob("*.json")) if EXPORTS.is_dir() else []


def skip_without_samples() -> None:
    if not sample_files():
        pytest.skip(f"the shared samples are absent ({EXPORTS}); set EARWORM_SHARED_DIR to the shared folder")
