"""The project: tracks of clips, regions to regenerate, and the takes generated for them.

Everything is a frozen dataclass; edits (see ``edits``, ``arrange`` and ``region_edits``) return
a new :class:`Project` that shares every unchanged object and audio buffer with the old one.
Positions are integer frames at :data:`~sa3_studio.document.constants.SAMPLE_RATE`; seconds
appear only at the edges (display, engine requests).

Invariants, checked when the objects are built:

- ids are unique across tracks, clips, regions and takes;
- clips on a track are sorted by start and do not overlap; all audio is stereo;
- every region belongs to an existing track, and regions on one track do not overlap;
- a region's ``accepted_take_id`` names one of that region's takes (or is ``None``).

Takes whose region no longer exists are allowed (see ``History.amend_all``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import ClassVar

import numpy as np

from sa3_studio.document.audio_data import AudioData, FloatArray
from sa3_studio.document.constants import CHANNELS, MAX_FRAMES, SAMPLE_RATE
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment, Segments, buffers, render, total_length
from sa3_studio.document.take import Take
from sa3_studio.errors import EditError


@dataclass(frozen=True, slots=True)
class Clip:
    """Contiguous audio placed on a track at ``start``.

    Attributes:
        id: unique in the project.
        start: timeline frame of the clip's first frame.
        segments: the clip's audio, in order (see :mod:`~sa3_studio.document.segments`).
        name: optional display name.
        length: frames in the clip (computed from the segments).
    """

    id: str
    start: int
    segments: Segments
    name: str = ""
    length: int = field(init=False)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a clip needs an id")
        if self.start < 0:
            raise ValueError(f"a clip cannot start before the project, got start {self.start}")
        if not self.segments:
            raise ValueError("a clip needs at least one segment")
        object.__setattr__(self, "segments", tuple(self.segments))
        object.__setattr__(self, "length", total_length(self.segments))

    @classmethod
    def from_audio(cls, clip_id: str, start: int, audio: AudioData, name: str = "") -> Clip:
        """A clip holding all of ``audio`` at ``start``."""
        return cls(clip_id, start, (Segment.of(audio),), name)

    @property
    def end(self) -> int:
        """Timeline frame just after the clip."""
        return self.start + self.length

    def read(self, start: int = 0, end: int | None = None) -> FloatArray:
        """Clip-relative frames ``[start, end)`` as a new ``(2, frames)`` float32 array."""
        return render(self.segments, start, end)

    def buffers(self) -> Iterator[AudioData]:
        """The buffers this clip uses (with repeats)."""
        return iter(buffers(self.segments))


@dataclass(frozen=True, slots=True)
class Track:
    """A lane of non-overlapping clips, mixed with its own gain.

    Attributes:
        id: unique in the project.
        name: display name.
        clips: sorted by start, not overlapping (gaps are silence).
        gain_db: mix gain.
        muted: left out of playback and export.
        solo: when any track is solo, only solo tracks are heard.
    """

    id: str
    name: str = ""
    clips: tuple[Clip, ...] = ()
    gain_db: float = 0.0
    muted: bool = False
    solo: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a track needs an id")
        object.__setattr__(self, "clips", tuple(self.clips))
        for a, b in pairwise(self.clips):
            if b.start < a.end:
                raise ValueError(f"clips {a.id} and {b.id} overlap on track {self.id}")
        if not math.isfinite(self.gain_db):
            raise ValueError("a track's gain must be finite")

    @property
    def end(self) -> int:
        """Frame just after the last clip (0 for an empty track)."""
        return self.clips[-1].end if self.clips else 0

    def clip(self, clip_id: str) -> Clip:
        """The clip with this id.

        Raises:
            EditError: there is no such clip on this track.
        """
        for c in self.clips:
            if c.id == clip_id:
                return c
        raise EditError(f"The clip {clip_id} is not on track '{self.name or self.id}'.")

    def clips_overlapping(self, start: int, end: int) -> tuple[Clip, ...]:
        """Clips that share at least one frame with ``[start, end)``."""
        return tuple(c for c in self.clips if c.start < end and start < c.end)

    def read(self, start: int, end: int) -> FloatArray:
        """Timeline frames ``[start, end)`` of this track, ``(2, end - start)``; gaps are zeros.

        Track gain, mute and solo are not applied (that is the mixer's job).
        """
        if start > end:
            raise ValueError(f"cannot read [{start}, {end})")
        out = np.zeros((CHANNELS, end - start), dtype=np.float32)  # (C, T)
        for c in self.clips_overlapping(start, end):
            lo, hi = max(start, c.start), min(end, c.end)
            out[:, lo - start : hi - start] = render(c.segments, lo - c.start, hi - c.start)
        return out


@dataclass(frozen=True, slots=True)
class ProjectMeta:
    """Facts about the project as a whole.

    Attributes:
        title: display title (usually the source file's name).
        source_path: the audio file the project was made from, if any.
        source_sample_rate: that file's sample rate (export uses it by default).
        source_channels: that file's channel count (export uses it by default).
        source_format: that file's container, e.g. "WAV", "FLAC" ("" if unknown).
        source_subtype: that file's sample format, e.g. "PCM_24" ("" if unknown).
        truncated_notice: set when the source file could only be partly read; a sentence for
            the user saying what is missing.
        grid: tempo grid for snapping and bars:beats display, if known.
    """

    title: str = ""
    source_path: str | None = None
    source_sample_rate: int = SAMPLE_RATE
    source_channels: int = CHANNELS
    source_format: str = ""
    source_subtype: str = ""
    truncated_notice: str | None = None
    grid: BeatGrid | None = None

    def __post_init__(self) -> None:
        if self.source_sample_rate < 1:
            raise ValueError("the source sample rate must be positive")
        if self.source_channels < 1:
            raise ValueError("the source must have at least one channel")


@dataclass(frozen=True, slots=True)
class Project:
    """An editable song: tracks, regions and takes, at 44.1 kHz stereo.

    Attributes:
        meta: title, source file facts, tempo grid.
        tracks: top to bottom.
        regions: every region, in creation order (``regions_on`` sorts one track's by start).
        takes: every kept take, in creation order (``takes_for`` picks one region's).
    """

    sample_rate: ClassVar[int] = SAMPLE_RATE
    channels: ClassVar[int] = CHANNELS

    meta: ProjectMeta = field(default_factory=ProjectMeta)
    tracks: tuple[Track, ...] = ()
    regions: tuple[Region, ...] = ()
    takes: tuple[Take, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(self.tracks))
        object.__setattr__(self, "regions", tuple(self.regions))
        object.__setattr__(self, "takes", tuple(self.takes))
        seen: set[str] = set()

        def claim(kind: str, ident: str) -> None:
            if ident in seen:
                raise ValueError(f"{kind} id {ident!r} is used twice in the project")
            seen.add(ident)

        for t in self.tracks:
            claim("track", t.id)
            for c in t.clips:
                claim("clip", c.id)
        track_ids = {t.id for t in self.tracks}
        for r in self.regions:
            claim("region", r.id)
            if r.track_id not in track_ids:
                raise ValueError(f"region {r.id} refers to a missing track {r.track_id}")
        take_region = {}
        for k in self.takes:
            claim("take", k.id)
            take_region[k.id] = k.region_id
        by_track: dict[str, list[Region]] = {}
        for r in self.regions:
            by_track.setdefault(r.track_id, []).append(r)
            if r.accepted_take_id is not None and take_region.get(r.accepted_take_id) != r.id:
                raise ValueError(f"region {r.id} accepted take {r.accepted_take_id}, not its own")
        for regions in by_track.values():
            regions.sort(key=lambda r: r.start)
            for a, b in pairwise(regions):
                if b.start < a.end:
                    raise ValueError(f"regions {a.id} and {b.id} overlap")
        _check_extent(self)

    @classmethod
    def from_audio(
        cls,
        audio: AudioData | None,
        meta: ProjectMeta | None = None,
        *,
        track_name: str = "Track 1",
        track_id: str = "track-1",
        clip_id: str = "clip-1",
    ) -> Project:
        """A new project with one track holding ``audio`` at frame 0 (or empty when ``None``).

        Args:
            audio: stereo audio at the project rate (the importer converts it first).
            meta: source file facts.
            track_name: name of the track.
            track_id: id of the track.
            clip_id: id of the clip.

        Raises:
            EditError: the audio is not stereo.
        """
        if audio is not None and audio.channels != CHANNELS:
            raise EditError(
                f"The audio has {audio.channels} channel(s), but a project is stereo; "
                "convert it to stereo when importing."
            )
        clips = () if audio is None else (Clip.from_audio(clip_id, 0, audio, track_name),)
        return cls(meta or ProjectMeta(), (Track(track_id, track_name, clips),))

    # -- lookups -------------------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Length of the song: the end of the last clip on any track (0 when empty)."""
        return max((t.end for t in self.tracks), default=0)

    @property
    def duration_s(self) -> float:
        """Length of the song in seconds."""
        return self.frames / SAMPLE_RATE

    def track(self, track_id: str) -> Track:
        """The track with this id.

        Raises:
            EditError: there is no such track.
        """
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise EditError(f"The track {track_id} is not in the project; it may have been deleted.")

    def track_index(self, track_id: str) -> int:
        """Position of the track (0 = top).

        Raises:
            EditError: there is no such track.
        """
        for i, t in enumerate(self.tracks):
            if t.id == track_id:
                return i
        raise EditError(f"The track {track_id} is not in the project; it may have been deleted.")

    def find_clip(self, clip_id: str) -> tuple[Track, Clip]:
        """The clip with this id and the track it is on.

        Raises:
            EditError: there is no such clip.
        """
        for t in self.tracks:
            for c in t.clips:
                if c.id == clip_id:
                    return t, c
        raise EditError(f"The clip {clip_id} is not in the project; it may have been deleted.")

    def region(self, region_id: str) -> Region:
        """The region with this id.

        Raises:
            EditError: there is no such region.
        """
        for r in self.regions:
            if r.id == region_id:
                return r
        raise EditError(
            f"The region {region_id} is not in the project; it may have been deleted or undone."
        )

    def regions_on(self, track_id: str) -> tuple[Region, ...]:
        """Regions of one track, sorted by start."""
        return tuple(sorted((r for r in self.regions if r.track_id == track_id), key=_start))

    def take(self, take_id: str) -> Take:
        """The take with this id.

        Raises:
            EditError: there is no such take.
        """
        for k in self.takes:
            if k.id == take_id:
                return k
        raise EditError(f"The take {take_id} is not in the project; it may have been deleted.")

    def takes_for(self, region_id: str) -> tuple[Take, ...]:
        """The takes of one region, in creation order."""
        return tuple(k for k in self.takes if k.region_id == region_id)

    def orphan_takes(self) -> tuple[Take, ...]:
        """Takes whose region is not in this snapshot (kept so that no generation is lost)."""
        region_ids = {r.id for r in self.regions}
        return tuple(k for k in self.takes if k.region_id not in region_ids)

    def ids(self) -> frozenset[str]:
        """Every id in use (tracks, clips, regions, takes)."""
        out: set[str] = set()
        for t in self.tracks:
            out.add(t.id)
            out.update(c.id for c in t.clips)
        out.update(r.id for r in self.regions)
        out.update(k.id for k in self.takes)
        return frozenset(out)

    def audio_buffers(self) -> dict[str, AudioData]:
        """Every buffer the project uses, once each, by content id (what a store must write)."""
        out: dict[str, AudioData] = {}
        for t in self.tracks:
            for c in t.clips:
                for a in c.buffers():
                    out.setdefault(a.content_id, a)
        for k in self.takes:
            out.setdefault(k.audio.content_id, k.audio)
        return out


def _start(region: Region) -> int:
    return region.start


def _check_extent(project: Project) -> None:
    """Refuse positions beyond :data:`MAX_FRAMES` (see there)."""
    limit_h = MAX_FRAMES / SAMPLE_RATE / 3600
    for t in project.tracks:
        if t.end > MAX_FRAMES:
            raise ValueError(
                f"track {t.id} ends at frame {t.end}, beyond the longest timeline SA3 Studio "
                f"handles ({MAX_FRAMES} frames, {limit_h:.0f} hours)"
            )
    for r in project.regions:
        if r.end > MAX_FRAMES:
            raise ValueError(
                f"region {r.id} ends at frame {r.end}, beyond the longest timeline SA3 Studio "
                f"handles ({MAX_FRAMES} frames, {limit_h:.0f} hours)"
            )
