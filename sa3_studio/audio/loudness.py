"""Loudness (ITU-R BS.1770-4, our own implementation), true peak and gain matching.

When a region is regenerated, the new audio should sit at the level of the audio around it.
:func:`match_gain` measures both with the gated integrated loudness of BS.1770-4 and returns
the gain that makes them equal, reduced where needed so the new audio's true peak (measured
on a 4x oversampled signal, as in BS.1770-4 Annex 2) stays under a ceiling. Anything that
cannot be measured (too short, silent) gives a gain of 1.0 and a sentence saying why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.resample import resample
from sa3_studio.document.loudness import integrated_loudness as bs1770_loudness

# BS.1770 gating blocks are 400 ms: anything shorter has no block to measure.
MIN_DURATION_S = 0.4
TRUE_PEAK_OVERSAMPLING = 4
DEFAULT_SAMPLE_RATE = 44100
# BS.1770 channel weights G_i for L, R, C, Ls, Rs (at most five channels are weighted).
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_MAX_CHANNELS = len(_CHANNEL_WEIGHTS)


@dataclass(frozen=True, slots=True)
class GainMatch:
    """The result of :func:`match_gain`.

    Attributes:
        gain: Linear gain to multiply the new audio by (1.0 when nothing could be measured).
        gain_db: The same gain in dB.
        reason: A sentence for the user saying what was measured and why this gain.
        new_lufs: Integrated loudness of the new audio, or None if it was not measured.
        reference_lufs: Integrated loudness of the surroundings, or None.
        true_peak_dbtp: True peak of the new audio before the gain, or None.
        limited: True when the true-peak ceiling (or the gain limit) reduced the gain.
    """

    gain: float
    gain_db: float
    reason: str
    new_lufs: float | None = None
    reference_lufs: float | None = None
    true_peak_dbtp: float | None = None
    limited: bool = False


def integrated_loudness(
    audio: npt.ArrayLike, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> float | None:
    """Gated integrated loudness (BS.1770-4) in LUFS.

    Args:
        audio: (channels, frames) or (frames,) samples, at most five channels.
        sample_rate: Sample rate in Hz.

    Returns:
        The loudness in LUFS; ``-inf`` when the audio is silent (every block is under the
        -70 LUFS absolute gate); None when it is shorter than one 400 ms gating block.
    """
    x = _channels_first(audio, "audio")
    if x.shape[1] < _min_frames(sample_rate):
        return None
    lufs = bs1770_loudness(x, sample_rate, _CHANNEL_WEIGHTS[: x.shape[0]])
    return lufs if math.isfinite(lufs) else -math.inf


def true_peak(audio: npt.ArrayLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float:
    """Linear true peak: the largest magnitude of the 4x oversampled signal.

    Args:
        audio: (channels, frames) or (frames,) samples.
        sample_rate: Sample rate in Hz.

    Returns:
        The peak (1.0 is full scale); never below the largest sample.
    """
    x = _channels_first(audio, "audio")
    if x.shape[1] == 0:
        return 0.0
    sample_peak = float(np.max(np.abs(x)))
    up = resample(x, sample_rate, sample_rate * TRUE_PEAK_OVERSAMPLING, quality="VHQ")
    return max(sample_peak, float(np.max(np.abs(up))))


def match_gain(
    new: npt.ArrayLike,
    reference_context: npt.ArrayLike | Sequence[npt.ArrayLike],
    true_peak_ceiling_db: float = -1.0,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_gain_db: float = 20.0,
) -> GainMatch:
    """Gain that brings ``new`` to the loudness of its surroundings, under a true-peak ceiling.

    Args:
        new: The new material, (channels, frames) or (frames,).
        reference_context: The audio around it: one array, or several (for example the
            audio before and after a region) measured as if joined.
        true_peak_ceiling_db: The new audio's true peak after the gain stays at or under this
            level in dBTP.
        sample_rate: Sample rate of both, in Hz.
        max_gain_db: The gain is kept within plus or minus this many dB, so a near-silent
            take is not boosted into noise.

    Returns:
        A :class:`GainMatch`; its gain is 1.0 with a reason when either side is too short
        or silent.
    """
    x = _channels_first(new, "new")
    ref = _join_context(reference_context, x.shape[0])
    tp = true_peak(x, sample_rate) if x.shape[1] else 0.0
    tp_db = _db(tp) if tp > 0 else None

    new_lufs = integrated_loudness(x, sample_rate)
    if new_lufs is None:
        return _unchanged(
            f"The new audio is shorter than {MIN_DURATION_S:g} s, too short to "
            "measure its loudness; its level was left unchanged.",
            tp_db=tp_db,
        )
    if new_lufs == -math.inf:
        return _unchanged(
            "The new audio is silent; its level was left unchanged.", new_lufs=new_lufs, tp_db=tp_db
        )
    ref_lufs = integrated_loudness(ref, sample_rate)
    if ref_lufs is None:
        return _unchanged(
            f"The surrounding audio is shorter than {MIN_DURATION_S:g} s, too "
            "short to measure; the new audio's level was left unchanged.",
            new_lufs=new_lufs,
            tp_db=tp_db,
        )
    if ref_lufs == -math.inf:
        return _unchanged(
            "The surrounding audio is silent, so there is no level to match; "
            "the new audio's level was left unchanged.",
            new_lufs=new_lufs,
            ref_lufs=ref_lufs,
            tp_db=tp_db,
        )

    wanted_db = ref_lufs - new_lufs
    gain_db = max(-max_gain_db, min(max_gain_db, wanted_db))
    limited = gain_db != wanted_db
    reason = (
        f"Matched the new audio ({new_lufs:.1f} LUFS) to its surroundings "
        f"({ref_lufs:.1f} LUFS) with {gain_db:+.1f} dB"
    )
    if limited:
        reason += f", the most this allows (a full match needs {wanted_db:+.1f} dB)"
    if tp_db is not None and tp_db + gain_db > true_peak_ceiling_db:
        gain_db = true_peak_ceiling_db - tp_db
        limited = True
        reason = (
            f"Raised the new audio ({new_lufs:.1f} LUFS) towards its surroundings "
            f"({ref_lufs:.1f} LUFS) by {gain_db:+.1f} dB only, so its true peak stays "
            f"under {true_peak_ceiling_db:.1f} dBTP (a full match needs {wanted_db:+.1f} dB)"
        )
    return GainMatch(
        gain=10.0 ** (gain_db / 20.0),
        gain_db=gain_db,
        reason=reason + ".",
        new_lufs=new_lufs,
        reference_lufs=ref_lufs,
        true_peak_dbtp=tp_db,
        limited=limited,
    )


def _unchanged(
    reason: str,
    *,
    new_lufs: float | None = None,
    ref_lufs: float | None = None,
    tp_db: float | None = None,
) -> GainMatch:
    return GainMatch(1.0, 0.0, reason, new_lufs, ref_lufs, tp_db, False)


def _join_context(
    context: npt.ArrayLike | Sequence[npt.ArrayLike], channels: int
) -> npt.NDArray[np.float64]:
    parts: list[npt.ArrayLike]
    if isinstance(context, list | tuple) and all(isinstance(c, np.ndarray) for c in context):
        parts = list(context)
    else:
        parts = [cast("npt.ArrayLike", context)]
    if not parts:
        raise ValueError("reference_context is empty")
    arrays = [_channels_first(p, "reference_context") for p in parts]
    for a in arrays:
        if a.shape[0] != channels:
            raise ValueError(
                f"reference_context has {a.shape[0]} channels but the new audio has {channels}"
            )
    # Gating blocks straddling a join see a step; with 400 ms blocks that is one block in
    # many, far below what moves the gated mean.
    return np.concatenate(arrays, axis=1) if len(arrays) > 1 else arrays[0]


def _channels_first(audio: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or not 1 <= x.shape[0] <= _MAX_CHANNELS:
        raise ValueError(f"{name} must be (channels <= 5, frames) or (frames,), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return x


def _min_frames(sample_rate: int) -> int:
    return math.ceil(MIN_DURATION_S * sample_rate)


def _db(linear: float) -> float:
    return 20.0 * math.log10(linear)
