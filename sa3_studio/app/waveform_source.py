"""The project's audio as the timeline's peak source, built from one pyramid per audio buffer.

A track's audio is a list of segments, each a span of a shared, immutable buffer (see
``document.segments``). Peaks are kept per buffer (by content id), so after an edit only the new,
usually short, buffers need a pyramid; the six-minute buffer of the imported song keeps its own.
A query for the visible span asks each visible segment's pyramid for its share of the pixels.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.peaks import PeakPyramid
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import CHANNELS, SAMPLE_RATE
from sa3_studio.document.project import Project, Track

FloatArray = npt.NDArray[np.float32]

CACHE_KEEP = 64
"""Pyramids of buffers no longer in the project are kept for this many buffers (for undo)."""


ENERGY_BLOCK = 64
"""Frames per block of the energy index (its resolution when zoomed out)."""


class EnergyIndex:
    """Running sums of squared samples in blocks, for the RMS of any span in O(1) per pixel.

    One cumulative sum per channel over blocks of :data:`ENERGY_BLOCK` frames (a six-minute
    stereo song takes 4 MB); spans shorter than a block are measured from the samples.
    """

    def __init__(self, samples: FloatArray) -> None:
        self._samples = samples
        channels, frames = samples.shape
        full = frames // ENERGY_BLOCK
        blocks = np.empty((channels, full), dtype=np.float32)  # (C, blocks)
        for c in range(channels):
            # A row of a C-ordered array is contiguous, so this reshape copies nothing; float32
            # sums of 64 squares are exact enough, and einsum needs no temporary array.
            row = samples[c, : full * ENERGY_BLOCK].reshape(full, ENERGY_BLOCK)
            blocks[c] = np.einsum("jk,jk->j", row, row)
        if frames > full * ENERGY_BLOCK:
            tail = np.square(samples[:, full * ENERGY_BLOCK :], dtype=np.float64).sum(axis=1)
            blocks = np.concatenate([blocks, tail[:, None].astype(np.float32)], axis=1)
        self._cum = np.zeros((channels, blocks.shape[1] + 1), dtype=np.float64)
        np.cumsum(blocks, axis=1, out=self._cum[:, 1:])
        self._frames = frames

    @property
    def frames(self) -> int:
        """Frames indexed."""
        return self._frames

    def rms(self, start: int, end: int, n: int) -> FloatArray:
        """RMS of ``n`` equal columns of ``[start, end)``, ``(channels, n)``."""
        sums, counts = self.energy(start, end, n)
        return np.sqrt(sums / np.maximum(counts, 1)).astype(np.float32)

    def energy(
        self, start: int, end: int, n: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Sum of squares and frame count of ``n`` equal columns of ``[start, end)``.

        Returns:
            ``(sums (channels, n), counts (n,))``; columns past the end count no frames.
        """
        end = min(end, self._frames)
        channels = self._samples.shape[0]
        if n < 1 or end <= start:
            return np.zeros((channels, max(n, 0))), np.zeros(max(n, 0), dtype=np.int64)
        edges = start + (np.arange(n + 1, dtype=np.int64) * (end - start)) // n  # (n+1,)
        if (end - start) / n < ENERGY_BLOCK:
            seg = np.square(self._samples[:, start:end], dtype=np.float64)
            cum = np.concatenate([np.zeros((channels, 1)), np.cumsum(seg, axis=1)], axis=1)
            idx = edges - start
            sums = cum[:, idx[1:]] - cum[:, idx[:-1]]
            counts = idx[1:] - idx[:-1]
        else:
            # Whole blocks: each column snaps to the blocks it mostly covers.
            b = np.rint(edges / ENERGY_BLOCK).astype(np.int64)
            b = np.clip(b, 0, self._cum.shape[1] - 1)
            b[1:] = np.maximum(b[1:], b[:-1] + 1)
            b = np.minimum(b, self._cum.shape[1] - 1)
            sums = self._cum[:, b[1:]] - self._cum[:, b[:-1]]
            counts = (b[1:] - b[:-1]) * ENERGY_BLOCK
        return np.maximum(sums, 0.0), counts.astype(np.int64)


