"""Min/max peak pyramid: draw any zoom of a long buffer by reading a few thousand values.

Level 0 holds the minimum and maximum of every block of 64 frames, level 1 of every 256
frames, and so on by a factor of 4. A query for ``n_pixels`` picks the coarsest level that
still has at least one block per pixel and reduces whole blocks into pixels, so it reads
fewer than ``4 * n_pixels + 2`` values per channel whatever the zoom. Below 64 frames per
pixel it reads the samples themselves (at most 64 per pixel).

What a pixel covers. Pixel ``i`` of a query over ``[start, end)`` ideally covers
``[e_i, e_(i+1))`` with ``e_i = start + floor(i * (end - start) / n_pixels)``. At a level of
block size ``B`` its range is snapped to whole blocks: it starts at ``floor(e_i / B) * B`` and
the last pixel ends at the end of the block holding ``end - 1``. Each pixel therefore moves by
less than ``B`` frames, which is at most one pixel's width, and the ranges tile the query
without gaps or overlaps. Within its range every value is exact: the true minimum and
maximum of the samples, as :meth:`PeakPyramid.pixel_ranges` lets a test check. Pixels past
the end of the audio are NaN (nothing to draw).

The pyramid keeps references to the arrays it was given (no copy); callers must not modify
them afterwards (the document's audio buffers are read-only anyway).
"""

from __future__ import annotations

import bisect

import numpy as np
import numpy.typing as npt

BASE_BLOCK = 64
FACTOR = 4

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class _Level:
    """Growable (channels, blocks) min and max arrays of one block size."""

    def __init__(self, channels: int, block: int) -> None:
        self.block = block
        self.count = 0
        self.mins: FloatArray = np.empty((channels, 0), dtype=np.float32)
        self.maxs: FloatArray = np.empty((channels, 0), dtype=np.float32)

    def store(self, first: int, mins: FloatArray, maxs: FloatArray) -> None:
        """Write blocks ``first ..`` (overwriting a partial last block), growing as needed."""
        stop = first + mins.shape[1]
        if stop > self.mins.shape[1]:
            capacity = max(stop, 2 * self.mins.shape[1], 16)
            self.mins = _grow(self.mins, capacity, self.count)
            self.maxs = _grow(self.maxs, capacity, self.count)
        self.mins[:, first:stop] = mins
        self.maxs[:, first:stop] = maxs
        self.count = max(self.count, stop)


