"""Shared fixtures.

Tests that need the reference data in ``../shared/data`` use the ``shared_data`` fixture: it
skips with a reason when the folder is absent, and fails instead when
``MUSIC_STUDY_REQUIRE_SHARED_DATA=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.paths import project_root, shared_data_dir

REQUIRE_SHARED = os.environ.get("MUSIC_STUDY_REQUIRE_SHARED_DATA") == "1"


def require_shared(*relative: str) -> Path:
    """Return ``../shared/data/<relative>``; skip (or fail under CI) when it is absent."""
    base = shared_data_dir()
    path = base.joinpath(*relative) if base else None
    if path is None or not path.exists():
        reason = f"reference data {'/'.join(('../shared/data',) + relative)} is not present"
        if REQUIRE_SHARED:
            pytest.fail(f"{reason} (MUSIC_STUDY_REQUIRE_SHARED_DATA=1)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder ``../shared/data``."""
    return require_shared()


@pytest.fixture(scope="session")
def gtzan_audio_dir() -> Path:
    """The 10 real GTZAN clips, ``<genre>/<genre>.00000.wav``."""
    return require_shared("gtzan", "audio")


@pytest.fixture(scope="session")
def root() -> Path:
    """The checkout root."""
    return project_root()


@pytest.fixture(scope="session")
def shipped_songs(root) -> list[Path]:
    """The openly licensed whole songs shipped in data/music."""
    return sorted((root / "data" / "music").glob("*.ogg"))
