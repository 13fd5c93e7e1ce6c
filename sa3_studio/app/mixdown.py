"""Render what the user hears: the mix of the audible tracks, or one track as a stem."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sa3_studio.document.constants import CHANNELS
from sa3_studio.document.project import Project, Track

FloatArray = npt.NDArray[np.float32]


def audible_tracks(project: Project) -> list[Track]:
    """Tracks that are heard: not muted, and solo when any track is solo."""
    solo = any(t.solo for t in project.tracks)
    return [t for t in project.tracks if not t.muted and (t.solo or not solo)]


def render_track(track: Track, start: int, end: int) -> FloatArray:
    """``[start, end)`` of one track with its gain, ``(2, end - start)`` float32."""
    out = track.read(start, end)
    if track.gain_db != 0.0:
        out *= np.float32(10.0 ** (track.gain_db / 20.0))
    return out


def render_mix(project: Project, start: int = 0, end: int | None = None) -> FloatArray:
    """``[start, end)`` of the mix (``end`` defaults to the end of the song).

    Returns:
        ``(2, end - start)`` float32; the sum may exceed full scale (export decides).
    """
    stop = project.frames if end is None else end
    stop = max(stop, start)
    tracks = audible_tracks(project)
    if len(tracks) == 1:
        return render_track(tracks[0], start, stop)
    out = np.zeros((CHANNELS, stop - start), dtype=np.float32)
    for t in tracks:
        out += render_track(t, start, stop)
    return out
