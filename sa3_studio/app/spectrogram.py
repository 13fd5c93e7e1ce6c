"""Spectrogram of the visible span, computed off the GUI thread at screen resolution.

One FFT frame per pixel column, centred on the column; rows are log-spaced in frequency (a
musician reads octaves, not hertz) and values are decibels mapped to 0..1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Reader = Callable[[int, int], FloatArray]
"""``read(start, end) -> (channels, end - start)`` samples of the song."""

N_FFT = 2048
ROWS = 256
FLOOR_DB = -96.0
MIN_HZ = 30.0


@dataclass(frozen=True, slots=True)
class Spectrogram:
    """A spectrogram ready to draw.

    Attributes:
        image: ``(columns, rows)`` in 0..1; row 0 is the lowest frequency.
        start: seconds of the first column's left edge.
        end: seconds of the last column's right edge.
        min_hz: frequency of row 0.
        max_hz: frequency of the last row.
    """

    image: FloatArray
    start: float
    end: float
    min_hz: float = MIN_HZ
    max_hz: float = 22050.0


def _windows(read: Reader, length: int, centres: npt.NDArray[np.int64], n_fft: int) -> FloatArray:
    """``(columns, n_fft)`` mono frames around ``centres`` (zeros outside the song)."""
    half = n_fft // 2
    cols = centres.shape[0]
    lo = int(centres[0]) - half
    hi = int(centres[-1]) + half
    span = hi - lo
    out = np.zeros((cols, n_fft), dtype=np.float32)
    if span <= 4 * cols * n_fft:
        # Overlapping or close windows: read the span once.
        a, b = max(lo, 0), min(hi, length)
        if b <= a:
            return out
        mono = read(a, b).mean(axis=0)  # (T,)
        padded = np.zeros(span, dtype=np.float32)
        padded[a - lo : b - lo] = mono
        idx = (centres - half - lo)[:, None] + np.arange(n_fft)[None, :]
        return padded[idx]
    # Far-apart windows (a zoomed-out view): read each one.
    for i, c in enumerate(centres):
        a, b = max(int(c) - half, 0), min(int(c) + half, length)
        if b > a:
            out[i, a - (int(c) - half) : b - (int(c) - half)] = read(a, b).mean(axis=0)
    return out


def compute_spectrogram(
    read: Reader,
    length: int,
    sample_rate: int,
    start: int,
    end: int,
    columns: int,
    *,
    rows: int = ROWS,
    n_fft: int = N_FFT,
    floor_db: float = FLOOR_DB,
) -> Spectrogram:
    """Spectrogram of frames ``[start, end)`` with ``columns`` columns and ``rows`` rows.

    Args:
        read: reads samples of the song.
        length: frames in the song.
        sample_rate: frames per second.
        start: first frame of the span.
        end: frame after the span.
        columns: pixel columns (one FFT each).
        rows: log-spaced frequency rows.
        n_fft: FFT size.
        floor_db: decibels shown as black.
    """
    columns = max(int(columns), 1)
    end = max(end, start + 1)
    step = (end - start) / columns
    centres = (start + (np.arange(columns) + 0.5) * step).astype(np.int64)
    frames = _windows(read, length, centres, n_fft)  # (columns, n_fft)
    window = np.hanning(n_fft).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1))  # (columns, n_fft // 2 + 1)
    # Full scale sine -> 0 dB: a Hann window's coherent gain is n_fft / 4 per side.
    db = 20.0 * np.log10(np.maximum(spectrum / (n_fft / 4.0), 1e-12))
    nyquist = sample_rate / 2.0
    bins_hz = np.linspace(0.0, nyquist, spectrum.shape[1])
    rows_hz = np.geomspace(MIN_HZ, nyquist, rows)
    # Each row takes the loudest bin between it and the next (no detail lost in the highs).
    edges = np.searchsorted(bins_hz, np.concatenate([rows_hz, [nyquist + 1.0]]))
    edges = np.clip(edges, 0, spectrum.shape[1] - 1)
    image = np.empty((columns, rows), dtype=np.float32)
    for r in range(rows):
        a, b = int(edges[r]), max(int(edges[r + 1]), int(edges[r]) + 1)
        image[:, r] = db[:, a:b].max(axis=1)
    image = np.clip((image - floor_db) / -floor_db, 0.0, 1.0).astype(np.float32)
    return Spectrogram(image, start / sample_rate, end / sample_rate, MIN_HZ, nyquist)
