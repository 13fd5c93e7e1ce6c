"""Fixtures of the document tests (builders live in doc_builders.py)."""

from __future__ import annotations

import pytest
from doc_builders import song

from sa3_studio.document.project import Project


@pytest.fixture
def project() -> Project:
    """Four seconds of stereo noise on one track."""
    return song()
