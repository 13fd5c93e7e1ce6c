"""Audio edits over a span of time: copy, cut, paste, delete, insert silence, trim, gain, fades
and normalising.

Every function is pure: it returns a new :class:`Project` (the input is never changed) and
raises :class:`~sa3_studio.errors.EditError` with a sentence for the user when the edit cannot
be made. Spans are ``[start, end)`` in project frames; ``track_ids=None`` means every track.
Ripple edits (cut, delete, paste, insert silence) move later clips and regions on the affected
tracks; a region entirely inside a deleted span is removed with its takes (undo brings it back).
As in Audacity, a cut or delete on some tracks only shortens those tracks: the others keep
every sample and their length, and the audio after the span on the cut tracks moves earlier
(use silence instead of delete to keep every track in time).
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sa3_studio.document.audio_data import FloatArray
from sa3_studio.document.constants import MAX_FRAMES
from sa3_studio.document.crossfade import FADE_SHAPES, FadeShape, fade_in_curve, fade_out_curve
from sa3_studio.document.ids import new_id
from sa3_studio.document.loudness import block_frames, integrated_loudness
from sa3_studio.document.project import Project, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment, Segments, render, slice_segments, total_length
from sa3_studio.document.timefmt import format_range, format_time
from sa3_studio.document.timeline import (
    MakeId,
    SpanFn,
    SpanMemo,
    clip_audio,
    copy_span,
    delete_span,
    insert_span,
    map_span,
    regions_after_delete,
    regions_after_insert,
    segments_key,
)
from sa3_studio.errors import EditError

MAX_GAIN_DB = 60.0
"""Largest boost or cut :func:`apply_gain` accepts."""


@dataclass(frozen=True, slots=True)
class Clipboard:
    """Copied audio: one segment list per copied track, each exactly ``length`` frames.

    Attributes:
        length: frames copied.
        tracks: per copied track (top to bottom), its audio as segments (silence for gaps).
        track_ids: the tracks it was copied from (for display; paste targets are chosen anew).
    """

    length: int
    tracks: tuple[Segments, ...]
    track_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.length < 1 or not self.tracks:
            raise ValueError("a clipboard holds at least one frame of one track")
        if any(total_length(t) != self.length for t in self.tracks):
            raise ValueError("every clipboard track must be exactly `length` frames")

    def read(self, index: int = 0) -> FloatArray:
        """Audio of one copied track, ``(2, length)``."""
        return render(self.tracks[index])


# -- validation helpers ------------------------------------------------------------------------


def _frame(value: int, what: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise EditError(f"The {what} must be a whole number of frames.") from None


def _targets(project: Project, track_ids: Sequence[str] | None) -> list[Track]:
    if not project.tracks:
        raise EditError("The project has no tracks; import audio or add a track first.")
    if track_ids is None:
        return list(project.tracks)
    if isinstance(track_ids, str):  # one id passed on its own, not a list of its characters
        track_ids = [track_ids]
    if len(track_ids) == 0:
        raise EditError("No track is selected; select at least one track.")
    if len(set(track_ids)) != len(track_ids):
        raise EditError("A track was chosen twice for the same edit.")
    return [project.track(t) for t in track_ids]


def _span(project: Project, start: int, end: int) -> tuple[int, int]:
    """Check a selection and clip it to the end of the song."""
    start, end = _frame(start, "selection start"), _frame(end, "selection end")
    if end <= start:
        raise EditError("The selection is empty; select some audio first.")
    if start < 0:
        raise EditError("The selection starts before the beginning of the project.")
    length = project.frames
    if start >= length:
        raise EditError(
            f"The selection {format_range(start, end)} lies after the end of the song "
            f"({format_time(length)}); select audio inside the song."
        )
    return start, min(end, length)


def _maker(project: Project) -> MakeId:
    taken = set(project.ids())

    def make(prefix: str) -> str:
        ident = new_id(prefix, taken)
        taken.add(ident)
        return ident

    return make


def _replace_tracks(project: Project, new_tracks: Sequence[Track]) -> tuple[Track, ...]:
    by_id = {t.id: t for t in new_tracks}
    return tuple(by_id.get(t.id, t) for t in project.tracks)


def _drop_regions(project: Project, regions: tuple[Region, ...], gone: frozenset[str]) -> Project:
    takes = tuple(k for k in project.takes if k.region_id not in gone)
    return dataclasses.replace(project, regions=regions, takes=takes)


# -- clipboard edits ---------------------------------------------------------------------------


def copy_range(
    project: Project, start: int, end: int, track_ids: Sequence[str] | None = None
) -> Clipboard:
    """Copy ``[start, end)`` of the given tracks (no audio is duplicated).

    Raises:
        EditError: the selection is empty, outside the song, or names a missing track.
    """
    tracks = _targets(project, track_ids)
    start, end = _span(project, start, end)
    return Clipboard(
        end - start, tuple(copy_span(t, start, end) for t in tracks), tuple(t.id for t in tracks)
    )


def delete_range(
    project: Project, start: int, end: int, track_ids: Sequence[str] | None = None
) -> Project:
    """Remove ``[start, end)`` from the given tracks and close the gap (ripple delete).

    Regions after the span move left; regions overlapping it shrink; regions entirely inside it
    are removed together with their takes. Tracks not named keep every sample and their length.

    Raises:
        EditError: the selection is empty, outside the song or after the end of every given
            track, or names a missing track.
    """
    tracks = _targets(project, track_ids)
    start, end = _span(project, start, end)
    if all(t.end <= start for t in tracks):
        names = ", ".join(f"'{t.name}'" if t.name else "the chosen track" for t in tracks)
        raise EditError(
            f"The selection {format_range(start, end)} lies after the end of {names} "
            f"({format_time(max(t.end for t in tracks))}); select audio inside the track."
        )
    new_tracks = [delete_span(t, start, end) for t in tracks]
    regions, gone = regions_after_delete(project.regions, [t.id for t in tracks], start, end)
    project = dataclasses.replace(project, tracks=_replace_tracks(project, new_tracks))
    return _drop_regions(project, regions, gone)


def cut_range(
    project: Project, start: int, end: int, track_ids: Sequence[str] | None = None
) -> tuple[Project, Clipboard]:
    """Copy ``[start, end)`` and delete it (see :func:`copy_range`, :func:`delete_range`).

    Returns:
        ``(new project, clipboard)``.
    """
    clipboard = copy_range(project, start, end, track_ids)
    return delete_range(project, start, end, track_ids), clipboard


def paste(
    project: Project, clipboard: Clipboard, at: int, track_ids: Sequence[str] | None = None
) -> Project:
    """Insert the clipboard at ``at``, moving later audio and regions right (ripple paste).

    Clipboard track ``i`` goes to target track ``i``. With ``track_ids=None`` the targets are the
    top tracks of the project, as many as the clipboard holds.

    Raises:
        EditError: ``at`` is negative, or the targets do not match the clipboard's tracks.
    """
    at = _frame(at, "paste position")
    if at < 0:
        raise EditError("Audio cannot be pasted before the beginning of the project.")
    count = len(clipboard.tracks)
    if track_ids is None:
        if len(project.tracks) < count:
            raise EditError(
                f"The clipboard holds {count} tracks but the project has "
                f"{len(project.tracks)}; add tracks or paste into fewer."
            )
        tracks = list(project.tracks[:count])
    else:
        tracks = _targets(project, track_ids)
        if len(tracks) != count:
            raise EditError(
                f"The clipboard holds {count} track(s) but {len(tracks)} were chosen to paste "
                f"into; choose {count}."
            )
    make_id = _maker(project)
    new_tracks = [insert_span(t, at, fill, make_id) for t, fill in zip(tracks, clipboard.tracks)]
    regions = regions_after_insert(project.regions, [t.id for t in tracks], at, clipboard.length)
    return dataclasses.replace(
        project, tracks=_replace_tracks(project, new_tracks), regions=regions
    )


def paste_targets(
    project: Project, clipboard: Clipboard, chosen: Sequence[str] | None
) -> tuple[str, ...] | None:
    """The tracks a paste goes to: the chosen lanes when they are as many as the clipboard's
    tracks, else the tracks it was copied from while they all exist, else ``None`` (the top
    tracks, see :func:`paste`). A one-track project always gets ``None`` or its one track."""
    count = len(clipboard.tracks)
    if chosen and len(chosen) == count:
        return tuple(chosen)
    ids = {t.id for t in project.tracks}
    if len(clipboard.track_ids) == count and all(t in ids for t in clipboard.track_ids):
        return clipboard.track_ids
    return None


def insert_silence(
    project: Project, at: int, length: int, track_ids: Sequence[str] | None = None
) -> Project:
    """Insert ``length`` frames of silence at ``at`` on the given tracks (ripple).

    Silence inside a clip, or at the end of one, becomes part of that clip (it costs no
    memory); elsewhere later clips just move right. Regions after ``at`` move; a region
    containing ``at`` grows.

    Raises:
        EditError: ``length`` is not positive or ``at`` lies outside the song.
    """
    at, length = _frame(at, "insert position"), _frame(length, "silence length")
    if length < 1:
        raise EditError("The silence to insert must be longer than zero.")
    if project.frames + length > MAX_FRAMES:
        raise EditError(
            f"{length} frames of silence would make the song longer than SA3 Studio can hold "
            f"({format_time(MAX_FRAMES)}); insert less."
        )
    if at < 0 or at > project.frames:
        raise EditError(
            f"Silence can only be inserted between 0:00.000 and the end of the song "
            f"({format_time(project.frames)})."
        )
    tracks = _targets(project, track_ids)
    make_id = _maker(project)
    fill = (Segment.silence(length),)
    new_tracks = [insert_span(t, at, fill, make_id, extend_clip_end=True) for t in tracks]
    regions = regions_after_insert(project.regions, [t.id for t in tracks], at, length)
    return dataclasses.replace(
        project, tracks=_replace_tracks(project, new_tracks), regions=regions
    )


def trim_to_range(project: Project, start: int, end: int) -> Project:
    """Keep only ``[start, end)`` of every track; the kept audio then starts at 0:00.

    Raises:
        EditError: the selection is empty or outside the song, or already the whole song.
    """
    start, end = _span(project, start, end)
    if start == 0 and end >= project.frames:
        raise EditError("The selection already covers the whole song, so there is nothing to trim.")
    result = project
    if end < project.frames:
        result = delete_range(result, end, project.frames)
    if start > 0:
        result = delete_range(result, 0, start)
    return result


# -- level edits -------------------------------------------------------------------------------


def _map(
    project: Project,
    start: int,
    end: int,
    track_ids: Sequence[str] | None,
    fn: SpanFn,
) -> Project:
    tracks = _targets(project, track_ids)
    start, end = _span(project, start, end)
    new_tracks = []
    touched_any = False
    memo: SpanMemo = {}  # tracks sharing audio share the result
    for t in tracks:
        new, touched = map_span(t, start, end, fn, memo)
        new_tracks.append(new)
        touched_any |= touched
    if not touched_any:
        raise EditError(
            f"There is no audio in {format_range(start, end)} to change; select a part with audio."
        )
    return dataclasses.replace(project, tracks=_replace_tracks(project, new_tracks))


def _gain_fn(gain_db: float) -> SpanFn:
    factor = 10.0 ** (gain_db / 20.0)

    def apply(audio: FloatArray, _at: int) -> FloatArray:
        out: FloatArray = (audio.astype(np.float64) * factor).astype(np.float32)
        return out

    return apply


def _check_gain(gain_db: float) -> float:
    if not isinstance(gain_db, int | float) or not math.isfinite(gain_db):
        raise EditError("The gain must be a number of decibels.")
    if abs(gain_db) > MAX_GAIN_DB:
        raise EditError(f"The gain must be between -{MAX_GAIN_DB:g} dB and +{MAX_GAIN_DB:g} dB.")
    return float(gain_db)


def apply_gain(
    project: Project,
    start: int,
    end: int,
    gain_db: float,
    track_ids: Sequence[str] | None = None,
) -> Project:
    """Change the level of ``[start, end)`` by ``gain_db`` decibels.

    The result may exceed full scale; export decides how to handle that.

    Raises:
        EditError: bad selection, a gain outside +/-60 dB, or no audio in the selection.
    """
    return _map(project, start, end, track_ids, _gain_fn(_check_gain(gain_db)))


def _fade(
    project: Project,
    start: int,
    end: int,
    shape: FadeShape,
    track_ids: Sequence[str] | None,
    rising: bool,
) -> Project:
    if shape not in FADE_SHAPES:
        raise EditError(f"'{shape}' is not a fade shape; use one of {', '.join(FADE_SHAPES)}.")
    start, end = _span(project, start, end)
    length = end - start
    curve = fade_in_curve(length, shape) if rising else fade_out_curve(length, shape)

    def apply(audio: FloatArray, at: int) -> FloatArray:
        # The curve is laid over the whole selection, so clips in it get their part of it.
        part = curve[at - start : at - start + audio.shape[1]]
        return (audio.astype(np.float64) * part).astype(np.float32)

    return _map(project, start, end, track_ids, apply)


def fade_in(
    project: Project,
    start: int,
    end: int,
    *,
    shape: FadeShape = "linear",
    track_ids: Sequence[str] | None = None,
) -> Project:
    """Fade ``[start, end)`` in from silence (gain 0 at ``start``, 1 from ``end`` on).

    Raises:
        EditError: bad selection or shape, or no audio in the selection.
    """
    return _fade(project, start, end, shape, track_ids, rising=True)


def fade_out(
    project: Project,
    start: int,
    end: int,
    *,
    shape: FadeShape = "linear",
    track_ids: Sequence[str] | None = None,
) -> Project:
    """Fade ``[start, end)`` out to silence (the last frame of the selection has gain 0).

    Raises:
        EditError: bad selection or shape, or no audio in the selection.
    """
    return _fade(project, start, end, shape, track_ids, rising=False)


def _span_key(track: Track, start: int, end: int) -> tuple[object, ...]:
    """Equal for tracks holding the same audio at the same places in ``[start, end)``."""
    parts: list[object] = []
    for c in track.clips_overlapping(start, end):
        lo, hi = max(start, c.start) - c.start, min(end, c.end) - c.start
        parts.append(segments_key(slice_segments(c.segments, lo, hi), c.start + lo))
    return tuple(parts)


def _track_peak(track: Track, start: int, end: int) -> float:
    return max(
        (float(np.max(np.abs(a), initial=0.0)) for a in clip_audio(track, start, end)), default=0.0
    )


def normalize_peak(
    project: Project,
    start: int,
    end: int,
    *,
    target_dbfs: float = -1.0,
    track_ids: Sequence[str] | None = None,
) -> Project:
    """Scale ``[start, end)`` so its sample peak is ``target_dbfs``.

    Each track is normalised on its own (both channels together); silent tracks are left alone.

    Raises:
        EditError: bad selection, a target above 0 dBFS, or only silence in the selection.
    """
    if not math.isfinite(target_dbfs) or target_dbfs > 0.0:
        raise EditError("The peak target must be 0 dBFS or lower.")
    tracks = _targets(project, track_ids)
    start, end = _span(project, start, end)
    new_tracks = []
    peaks: dict[tuple[object, ...], float] = {}
    memos: dict[float, SpanMemo] = {}  # tracks sharing audio share the result
    for t in tracks:
        key = _span_key(t, start, end)
        if key not in peaks:
            peaks[key] = _track_peak(t, start, end)
        peak = peaks[key]
        if peak == 0.0:
            continue
        gain_db = target_dbfs - 20.0 * math.log10(peak)
        memo = memos.setdefault(gain_db, {})
        new_tracks.append(map_span(t, start, end, _gain_fn(gain_db), memo)[0])
    if not new_tracks:
        raise EditError(
            f"The selection {format_range(start, end)} is silent, so it cannot be normalised."
        )
    return dataclasses.replace(project, tracks=_replace_tracks(project, new_tracks))


def normalize_loudness(
    project: Project,
    start: int,
    end: int,
    *,
    target_lufs: float = -14.0,
    max_peak_dbfs: float | None = None,
    track_ids: Sequence[str] | None = None,
) -> Project:
    """Scale ``[start, end)`` so its integrated loudness (BS.1770-4) is ``target_lufs``.

    Each track is measured and scaled on its own; tracks with nothing above the -70 LUFS gate
    are left alone.

    Args:
        project: the project.
        start: first frame of the selection.
        end: frame after the selection.
        target_lufs: wanted loudness (-14 suits streaming, -23 broadcast).
        max_peak_dbfs: if given, the gain is lowered where needed so that the sample peak
            stays at or below this level (the loudness then ends up under the target).
        track_ids: tracks to change (``None``: all).

    Raises:
        EditError: bad selection or target, a selection shorter than 0.4 s, or silence.
    """
    if not math.isfinite(target_lufs) or not -70.0 < target_lufs <= 0.0:
        raise EditError("The loudness target must be between -70 LUFS and 0 LUFS.")
    if max_peak_dbfs is not None and (not math.isfinite(max_peak_dbfs) or max_peak_dbfs > 0.0):
        raise EditError("The peak limit must be 0 dBFS or lower.")
    tracks = _targets(project, track_ids)
    start, end = _span(project, start, end)
    if end - start < block_frames():
        raise EditError(
            "The selection is shorter than 0.4 s, too short to measure loudness; "
            "select more audio or normalise the peak instead."
        )
    new_tracks = []
    for t in tracks:
        loudness = integrated_loudness(t.read(start, end))
        if loudness == -math.inf:
            continue
        gain_db = target_lufs - loudness
        if max_peak_dbfs is not None:
            peak = _track_peak(t, start, end)
            gain_db = min(gain_db, max_peak_dbfs - 20.0 * math.log10(peak))
        new_tracks.append(map_span(t, start, end, _gain_fn(gain_db))[0])
    if not new_tracks:
        raise EditError(
            f"The selection {format_range(start, end)} is silent or nearly so "
            "(below -70 LUFS), so it cannot be normalised."
        )
    return dataclasses.replace(project, tracks=_replace_tracks(project, new_tracks))
