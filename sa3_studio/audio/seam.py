"""Seam score: does the spectrum jump at a splice more than it does around it?

For each boundary frame ``b`` of a spliced result we take short STFT frames (1024 samples,
Hann, hop 256) on a grid aligned to ``b`` over ``b +/- 1 s``. Each frame's power spectrum is
summed into 40 log-spaced bands from 40 Hz to Nyquist (band sums average out the random
bin-to-bin fluctuation of noisy material, which would otherwise hide a change of timbre) and
compressed as ``log1p(100 * band magnitude)``, with magnitudes scaled so a full-scale sine
peaks at 1 (the log keeps quiet bands from vanishing next to loud ones). Spectral flux is the
L1 distance between the compressed spectra of consecutive frames, summed over channels.
Flux pairs that see ``b`` (either frame contains the splice) measure the jump at the seam;
the others measure how much the material moves by itself.

    score = (max flux at the seam + floor) / (median flux around it + floor)

``floor`` is 1 % of the mean total compressed magnitude of a frame: without it a perfectly
steady tone (flux ~ 0 everywhere) would turn rounding noise into huge ratios.

Calibration (tests/unit/audio/test_seam.py and synthetic material): seamless audio scores
about 1 (steady tones, noise) and at most about 2.7 (a tone with strong vibrato and tremolo,
whose flux varies over time); a phase jump or a cut to another note scores in the hundreds, a
single-sample click tens, noise cut to a tone about 15. A seam is flagged ``bad`` above
:data:`SEAM_BAD_THRESHOLD` = 4.0. Gentle seams (a 6 dB level step in noise, a change of
brightness) score 2 to 3 and are not flagged.

Limitation: the score cannot tell a splice artefact from a natural onset that happens to sit
at the boundary (a drum hit right after a quiet passage scores high too). It is a hint that
tells the user where to listen, not a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sa3_studio.errors import EditError

SEAM_BAD_THRESHOLD = 4.0
N_FFT = 1024
HOP = 256
CONTEXT_S = 1.0
_COMPRESSION = 100.0
_N_BANDS = 40
_LOWEST_BAND_HZ = 40.0
_FLOOR_FRACTION = 0.01
# Fewer context flux values than this make the median meaningless.
_MIN_CONTEXT = 4


@dataclass(frozen=True, slots=True)
class SeamScore:
    """How much the spectrum jumps at one boundary.

    Attributes:
        frame: The boundary (first frame after the splice).
        score: Seam flux over context flux (see the module notes); NaN when there is too
            little audio around the boundary to judge.
        seam_flux: The largest spectral flux of the frame pairs that contain the boundary.
        context_flux: The median spectral flux of the frame pairs around it.
        bad: True when ``score`` exceeds the threshold.
    """

    frame: int
    score: float
    seam_flux: float
    context_flux: float
    bad: bool


def seam_scores(
    audio: npt.ArrayLike,
    boundaries: Sequence[int],
    sample_rate: int = 44100,
    *,
    context_s: float = CONTEXT_S,
    threshold: float = SEAM_BAD_THRESHOLD,
) -> list[SeamScore]:
    """Score every boundary of a spliced result.

    Args:
        audio: The spliced audio, (channels, frames) or (frames,).
        boundaries: Frames where one piece ends and the next begins (0 < b < frames).
        sample_rate: Sample rate in Hz.
        context_s: Seconds of audio on each side used as the reference.
        threshold: Score above which a seam is flagged bad.

    Returns:
        One :class:`SeamScore` per boundary, in the order given.

    Raises:
        EditError: A boundary lies outside the audio.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2:
        raise ValueError(f"audio must be (channels, frames) or (frames,), got {x.shape}")
    frames = x.shape[1]
    context = max(round(context_s * sample_rate), N_FFT)
    window = np.hanning(N_FFT).astype(np.float32)
    # Scale so a full-scale sine's bin peaks near 1.
    scale = np.float32(2.0 / float(window.sum()))
    bands = _band_starts(sample_rate)
    results: list[SeamScore] = []
    for b in boundaries:
        if not 0 < b < frames:
            raise EditError(
                f"The seam at frame {b} is outside the audio (0 to {frames}); "
                "check the splice boundaries."
            )
        results.append(_score_one(x, int(b), context, window, scale, bands, threshold))
    return results


def _score_one(
    x: npt.NDArray[np.float32],
    b: int,
    context: int,
    window: npt.NDArray[np.float32],
    scale: np.float32,
    bands: npt.NDArray[np.intp],
    threshold: float,
) -> SeamScore:
    frames = x.shape[1]
    # Frame starts on a grid through b (one frame ends exactly at b, another starts there),
    # every window inside both the audio and b +/- context.
    k_lo = -(min(context, b) // HOP)
    k_hi = (min(context, frames - b) - N_FFT) // HOP
    if k_hi <= k_lo:
        return SeamScore(b, math.nan, math.nan, math.nan, False)
    starts = b + HOP * np.arange(k_lo, k_hi + 1)  # (T,)
    seg = x[:, starts[0] : starts[-1] + N_FFT]  # (C, span)
    view = np.lib.stride_tricks.sliding_window_view(seg, N_FFT, axis=1)[:, ::HOP]  # (C, T, N)
    spectra = np.abs(np.fft.rfft(view * window, axis=2)) * scale  # (C, T, F)
    band_power = np.add.reduceat(spectra * spectra, bands, axis=2)  # (C, T, bands)
    compressed = np.log1p(_COMPRESSION * np.sqrt(band_power))  # (C, T, bands)
    flux = np.abs(np.diff(compressed, axis=1)).sum(axis=(0, 2))  # (T-1,): pair (t-1, t)
    # The splice lies between samples b-1 and b: a window holds it when it starts before b
    # and ends after it. A flux pair sees the seam when either of its frames holds it.
    holds = (starts < b) & (b < starts + N_FFT)  # (T,)
    sees = holds[:-1] | holds[1:]  # (T-1,)
    seam, around = flux[sees], flux[~sees]
    if seam.size == 0 or around.size < _MIN_CONTEXT:
        return SeamScore(b, math.nan, math.nan, math.nan, False)
    floor = _FLOOR_FRACTION * float(np.mean(compressed.sum(axis=(0, 2))))
    seam_flux = float(seam.max())
    context_flux = float(np.median(around))
    score = (seam_flux + floor) / (context_flux + floor) if floor + context_flux > 0 else 1.0
    return SeamScore(b, score, seam_flux, context_flux, score > threshold)


def _band_starts(sample_rate: int) -> npt.NDArray[np.intp]:
    """First rfft bin of each log-spaced band (bands narrower than a bin merge)."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    edges = np.geomspace(_LOWEST_BAND_HZ, sample_rate / 2.0, _N_BANDS + 1)
    starts = np.unique(np.clip(np.searchsorted(freqs, edges[:-1]), 1, freqs.size - 1))
    return starts.astype(np.intp)
