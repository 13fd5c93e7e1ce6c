"""Sample-rate conversion with soxr, on float32 audio laid out as (channels, frames).

soxr works on interleaved (frames, channels) arrays; these helpers take and return the
project's channel-first layout so callers never transpose by hand. ``HQ`` is soxr's high
quality preset (about 20-bit precision, fast); ``VHQ`` is very high quality (about 28-bit)
and roughly twice as slow. Import uses ``HQ``; export may ask for ``VHQ``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import soxr

Quality = Literal["HQ", "VHQ"]

_QUALITIES: frozenset[str] = frozenset({"HQ", "VHQ"})

MAX_CHUNK_OUT = 1 << 18
"""Output frames asked of one call into soxr's stream (bounds its working memory; soxr may
return a burst of its internal block times the ratio, under a million frames within the
accepted rates)."""

MIN_RATE = 1000
"""Lowest sample rate accepted (Hz): a lower one is a damaged header, not audio."""

MAX_RATE = 768_000
"""Highest sample rate accepted (Hz): four times the highest rate audio interfaces use."""


def resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """Number of frames soxr produces for ``frames`` input frames.

    This is ``frames * to_rate / from_rate`` rounded half up, which is what soxr emits both
    in one shot and when streamed.

    Args:
        frames: Input length in frames (>= 0).
        from_rate: Input sample rate in Hz.
        to_rate: Output sample rate in Hz.

    Returns:
        The output length in frames.
    """
    _check_rates(from_rate, to_rate)
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    return (frames * to_rate + from_rate // 2) // from_rate


def resample(
    audio: npt.ArrayLike,
    from_rate: int,
    to_rate: int,
    *,
    quality: Quality = "HQ",
) -> npt.NDArray[np.float32]:
    """Resample channel-first audio.

    Args:
        audio: Samples, shape (channels, frames) or (frames,) for a single channel.
        from_rate: Input sample rate in Hz.
        to_rate: Output sample rate in Hz.
        quality: soxr preset, ``"HQ"`` or ``"VHQ"``.

    Returns:
        A new C-contiguous float32 array, (channels, resampled_length(frames)), or (frames,)
        when the input was one-dimensional. When the rates are equal the input is returned
        as float32 (a copy only if the dtype or layout had to change).
    """
    _check_rates(from_rate, to_rate)
    _check_quality(quality)
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be (channels, frames) or (frames,), got shape {x.shape}")
    if from_rate == to_rate:
        return np.ascontiguousarray(x)
    if x.ndim == 1:
        mono: npt.NDArray[np.float32] = _resample_2d(x[np.newaxis, :], from_rate, to_rate, quality)
        return mono.reshape(-1)
    return _resample_2d(x, from_rate, to_rate, quality)


def _resample_2d(
    x: npt.NDArray[np.float32], from_rate: int, to_rate: int, quality: Quality
) -> npt.NDArray[np.float32]:
    channels, frames = x.shape
    length = resampled_length(frames, from_rate, to_rate)
    if frames == 0:
        return np.zeros((channels, 0), dtype=np.float32)
    # soxr wants (frames, channels), C-contiguous: one interleaving copy in, one out.
    y = soxr.resample(np.ascontiguousarray(x.T), from_rate, to_rate, quality)  # (T', C)
    return _fit_length(np.ascontiguousarray(y.T, dtype=np.float32), length)


def _fit_length(y: npt.NDArray[np.float32], length: int) -> npt.NDArray[np.float32]:
    """Trim or zero-pad the frame axis to exactly ``length`` (guards against soxr changes)."""
    have = y.shape[1]
    if have == length:
        return y
    if have > length:
        return np.ascontiguousarray(y[:, :length])
    pad = np.zeros((y.shape[0], length - have), dtype=np.float32)
    return np.concatenate([y, pad], axis=1)


class StreamResampler:
    """Resample audio that arrives in blocks (import, export), channel-first.

    Feed blocks with :meth:`process` and finish with :meth:`flush`; the concatenated output
    has ``resampled_length(total_in, from_rate, to_rate)`` frames, the same as a one-shot
    :func:`resample` of the whole signal.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int, quality: Quality = "HQ"):
        """Create a streaming resampler.

        Args:
            from_rate: Input sample rate in Hz.
            to_rate: Output sample rate in Hz.
            channels: Number of channels of every block.
            quality: soxr preset, ``"HQ"`` or ``"VHQ"``.
        """
        _check_rates(from_rate, to_rate)
        _check_quality(quality)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self._from = from_rate
        self._to = to_rate
        self._channels = channels
        self._stream = soxr.ResampleStream(from_rate, to_rate, channels, "float32", quality)
        self._in = 0
        self._out = 0
        self._done = False

    def process(self, block: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Resample one block of shape (channels, frames); returns (channels, frames_out)."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self._channels:
            raise ValueError(f"expected ({self._channels}, frames), got {x.shape}")
        return np.ascontiguousarray(self._run(x.T, last=False).T)

    def process_interleaved(self, block: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Resample one (frames, channels) block; returns (frames_out, channels).

        The decoder already produces interleaved blocks, so this skips two transposes.
        """
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._channels:
            raise ValueError(f"expected (frames, {self._channels}), got {x.shape}")
        return self._run(x, last=False)

    def flush(self) -> npt.NDArray[np.float32]:
        """Return the remaining output, (channels, frames_out); the stream is then finished."""
        return np.ascontiguousarray(self.flush_interleaved().T)

    def flush_interleaved(self) -> npt.NDArray[np.float32]:
        """Like :meth:`flush` but returns (frames_out, channels)."""
        return self._run(np.zeros((0, self._channels), dtype=np.float32), last=True)

    def _run(self, x: npt.NDArray[np.float32], *, last: bool) -> npt.NDArray[np.float32]:
        """Feed one interleaved (frames, channels) block; returns (frames_out, channels).

        The block goes to soxr in pieces whose output is at most :data:`MAX_CHUNK_OUT` frames,
        so soxr's own buffers stay small whatever the ratio of the rates.
        """
        if self._done:
            raise RuntimeError("the resampler was already flushed")
        step = max(1, MAX_CHUNK_OUT * self._from // self._to)
        if x.shape[0] > step:
            parts = [self._run(x[i : i + step], last=False) for i in range(0, x.shape[0], step)]
            if last:
                parts.append(self._run(x[:0], last=True))
            return np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._in += x.shape[0]
        y = np.asarray(
            self._stream.resample_chunk(np.ascontiguousarray(x), last=last), dtype=np.float32
        )  # (T', C)
        if last:
            self._done = True
            # Make the total exactly the documented length, whatever soxr's tail does.
            want = max(resampled_length(self._in, self._from, self._to) - self._out, 0)
            if y.shape[0] > want:
                y = y[:want]
            elif y.shape[0] < want:
                y = np.concatenate([y, np.zeros((want - y.shape[0], self._channels), np.float32)])
        self._out += y.shape[0]
        return y


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")


def _check_quality(quality: str) -> None:
    if quality not in _QUALITIES:
        raise ValueError(f"quality must be 'HQ' or 'VHQ', got {quality!r}")
