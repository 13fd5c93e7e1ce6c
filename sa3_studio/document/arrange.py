"""Arrangement edits: tracks, clips, placing generated audio, and project facts.

Pure functions returning a new :class:`Project`; creators return ``(project, new id)``. Invalid
requests raise :class:`~sa3_studio.errors.EditError` with a sentence for the user.
"""

from __future__ import annotations

import dataclasses
import math
import operator

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import CHANNELS
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.ids import new_id
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.segments import slice_segments
from sa3_studio.document.timefmt import format_range, format_time
from sa3_studio.errors import EditError


def _frame(value: int, what: str) -> int:
    try:
        frame = operator.index(value)
    except TypeError:
        raise EditError(f"The {what} must be a whole number of frames.") from None
    if frame < 0:
        raise EditError(f"The {what} cannot be before the beginning of the project.")
    return frame


def _track_title(track: Track) -> str:
    return f"'{track.name}'" if track.name else "the track"


def _with_track(project: Project, track: Track) -> Project:
    tracks = tuple(track if t.id == track.id else t for t in project.tracks)
    return dataclasses.replace(project, tracks=tracks)


def _check_free(track: Track, start: int, end: int, ignore: str | None = None) -> None:
    for c in track.clips_overlapping(start, end):
        if c.id != ignore:
            raise EditError(
                f"The place {format_range(start, end)} would overlap clip "
                f"{repr(c.name) if c.name else format_range(c.start, c.end)} on "
                f"{_track_title(track)}; choose a free place or a new track."
            )


def _check_audio(audio: AudioData) -> None:
    if audio.channels != CHANNELS:
        raise EditError(
            f"The audio has {audio.channels} channel(s), but a project is stereo; convert it first."
        )


# -- tracks ------------------------------------------------------------------------------------


def add_track(
    project: Project, name: str = "", *, index: int | None = None, track_id: str | None = None
) -> tuple[Project, str]:
    """Add an empty track at ``index`` (default: at the bottom).

    Returns:
        ``(new project, the new track's id)``.
    """
    ids = project.ids()
    if track_id is None:
        track_id = new_id("track", ids)
    elif track_id in ids:
        raise EditError(f"The id {track_id} is already used in the project.")
    tracks = list(project.tracks)
    position = len(tracks) if index is None else max(0, min(index, len(tracks)))
    tracks.insert(position, Track(track_id, name or f"Track {len(tracks) + 1}"))
    return dataclasses.replace(project, tracks=tuple(tracks)), track_id


def delete_track(project: Project, track_id: str) -> Project:
    """Remove a track with its clips, its regions and their takes.

    Raises:
        EditError: the track is missing.
    """
    project.track(track_id)
    gone = {r.id for r in project.regions if r.track_id == track_id}
    return dataclasses.replace(
        project,
        tracks=tuple(t for t in project.tracks if t.id != track_id),
        regions=tuple(r for r in project.regions if r.id not in gone),
        takes=tuple(k for k in project.takes if k.region_id not in gone),
    )


def set_track(
    project: Project,
    track_id: str,
    *,
    name: str | None = None,
    gain_db: float | None = None,
    muted: bool | None = None,
    solo: bool | None = None,
) -> Project:
    """Change a track's name or mix settings (arguments left ``None`` stay as they are).

    Raises:
        EditError: the track is missing or the gain is not a finite number within +/-60 dB.
    """
    track = project.track(track_id)
    if gain_db is not None and (not math.isfinite(gain_db) or abs(gain_db) > 60.0):
        raise EditError("A track's gain must be between -60 dB and +60 dB.")
    changed = dataclasses.replace(
        track,
        name=track.name if name is None else name,
        gain_db=track.gain_db if gain_db is None else float(gain_db),
        muted=track.muted if muted is None else bool(muted),
        solo=track.solo if solo is None else bool(solo),
    )
    return project if changed == track else _with_track(project, changed)


def move_track(project: Project, track_id: str, index: int) -> Project:
    """Move a track to position ``index`` (0 = top; clamped to the track list).

    Raises:
        EditError: the track is missing.
    """
    track = project.track(track_id)
    tracks = [t for t in project.tracks if t.id != track_id]
    tracks.insert(max(0, min(index, len(tracks))), track)
    return dataclasses.replace(project, tracks=tuple(tracks))


# -- clips -------------------------------------------------------------------------------------


