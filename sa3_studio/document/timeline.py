"""Track-level building blocks of the edits: copy, delete, insert, overwrite and map a span.

Each function takes a :class:`Track` (and regions) and returns new ones; unchanged clips and
segments are reused as they are, so the audio outside a span is never copied or touched. The
public edit functions in ``edits``, ``arrange`` and ``region_edits`` validate their input and
call these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from sa3_studio.document.audio_data import AudioData, FloatArray
from sa3_studio.document.project import Clip, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import (
    Segment,
    Segments,
    coalesce,
    render,
    replace_span,
    slice_segments,
    total_length,
    trim_silence,
)

MakeId = Callable[[str], str]
"""Returns a fresh id for a prefix ("clip")."""

SpanFn = Callable[[FloatArray, int], FloatArray]
"""Maps ``(audio (2, n), timeline frame of audio[:, 0])`` to new audio of the same shape."""


def copy_span(track: Track, start: int, end: int) -> Segments:
    """The track's audio in ``[start, end)`` as segments (silence where there is no clip)."""
    out: list[Segment] = []
    pos = start
    for c in track.clips_overlapping(start, end):
        lo, hi = max(start, c.start), min(end, c.end)
        if lo > pos:
            out.append(Segment.silence(lo - pos))
        out.extend(slice_segments(c.segments, lo - c.start, hi - c.start))
        pos = hi
    if end > pos:
        out.append(Segment.silence(end - pos))
    return coalesce(out)


def delete_span(track: Track, start: int, end: int) -> Track:
    """Remove ``[start, end)`` and move everything after it left (ripple).

    A clip that spans the cut stays one clip; a clip inside it disappears.
    """
    cut = end - start
    clips: list[Clip] = []
    for c in track.clips:
        if c.end <= start:
            clips.append(c)
        elif c.start >= end:
            clips.append(dataclasses.replace(c, start=c.start - cut))
        else:
            left = slice_segments(c.segments, 0, start - c.start) if c.start < start else ()
            right = slice_segments(c.segments, end - c.start, c.length) if c.end > end else ()
            if left or right:
                clips.append(Clip(c.id, min(c.start, start), coalesce((*left, *right)), c.name))
    return dataclasses.replace(track, clips=tuple(clips))


def insert_span(
    track: Track,
    at: int,
    fill: Segments,
    make_id: MakeId,
    *,
    extend_clip_end: bool = False,
) -> Track:
    """Insert ``fill`` at ``at`` and move everything from ``at`` on right by its length.

    Args:
        track: the track.
        at: timeline frame.
        fill: the audio to insert (silent segments allowed).
        make_id: gives ids for new clips.
        extend_clip_end: a clip that ends exactly at ``at`` takes the insertion (so inserting
            silence at the end of the song makes the song longer).

    A clip containing ``at`` takes the insertion into its own audio. Otherwise the non-silent
    part of ``fill`` becomes a new clip.
    """
    length = total_length(fill)
    clips: list[Clip] = []
    absorbed = False
    for c in track.clips:
        inside = c.start < at < c.end or (extend_clip_end and c.end == at and at > c.start)
        if inside and not absorbed:
            segs = replace_span(c.segments, at - c.start, at - c.start, fill)
            clips.append(dataclasses.replace(c, segments=segs))
            absorbed = True
        elif c.start >= at:
            clips.append(dataclasses.replace(c, start=c.start + length))
        else:
            clips.append(c)
    if not absorbed:
        lead, body = trim_silence(fill)
        if body:
            clips.append(Clip(make_id("clip"), at + lead, body))
            clips.sort(key=_clip_start)
    return dataclasses.replace(track, clips=tuple(clips))


def write_span(track: Track, start: int, audio: Segments, make_id: MakeId) -> Track:
    """Overwrite ``[start, start + len(audio))`` with ``audio`` (no ripple).

    Clips overlapping the span are merged with the new audio into one clip, which keeps the id
    and name of the first of them; with no clip there, the audio becomes a new clip.
    """
    end = start + total_length(audio)
    over = track.clips_overlapping(start, end)
    if not over:
        clips = [*track.clips, Clip(make_id("clip"), start, audio)]
    else:
        first, last = over[0], over[-1]
        left = slice_segments(first.segments, 0, start - first.start) if first.start < start else ()
        right = (
            slice_segments(last.segments, end - last.start, last.length) if last.end > end else ()
        )
        merged = Clip(
            first.id, min(first.start, start), coalesce((*left, *audio, *right)), first.name
        )
        clips = [c for c in track.clips if c not in over] + [merged]
    clips.sort(key=_clip_start)
    return dataclasses.replace(track, clips=tuple(clips))


