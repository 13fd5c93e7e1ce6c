"""The beat grid: tempo, first downbeat and metre, for snapping and bars:beats display."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sa3_studio.document.constants import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class BeatGrid:
    """A constant-tempo grid.

    Attributes:
        bpm: beats per minute (quarter notes when ``beats_per_bar`` counts quarters).
        offset: frame of the first downbeat (bar 1, beat 1); may be negative for a pickup.
        beats_per_bar: beats in one bar.
        sample_rate: frames per second the grid is expressed in.
    """

    bpm: float
    offset: int = 0
    beats_per_bar: int = 4
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if not (isinstance(self.bpm, int | float) and math.isfinite(self.bpm)):
            raise ValueError("the tempo must be a finite number")
        if not 1.0 <= self.bpm <= 999.0:
            raise ValueError(f"the tempo must be between 1 and 999 BPM, got {self.bpm}")
        if self.beats_per_bar < 1 or self.beats_per_bar > 64:
            raise ValueError(f"a bar must have 1 to 64 beats, got {self.beats_per_bar}")
        if self.sample_rate < 1:
            raise ValueError("the sample rate must be positive")

    @property
    def beat_frames(self) -> float:
        """Length of one beat in frames (not rounded)."""
        return self.sample_rate * 60.0 / self.bpm

    @property
    def bar_frames(self) -> float:
        """Length of one bar in frames (not rounded)."""
        return self.beat_frames * self.beats_per_bar

    def beat_at(self, frame: int) -> float:
        """Beats since the first downbeat at ``frame`` (0.0 at ``offset``; negative before it)."""
        return (frame - self.offset) / self.beat_frames

    def frame_at_beat(self, beat: float) -> int:
        """Frame of ``beat`` beats after the first downbeat, rounded to the nearest frame."""
        return self.offset + round(beat * self.beat_frames)
