"""Output level of new audio: a true-peak limit or one gain to -1 dBTP, before the splice.

:func:`level_audio` is applied to each region's new audio (or a whole new clip) before it is
crossfaded into the source, so the samples outside the regions stay the source's own, bit for
bit. Audio whose true peak is already at or under the ceiling comes back unchanged.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.true_peak import (
    DEFAULT_CEILING_DBTP,
    gain_to_ceiling,
    limit_true_peak,
    true_peak_dbtp,
)

__all__ = ["Level", "level_audio"]


class Level(enum.StrEnum):
    """What to do with new audio whose true peak is over the ceiling (-1 dBTP)."""

    KEEP = "keep"
    LIMIT = "limit"
    GAIN = "gain"


def level_audio(
    audio: npt.NDArray[np.float32],
    rate: int,
    level: Level,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
) -> npt.NDArray[np.float32]:
    """``audio`` (channels, frames) with its true peak at most ``ceiling_dbtp`` (unless keep).

    Raises:
        ValueError: ``rate`` is not positive.
    """
    if level is Level.KEEP or audio.size == 0 or true_peak_dbtp(audio) <= ceiling_dbtp:
        return audio
    if level is Level.GAIN:
        gain = gain_to_ceiling(audio, ceiling_dbtp)
        out: npt.NDArray[np.float32] = (audio.astype(np.float64) * gain).astype(np.float32)
        return out
    return limit_true_peak(audio, rate, ceiling_dbtp=ceiling_dbtp)
