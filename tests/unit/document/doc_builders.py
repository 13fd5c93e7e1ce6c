"""Builders shared by the document tests: deterministic stereo audio and small projects."""

from __future__ import annotations

import numpy as np

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.project import Project, ProjectMeta


def noise(frames: int, seed: int = 0, level: float = 0.5) -> AudioData:
    """Deterministic stereo noise, ``(2, frames)``."""
    rng = np.random.default_rng(seed)
    return AudioData.from_array(rng.uniform(-level, level, size=(2, frames)).astype(np.float32))


def ramp(frames: int, start: float = 0.0) -> AudioData:
    """A stereo ramp whose sample values identify their frame (right channel negated)."""
    left = (start + np.arange(frames, dtype=np.float64)) / 1_000_000.0
    return AudioData.from_array(np.stack([left, -left]).astype(np.float32))


def song(frames: int = 44100 * 4, seed: int = 0) -> Project:
    """A one-track project holding noise."""
    return Project.from_audio(noise(frames, seed), ProjectMeta(title="test song"))
