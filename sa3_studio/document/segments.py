"""Segments: the pieces a clip's audio is made of.

A clip's audio is a sequence of segments, each a span of a shared :class:`AudioData` buffer (or
silence). Edits replace only the segments they touch, so an edit of a few seconds in a six-minute
song allocates a few seconds of audio and every snapshot keeps sharing the rest.

The functions here work on ``tuple[Segment, ...]`` in sequence-relative frames (0 is the first
frame of the first segment).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sa3_studio.document.audio_data import AudioData, FloatArray
from sa3_studio.document.constants import CHANNELS


@dataclass(frozen=True, slots=True)
class Segment:
    """``length`` frames of ``audio`` starting at ``offset``, or ``length`` frames of silence.

    Attributes:
        audio: the shared buffer, or ``None`` for silence (which costs no memory).
        offset: first frame used in ``audio`` (0 for silence).
        length: frames used (at least 1).
    """

    audio: AudioData | None
    offset: int
    length: int

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"a segment needs at least one frame, got {self.length}")
        if self.audio is None:
            if self.offset != 0:
                raise ValueError("a silent segment has offset 0")
            return
        if self.audio.channels != CHANNELS:
            raise ValueError(f"project audio must have {CHANNELS} channels")
        if self.offset < 0 or self.offset + self.length > self.audio.frames:
            raise ValueError(
                f"segment [{self.offset}, {self.offset + self.length}) lies outside its "
                f"buffer of {self.audio.frames} frames"
            )

    @classmethod
    def of(cls, audio: AudioData) -> Segment:
        """A segment covering all of ``audio``."""
        return cls(audio, 0, audio.frames)

    @classmethod
    def silence(cls, length: int) -> Segment:
        """``length`` frames of silence."""
        return cls(None, 0, length)

    @property
    def is_silent(self) -> bool:
        """True for a silence segment."""
        return self.audio is None

    def sub(self, start: int, end: int) -> Segment:
        """The part ``[start, end)`` of this segment (segment-relative frames)."""
        if not 0 <= start < end <= self.length:
            raise ValueError(f"[{start}, {end}) is not inside a segment of {self.length} frames")
        if self.audio is None:
            return Segment(None, 0, end - start)
        return Segment(self.audio, self.offset + start, end - start)

    def view(self, start: int, end: int) -> FloatArray:
        """Samples ``[start, end)`` of this segment, ``(2, end - start)``; a read-only view."""
        if self.audio is None:
            return np.zeros((CHANNELS, end - start), dtype=np.float32)
        return self.audio.samples[:, self.offset + start : self.offset + end]


Segments = tuple[Segment, ...]


def total_length(segments: Iterable[Segment]) -> int:
    """Sum of the segments' lengths."""
    return sum(s.length for s in segments)


def _joins(a: Segment, b: Segment) -> bool:
    if a.audio is None or b.audio is None:
        return a.audio is None and b.audio is None
    return a.audio == b.audio and a.offset + a.length == b.offset


def coalesce(segments: Iterable[Segment]) -> Segments:
    """Merge neighbours that continue each other (same buffer, contiguous; or both silence)."""
    out: list[Segment] = []
    for seg in segments:
        if out and _joins(out[-1], seg):
            prev = out[-1]
            out[-1] = Segment(prev.audio, prev.offset, prev.length + seg.length)
        else:
            out.append(seg)
    return tuple(out)


def slice_segments(segments: Sequence[Segment], start: int, end: int) -> Segments:
    """The segments covering ``[start, end)`` of the sequence, cut to fit.

    Raises:
        ValueError: the span is empty or outside the sequence.
    """
    if not 0 <= start < end <= total_length(segments):
        raise ValueError(f"[{start}, {end}) is not inside the segments")
    out: list[Segment] = []
    pos = 0
    for seg in segments:
        seg_end = pos + seg.length
        if seg_end > start and pos < end:
            out.append(seg.sub(max(start, pos) - pos, min(end, seg_end) - pos))
        if seg_end >= end:
            break
        pos = seg_end
    return tuple(out)


def replace_span(
    segments: Sequence[Segment], start: int, end: int, new: Sequence[Segment]
) -> Segments:
    """Replace ``[start, end)`` of the sequence with ``new`` (which may differ in length).

    ``start == end`` inserts ``new`` at ``start``. Neighbours that continue each other are merged.
    """
    length = total_length(segments)
    if not 0 <= start <= end <= length:
        raise ValueError(f"[{start}, {end}) is not inside segments of {length} frames")
    head = slice_segments(segments, 0, start) if start > 0 else ()
    tail = slice_segments(segments, end, length) if end < length else ()
    return coalesce((*head, *new, *tail))


def render(segments: Sequence[Segment], start: int = 0, end: int | None = None) -> FloatArray:
    """Samples ``[start, end)`` of the sequence as a new ``(2, end - start)`` float32 array."""
    length = total_length(segments)
    stop = length if end is None else end
    if not 0 <= start <= stop <= length:
        raise ValueError(f"[{start}, {stop}) is not inside segments of {length} frames")
    out = np.zeros((CHANNELS, stop - start), dtype=np.float32)  # (C, T)
    pos = 0
    for seg in segments:
        seg_end = pos + seg.length
        lo, hi = max(start, pos), min(stop, seg_end)
        if lo < hi and seg.audio is not None:
            out[:, lo - start : hi - start] = seg.view(lo - pos, hi - pos)
        if seg_end >= stop:
            break
        pos = seg_end
    return out


def trim_silence(segments: Sequence[Segment]) -> tuple[int, Segments]:
    """Drop leading and trailing silent segments.

    Returns:
        ``(frames dropped at the front, remaining segments)``; the segments are empty when all
        of them were silent.
    """
    lo, hi = 0, len(segments)
    while lo < hi and segments[lo].is_silent:
        lo += 1
    while hi > lo and segments[hi - 1].is_silent:
        hi -= 1
    return total_length(segments[:lo]), tuple(segments[lo:hi])


def buffers(segments: Iterable[Segment]) -> Iterable[AudioData]:
    """The buffers the segments refer to (with repeats)."""
    return (s.audio for s in segments if s.audio is not None)
