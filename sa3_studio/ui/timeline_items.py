"""Graphics items of the timeline besides the waveform: selection, regions and take overlays.

All items live in the timeline's ViewBox: x is seconds, y grows downwards. The region header
lane is ``[layout.header_top, 0)``, the waveform lanes are ``[0, 1)`` and the spectrogram, when
shown, ``[1, 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QTransform
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from sa3_studio.document.region import Region
from sa3_studio.ui.theme import DARK, Theme
from sa3_studio.ui.waveform import PeakSource, envelope_path

HEADER_PX = 22
"""Height of the region header lane in pixels."""


@dataclass
class Layout:
    """Vertical layout of the timeline, shared by its items (view units)."""

    header_top: float = -0.05
    content_bottom: float = 1.0
    sample_rate: int = 44100
    lanes: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Top and bottom of each track's lane by track id (empty: one track, the whole height)."""
    selection_lanes: tuple[float, float] | None = None
    """Top and bottom of the lanes the selection covers (``None``: every lane)."""

    @property
    def full(self) -> tuple[float, float]:
        """Top and bottom of everything."""
        return self.header_top, self.content_bottom

    def lane(self, track_id: str, bottom: float = 1.0) -> tuple[float, float]:
        """Top and bottom of the lane a track's regions and takes are drawn in."""
        return self.lanes.get(track_id, (0.0, bottom))


@dataclass(frozen=True, slots=True)
class TakeOverlay:
    """A pending (not yet accepted) take drawn over its region.

    Attributes:
        start: first frame the take covers.
        end: frame after the last.
        label: text in its badge ("Take 3 · seed 1234").
        source: the take's audio as a peak source (its frame 0 is ``start``), drawn over the
            project's waveform; ``None`` draws only the tinted band.
        active: the take being auditioned (drawn stronger).
        key: anything that identifies it for the caller (a take id).
        track_id: the track of its region (drawn in that track's lane when tracks are lanes).
    """

    start: int
    end: int
    label: str = ""
    source: PeakSource | None = None
    active: bool = False
    key: str = ""
    track_id: str = ""


def _cosmetic(
    color: QColor, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine
) -> QPen:
    pen = QPen(color)
    pen.setCosmetic(True)
    pen.setWidthF(width)
    pen.setStyle(style)
    return pen


MAX_TEXT_PX = 8192
"""Widest text box handed to Qt (far wider than any screen; Qt's int geometry overflows)."""


def clip_span(x0: float, x1: float, lo: float, hi: float) -> tuple[float, float]:
    """``[x0, x1]`` cut to the visible ``[lo, hi]`` plus one view width on each side.

    Every rectangle and line given to Qt goes through this: at extreme zoom a long span maps
    to billions of pixels, which overflow Qt's integer geometry (and crash its painting).
    What lies beyond the margin is off screen anyway.
    """
    margin = max(hi - lo, 1e-9)
    return max(x0, lo - margin), min(x1, hi + margin)


