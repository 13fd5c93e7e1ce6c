"""What happens at accept to a take whose true peak is over 0 dBTP: never silent clipping.

The editor asks (or uses the remembered answer): limit the take to -1 dBTP with the true-peak
limiter, gain it down so its true peak is -1 dBTP, or keep it as it is. The choice is made on
the take's own audio (after any loudness-match gain), before the crossfades of the splice, so
the samples outside the region are never touched. :func:`level_take` says what to splice and
what the history label adds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from sa3_studio.audio.true_peak import DEFAULT_CEILING_DBTP, limit_true_peak, true_peak_dbtp
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import SAMPLE_RATE

__all__ = [
    "CLIP_DBTP",
    "OVER_PEAK_SETTING",
    "LevelAnswer",
    "LeveledTake",
    "OverPeak",
    "level_take",
    "over_peak_from",
]

CLIP_DBTP = 0.0
"""A take whose true peak is above this clips: the editor asks what to do."""
OVER_PEAK_SETTING = "prefs/over_peak"
"""Where the remembered choice is kept (``ask``, ``limit``, ``gain`` or ``keep``)."""


class OverPeak(enum.StrEnum):
    """What to do with a take over 0 dBTP at accept."""

    ASK = "ask"
    LIMIT = "limit"
    GAIN = "gain"
    KEEP = "keep"


def over_peak_from(value: object) -> OverPeak:
    """A stored setting as a choice (anything unknown reads as ``ask``)."""
    try:
        return OverPeak(str(value))
    except ValueError:
        return OverPeak.ASK


@dataclass(frozen=True, slots=True)
class LevelAnswer:
    """The user's answer to the over-0-dBTP question.

    Attributes:
        choice: limit, gain or keep (never ask).
        remember: use this choice from now on without asking.
    """

    choice: OverPeak
    remember: bool = False


@dataclass(frozen=True, slots=True)
class LeveledTake:
    """What to splice for a take.

    Attributes:
        body: the audio to splice instead of the take's own (``None``: the take's own).
        gain_db: gain the splice applies to the take (when ``body`` is ``None``).
        peak_dbtp: the true peak the take would have had (after ``loudness_db``).
        after_dbtp: the true peak of what is spliced (before the crossfades).
        note: what the history label adds (``""`` when nothing was over 0 dBTP).
    """

    body: AudioData | None
    gain_db: float
    peak_dbtp: float
    after_dbtp: float
    note: str


def level_take(
    audio: AudioData,
    choice: OverPeak,
    *,
    loudness_db: float = 0.0,
    peak_dbtp: float | None = None,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
) -> LeveledTake:
    """The audio to splice for a take under ``choice``.

    Args:
        audio: the take's audio.
        choice: limit, gain or keep (``ask`` must be answered first).
        loudness_db: a loudness-match gain applied before the level is measured.
        peak_dbtp: the take's own true peak when already measured (before ``loudness_db``).
        ceiling_dbtp: where a limited or gained take peaks.

    Raises:
        ValueError: ``choice`` is ``ask``.
    """
    if choice is OverPeak.ASK:
        raise ValueError("answer the question first: limit, gain or keep")
    own = true_peak_dbtp(audio.samples) if peak_dbtp is None else peak_dbtp
    peak = own + loudness_db
    if peak <= CLIP_DBTP or choice is OverPeak.KEEP:
        note = f", kept at {peak:+.1f} dBTP" if peak > CLIP_DBTP else ""
        return LeveledTake(None, loudness_db, peak, peak, note)
    if choice is OverPeak.GAIN:
        gain = loudness_db + ceiling_dbtp - peak
        note = f", {gain:+.1f} dB to peak at {ceiling_dbtp:g} dBTP"
        return LeveledTake(None, gain, peak, ceiling_dbtp, note)
    scaled = audio.samples.astype(np.float64)
    if loudness_db:
        scaled = scaled * 10.0 ** (loudness_db / 20.0)
    limited = limit_true_peak(scaled, SAMPLE_RATE, ceiling_dbtp=ceiling_dbtp)
    body = AudioData.from_array(limited, copy=False)
    after = true_peak_dbtp(limited)
    note = f", limited from {peak:+.1f} to {ceiling_dbtp:g} dBTP"
    return LeveledTake(body, 0.0, peak, after, note)