def place_clip(
    project: Project,
    track_id: str,
    audio: AudioData,
    start: int,
    *,
    name: str = "",
    clip_id: str | None = None,
) -> tuple[Project, str]:
    """Place audio (e.g. a generation) as a new clip on a track, where the track is free.

    Returns:
        ``(new project, the new clip's id)``.

    Raises:
        EditError: the track is missing, the audio is not stereo, or the place is taken.
    """
    start = _frame(start, "clip start")
    _check_audio(audio)
    track = project.track(track_id)
    _check_free(track, start, start + audio.frames)
    ids = project.ids()
    if clip_id is None:
        clip_id = new_id("clip", ids)
    elif clip_id in ids:
        raise EditError(f"The id {clip_id} is already used in the project.")
    clips = sorted((*track.clips, Clip.from_audio(clip_id, start, audio, name)), key=_start)
    return _with_track(project, dataclasses.replace(track, clips=tuple(clips))), clip_id


def place_on_new_track(
    project: Project,
    audio: AudioData,
    start: int,
    *,
    track_name: str = "",
    clip_name: str = "",
    index: int | None = None,
) -> tuple[Project, str]:
    """Place audio as a clip on a new track (added at ``index``, default bottom).

    Returns:
        ``(new project, the new track's id)``; the clip is ``project.track(id).clips[0]``.

    Raises:
        EditError: the audio is not stereo or ``start`` is negative.
    """
    start = _frame(start, "clip start")
    _check_audio(audio)
    project, track_id = add_track(project, track_name, index=index)
    project, _ = place_clip(project, track_id, audio, start, name=clip_name)
    return project, track_id


def move_clip(
    project: Project, clip_id: str, start: int, *, track_id: str | None = None
) -> Project:
    """Move a clip to ``start`` (and to another track when ``track_id`` is given).

    Raises:
        EditError: the clip or track is missing, or the new place overlaps another clip.
    """
    start = _frame(start, "clip start")
    source, clip = project.find_clip(clip_id)
    target = source if track_id is None or track_id == source.id else project.track(track_id)
    _check_free(target, start, start + clip.length, ignore=clip_id)
    moved = dataclasses.replace(clip, start=start)
    if target.id == source.id:
        clips = sorted((moved if c.id == clip_id else c for c in source.clips), key=_start)
        return _with_track(project, dataclasses.replace(source, clips=tuple(clips)))
    source = dataclasses.replace(source, clips=tuple(c for c in source.clips if c.id != clip_id))
    target = dataclasses.replace(target, clips=tuple(sorted((*target.clips, moved), key=_start)))
    return _with_track(_with_track(project, source), target)


def split_clip(project: Project, clip_id: str, at: int) -> tuple[Project, str]:
    """Split a clip in two at timeline frame ``at``; the left part keeps the id.

    Returns:
        ``(new project, the id of the right part)``.

    Raises:
        EditError: the clip is missing or ``at`` is not strictly inside it.
    """
    at = _frame(at, "split position")
    track, clip = project.find_clip(clip_id)
    if not clip.start < at < clip.end:
        raise EditError(
            f"The split point {format_time(at)} is not inside the clip "
            f"({format_range(clip.start, clip.end)}); "
            "place the cursor inside the clip to split it."
        )
    cut = at - clip.start
    right_id = new_id("clip", project.ids())
    left = Clip(clip.id, clip.start, slice_segments(clip.segments, 0, cut), clip.name)
    right = Clip(right_id, at, slice_segments(clip.segments, cut, clip.length), clip.name)
    clips: list[Clip] = []
    for c in track.clips:
        clips.extend((left, right) if c.id == clip_id else (c,))
    return _with_track(project, dataclasses.replace(track, clips=tuple(clips))), right_id


def delete_clip(project: Project, clip_id: str) -> Project:
    """Remove a clip, leaving silence (nothing moves).

    Raises:
        EditError: the clip is missing.
    """
    track, _ = project.find_clip(clip_id)
    clips = tuple(c for c in track.clips if c.id != clip_id)
    return _with_track(project, dataclasses.replace(track, clips=clips))


def rename_clip(project: Project, clip_id: str, name: str) -> Project:
    """Give a clip a display name.

    Raises:
        EditError: the clip is missing.
    """
    track, clip = project.find_clip(clip_id)
    if clip.name == name:
        return project
    clips = tuple(dataclasses.replace(c, name=name) if c.id == clip_id else c for c in track.clips)
    return _with_track(project, dataclasses.replace(track, clips=clips))


# -- project facts -----------------------------------------------------------------------------


def set_meta(project: Project, meta: ProjectMeta) -> Project:
    """Replace the project's facts (title, source file, grid...)."""
    return project if meta == project.meta else dataclasses.replace(project, meta=meta)


def set_grid(project: Project, grid: BeatGrid | None) -> Project:
    """Set or clear the tempo grid."""
    return set_meta(project, dataclasses.replace(project.meta, grid=grid))


def _start(clip: Clip) -> int:
    return clip.start