class _LayoutItem(pg.GraphicsObject):
    """Base: an item spanning the whole height whose bounds follow the shared layout."""

    def __init__(self, layout: Layout, theme: Theme) -> None:
        super().__init__()
        self._layout = layout
        self._theme = theme
        self._duration = 1.0

    def set_theme(self, theme: Theme) -> None:
        self._theme = theme
        self.update()

    def set_duration(self, seconds: float) -> None:
        self.prepareGeometryChange()
        self._duration = max(seconds, 1e-3)
        self.update()

    def layout_changed(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        top, bottom = self._layout.full
        return QRectF(0.0, top, self._duration, bottom - top)

    def _visible_x(self) -> tuple[float, float]:
        view = self.getViewBox()
        if view is None:
            return 0.0, self._duration
        (lo, hi), _ = view.viewRange()
        return lo, hi


class SelectionItem(_LayoutItem):
    """The time selection: translucent spans with bright edges over the waveform lanes."""

    def __init__(self, layout: Layout, theme: Theme = DARK) -> None:
        super().__init__(layout, theme)
        self._ranges: list[tuple[int, int]] = []
        self.setZValue(30)

    def set_ranges(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Frames of the selected spans."""
        self._ranges = list(ranges)
        self.update()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._ranges:
            return
        rate = self._layout.sample_rate
        lo, hi = self._visible_x()
        top, bottom = self._layout.selection_lanes or (0.0, self._layout.content_bottom)
        edge = _cosmetic(self._theme.selection_edge)
        for a, b in self._ranges:
            x0, x1 = a / rate, b / rate
            if x1 < lo or x0 > hi:
                continue
            x0, x1 = clip_span(x0, x1, lo, hi)
            painter.fillRect(QRectF(x0, top, x1 - x0, bottom - top), self._theme.selection_fill)
            painter.setPen(edge)
            painter.drawLine(QPointF(x0, top), QPointF(x0, bottom))
            painter.drawLine(QPointF(x1, top), QPointF(x1, bottom))


class RegionsItem(_LayoutItem):
    """Document regions: a labelled header in the region lane and a tinted span below it."""

    def __init__(self, layout: Layout, theme: Theme = DARK) -> None:
        super().__init__(layout, theme)
        self._regions: list[Region] = []
        self._notes: dict[str, str] = {}
        self._selected: set[str] = set()
        self._preview: dict[str, tuple[int, int]] = {}
        self._hover: str | None = None
        self.setZValue(20)

    def set_regions(
        self, regions: Sequence[Region], notes: Mapping[str, str] | None = None
    ) -> None:
        """The regions to draw, with a note after a region's name by id (its accepted take)."""
        self._regions = list(regions)
        self._notes = dict(notes or {})
        self._preview.clear()
        self.update()

    def regions(self) -> list[Region]:
        """The regions drawn (without previews)."""
        return list(self._regions)

    def note(self, region_id: str) -> str:
        """The note drawn after a region's name ("" for none)."""
        return self._notes.get(region_id, "")

    def set_selected(self, ids: Sequence[str]) -> None:
        """Ids drawn as selected."""
        self._selected = set(ids)
        self.update()

    def set_preview(self, region_id: str, start: int, end: int) -> None:
        """Draw ``region_id`` at ``[start, end)`` while its edge is being dragged."""
        self._preview[region_id] = (start, end)
        self.update()

    def clear_preview(self) -> None:
        """Draw every region where the document has it."""
        self._preview.clear()
        self.update()

    def set_hover(self, region_id: str | None) -> None:
        """Highlight the region under the mouse."""
        if region_id != self._hover:
            self._hover = region_id
            self.update()

    def span(self, region: Region) -> tuple[int, int]:
        """Where ``region`` is drawn (its preview while dragged)."""
        return self._preview.get(region.id, (region.start, region.end))

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._regions:
            return
        theme = self._theme
        rate = self._layout.sample_rate
        lo, hi = self._visible_x()
        top = self._layout.header_top
        bottom = self._layout.content_bottom
        device = painter.transform()
        labels: list[tuple[QRectF, str, bool]] = []
        for region in self._regions:
            a, b = self.span(region)
            x0, x1 = a / rate, b / rate
            if x1 < lo or x0 > hi:
                continue
            x0, x1 = clip_span(x0, x1, lo, hi)
            selected = region.id in self._selected
            fill = QColor(theme.region_fill)
            if selected or region.id == self._hover:
                fill.setAlpha(min(255, fill.alpha() * 2))
            y0, y1 = self._layout.lane(region.track_id, bottom)
            painter.fillRect(QRectF(x0, y0, x1 - x0, y1 - y0), fill)
            header = theme.region_header_selected if selected else theme.region_header
            painter.fillRect(QRectF(x0, top, x1 - x0, -top), header)
            painter.setPen(_cosmetic(theme.region_edge, 1.5 if selected else 1.0))
            painter.drawLine(QPointF(x0, top), QPointF(x0, y1))
            painter.drawLine(QPointF(x1, top), QPointF(x1, y1))
            text = region.name or region.prompt or "Region"
            note = self._notes.get(region.id, "")
            if note:
                text = f"{text} · {note}"
            rect = device.mapRect(QRectF(x0, top, x1 - x0, -top))
            labels.append((rect, text, selected))
        # Text in pixels so it stays crisp and unscaled at any zoom.
        painter.save()
        painter.resetTransform()
        for rect, text, selected in labels:
            inner = rect.adjusted(6, 0, -4, 0)
            if inner.width() < 12:
                continue
            font = QFont(painter.font())
            font.setPointSizeF(8.5)
            font.setBold(selected)
            painter.setFont(font)
            metrics = QFontMetrics(font)
            painter.setPen(theme.region_text)
            width = int(min(inner.width(), MAX_TEXT_PX))
            if inner.width() > MAX_TEXT_PX:
                inner.setWidth(MAX_TEXT_PX)
            elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
            flags = int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
            painter.drawText(inner, flags, elided)
        painter.restore()


class TakeOverlayItem(_LayoutItem):
    """Pending takes drawn over their spans: tinted band, their own waveform and a badge.

    This is the extension point of the generation workflow: it sets the overlays with
    ``TimelineWidget.set_take_overlays``.
    """

    def __init__(self, layout: Layout, theme: Theme = DARK) -> None:
        super().__init__(layout, theme)
        self._overlays: list[TakeOverlay] = []
        self.setZValue(40)

    def set_overlays(self, overlays: Sequence[TakeOverlay]) -> None:
        """Replace the overlays drawn."""
        self._overlays = list(overlays)
        self.update()

    def overlays(self) -> list[TakeOverlay]:
        """The overlays drawn."""
        return list(self._overlays)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._overlays:
            return
        theme = self._theme
        rate = self._layout.sample_rate
        lo, hi = self._visible_x()
        view = self.getViewBox()
        px = max(int(view.width()), 1) if view is not None else 1000
        device = painter.transform()
        badges: list[tuple[QPointF, str]] = []
        for ov in self._overlays:
            x0, x1 = ov.start / rate, ov.end / rate
            if x1 < lo or x0 > hi:
                continue
            fill = QColor(theme.take_fill)
            if ov.active:
                fill.setAlpha(min(255, fill.alpha() * 2))
            c0, c1 = clip_span(x0, x1, lo, hi)
            y0, y1 = self._layout.lane(ov.track_id)
            painter.fillRect(QRectF(c0, y0, c1 - c0, y1 - y0), fill)
            src = ov.source
            if src is not None and src.frames > 0:
                self._paint_take_wave(
                    painter, device, src, x0, max(lo, x0), min(hi, x1), px, hi - lo, (y0, y1)
                )
            painter.setPen(_cosmetic(theme.take_wave, 1.5, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(c0, y0), QPointF(c0, y1))
            painter.drawLine(QPointF(c1, y0), QPointF(c1, y1))
            if ov.label:
                badges.append((device.map(QPointF(max(x0, lo), y0)), ov.label))
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(8.0)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        for point, text in badges:
            w = metrics.horizontalAdvance(text) + 12
            rect = QRectF(point.x() + 4, point.y() + 4, w, metrics.height() + 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.take_wave.darker(180))
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()

    def _paint_take_wave(
        self,
        painter: QPainter,
        device: QTransform,
        src: PeakSource,
        x0: float,
        a: float,
        b: float,
        px: int,
        view_span: float,
        lane: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        """The take's own envelope over ``[a, b]`` seconds (its frame 0 is at ``x0``), drawn
        in ``lane`` (top and bottom in view units)."""
        rate = self._layout.sample_rate
        f0 = max(int((a - x0) * rate), 0)
        f1 = min(math.ceil((b - x0) * rate), src.frames)
        if f1 <= f0:
            return
        cols = max(int(px * (b - a) / max(view_span, 1e-9)), 1)
        mins, maxs = src.envelope(f0, f1, cols)
        if self._layout.lanes:
            # Tracks are lanes of one envelope each (their channels together): so is the take.
            mins, maxs = mins.min(axis=0, keepdims=True), maxs.max(axis=0, keepdims=True)
        lane_h = (lane[1] - lane[0]) / mins.shape[0]
        sx, ox, sy, oy = device.m11(), device.dx(), device.m22(), device.dy()
        col_s = (f1 - f0) / rate / cols
        px0 = (x0 + f0 / rate + 0.5 * col_s) * sx + ox
        painter.save()
        painter.resetTransform()
        painter.setPen(QPen(self._theme.take_wave, 1.0))
        for c in range(mins.shape[0]):
            centre = (lane[0] + (c + 0.5) * lane_h) * sy + oy
            half = 0.5 * lane_h * 0.94 * sy
            painter.drawPath(envelope_path(px0, col_s * sx, mins[c], maxs[c], centre, half))
        painter.restore()


class GridItem(_LayoutItem):
    """Faint vertical lines at the snap grid (drawn only when they are far enough apart)."""

    MIN_PX = 14.0

    def __init__(self, layout: Layout, theme: Theme = DARK) -> None:
        super().__init__(layout, theme)
        self._step_s: float = 0.0
        self._origin_s: float = 0.0
        self._bar_every: int = 0
        self.setZValue(-5)  # under the waveform

    def set_grid(self, step_s: float, origin_s: float = 0.0, bar_every: int = 0) -> None:
        """Lines every ``step_s`` seconds from ``origin_s`` (0 = none); every ``bar_every``-th
        line is drawn stronger."""
        self._step_s = step_s
        self._origin_s = origin_s
        self._bar_every = bar_every
        self.update()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        step = self._step_s
        view = self.getViewBox()
        if step <= 0 or view is None:
            return
        lo, hi = self._visible_x()
        px = max(view.width(), 1.0)
        every = self._bar_every
        if step / max(hi - lo, 1e-12) * px < self.MIN_PX:
            # Beats too close together: draw the bars only (or nothing).
            if not every or step * every / max(hi - lo, 1e-12) * px < self.MIN_PX:
                return
            step *= every
            every = 1
        first = math.ceil((lo - self._origin_s) / step)
        last = math.floor((hi - self._origin_s) / step)
        bottom = self._layout.content_bottom
        weak = _cosmetic(self._theme.grid)
        strong = _cosmetic(self._theme.grid.lighter(150))
        for k in range(first, last + 1):
            x = self._origin_s + k * step
            painter.setPen(strong if every and k % every == 0 else weak)
            painter.drawLine(QPointF(x, 0.0), QPointF(x, bottom))
