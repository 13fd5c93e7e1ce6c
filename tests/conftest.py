"""Test-wide setup: offscreen Qt, the shared vectors, and a check that no test leaks a thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# Qt must never look for a display in tests: set this before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SA3_SHARED_DIR", REPO_ROOT.parent / "shared"))
VECTORS = SHARED / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The reference vectors made with the official implementation (../shared/vectors)."""
    if not VECTORS.is_dir():
        pytest.fail(f"reference vectors not found at {VECTORS}; set SA3_SHARED_DIR")
    return VECTORS


@pytest.fixture(scope="session")
def test_env_dir() -> Path:
    """../shared/test-env: the file-backed ALSA device for headless playback tests."""
    return SHARED / "test-env"


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail any test that leaves a Python thread running."""
    before = _live_threads()
    yield
    deadline = time.monotonic() + 2.0
    leaked = _live_threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.02)
        leaked = {t for t in leaked if t.is_alive()}
    if leaked:
        pytest.fail(f"test left threads running: {sorted(t.name for t in leaked)}")