class PyramidCache:
    """Peak pyramids (and energy indexes) by buffer content id.

    Building is thread-safe in the sense the app needs: a background job may :meth:`build` a
    pyramid and hand it over with :meth:`put`; lookups happen on the GUI thread.
    """

    def __init__(self, keep: int = CACHE_KEEP) -> None:
        self._pyramids: OrderedDict[str, PeakPyramid] = OrderedDict()
        self._energy: dict[str, EnergyIndex] = {}
        self._keep = keep

    def __len__(self) -> int:
        return len(self._pyramids)

    def __contains__(self, content_id: object) -> bool:
        return content_id in self._pyramids

    @staticmethod
    def build(audio: AudioData) -> PeakPyramid:
        """Make the pyramid of ``audio`` (call from any thread)."""
        return PeakPyramid.from_audio(audio.samples)

    def put(self, content_id: str, pyramid: PeakPyramid, energy: EnergyIndex | None = None) -> None:
        """Store a pyramid (and energy index) built elsewhere."""
        self._pyramids[content_id] = pyramid
        self._pyramids.move_to_end(content_id)
        if energy is not None:
            self._energy[content_id] = energy

    def energy(self, audio: AudioData) -> EnergyIndex:
        """The energy index of ``audio``, built now if it is missing."""
        idx = self._energy.get(audio.content_id)
        if idx is None:
            idx = EnergyIndex(audio.samples)
            self._energy[audio.content_id] = idx
        return idx

    def get(self, audio: AudioData) -> PeakPyramid:
        """The pyramid of ``audio``, built now if it is missing."""
        pyr = self._pyramids.get(audio.content_id)
        if pyr is None:
            pyr = self.build(audio)
            self._pyramids[audio.content_id] = pyr
        else:
            self._pyramids.move_to_end(audio.content_id)
        return pyr

    def retain(self, live: Iterable[str]) -> None:
        """Forget pyramids of buffers not in ``live``, keeping the most recent others."""
        live_set = set(live)
        dead = [k for k in self._pyramids if k not in live_set]
        for k in dead[: max(len(dead) - self._keep, 0)]:
            del self._pyramids[k]
            self._energy.pop(k, None)


def _pieces(edges: npt.NDArray[np.int64], a: int, b: int) -> list[tuple[int, int, int, int]]:
    """Split ``[a, b)`` along the column ``edges`` into ``(i0, i1, lo, hi)`` pieces.

    Columns ``i0 .. i1-1`` take frames ``[lo, hi)``: a partly covered first and last column
    get a piece of their own, the fully covered columns in between one piece together, so
    each query's columns line up with the view's columns.
    """
    i0 = int(np.searchsorted(edges[1:], a, side="right"))
    i1 = int(np.searchsorted(edges[:-1], b, side="left"))
    if i1 <= i0:
        return []
    out: list[tuple[int, int, int, int]] = []
    first, last = i0, i1
    if edges[i0] < a or edges[i0 + 1] > b:
        out.append((i0, i0 + 1, a, min(int(edges[i0 + 1]), b)))
        first = i0 + 1
    if last > first and edges[last] > b:
        out.append((last - 1, last, max(int(edges[last - 1]), a), b))
        last -= 1
    if last > first:
        out.append((first, last, int(edges[first]), int(edges[last])))
    return out


def _merge(
    out_min: FloatArray, out_max: FloatArray, sl: slice, mn: FloatArray, mx: FloatArray
) -> None:
    np.fmin(out_min[:, sl], mn, out=out_min[:, sl])
    np.fmax(out_max[:, sl], mx, out=out_max[:, sl])


