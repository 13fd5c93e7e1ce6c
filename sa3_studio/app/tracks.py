"""Tracks as lanes: what each lane draws, and the undoable track commands (mute, solo, gain,
rename, remove).

A project with several tracks is drawn one lane per track (:class:`TrackLanes`, a peak source
whose "channels" are the tracks, each the min/max over its own channels with its gain); the
overview keeps showing the mix. Mute and solo change what :func:`~sa3_studio.app.mixdown.
render_mix` plays and exports, so they are heard at once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from sa3_studio.app.document_controller import DocumentController
from sa3_studio.app.waveform_source import ProjectPeaks, PyramidCache
from sa3_studio.document import arrange
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.project import Project, Track

FloatArray = npt.NDArray[np.float32]

GAIN_RANGE_DB = (-60.0, 24.0)
"""What the lanes' gain boxes offer (the model allows +/-60 dB)."""


def _gain(track: Track) -> np.float32:
    return np.float32(10.0 ** (track.gain_db / 20.0))


class TrackLanes:
    """A :class:`~sa3_studio.ui.waveform.PeakSource` with one lane ("channel") per track.

    Attributes:
        lane_names: the tracks' names, top to bottom.
        dimmed_lanes: indices of the lanes that are not heard (muted, or not solo while
            another track is).
    """

    def __init__(self, project: Project, cache: PyramidCache) -> None:
        self._project = project
        self._frames = project.frames
        self._tracks = project.tracks
        self._peaks = [
            ProjectPeaks(
                dataclasses.replace(
                    project,
                    tracks=(dataclasses.replace(t, muted=False, solo=False),),
                    regions=(),
                    takes=(),
                ),
                cache,
            )
            for t in project.tracks
        ]
        self.lane_names = [t.name or f"Track {i + 1}" for i, t in enumerate(project.tracks)]
        solo = any(t.solo for t in project.tracks)
        self.dimmed_lanes = frozenset(
            i for i, t in enumerate(project.tracks) if t.muted or (solo and not t.solo)
        )

    @property
    def channels(self) -> int:
        """One lane per track."""
        return len(self._tracks)

    @property
    def frames(self) -> int:
        """Length of the song in frames."""
        return self._frames

    @property
    def sample_rate(self) -> int:
        """The project rate."""
        return SAMPLE_RATE

    def envelope(self, start: int, end: int, n: int) -> tuple[FloatArray, FloatArray]:
        """Min and max of ``n`` columns of ``[start, end)`` per track: ``(tracks, n)`` each."""
        mins = np.zeros((self.channels, max(n, 0)), dtype=np.float32)
        maxs = np.zeros_like(mins)
        for i, (track, peaks) in enumerate(zip(self._tracks, self._peaks, strict=True)):
            lo, hi = peaks.envelope(start, end, n)  # (2, n) each
            g = _gain(track)
            mins[i] = lo.min(axis=0) * g
            maxs[i] = hi.max(axis=0) * g
        return mins, maxs

    def rms(self, start: int, end: int, n: int) -> FloatArray:
        """RMS of ``n`` columns per track (the louder channel), ``(tracks, n)``."""
        out = np.zeros((self.channels, max(n, 0)), dtype=np.float32)
        for i, (track, peaks) in enumerate(zip(self._tracks, self._peaks, strict=True)):
            out[i] = peaks.rms(start, end, n).max(axis=0) * _gain(track)
        return out

    def samples(self, start: int, end: int) -> FloatArray:
        """Each track's samples (the mean of its channels, with its gain): ``(tracks, N)``."""
        start = max(start, 0)
        end = max(min(end, self._frames), start)
        out = np.zeros((self.channels, end - start), dtype=np.float32)
        for i, track in enumerate(self._tracks):
            out[i] = track.read(start, end).mean(axis=0) * _gain(track)
        return out


def _title(project: Project, track_id: str) -> str:
    track = project.track(track_id)
    return f"'{track.name}'" if track.name else "the track"


def set_muted(doc: DocumentController, track_id: str, muted: bool) -> bool:
    """Mute or unmute a track (one undo step)."""
    verb = "Mute" if muted else "Unmute"
    label = f"{verb} {_title(doc.project, track_id)}"
    return doc.apply(label, lambda p: arrange.set_track(p, track_id, muted=muted))


def set_solo(doc: DocumentController, track_id: str, solo: bool) -> bool:
    """Solo a track or end its solo (one undo step)."""
    verb = "Solo" if solo else "Unsolo"
    label = f"{verb} {_title(doc.project, track_id)}"
    return doc.apply(label, lambda p: arrange.set_track(p, track_id, solo=solo))


def set_gain(doc: DocumentController, track_id: str, gain_db: float) -> bool:
    """Set a track's mix gain; repeated changes of one track merge into one undo step."""
    label = f"Track Gain {_title(doc.project, track_id)}"
    return doc.apply(
        label,
        lambda p: arrange.set_track(p, track_id, gain_db=gain_db),
        merge_key=("track-gain", track_id),
    )


def rename(doc: DocumentController, track_id: str, name: str) -> bool:
    """Rename a track (one undo step); an empty name is refused with a reason."""
    name = name.strip()
    if not name:
        doc.error.emit("A track needs a name; type one, or press Escape to keep the old one.")
        return False
    return doc.apply("Rename Track", lambda p: arrange.set_track(p, track_id, name=name))


def remove(doc: DocumentController, track_id: str) -> bool:
    """Remove a track with its regions and takes (one undo step); the last one stays."""
    if len(doc.project.tracks) <= 1:
        doc.error.emit("A project keeps at least one track; close the project to start over.")
        return False
    label = f"Remove Track {_title(doc.project, track_id)}"
    return doc.apply(label, lambda p: arrange.delete_track(p, track_id))