SpanMemo = dict[tuple[object, ...], AudioData]
"""Results of one span function by what it was given (see :func:`map_span`)."""


def segments_key(segments: Sequence[Segment], at: int) -> tuple[object, ...]:
    """What a span function sees: the same audio at the same timeline frame gives this key."""
    return (at, *((s.audio.content_id if s.audio else None, s.offset, s.length) for s in segments))


def map_span(
    track: Track, start: int, end: int, fn: SpanFn, memo: SpanMemo | None = None
) -> tuple[Track, bool]:
    """Replace the clip audio inside ``[start, end)`` with ``fn`` of it (gaps stay silent).

    Only the frames inside the span are rendered and re-stored; the rest of each clip keeps its
    segments.

    Args:
        track: the track.
        start: first frame of the span.
        end: frame after the span.
        fn: the change.
        memo: pass one dict to every call of one edit: tracks that share audio (3000 copies
            of one buffer) then share the result too, instead of each storing a copy.

    Returns:
        ``(new track, whether any clip was touched)``.
    """
    touched = False
    clips: list[Clip] = []
    for c in track.clips:
        if not (c.start < end and start < c.end):
            clips.append(c)
            continue
        lo, hi = max(start, c.start) - c.start, min(end, c.end) - c.start
        old = slice_segments(c.segments, lo, hi)
        if all(s.is_silent for s in old):
            clips.append(c)  # silence stays silence under gain, fades and normalising
            continue
        key = segments_key(old, c.start + lo)
        data = memo.get(key) if memo is not None else None
        if data is None:
            data = AudioData.from_array(fn(render(old), c.start + lo), copy=False)
            if memo is not None:
                memo[key] = data
        segment = Segment.of(data)
        clips.append(dataclasses.replace(c, segments=replace_span(c.segments, lo, hi, (segment,))))
        touched = True
    return dataclasses.replace(track, clips=tuple(clips)), touched


def clip_audio(track: Track, start: int, end: int) -> Iterable[FloatArray]:
    """The non-silent clip audio inside ``[start, end)``, piece by piece (for measuring)."""
    for c in track.clips_overlapping(start, end):
        lo, hi = max(start, c.start) - c.start, min(end, c.end) - c.start
        yield render(c.segments, lo, hi)


# -- regions -----------------------------------------------------------------------------------


def regions_after_delete(
    regions: Sequence[Region], track_ids: Iterable[str], start: int, end: int
) -> tuple[tuple[Region, ...], frozenset[str]]:
    """Move and shrink regions of the given tracks for a ripple delete of ``[start, end)``.

    Returns:
        ``(regions, ids of regions that vanished because they lay entirely inside the cut)``.
    """
    tracks = set(track_ids)
    cut = end - start
    out: list[Region] = []
    gone: set[str] = set()
    for r in regions:
        if r.track_id not in tracks or r.end <= start:
            out.append(r)
        elif r.start >= end:
            out.append(dataclasses.replace(r, start=r.start - cut, end=r.end - cut))
        else:
            kept = r.length - (min(r.end, end) - max(r.start, start))
            if kept == 0:
                gone.add(r.id)
                continue
            new_start = min(r.start, start)
            out.append(dataclasses.replace(r, start=new_start, end=new_start + kept))
    return tuple(out), frozenset(gone)


def regions_after_insert(
    regions: Sequence[Region], track_ids: Iterable[str], at: int, length: int
) -> tuple[Region, ...]:
    """Move regions at or after ``at`` right; a region containing ``at`` grows."""
    tracks = set(track_ids)
    out: list[Region] = []
    for r in regions:
        if r.track_id not in tracks or r.end <= at:
            out.append(r)
        elif r.start >= at:
            out.append(dataclasses.replace(r, start=r.start + length, end=r.end + length))
        else:
            out.append(dataclasses.replace(r, end=r.end + length))
    return tuple(out)


def _clip_start(clip: Clip) -> int:
    return clip.start
