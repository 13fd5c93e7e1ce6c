"""The timeline: ruler, region lane, waveform lanes, optional spectrogram, cursor and playhead.

The widget is a view of :class:`~sa3_studio.app.session.Session` (visible span, selection,
cursor, playhead, selected regions) and of the document's regions. Mouse gestures change the
session directly (selection and zoom are view state); the only document edit made here, moving a
region edge, is reported once, on release, through :attr:`TimelineWidget.region_edge_committed`.

Mouse:
    drag                    select a span (replaces the selection)
    Ctrl/Cmd + drag         add a span to the selection
    Shift + click           extend the selection to the click
    click                   put the edit cursor there (clears the selection)
    drag a selection edge   resize that span
    drag a region edge      resize the region (one undo step, on release)
    click a region header   select the region (Ctrl/Cmd adds); its span becomes the selection
    drag a region header    drag the region out of the window as a WAV file
    double-click a region   select it
    wheel                   scroll;  Ctrl/Cmd + wheel  zoom around the mouse
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsSceneWheelEvent, QHBoxLayout, QVBoxLayout, QWidget

from sa3_studio.app.session import FrameRange, Session
from sa3_studio.app.spectrogram import Spectrogram
from sa3_studio.document.region import Region
from sa3_studio.ui.overview import OverviewStrip
from sa3_studio.ui.ruler import Tempo, TimeAxis
from sa3_studio.ui.theme import DARK, Theme
from sa3_studio.ui.timeline_items import (
    HEADER_PX,
    GridItem,
    Layout,
    RegionsItem,
    SelectionItem,
    TakeOverlay,
    TakeOverlayItem,
)
from sa3_studio.ui.waveform import PeakSource, WaveformItem

EDGE_PX = 6.0
"""How close (pixels) the mouse must be to an edge to grab it."""

SNAP_PX = 10.0
"""Snapping to zero crossings looks this far (pixels) either side."""

WHEEL_ZOOM_PER_NOTCH = 1.25
WHEEL_SCROLL_PER_NOTCH = 0.1

Snapper = Callable[[int, int], int]
"""``snap(frame, tolerance_frames) -> frame``: applies the session's snap grids."""


class _Mode(enum.Enum):
    NONE = 0
    SELECT = 1
    SELECTION_EDGE = 2
    REGION_EDGE = 3
    DRAG_OUT = 4


@dataclass(frozen=True, slots=True)
class Hit:
    """What is under the mouse.

    Attributes:
        kind: "region-edge", "selection-edge", "region-header", "region", "lane" or "header".
        index: the selection range index (selection edges).
        region_id: the region (region kinds).
        edge: 0 = start edge, 1 = end edge.
    """

    kind: str
    index: int = -1
    region_id: str = ""
    edge: int = 0


def _spectrogram_lut() -> npt.NDArray[np.uint8]:
    """An inferno-like colour table: black, purple, red, orange, pale yellow."""
    stops = np.array([0.0, 0.2, 0.45, 0.7, 0.9, 1.0])
    colors = np.array(
        [
            [4, 4, 14],
            [48, 12, 96],
            [150, 38, 100],
            [226, 90, 42],
            [250, 180, 40],
            [252, 250, 190],
        ],
        dtype=np.float64,
    )
    x = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(x, stops, colors[:, i]) for i in range(3)], axis=1)
    return lut.astype(np.uint8)


class TimelineViewBox(pg.ViewBox):
    """A ViewBox whose mouse gestures are the editor's, not pyqtgraph's pan and zoom."""

    def __init__(self, timeline: TimelineWidget) -> None:
        super().__init__(enableMenu=False, invertY=True, defaultPadding=0.0)
        self._timeline = timeline
        self.setMouseEnabled(x=False, y=False)
        self.enableAutoRange(enable=False)

    def mouseDragEvent(self, ev: object, axis: int | None = None) -> None:  # noqa: N802
        self._timeline._drag_event(ev)

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802
        self._timeline._click_event(ev)

    def wheelEvent(self, ev: QGraphicsSceneWheelEvent, axis: int | None = None) -> None:  # noqa: N802
        self._timeline._wheel_event(ev)

    def hoverEvent(self, ev: object) -> None:  # noqa: N802
        self._timeline._hover_event(ev)