class PeakPyramid:
    """Min/max summaries of one audio buffer, extended incrementally.

    Example:
        >>> pyr = PeakPyramid.from_audio(audio)  # audio: (channels, frames) float32
        >>> mins, maxs = pyr.query(0, pyr.frames, 1200)  # each (channels, 1200)
    """

    def __init__(self, channels: int, *, base_block: int = BASE_BLOCK, factor: int = FACTOR):
        """Create an empty pyramid.

        Args:
            channels: Channels of the audio that will be appended.
            base_block: Frames per block of level 0.
            factor: Ratio between the block sizes of consecutive levels.
        """
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if base_block < 1 or factor < 2:
            raise ValueError(f"need base_block >= 1 and factor >= 2, got {base_block}, {factor}")
        self._channels = channels
        self._factor = factor
        self._levels: list[_Level] = [_Level(channels, base_block)]
        self._chunks: list[FloatArray] = []
        self._offsets: list[int] = []
        self._frames = 0

    @classmethod
    def from_audio(cls, audio: npt.ArrayLike) -> PeakPyramid:
        """Build the pyramid of a whole (channels, frames) buffer."""
        a = _as_audio(audio)
        pyramid = cls(a.shape[0])
        pyramid.append(a)
        return pyramid

    @property
    def channels(self) -> int:
        """Number of channels."""
        return self._channels

    @property
    def frames(self) -> int:
        """Number of frames summarised so far."""
        return self._frames

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """Block size of each level, finest first (64, 256, 1024, ...)."""
        return tuple(level.block for level in self._levels)

    def level(self, index: int) -> tuple[FloatArray, FloatArray]:
        """Read-only (mins, maxs) of a level, each (channels, blocks)."""
        lv = self._levels[index]
        return _readonly(lv.mins[:, : lv.count]), _readonly(lv.maxs[:, : lv.count])

    def append(self, audio: npt.ArrayLike) -> None:
        """Summarise more audio that follows what was appended before.

        Only the blocks touched by the new frames are computed: the partial last block of
        each level and the new ones.

        Args:
            audio: (channels, frames) samples; kept by reference when already a C-contiguous
                float32 array.
        """
        a = _as_audio(audio)
        if a.shape[0] != self._channels:
            raise ValueError(f"expected {self._channels} channels, got {a.shape[0]}")
        n = a.shape[1]
        if n == 0:
            return
        old = self._frames
        self._chunks.append(a)
        self._offsets.append(old)
        self._frames = old + n

        # Level 0 from samples: the partial block left from before, then the new frames.
        base = self._levels[0]
        first = old // base.block
        head_have = old - first * base.block
        pieces_min: list[FloatArray] = []
        pieces_max: list[FloatArray] = []
        rest = a
        if head_have:
            take = min(base.block - head_have, n)
            head = np.concatenate([self._samples(first * base.block, old), a[:, :take]], axis=1)
            pieces_min.append(head.min(axis=1, keepdims=True))
            pieces_max.append(head.max(axis=1, keepdims=True))
            rest = a[:, take:]
        mn, mx = _minmax_blocks(rest, base.block)
        pieces_min.append(mn)
        pieces_max.append(mx)
        base.store(first, np.concatenate(pieces_min, axis=1), np.concatenate(pieces_max, axis=1))

        # Upper levels from the level below, starting at the first block that changed.
        changed = first
        k = 1
        while True:
            below = self._levels[k - 1]
            if k == len(self._levels):
                if below.count <= 1:
                    break
                self._levels.append(_Level(self._channels, below.block * self._factor))
                changed = 0
            level = self._levels[k]
            first = changed // self._factor
            src = slice(first * self._factor, below.count)
            mn = _reduce_blocks(below.mins[:, src], self._factor, np.minimum)
            mx = _reduce_blocks(below.maxs[:, src], self._factor, np.maximum)
            level.store(first, mn, mx)
            changed = first
            k += 1

    def pixel_ranges(
        self, start_frame: int, end_frame: int, n_pixels: int
    ) -> tuple[IntArray, IntArray]:
        """The frame range each pixel of :meth:`query` covers.

        Returns:
            (starts, stops), each (n_pixels,) int64: pixel ``i`` is the min/max of frames
            ``[starts[i], stops[i])``; ``starts[i] == stops[i]`` marks a pixel past the end of
            the audio (NaN in the query).
        """
        starts, stops, _ = self._plan(start_frame, end_frame, n_pixels)
        return starts, stops

    def query(
        self, start_frame: int, end_frame: int, n_pixels: int
    ) -> tuple[FloatArray, FloatArray]:
        """Per-pixel minimum and maximum of ``[start_frame, end_frame)``.

        Args:
            start_frame: First frame of the view (>= 0).
            end_frame: End of the view (exclusive, > start_frame); may pass the end of the audio.
            n_pixels: Number of pixels (>= 1).

        Returns:
            (mins, maxs), each (channels, n_pixels) float32; NaN where a pixel has no audio.
        """
        starts, stops, level = self._plan(start_frame, end_frame, n_pixels)
        mins = np.full((self._channels, n_pixels), np.nan, dtype=np.float32)
        maxs = np.full((self._channels, n_pixels), np.nan, dtype=np.float32)
        valid = int(np.count_nonzero(stops > starts))
        if valid == 0:
            return mins, maxs
        if level is None:
            # Fewer than one level-0 block per pixel: read the samples (< 64 per pixel).
            lo, hi = int(starts[0]), int(stops[valid - 1])
            seg = self._samples(lo, hi)
            idx = starts[:valid] - lo
            # reduceat on a repeated index returns that one sample: a pixel narrower than a
            # frame shows the frame it falls on.
            mins[:, :valid] = np.minimum.reduceat(seg, idx, axis=1)
            maxs[:, :valid] = np.maximum.reduceat(seg, idx, axis=1)
            return mins, maxs
        lv = self._levels[level]
        b0 = int(starts[0]) // lv.block
        b1 = -(-int(stops[valid - 1]) // lv.block)
        idx = starts[:valid] // lv.block - b0
        mins[:, :valid] = np.minimum.reduceat(lv.mins[:, b0:b1], idx, axis=1)
        maxs[:, :valid] = np.maximum.reduceat(lv.maxs[:, b0:b1], idx, axis=1)
        return mins, maxs

    def _plan(self, start: int, end: int, n_pixels: int) -> tuple[IntArray, IntArray, int | None]:
        """Pixel ranges and the level that answers them (None: the samples themselves)."""
        if n_pixels < 1:
            raise ValueError(f"n_pixels must be >= 1, got {n_pixels}")
        if start < 0 or end <= start:
            raise ValueError(f"need 0 <= start_frame < end_frame, got {start}, {end}")
        span = end - start
        ideal = start + (np.arange(n_pixels + 1, dtype=np.int64) * span) // n_pixels  # (n+1,)
        frames_per_pixel = span / n_pixels
        level: int | None = None
        for k, lv in enumerate(self._levels):
            if lv.block <= frames_per_pixel:
                level = k
        if level is None:
            starts = ideal[:-1].copy()
            # A pixel narrower than a frame shows the frame it falls on.
            stops = np.maximum(ideal[1:], starts + 1)
        else:
            block = self._levels[level].block
            edges = (ideal // block) * block  # non-decreasing, and rising by >= one block
            edges[-1] = -(-end // block) * block
            starts, stops = edges[:-1].copy(), edges[1:].copy()
        # Clip to the audio: the non-empty pixels are a prefix; the rest are empty.
        np.minimum(starts, self._frames, out=starts)
        np.minimum(stops, self._frames, out=stops)
        return starts, stops, level

    def _samples(self, lo: int, hi: int) -> FloatArray:
        """Samples [lo, hi) gathered from the appended arrays, (channels, hi - lo)."""
        if hi <= lo:
            return np.empty((self._channels, 0), dtype=np.float32)
        i = bisect.bisect_right(self._offsets, lo) - 1
        parts: list[FloatArray] = []
        pos = lo
        while pos < hi:
            chunk, offset = self._chunks[i], self._offsets[i]
            a = pos - offset
            b = min(hi - offset, chunk.shape[1])
            parts.append(chunk[:, a:b])
            pos = offset + b
            i += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _minmax_blocks(x: FloatArray, block: int) -> tuple[FloatArray, FloatArray]:
    """Min and max of consecutive ``block``-frame blocks of (C, n) samples (last may be partial)."""
    return _reduce_blocks(x, block, np.minimum), _reduce_blocks(x, block, np.maximum)


def _reduce_blocks(x: FloatArray, block: int, op: np.ufunc) -> FloatArray:
    """``op`` over consecutive ``block``-wide groups of columns of (C, n); last may be partial."""
    channels, n = x.shape
    full = n // block
    # A view: the frame axis of a C-contiguous (C, n) array splits without copying.
    body = op.reduce(x[:, : full * block].reshape(channels, full, block), axis=2)
    if n == full * block:
        return np.asarray(body, dtype=np.float32)
    tail = op.reduce(x[:, full * block :], axis=1, keepdims=True)
    return np.concatenate([body, tail], axis=1).astype(np.float32, copy=False)


def _as_audio(audio: npt.ArrayLike) -> FloatArray:
    a = np.asarray(audio)
    if a.ndim != 2:
        raise ValueError(f"audio must be (channels, frames), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _grow(x: FloatArray, capacity: int, used: int) -> FloatArray:
    out = np.empty((x.shape[0], capacity), dtype=np.float32)
    out[:, :used] = x[:, :used]
    return out


def _readonly(x: FloatArray) -> FloatArray:
    v = x.view()
    v.flags.writeable = False
    return v
