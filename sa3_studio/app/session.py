"""View state of the open project: visible span, selection, cursor, playhead, snap toggles.

None of this is part of the document and none of it is undoable (zooming or selecting is not an
edit). Times of the view are float seconds (what the timeline's x axis shows); the selection, the
cursor and the playhead are integer frames (what edits use).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal

FrameRange = tuple[int, int]
"""A half-open span of frames ``[start, end)``."""

MIN_VIEW_SAMPLES = 32
"""The deepest zoom shows this many samples across the whole view."""

EMPTY_VIEW_SECONDS = 30.0
"""The span shown when no audio is open."""

ZOOM_STEP = 2.0
"""Factor of one zoom-in / zoom-out step (keyboard, toolbar)."""


@dataclass(frozen=True, slots=True)
class SnapModes:
    """Which grids a dragged edge snaps to.

    Attributes:
        latent: latent frames of the model (4096 samples at 44.1 kHz).
        beats: beats of the project tempo (only when a tempo is set).
        zero_crossings: the nearest zero crossing of the audio.
    """

    latent: bool = False
    beats: bool = False
    zero_crossings: bool = False

    @property
    def any(self) -> bool:
        """True when at least one grid is on."""
        return self.latent or self.beats or self.zero_crossings


def normalize_ranges(ranges: Iterable[FrameRange], length: int | None = None) -> list[FrameRange]:
    """Sort ranges, clip them to ``[0, length)`` and merge the ones that overlap or touch.

    Empty ranges are dropped.
    """
    clipped: list[FrameRange] = []
    for a, b in ranges:
        lo, hi = (int(a), int(b)) if a <= b else (int(b), int(a))
        lo = max(lo, 0)
        if length is not None:
            hi = min(hi, length)
        if hi > lo:
            clipped.append((lo, hi))
    clipped.sort()
    merged: list[FrameRange] = []
    for a, b in clipped:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


class Session(QObject):
    """View state of one open project.

    Signals:
        view_changed(start_s, end_s): the visible span changed.
        selection_changed(): the time selection changed (see :meth:`selection`).
        cursor_changed(frame): the edit cursor moved.
        playhead_changed(frame): the playback position moved.
        selected_regions_changed(): the set of selected document regions changed.
        snap_changed(): a snap toggle changed.
        timeline_changed(): sample rate or length changed (a file was opened or edited).
    """

    view_changed = Signal(float, float)
    selection_changed = Signal()
    cursor_changed = Signal(int)
    playhead_changed = Signal(int)
    selected_regions_changed = Signal()
    selection_tracks_changed = Signal()
    snap_changed = Signal()
    timeline_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rate = 44100
        self._length = 0
        self._view = (0.0, EMPTY_VIEW_SECONDS)
        self._selection: list[FrameRange] = []
        self._selection_tracks: tuple[str, ...] = ()
        self._cursor = 0
        self._playhead = 0
        self._regions: tuple[str, ...] = ()
        self._snap = SnapModes()

    # -- timeline ------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Frames per second of the open project."""
        return self._rate

    @property
    def length(self) -> int:
        """Length of the open project in frames."""
        return self._length

    @property
    def duration(self) -> float:
        """Length of the open project in seconds."""
        return self._length / self._rate

    def set_timeline(self, sample_rate: int, length: int, *, fit: bool = False) -> None:
        """Tell the session the project's rate and length (after opening or editing).

        Args:
            sample_rate: frames per second.
            length: frames.
            fit: show the whole project (after opening a file); otherwise the view is kept and
                only clamped, and the selection is clipped to the new length.
        """
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        changed = (sample_rate, length) != (self._rate, self._length)
        self._rate = int(sample_rate)
        self._length = max(int(length), 0)
        if changed:
            self.timeline_changed.emit()
        clipped = normalize_ranges(self._selection, self._length)
        if clipped != self._selection:
            self._selection = clipped
            self.selection_changed.emit()
        if self._cursor > self._length:
            self.set_cursor(self._length)
        if fit:
            self.zoom_fit()
        else:
            self.set_view(*self._view)

    # -- view ----------------------------------------------------------------------------------

    def view_range(self) -> tuple[float, float]:
        """The visible span ``(start, end)`` in seconds."""
        return self._view

    @property
    def view_span(self) -> float:
        """Seconds across the view."""
        return self._view[1] - self._view[0]

    def _limits(self) -> tuple[float, float]:
        """Smallest and largest span the view may have, in seconds."""
        min_span = MIN_VIEW_SAMPLES / self._rate
        max_span = max(self.duration, min_span) if self._length else EMPTY_VIEW_SECONDS
        return min_span, max_span

    def set_view(self, start: float, end: float) -> None:
        """Show ``[start, end)`` seconds, clamped to the project and the zoom limits."""
        if not (math.isfinite(start) and math.isfinite(end)):
            return
        if end < start:
            start, end = end, start
        min_span, max_span = self._limits()
        span = min(max(end - start, min_span), max_span)
        total = max(self.duration, span) if self._length else max_span
        start = min(max(start, 0.0), max(total - span, 0.0))
        view = (start, start + span)
        if view != self._view:
            self._view = view
            self.view_changed.emit(*view)

    def zoom(self, factor: float, anchor: float | None = None) -> None:
        """Zoom in (``factor > 1``) or out (``factor < 1``) keeping ``anchor`` (seconds) still.

        Args:
            factor: how many times narrower the view becomes.
            anchor: time that stays at the same place on screen; the view's centre by default.
        """
        if factor <= 0 or not math.isfinite(factor):
            return
        start, end = self._view
        if anchor is None:
            anchor = 0.5 * (start + end)
        min_span, max_span = self._limits()
        span = min(max((end - start) / factor, min_span), max_span)
        # Keep the anchor at the same fraction of the view.
        frac = 0.5 if end == start else (anchor - start) / (end - start)
        new_start = anchor - frac * span
        self.set_view(new_start, new_start + span)

    def zoom_in(self) -> None:
        """One zoom step in, around the playhead or cursor when it is visible."""
        self.zoom(ZOOM_STEP, self._zoom_anchor())

    def zoom_out(self) -> None:
        """One zoom step out, around the playhead or cursor when it is visible."""
        self.zoom(1.0 / ZOOM_STEP, self._zoom_anchor())

    def _zoom_anchor(self) -> float | None:
        start, end = self._view
        for frame in (self._playhead, self._cursor):
            t = frame / self._rate
            if start <= t <= end and frame > 0:
                return t
        return None

    def zoom_fit(self) -> None:
        """Show the whole project."""
        _, max_span = self._limits()
        self._view = (-1.0, -1.0)  # force an emit even when the clamped view is unchanged
        self.set_view(0.0, max_span)

    def zoom_to_selection(self) -> None:
        """Show the selection (with a small margin); does nothing without one."""
        bounds = self.selection_bounds()
        if bounds is None:
            return
        a, b = (f / self._rate for f in bounds)
        margin = 0.05 * (b - a)
        self.set_view(a - margin, b + margin)

    def scroll(self, fraction: float) -> None:
        """Scroll by ``fraction`` of the visible span (negative = earlier)."""
        start, end = self._view
        delta = fraction * (end - start)
        self.set_view(start + delta, end + delta)

    def scroll_to(self, start: float) -> None:
        """Scroll so that the view begins at ``start`` seconds."""
        span = self.view_span
        self.set_view(start, start + span)

    def ensure_visible(self, time: float, *, page: bool = True) -> None:
        """Scroll so that ``time`` is visible (used to follow the playhead).

        Args:
            time: seconds.
            page: jump a whole page when ``time`` leaves the view (like most editors);
                otherwise keep ``time`` centred.
        """
        start, end = self._view
        span = end - start
        if page:
            if time < start or time > end:
                self.set_view(time, time + span)
        else:
            self.set_view(time - 0.5 * span, time + 0.5 * span)

    # -- selection -----------------------------------------------------------------------------

    def selection(self) -> list[FrameRange]:
        """The selected ranges in frames: sorted, disjoint, non-empty."""
        return list(self._selection)

    def has_selection(self) -> bool:
        """True when at least one range is selected."""
        return bool(self._selection)

    def selection_bounds(self) -> FrameRange | None:
        """From the first selected frame to the last, or ``None``."""
        if not self._selection:
            return None
        return self._selection[0][0], self._selection[-1][1]

    def set_selection(self, ranges: Sequence[FrameRange]) -> None:
        """Replace the selection."""
        new = normalize_ranges(ranges, self._length or None)
        if new != self._selection:
            self._selection = new
            self.selection_changed.emit()

    def add_selection(self, frame_range: FrameRange) -> None:
        """Add a range to the selection (ranges that overlap are merged)."""
        self.set_selection([*self._selection, frame_range])

    def clear_selection(self) -> None:
        """Select nothing (on every track)."""
        self.set_selection([])
        self.set_selection_tracks(())

    def selection_tracks(self) -> tuple[str, ...]:
        """The tracks (lanes) the selection covers; empty: every track."""
        return self._selection_tracks

    def set_selection_tracks(self, track_ids: Sequence[str]) -> None:
        """Limit the selection to these tracks' lanes (empty: every track)."""
        ids = tuple(dict.fromkeys(track_ids))
        if ids != self._selection_tracks:
            self._selection_tracks = ids
            self.selection_tracks_changed.emit()

    def select_all(self) -> None:
        """Select the whole project."""
        self.set_selection([(0, self._length)] if self._length else [])

    def nudge_selection(self, frames: int) -> None:
        """Move every selected range by ``frames`` (kept inside the project)."""
        if not self._selection:
            return
        lo = self._selection[0][0]
        hi = self._selection[-1][1]
        frames = max(frames, -lo)
        if self._length:
            frames = min(frames, self._length - hi)
        if frames:
            self.set_selection([(a + frames, b + frames) for a, b in self._selection])

    # -- cursor and playhead -------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """The edit cursor (where playback starts and paste inserts), in frames."""
        return self._cursor

    def set_cursor(self, frame: int) -> None:
        """Move the edit cursor."""
        frame = max(0, min(int(frame), self._length))
        if frame != self._cursor:
            self._cursor = frame
            self.cursor_changed.emit(frame)

    @property
    def playhead(self) -> int:
        """Where playback is, in frames."""
        return self._playhead

    def set_playhead(self, frame: int) -> None:
        """Move the playhead (the transport does this while playing)."""
        frame = max(0, int(frame))
        if frame != self._playhead:
            self._playhead = frame
            self.playhead_changed.emit(frame)

    # -- regions -------------------------------------------------------------------------------

    def selected_region_ids(self) -> tuple[str, ...]:
        """Ids of the document regions the user has selected, in selection order."""
        return self._regions

    def set_selected_regions(self, ids: Iterable[str]) -> None:
        """Select document regions by id (an empty iterable selects none)."""
        new = tuple(dict.fromkeys(str(i) for i in ids))
        if new != self._regions:
            self._regions = new
            self.selected_regions_changed.emit()

    # -- snapping ------------------------------------------------------------------------------

    @property
    def snap(self) -> SnapModes:
        """The snap toggles."""
        return self._snap

    def set_snap(self, **modes: bool) -> None:
        """Turn snap grids on or off, e.g. ``set_snap(latent=True)``."""
        new = replace(self._snap, **modes)
        if new != self._snap:
            self._snap = new
            self.snap_changed.emit()

    # -- conversions ---------------------------------------------------------------------------

    def to_frame(self, seconds: float) -> int:
        """Seconds to the nearest frame."""
        return round(seconds * self._rate)

    def to_seconds(self, frame: int) -> float:
        """Frames to seconds."""
        return frame / self._rate