class TimelineWidget(QWidget):
    """Overview strip + ruler + region lane + waveform lanes (+ spectrogram).

    Args:
        session: the view state this widget shows and edits.
        theme: colours.

    Signals:
        region_edge_committed(region_id, start, end): a region edge drag finished (frames).
        region_activated(region_id): a region was double-clicked.
        region_drag_out(region_id): the user started dragging a region's header.
        context_menu_requested(global_pos): right click on the timeline.
    """

    region_edge_committed = Signal(str, int, int)
    region_activated = Signal(str)
    region_drag_out = Signal(str)
    context_menu_requested = Signal(object)
    lanes_changed = Signal()

    def __init__(
        self, session: Session, theme: Theme = DARK, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self._session = session
        self._theme = theme
        self._snapper: Snapper | None = None
        self._layout_info = Layout(sample_rate=session.sample_rate)
        self._spectrogram_visible = False
        self._mode = _Mode.NONE
        self._drag_base: list[FrameRange] = []
        self._drag_anchor = 0
        self._drag_hit: Hit | None = None
        self._drag_region: Region | None = None
        self._drag_span: FrameRange | None = None
        self._source: PeakSource | None = None
        self._lane_ids: list[str] = []
        self._drag_track = ""

        self.axis = TimeAxis("top")
        self.view_box = TimelineViewBox(self)
        self.plot = pg.PlotWidget(viewBox=self.view_box, axisItems={"top": self.axis})
        self.plot.setObjectName("timelinePlot")
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.showAxis("top")
        item.hideButtons()
        item.setMenuEnabled(False)
        item.layout.setContentsMargins(0, 0, 0, 0)
        self.plot.setAntialiasing(False)
        self.plot.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.waveform = WaveformItem(theme.waveform)
        self.grid = GridItem(self._layout_info, theme)
        self.regions_item = RegionsItem(self._layout_info, theme)
        self.selection_item = SelectionItem(self._layout_info, theme)
        self.overlay_item = TakeOverlayItem(self._layout_info, theme)
        self.spectrogram = pg.ImageItem(axisOrder="col-major")
        self.spectrogram.setLookupTable(_spectrogram_lut())
        self.spectrogram.setZValue(1)
        self.spectrogram.setVisible(False)
        self.cursor_line = pg.InfiniteLine(angle=90, movable=False)
        self.cursor_line.setZValue(60)
        self.playhead_line = pg.InfiniteLine(angle=90, movable=False)
        self.playhead_line.setZValue(70)
        self.playhead_line.setVisible(False)
        for it in (
            self.waveform,
            self.spectrogram,
            self.grid,
            self.regions_item,
            self.selection_item,
            self.overlay_item,
            self.cursor_line,
            self.playhead_line,
        ):
            self.view_box.addItem(it, ignoreBounds=True)

        self.overview = OverviewStrip(session, theme)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.overview)
        # Track headers (name, mute, solo, gain, remove) sit left of their lanes.
        self._lanes_row = QHBoxLayout()
        self._lanes_row.setContentsMargins(0, 0, 0, 0)
        self._lanes_row.setSpacing(0)
        self._lanes_row.addWidget(self.plot, 1)
        lay.addLayout(self._lanes_row, 1)

        session.view_changed.connect(self._on_view_changed)
        session.selection_changed.connect(self._on_selection_changed)
        session.cursor_changed.connect(self._on_cursor_changed)
        session.playhead_changed.connect(self._on_playhead_changed)
        session.selected_regions_changed.connect(self._on_selected_regions_changed)
        session.selection_tracks_changed.connect(self._on_selection_tracks_changed)
        session.timeline_changed.connect(self._on_timeline_changed)
        self.view_box.sigResized.connect(self._update_y_range)

        self.set_theme(theme)
        self._on_timeline_changed()
        self._on_view_changed(*session.view_range())

    # -- public API ------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The view state shown."""
        return self._session

    def set_source(self, source: PeakSource | None, lanes: PeakSource | None = None) -> None:
        """Draw the waveform of ``source`` (the project's mix).

        Args:
            source: the mix (the overview always shows it).
            lanes: one lane per track for a project with several tracks (the waveform then
                draws these instead of the mix's channels).
        """
        self._source = source
        self.waveform.set_source(lanes if lanes is not None and source is not None else source)
        self.overview.set_source(source)
        self._on_timeline_changed()
        self.lanes_changed.emit()

    def set_lanes(self, track_ids: Sequence[str]) -> None:
        """Draw each track's regions and takes in its own lane (several tracks as lanes; an
        empty list: one track, drawn over the whole height)."""
        n = len(track_ids)
        lanes = {tid: (i / n, (i + 1) / n) for i, tid in enumerate(track_ids)} if n > 1 else {}
        self._lane_ids = list(track_ids) if n > 1 else []
        if lanes != self._layout_info.lanes:
            self._layout_info.lanes = lanes
            live = [t for t in self._session.selection_tracks() if t in lanes]
            self._session.set_selection_tracks(live)
            self._on_selection_tracks_changed()
            for it in (self.regions_item, self.overlay_item):
                it.update()

    def track_at(self, scene_pos: QPointF) -> str:
        """The track whose lane is at ``scene_pos`` ("" with one track, or off the lanes)."""
        if not self._lane_ids:
            return ""
        y = self.view_box.mapSceneToView(scene_pos).y()
        if not 0.0 <= y < 1.0:
            return ""
        return self._lane_ids[min(int(y * len(self._lane_ids)), len(self._lane_ids) - 1)]

    def _tracks_between(self, a: str, b: str) -> list[str]:
        if not a or not b:
            return []
        i, j = sorted((self._lane_ids.index(a), self._lane_ids.index(b)))
        return self._lane_ids[i : j + 1]

    def _on_selection_tracks_changed(self) -> None:
        ids = self._session.selection_tracks()
        spans = [self._layout_info.lanes[t] for t in ids if t in self._layout_info.lanes]
        self._layout_info.selection_lanes = (
            (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
        )
        self.selection_item.update()

    def set_track_headers(self, headers: QWidget) -> None:
        """Put ``headers`` left of the lanes (it is shown only while it has rows to show)."""
        self._lanes_row.insertWidget(0, headers)

    def lane_spans(self) -> list[tuple[int, int]]:
        """``(top, height)`` in pixels of this widget's plot of each waveform lane."""
        lanes = max(self.waveform.channels, 1)
        out: list[tuple[int, int]] = []
        for i in range(lanes):
            top = self.view_box.mapViewToScene(QPointF(0.0, i / lanes))
            bottom = self.view_box.mapViewToScene(QPointF(0.0, (i + 1) / lanes))
            y0 = round(self.plot.mapFromScene(top).y())
            y1 = round(self.plot.mapFromScene(bottom).y())
            out.append((y0, max(y1 - y0, 1)))
        return out

    def refresh_waveform(self) -> None:
        """Redraw the waveform (its source's audio changed)."""
        self.waveform.invalidate()
        self.overview.invalidate()

    def set_regions(
        self, regions: Sequence[Region], notes: Mapping[str, str] | None = None
    ) -> None:
        """The document's regions (``notes``: text after a region's name, by region id)."""
        self.regions_item.set_regions(regions, notes)
        self.overview.set_regions([(r.start, r.end) for r in regions])

    def set_tempo(self, tempo: Tempo | None) -> None:
        """Show bars:beats on the ruler (``None``: minutes:seconds)."""
        self.axis.set_tempo(tempo)

    def set_grid(self, step_s: float, origin_s: float = 0.0, bar_every: int = 0) -> None:
        """Draw faint grid lines every ``step_s`` seconds (0 hides them)."""
        self.grid.set_grid(step_s, origin_s, bar_every)

    def set_snapper(self, snapper: Snapper | None) -> None:
        """The function that snaps dragged edges (see :data:`Snapper`)."""
        self._snapper = snapper

    def set_take_overlays(self, overlays: Sequence[TakeOverlay]) -> None:
        """Draw pending takes over their spans (the generation workflow's extension point)."""
        self.overlay_item.set_overlays(overlays)

    def add_item(self, item: pg.GraphicsObject, z: float = 45.0) -> None:
        """Add any graphics item to the timeline's view (x seconds, y lanes ``[0, 1)``)."""
        item.setZValue(z)
        self.view_box.addItem(item, ignoreBounds=True)

    def set_spectrogram_visible(self, visible: bool) -> None:
        """Show the spectrogram lane under the waveform lanes."""
        self._spectrogram_visible = visible
        self.spectrogram.setVisible(visible)
        self._layout_info.content_bottom = 2.0 if visible else 1.0
        self._update_y_range()

    def spectrogram_visible(self) -> bool:
        """True when the spectrogram lane is shown."""
        return self._spectrogram_visible

    def set_spectrogram(self, spec: Spectrogram | None) -> None:
        """The spectrogram to draw in its lane (``None`` clears it)."""
        if spec is None or spec.image.size == 0:
            self.spectrogram.clear()
            return
        # Row 0 is the lowest frequency; the lane's y grows downwards, so flip it.
        img = np.ascontiguousarray(spec.image[:, ::-1])
        self.spectrogram.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        self.spectrogram.setRect(QRectF(spec.start, 1.0, spec.end - spec.start, 1.0))

    def set_playhead_visible(self, visible: bool) -> None:
        """Show or hide the playhead line."""
        self.playhead_line.setVisible(visible)

    def set_theme(self, theme: Theme) -> None:
        """Change every colour of the timeline."""
        self._theme = theme
        self.waveform.set_colors(theme.waveform)
        for it in (self.grid, self.regions_item, self.selection_item, self.overlay_item):
            it.set_theme(theme)
        self.plot.setBackground(theme.waveform.lane_bg)
        self.axis.setPen(QPen(theme.ruler_tick))
        self.axis.setTextPen(QPen(theme.ruler_text))
        # Labels on the major ticks only: formatting and measuring minor labels that are never
        # drawn cost more than the whole waveform.
        self.axis.setStyle(tickLength=-6, tickTextOffset=3, maxTextLevel=0)
        cursor_pen = QPen(theme.cursor)
        cursor_pen.setCosmetic(True)
        cursor_pen.setStyle(Qt.PenStyle.DashLine)
        self.cursor_line.setPen(cursor_pen)
        play_pen = QPen(theme.playhead)
        play_pen.setCosmetic(True)
        play_pen.setWidthF(2.0)
        self.playhead_line.setPen(play_pen)
        self.overview.set_theme(theme)

    # -- coordinates -----------------------------------------------------------------------

    def frame_at(self, scene_pos: QPointF) -> int:
        """The frame under a scene position (clamped to the project)."""
        x = self.view_box.mapSceneToView(scene_pos).x()
        frame = round(x * self._session.sample_rate)
        return max(0, min(frame, self._session.length))

    def frames_per_pixel(self) -> float:
        """How many frames one pixel column covers at the current zoom."""
        width = max(self.view_box.width(), 1.0)
        return self._session.view_span * self._session.sample_rate / width

    def x_of(self, frame: int) -> float:
        """Scene x (pixels) of ``frame``."""
        p = self.view_box.mapViewToScene(QPointF(frame / self._session.sample_rate, 0.0))
        return p.x()

    def scene_pos_of(self, frame: int, lane_y: float = 0.5) -> QPointF:
        """Scene position of ``frame`` at height ``lane_y`` (0 top of the lanes, 1 bottom)."""
        return self.view_box.mapViewToScene(QPointF(frame / self._session.sample_rate, lane_y))

    def viewport_pos_of(self, frame: int, lane_y: float = 0.5) -> QPointF:
        """Position in the plot's viewport widget of ``frame`` at lane height ``lane_y``."""
        scene = self.scene_pos_of(frame, lane_y)
        return QPointF(self.plot.mapFromScene(scene))

    def hit_test(self, scene_pos: QPointF) -> Hit:
        """What lies under ``scene_pos``: edges first, then region headers, then lanes."""
        view_pt = self.view_box.mapSceneToView(scene_pos)
        x_px = scene_pos.x()
        in_header = view_pt.y() < 0.0
        tol = EDGE_PX
        rate = self._session.sample_rate
        regions = self.regions_item.regions()

        def region_edge() -> Hit | None:
            best: tuple[float, Hit] | None = None
            for r in regions:
                a, b = self.regions_item.span(r)
                for edge, f in ((0, a), (1, b)):
                    d = abs(self.x_of(f) - x_px)
                    if d <= tol and (best is None or d < best[0]):
                        best = (d, Hit("region-edge", region_id=r.id, edge=edge))
            return best[1] if best else None

        def selection_edge() -> Hit | None:
            best: tuple[float, Hit] | None = None
            for i, (a, b) in enumerate(self._session.selection()):
                for edge, f in ((0, a), (1, b)):
                    d = abs(self.x_of(f) - x_px)
                    if d <= tol and (best is None or d < best[0]):
                        best = (d, Hit("selection-edge", index=i, edge=edge))
            return best[1] if best else None

        frame = view_pt.x() * rate
        if in_header:
            hit = region_edge()
            if hit is not None:
                return hit
            for r in reversed(regions):
                a, b = self.regions_item.span(r)
                if a <= frame < b:
                    return Hit("region-header", region_id=r.id)
            return Hit("header")
        hit = selection_edge() or region_edge()
        if hit is not None:
            return hit
        for r in reversed(regions):
            if r.start <= frame < r.end:
                return Hit("region", region_id=r.id)
        return Hit("lane")

    # -- snapping --------------------------------------------------------------------------

    def snap(self, frame: int) -> int:
        """Apply the snapper (if any) to ``frame``."""
        if self._snapper is None or not self._session.snap.any:
            return frame
        tol = max(int(SNAP_PX * self.frames_per_pixel()), 1)
        snapped = int(self._snapper(frame, tol))
        return max(0, min(snapped, self._session.length))

    # -- session -> drawing ------------------------------------------------------------------

    def _on_view_changed(self, start: float, end: float) -> None:
        self.view_box.setXRange(start, end, padding=0.0)

    def _on_selection_changed(self) -> None:
        self.selection_item.set_ranges(self._session.selection())

    def _on_cursor_changed(self, frame: int) -> None:
        self.cursor_line.setValue(frame / self._session.sample_rate)

    def _on_playhead_changed(self, frame: int) -> None:
        self.playhead_line.setValue(frame / self._session.sample_rate)
        self.overview.set_playhead(frame)

    def _on_selected_regions_changed(self) -> None:
        self.regions_item.set_selected(self._session.selected_region_ids())

    def _on_timeline_changed(self) -> None:
        s = self._session
        self._layout_info.sample_rate = s.sample_rate
        duration = max(s.duration, 1e-3)
        for it in (self.grid, self.regions_item, self.selection_item, self.overlay_item):
            it.set_duration(duration)
        self._on_selection_changed()
        self._on_cursor_changed(s.cursor)
        self._update_y_range()

    def _update_y_range(self, *_: object) -> None:
        h = max(self.view_box.height(), float(HEADER_PX + 1))
        bottom = self._layout_info.content_bottom
        top = -HEADER_PX * bottom / max(h - HEADER_PX, 1.0)
        self._layout_info.header_top = top
        self.waveform.set_height(1.0)
        for it in (self.grid, self.regions_item, self.selection_item, self.overlay_item):
            it.layout_changed()
        self.view_box.setYRange(top, bottom, padding=0.0)
        self.lanes_changed.emit()

    # -- mouse -----------------------------------------------------------------------------

    def _click_event(self, ev: object) -> None:
        ev.accept()  # type: ignore[attr-defined]
        button = ev.button()  # type: ignore[attr-defined]
        pos = ev.scenePos()  # type: ignore[attr-defined]
        mods = ev.modifiers()  # type: ignore[attr-defined]
        if button == Qt.MouseButton.RightButton:
            self.context_menu_requested.emit(ev.screenPos().toPoint())  # type: ignore[attr-defined]
            return
        if button != Qt.MouseButton.LeftButton:
            return
        s = self._session
        hit = self.hit_test(pos)
        additive = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if ev.double():  # type: ignore[attr-defined]
            if hit.region_id:
                self._select_region(hit.region_id, additive=False)
                self.region_activated.emit(hit.region_id)
            else:
                s.select_all()
            return
        if hit.kind == "region-header":
            self._select_region(hit.region_id, additive=additive)
            return
        frame = self.snap(self.frame_at(pos))
        if mods & Qt.KeyboardModifier.ShiftModifier:
            bounds = s.selection_bounds()
            anchor = s.cursor
            if bounds is not None:
                # Extend from the far end of the selection, as text editors do.
                anchor = bounds[0] if abs(frame - bounds[0]) > abs(frame - bounds[1]) else bounds[1]
            s.set_selection([(min(anchor, frame), max(anchor, frame))])
            return
        if not additive:
            s.clear_selection()
            s.set_selected_regions(())
        s.set_cursor(frame)
        track = self.track_at(pos)
        if track:
            s.set_selection_tracks([track])

    def _select_region(self, region_id: str, *, additive: bool) -> None:
        s = self._session
        ids = list(s.selected_region_ids())
        if additive:
            if region_id in ids:
                ids.remove(region_id)
            else:
                ids.append(region_id)
        else:
            ids = [region_id]
        s.set_selected_regions(ids)
        chosen = [r for r in self.regions_item.regions() if r.id in ids]
        spans = [(r.start, r.end) for r in chosen]
        s.set_selection(spans)
        if self._lane_ids:
            s.set_selection_tracks(
                [t for t in self._lane_ids if any(r.track_id == t for r in chosen)]
            )
        if spans:
            s.set_cursor(min(a for a, _ in spans))

    def _drag_event(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.ignore()  # type: ignore[attr-defined]
            return
        ev.accept()  # type: ignore[attr-defined]
        s = self._session
        if ev.isStart():  # type: ignore[attr-defined]
            start_pos = ev.buttonDownScenePos()  # type: ignore[attr-defined]
            mods = ev.modifiers()  # type: ignore[attr-defined]
            hit = self.hit_test(start_pos)
            self._drag_hit = hit
            if hit.kind == "region-edge":
                self._mode = _Mode.REGION_EDGE
                self._drag_region = next(
                    (r for r in self.regions_item.regions() if r.id == hit.region_id), None
                )
                self._drag_span = (
                    (self._drag_region.start, self._drag_region.end) if self._drag_region else None
                )
            elif hit.kind == "selection-edge":
                self._mode = _Mode.SELECTION_EDGE
                self._drag_base = s.selection()
            elif hit.kind == "region-header":
                self._mode = _Mode.DRAG_OUT
            else:
                self._mode = _Mode.SELECT
                additive = bool(mods & Qt.KeyboardModifier.ControlModifier)
                self._drag_base = s.selection() if additive else []
                self._drag_anchor = self.snap(self.frame_at(start_pos))
                self._drag_track = self.track_at(start_pos)
                if not additive:
                    s.set_selected_regions(())
        if self._mode == _Mode.DRAG_OUT:
            if ev.isStart() and self._drag_hit is not None:  # type: ignore[attr-defined]
                region_id = self._drag_hit.region_id
                self._mode = _Mode.NONE
                self.region_drag_out.emit(region_id)
            return
        frame = self.snap(self.frame_at(ev.scenePos()))  # type: ignore[attr-defined]
        if self._mode == _Mode.SELECT:
            a, b = sorted((self._drag_anchor, frame))
            s.set_selection([*self._drag_base, (a, b)] if b > a else self._drag_base)
            if self._drag_track:
                # The selection covers the lanes dragged over (several tracks as lanes).
                here = self.track_at(ev.scenePos()) or self._drag_track  # type: ignore[attr-defined]
                s.set_selection_tracks(self._tracks_between(self._drag_track, here))
            if ev.isFinish():  # type: ignore[attr-defined]
                s.set_cursor(a)
        elif self._mode == _Mode.SELECTION_EDGE and self._drag_hit is not None:
            ranges = list(self._drag_base)
            i = self._drag_hit.index
            if 0 <= i < len(ranges):
                a, b = ranges[i]
                if self._drag_hit.edge == 0:
                    a = frame
                else:
                    b = frame
                ranges[i] = (min(a, b), max(a, b))
                s.set_selection(ranges)
        elif self._mode == _Mode.REGION_EDGE and self._drag_region is not None:
            r = self._drag_region
            if self._drag_hit is not None and self._drag_hit.edge == 0:
                span = (min(frame, r.end - 1), r.end)
            else:
                span = (r.start, max(frame, r.start + 1))
            self._drag_span = span
            self.regions_item.set_preview(r.id, *span)
        if ev.isFinish():  # type: ignore[attr-defined]
            self._finish_drag()

    def _finish_drag(self) -> None:
        if self._mode == _Mode.REGION_EDGE and self._drag_region is not None:
            r = self._drag_region
            span = self._drag_span
            if span is not None and span != (r.start, r.end):
                # The document edit is made once, on release; the preview stays until the
                # controller hands back the new regions.
                self.region_edge_committed.emit(r.id, span[0], span[1])
            else:
                self.regions_item.clear_preview()
        self._mode = _Mode.NONE
        self._drag_hit = None
        self._drag_region = None
        self._drag_span = None
        self._drag_base = []

    def _wheel_event(self, ev: QGraphicsSceneWheelEvent) -> None:
        ev.accept()
        delta = ev.delta() / 120.0
        if delta == 0:
            return
        mods = ev.modifiers()
        s = self._session
        if mods & Qt.KeyboardModifier.ControlModifier:
            anchor = self.view_box.mapSceneToView(ev.scenePos()).x()
            s.zoom(WHEEL_ZOOM_PER_NOTCH**delta, anchor)
        else:
            s.scroll(-delta * WHEEL_SCROLL_PER_NOTCH)

    def _hover_event(self, ev: object) -> None:
        if ev.isExit():  # type: ignore[attr-defined]
            self.regions_item.set_hover(None)
            self.view_box.unsetCursor()
            return
        if self._mode != _Mode.NONE:
            return
        hit = self.hit_test(ev.scenePos())  # type: ignore[attr-defined]
        self.regions_item.set_hover(hit.region_id or None)
        if hit.kind in ("region-edge", "selection-edge"):
            self.view_box.setCursor(Qt.CursorShape.SizeHorCursor)
        elif hit.kind == "region-header":
            self.view_box.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.view_box.setCursor(Qt.CursorShape.IBeamCursor)
