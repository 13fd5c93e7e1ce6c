"""Snapping helpers: latent frames, a beat grid, and zero crossings.

All positions are integer frames. The helpers only compute a snapped position; whether snapping is
on is view state (the GUI decides which helper to call).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from sa3_studio.document.constants import LATENT_FRAMES
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Track

SnapMode = Literal["nearest", "floor", "ceil"]
"""How to pick a grid line: the closest one, the one at or before, or the one at or after."""


def _pick(position: float, mode: SnapMode) -> int:
    if mode == "floor":
        return math.floor(position)
    if mode == "ceil":
        return math.ceil(position)
    if mode == "nearest":
        return math.floor(position + 0.5)  # halves go up, the same way in both directions
    raise ValueError(f"unknown snap mode {mode!r}")


def snap_to_latent(frame: int, *, latent: int = LATENT_FRAMES, mode: SnapMode = "nearest") -> int:
    """Snap a frame to a latent frame boundary (a multiple of ``latent``, 4096 for SA3).

    Regions that start and end on latent boundaries map exactly onto the model's latent mask.
    """
    if latent < 1:
        raise ValueError("latent must be positive")
    return _pick(frame / latent, mode) * latent


def snap_span_to_latent(start: int, end: int, *, latent: int = LATENT_FRAMES) -> tuple[int, int]:
    """Widen ``[start, end)`` outwards to latent boundaries, so the snapped span covers it."""
    return (
        snap_to_latent(start, latent=latent, mode="floor"),
        snap_to_latent(end, latent=latent, mode="ceil"),
    )


def snap_to_beat(
    frame: int, grid: BeatGrid, *, division: int = 1, mode: SnapMode = "nearest"
) -> int:
    """Snap a frame to the beat grid.

    Args:
        frame: the position.
        grid: tempo, first downbeat and metre.
        division: grid lines per beat (1 = beats, 2 = eighths in 4/4, 4 = sixteenths).
        mode: nearest line, the line at or before, or the line at or after.
    """
    if division < 1:
        raise ValueError("division must be at least 1")
    return grid.frame_at_beat(_pick(grid.beat_at(frame) * division, mode) / division)


def snap_to_bar(frame: int, grid: BeatGrid, *, mode: SnapMode = "nearest") -> int:
    """Snap a frame to the nearest bar line (or the one before/after with ``mode``)."""
    bars = _pick(grid.beat_at(frame) / grid.beats_per_bar, mode)
    return grid.frame_at_beat(bars * grid.beats_per_bar)


def nearest_zero_crossing(
    samples: npt.NDArray[np.float32], frame: int, *, limit: int | None = None
) -> int:
    """The zero crossing of ``samples`` closest to ``frame`` (indices into ``samples``).

    A crossing is where the channel sum changes sign (or is exactly zero); of the two samples
    around a sign change the one closer to zero is chosen. Ties go to the earlier frame.

    Args:
        samples: audio ``(channels, frames)``.
        frame: the position to start from, an index into ``samples``.
        limit: do not move more than this many frames (``None``: anywhere in ``samples``).

    Returns:
        The crossing, or ``frame`` when there is none within reach.
    """
    mono = np.asarray(samples, dtype=np.float64).sum(axis=0)  # (T,)
    n = mono.shape[0]
    if n == 0:
        return frame
    zero = np.flatnonzero(mono == 0.0)
    change = np.flatnonzero((mono[:-1] < 0) & (mono[1:] > 0) | (mono[:-1] > 0) & (mono[1:] < 0))
    # For each sign change between i and i+1 take whichever sample is nearer zero.
    closer = np.where(np.abs(mono[change]) <= np.abs(mono[change + 1]), change, change + 1)
    candidates = np.union1d(zero, closer)
    if candidates.size == 0:
        return frame
    distance = np.abs(candidates - frame)
    best = int(candidates[int(np.argmin(distance))])  # argmin picks the earliest on ties
    if limit is not None and abs(best - frame) > limit:
        return frame
    return best


def snap_to_zero_crossing(track: Track, frame: int, *, radius: int = 441) -> int:
    """Move ``frame`` to the nearest zero crossing of a track within ``radius`` frames.

    Gaps between clips are silence, so a frame in a gap is already a crossing.

    Args:
        track: the track to look at.
        frame: timeline position.
        radius: how far to look either way (default 10 ms).
    """
    lo = max(0, frame - radius)
    window = track.read(lo, frame + radius + 1)  # (C, T)
    return lo + nearest_zero_crossing(window, frame - lo, limit=radius)