class ProjectPeaks:
    """The timeline's :class:`~sa3_studio.ui.waveform.PeakSource` for one project snapshot.

    With one track it shows that track; with several it overlays the envelopes of the audible
    tracks (an envelope of a sum cannot be had from the parts' envelopes without rendering, and
    the overlay shows where each part has sound).

    Args:
        project: the snapshot to show.
        cache: pyramids by buffer.
    """

    def __init__(self, project: Project, cache: PyramidCache) -> None:
        self._project = project
        self._cache = cache
        self._frames = project.frames
        solo = any(t.solo for t in project.tracks)
        self._tracks: list[Track] = [
            t for t in project.tracks if not t.muted and (t.solo or not solo)
        ]
        # Per track: (timeline start, segment) for every segment, for bisecting the view.
        self._index: list[tuple[list[int], list[tuple[int, object]]]] = []
        for t in self._tracks:
            starts: list[int] = []
            segs: list[tuple[int, object]] = []
            for c in t.clips:
                pos = c.start
                for s in c.segments:
                    starts.append(pos)
                    segs.append((pos, s))
                    pos += s.length
            self._index.append((starts, segs))

    @property
    def project(self) -> Project:
        """The snapshot shown."""
        return self._project

    @property
    def channels(self) -> int:
        """Always stereo (projects are stereo)."""
        return CHANNELS

    @property
    def frames(self) -> int:
        """Length of the song in frames."""
        return self._frames

    @property
    def sample_rate(self) -> int:
        """The project rate."""
        return SAMPLE_RATE

    def envelope(self, start: int, end: int, n: int) -> tuple[FloatArray, FloatArray]:
        """Min and max of ``n`` equal columns of ``[start, end)``, each ``(2, n)``.

        Columns with no clip are silence (0); columns past the end of the song are 0 as well.
        """
        mins = np.full((CHANNELS, n), np.nan, dtype=np.float32)
        maxs = np.full((CHANNELS, n), np.nan, dtype=np.float32)
        end = min(end, self._frames)
        if n < 1 or end <= start:
            return np.zeros_like(mins), np.zeros_like(maxs)
        edges = start + (np.arange(n + 1, dtype=np.int64) * (end - start)) // n  # (n+1,)
        for starts, segs in self._index:
            first = max(bisect.bisect_right(starts, start) - 1, 0)
            for k in range(first, len(segs)):
                seg_start, seg = segs[k]
                length = seg.length  # type: ignore[attr-defined]
                if seg_start >= end:
                    break
                a, b = max(seg_start, start), min(seg_start + length, end)
                if b <= a:
                    continue
                audio = seg.audio  # type: ignore[attr-defined]
                offset = seg.offset  # type: ignore[attr-defined]
                for i0, i1, lo, hi in _pieces(edges, a, b):
                    sl = slice(i0, i1)
                    if audio is None:
                        zero = np.zeros((CHANNELS, i1 - i0), dtype=np.float32)
                        _merge(mins, maxs, sl, zero, zero)
                        continue
                    pos = offset + (lo - seg_start)
                    mn, mx = self._cache.get(audio).query(pos, pos + (hi - lo), i1 - i0)
                    _merge(mins, maxs, sl, mn, mx)
        np.nan_to_num(mins, copy=False, nan=0.0)
        np.nan_to_num(maxs, copy=False, nan=0.0)
        return mins, maxs

    def rms(self, start: int, end: int, n: int) -> FloatArray:
        """RMS of ``n`` equal columns of ``[start, end)``, ``(2, n)`` (the waveform's inner,
        brighter layer, as most editors draw it)."""
        out = np.zeros((CHANNELS, max(n, 0)), dtype=np.float32)
        end = min(end, self._frames)
        if n < 1 or end <= start:
            return out
        edges = start + (np.arange(n + 1, dtype=np.int64) * (end - start)) // n
        widths = np.maximum(edges[1:] - edges[:-1], 1)
        for starts, segs in self._index:
            # Within a track, columns that straddle segments add up their energy; silence and
            # gaps add frames but no energy.
            sums = np.zeros((CHANNELS, n))
            first = max(bisect.bisect_right(starts, start) - 1, 0)
            for k in range(first, len(segs)):
                seg_start, seg = segs[k]
                if seg_start >= end:
                    break
                audio = seg.audio  # type: ignore[attr-defined]
                length = seg.length  # type: ignore[attr-defined]
                a, b = max(seg_start, start), min(seg_start + length, end)
                if b <= a or audio is None:
                    continue
                index = self._cache.energy(audio)
                for i0, i1, lo, hi in _pieces(edges, a, b):
                    pos = seg.offset + (lo - seg_start)  # type: ignore[attr-defined]
                    part, counts = index.energy(pos, pos + (hi - lo), i1 - i0)
                    # Scale each part to the frames it really covers (blocks snap).
                    covered = np.minimum(edges[i0 + 1 : i1 + 1], hi) - np.maximum(edges[i0:i1], lo)
                    sums[:, i0:i1] += part * (covered / np.maximum(counts, 1))
            track_rms = np.sqrt(sums / widths).astype(np.float32)
            # Tracks are overlaid, not summed (see the class docstring).
            np.maximum(out, track_rms, out=out)
        return out

    def samples(self, start: int, end: int) -> FloatArray:
        """Samples of ``[start, end)`` (the sum of the audible tracks), ``(2, end - start)``."""
        start = max(start, 0)
        end = max(min(end, self._frames), start)
        out = np.zeros((CHANNELS, end - start), dtype=np.float32)
        for t in self._tracks:
            out += t.read(start, end)
        return out

    def buffers(self) -> list[AudioData]:
        """The buffers this snapshot draws from."""
        return list(self._project.audio_buffers().values())
