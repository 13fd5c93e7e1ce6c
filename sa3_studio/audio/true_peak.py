"""True-peak metering and a true-peak limiter (numpy only).

The meter follows ITU-R BS.1770-4 Annex 2: the signal is oversampled 4x and the largest
magnitude of the samples and of the points between them is the true peak, in dBTP. The
interpolation filter is a Kaiser-windowed sinc of 48 taps (12 per phase, beta 8) cutting off at
the original Nyquist frequency, each phase normalised to unity gain; it reads an fs/4 sine at
45 degrees (samples at -3.01 dBFS, waveform at 0 dB) within 0.01 dB. Only points between real
samples are measured: zeros beyond the ends would add ringing a spliced take never has.

:func:`limit_true_peak` brings a clip under a ceiling (-1 dBTP by default) with a look-ahead
gain curve: the gain each frame needs, a sliding minimum over the look-ahead, then a moving
average of half that width (which never rises above what any frame needs), applied to every
channel alike so the stereo image stays. :func:`gain_to_ceiling` is the plain alternative: one
gain for the whole clip.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_CEILING_DBTP",
    "OVERSAMPLING",
    "gain_to_ceiling",
    "limit_true_peak",
    "true_peak_dbtp",
    "true_peak_envelope",
]

OVERSAMPLING = 4
TAPS_PER_PHASE = 12
KAISER_BETA = 8.0
DEFAULT_CEILING_DBTP = -1.0
"""The usual ceiling before lossy encoding (EBU R 128, AES streaming recommendations)."""
FLOOR_DB = -200.0
"""What silence reads."""

FloatAudio = npt.NDArray[np.float32]


def _phases() -> npt.NDArray[np.float64]:
    """``(4, 12)``: the interpolation filter split into its phases; phase 0 is the identity."""
    n = OVERSAMPLING * TAPS_PER_PHASE
    k = np.arange(n) - n // 2  # centred on tap 24, so phase 0 passes the samples unchanged
    taps = np.sinc(k / OVERSAMPLING) * np.kaiser(n, KAISER_BETA)
    phases = taps.reshape(TAPS_PER_PHASE, OVERSAMPLING).T
    out: npt.NDArray[np.float64] = phases / phases.sum(axis=1, keepdims=True)
    return out


def _as_channels(audio: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(audio, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"audio must be (channels, frames) or (frames,), not {arr.shape}")
    return arr


def true_peak_envelope(audio: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per frame, the largest magnitude over every channel at that sample and at the three
    oversampled points up to the next sample: ``(frames,)``."""
    x = _as_channels(audio)
    env: npt.NDArray[np.float64] = np.abs(x).max(axis=0)
    frames = x.shape[1]
    if frames < TAPS_PER_PHASE:
        return env
    half = TAPS_PER_PHASE // 2  # the point of phase p from window i lies after sample i + 5
    for phase in _phases()[1:]:
        for channel in x:
            between = np.abs(np.convolve(channel, phase, mode="valid"))  # (frames - 11,)
            seg = env[half - 1 : half - 1 + between.size]  # a view: updated in place
            np.maximum(seg, between, out=seg)
    return env


def true_peak_dbtp(audio: npt.ArrayLike) -> float:
    """The true peak of a clip over all its channels, in dBTP (-200 for silence)."""
    env = true_peak_envelope(audio)
    peak = float(env.max()) if env.size else 0.0
    return max(20.0 * math.log10(peak), FLOOR_DB) if peak > 0 else FLOOR_DB


def gain_to_ceiling(audio: npt.ArrayLike, ceiling_dbtp: float = DEFAULT_CEILING_DBTP) -> float:
    """The gain (linear, at most 1) that brings the clip's true peak to ``ceiling_dbtp``."""
    peak_db = true_peak_dbtp(audio)
    return min(1.0, float(10.0 ** ((ceiling_dbtp - peak_db) / 20.0)))


def _sliding_min(values: npt.NDArray[np.float64], radius: int) -> npt.NDArray[np.float64]:
    """Minimum over ``[i - radius, i + radius]`` for every i (edges use what exists)."""
    if radius <= 0:
        return values.copy()
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    out: npt.NDArray[np.float64] = windows.min(axis=1)
    return out


def _moving_average(values: npt.NDArray[np.float64], radius: int) -> npt.NDArray[np.float64]:
    if radius <= 0:
        return values.copy()
    padded = np.pad(values, radius, mode="edge")
    cumsum = np.concatenate(([0.0], np.cumsum(padded)))
    width = 2 * radius + 1
    out: npt.NDArray[np.float64] = (cumsum[width:] - cumsum[:-width]) / width
    return out


def limit_true_peak(
    audio: npt.ArrayLike,
    sample_rate: int,
    *,
    ceiling_dbtp: float = DEFAULT_CEILING_DBTP,
    lookahead_ms: float = 2.0,
) -> FloatAudio:
    """A copy of ``audio`` (channels, frames) whose true peak is at most ``ceiling_dbtp``.

    Frames that stay under the ceiling, farther than the look-ahead from any that does not,
    come back unchanged; louder passages are turned down smoothly over ``lookahead_ms``. The
    result is float32, shaped like the input.

    Raises:
        ValueError: ``audio`` is not 1-D or 2-D, or the look-ahead or rate is not positive.
    """
    if sample_rate <= 0 or lookahead_ms <= 0:
        raise ValueError("sample_rate and lookahead_ms must be positive")
    source = np.asarray(audio)
    x = _as_channels(source)
    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    radius = max(1, round(lookahead_ms * 1e-3 * sample_rate))
    out = x
    for _ in range(4):  # a gain curve changes the points between samples a little: re-check
        env = true_peak_envelope(out)
        if env.size == 0 or float(env.max()) <= ceiling * (1 + 1e-6):
            break
        need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
        # Any frame within `radius` of a loud one gets at most that one's gain; the average
        # over +-radius/2 of that minimum is still at most what every frame needs.
        gain = _moving_average(_sliding_min(need, radius), radius // 2)
        gain = np.minimum(gain, need)
        out = out * gain[None, :]
    result = out.astype(np.float32)
    return result.reshape(source.shape) if source.ndim == 1 else result
