"""The waveform lanes of the timeline, drawn from a min/max peak pyramid.

Only the visible span is drawn, at screen resolution: one min/max pair per pixel column comes
from the pyramid (``PeakSource.envelope``), so a zoom or scroll step costs the same on a
10-second loop and on a 10-minute song. When the view is zoomed in past one sample per pixel the
samples themselves are drawn as a line (with dots once they are far apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

SAMPLE_LINE_SPP = 1.5
"""Below this many samples per pixel the samples are drawn as a line instead of an envelope."""

SAMPLE_DOTS_SPP = 0.15
"""Below this many samples per pixel every sample also gets a dot."""


class PeakSource(Protocol):
    """What the waveform needs from the audio: a peak pyramid and the samples.

    The app layer adapts the audio package's pyramid to this; tests use a plain numpy version.
    A source may also have ``rms(start, end, n) -> (channels, n)``; the waveform then draws
    the RMS inside the peaks in a brighter colour.
    """

    @property
    def channels(self) -> int:
        """Number of channels."""
        ...

    @property
    def frames(self) -> int:
        """Length in frames."""
        ...

    @property
    def sample_rate(self) -> int:
        """Frames per second."""
        ...

    def envelope(
        self, start: int, end: int, n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Min and max of ``n`` equal columns of ``[start, end)``; each ``(channels, n)``."""
        ...

    def samples(self, start: int, end: int) -> npt.NDArray[np.float32]:
        """The samples of ``[start, end)``: ``(channels, end - start)``."""
        ...


@dataclass(frozen=True, slots=True)
class WaveformColors:
    """Colours of the waveform lanes."""

    fill: QColor
    rms: QColor
    outline: QColor
    centre: QColor
    clip: QColor
    lane_bg: QColor
    lane_sep: QColor
    label: QColor


def default_waveform_colors() -> WaveformColors:
    """The dark theme's waveform colours."""
    return WaveformColors(
        fill=QColor(46, 120, 150),
        rms=QColor(92, 196, 230),
        outline=QColor(140, 220, 240),
        centre=QColor(90, 110, 125, 140),
        clip=QColor(240, 90, 80),
        lane_bg=QColor(24, 28, 33),
        lane_sep=QColor(52, 58, 66),
        label=QColor(150, 160, 172),
    )


def envelope_pairs(
    x0: float,
    dx: float,
    mins: npt.NDArray[np.float32],
    maxs: npt.NDArray[np.float32],
    centre: float,
    half: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """End points of one vertical line per column, from its minimum to its maximum, in pixels.

    Returns:
        ``(x, y)``, each ``(2 n,)``: line ``i`` runs from point ``2 i`` to point ``2 i + 1``.
    """
    n = mins.shape[0]
    x = np.repeat(x0 + dx * np.arange(n, dtype=np.float64), 2)
    y = np.empty(2 * n, dtype=np.float64)
    y[0::2] = centre - half * np.clip(maxs, -1.0, 1.0)
    # Half a pixel past the minimum so silent columns still show a dot on the zero line.
    y[1::2] = centre - half * np.clip(mins, -1.0, 1.0) + 0.5
    return x, y


def envelope_path(
    x0: float,
    dx: float,
    mins: npt.NDArray[np.float32],
    maxs: npt.NDArray[np.float32],
    centre: float,
    half: float,
) -> QPainterPath:
    """One vertical line per column from its minimum to its maximum, in pixels.

    Filling a polygon around the envelope is far slower in Qt's raster engine (its outline zig-
    zags); one short line per pixel column draws the same picture in about a millisecond.

    Args:
        x0: x (pixels) of the first column's centre.
        dx: pixels between columns.
        mins: ``(n,)`` minimum of each column, -1..1.
        maxs: ``(n,)`` maximum of each column, -1..1.
        centre: y (pixels) of the lane's zero line (y grows downwards).
        half: pixels from the zero line to full scale.

    Returns:
        A path of ``n`` separate vertical segments.
    """
    x, y = envelope_pairs(x0, dx, mins, maxs, centre, half)
    return pg.functions.arrayToQPath(x, y, connect="pairs")


def outline_path(
    x0: float, dx: float, values: npt.NDArray[np.float32], centre: float, half: float
) -> QPainterPath:
    """A polyline through ``values`` (one per column), in pixels."""
    n = values.shape[0]
    x = x0 + dx * np.arange(n, dtype=np.float64)
    y = centre - half * np.clip(values.astype(np.float64), -1.0, 1.0)
    return pg.functions.arrayToQPath(x, y, connect="all")


class WaveformItem(pg.GraphicsObject):
    """Draws every channel of a :class:`PeakSource` as a lane in ``[0, height)`` of the view.

    The item lives in a ViewBox whose x axis is seconds and whose y axis grows downwards
    (``invertY``); channel 0 is the top lane.
    """

    def __init__(self, colors: WaveformColors | None = None) -> None:
        super().__init__()
        self._source: PeakSource | None = None
        self._colors = colors or default_waveform_colors()
        self._height = 1.0
        self._cache_key: tuple[object, ...] | None = None
        self._cache: list[tuple[str, object]] = []
        self._version = 0
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setZValue(0)

    # -- public ----------------------------------------------------------------------------

    def set_source(self, source: PeakSource | None) -> None:
        """Show ``source`` (``None`` shows empty lanes)."""
        self.prepareGeometryChange()
        self._source = source
        self._version += 1
        self._cache_key = None
        self.update()

    def source(self) -> PeakSource | None:
        """The source being drawn."""
        return self._source

    def invalidate(self) -> None:
        """Redraw from the source (after the audio changed under the same source object)."""
        self._version += 1
        self._cache_key = None
        self.update()

    def set_colors(self, colors: WaveformColors) -> None:
        """Change the colours (theme switch)."""
        self._colors = colors
        self._cache_key = None
        self.update()

    def set_height(self, height: float) -> None:
        """Height of all lanes together in view units."""
        self.prepareGeometryChange()
        self._height = height
        self._cache_key = None
        self.update()

    @property
    def channels(self) -> int:
        """Number of lanes drawn."""
        return self._source.channels if self._source is not None else 2

    # -- QGraphicsItem -----------------------------------------------------------------------

    def boundingRect(self) -> QRectF:  # noqa: N802
        duration = 1.0
        if self._source is not None and self._source.frames:
            duration = self._source.frames / self._source.sample_rate
        return QRectF(0.0, 0.0, duration, self._height)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        view = self.getViewBox()
        if view is None:
            return
        (x_lo, x_hi), _ = view.viewRange()
        channels = self.channels
        lane_h = self._height / channels
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._paint_lanes(painter, x_lo, x_hi, channels, lane_h)
        device = painter.transform()
        if self._source is not None and self._source.frames > 0:
            key = (
                x_lo,
                x_hi,
                device.m11(),
                device.m22(),
                device.dx(),
                device.dy(),
                self._height,
                self._version,
                id(self._source),
            )
            if key != self._cache_key:
                self._cache = self._build(x_lo, x_hi, device, lane_h)
                self._cache_key = key
            # Everything below is in pixels: crisp at any zoom and cheap to rasterise.
            painter.save()
            painter.resetTransform()
            colors = self._colors
            for kind, shape in self._cache:
                if kind == "columns":
                    painter.setPen(QPen(colors.fill, 1.0))
                    painter.drawPath(shape)  # type: ignore[arg-type]
                elif kind == "rms":
                    painter.setPen(QPen(colors.rms, 1.0))
                    painter.drawPath(shape)  # type: ignore[arg-type]
                elif kind == "outline":
                    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                    painter.setPen(QPen(colors.outline, 1.0))
                    painter.drawPath(shape)  # type: ignore[arg-type]
                    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
                elif kind == "line":
                    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                    painter.setPen(QPen(colors.outline, 1.5))
                    painter.drawPath(shape)  # type: ignore[arg-type]
                    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
                elif kind == "dots":
                    self._paint_dots(painter, shape)  # type: ignore[arg-type]
            painter.restore()
        self._paint_dimmed(painter, x_lo, x_hi, lane_h)
        self._paint_labels(painter, device, x_lo, channels, lane_h)

    def _paint_dimmed(self, painter: QPainter, x_lo: float, x_hi: float, lane_h: float) -> None:
        # Lanes that are not heard (muted tracks) are veiled in the background colour.
        dimmed = getattr(self._source, "dimmed_lanes", ())
        if not dimmed:
            return
        veil = QColor(self._colors.lane_bg)
        veil.setAlpha(170)
        for lane in dimmed:
            painter.fillRect(QRectF(x_lo, lane * lane_h, x_hi - x_lo, lane_h), veil)

    # -- drawing helpers -----------------------------------------------------------------------

    def _paint_lanes(
        self, painter: QPainter, x_lo: float, x_hi: float, channels: int, lane_h: float
    ) -> None:
        colors = self._colors
        # The lane background is the view's background, so grid lines below show through.
        pen = QPen(colors.centre)
        pen.setCosmetic(True)
        pen.setWidthF(1.0)
        painter.setPen(pen)
        for c in range(channels):
            mid = (c + 0.5) * lane_h
            painter.drawLine(QPointF(x_lo, mid), QPointF(x_hi, mid))
        sep = QPen(colors.lane_sep)
        sep.setCosmetic(True)
        sep.setWidthF(1.0)
        painter.setPen(sep)
        for c in range(1, channels):
            y = c * lane_h
            painter.drawLine(QPointF(x_lo, y), QPointF(x_hi, y))

    def _build(
        self, x_lo: float, x_hi: float, device: QTransform, lane_h: float
    ) -> list[tuple[str, object]]:
        """Pixel-space paths of the visible span (view x is seconds, device is the mapping)."""
        src = self._source
        assert src is not None
        rate = src.sample_rate
        sx, ox = device.m11(), device.dx()  # pixels per second, pixel of t = 0
        sy, oy = device.m22(), device.dy()
        px_width = max(round((x_hi - x_lo) * sx), 1)
        start = max(math.floor(x_lo * rate), 0)
        end = min(math.ceil(x_hi * rate), src.frames)
        if end <= start:
            return []
        spp = (x_hi - x_lo) * rate / px_width
        shapes: list[tuple[str, object]] = []
        half = 0.5 * lane_h * 0.94 * sy
        if spp < SAMPLE_LINE_SPP:
            # One sample either side so the line runs to the view's edges.
            a = max(start - 1, 0)
            b = min(end + 1, src.frames)
            data = np.asarray(src.samples(a, b), dtype=np.float32)  # (C, k)
            x0 = a / rate * sx + ox
            dx = sx / rate
            for c in range(data.shape[0]):
                centre = (c + 0.5) * lane_h * sy + oy
                shapes.append(("line", outline_path(x0, dx, data[c], centre, half)))
                if spp < SAMPLE_DOTS_SPP:
                    xs = x0 + dx * np.arange(data.shape[1], dtype=np.float64)
                    ys = centre - half * np.clip(data[c].astype(np.float64), -1.0, 1.0)
                    shapes.append(("dots", (xs, ys)))
            return shapes
        # One column per pixel; the columns start on the first visible frame.
        n = max(min(round((end - start) / spp), px_width + 2), 1)
        mins, maxs = src.envelope(start, end, n)
        rms_fn = getattr(src, "rms", None)
        rms = rms_fn(start, end, n) if callable(rms_fn) else None
        col_s = (end - start) / rate / n
        x0 = (start / rate + 0.5 * col_s) * sx + ox
        dx = col_s * sx
        # All lanes in one path per colour: fewer, longer paths draw faster.
        cols: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
        loud: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []
        for c in range(mins.shape[0]):
            centre = (c + 0.5) * lane_h * sy + oy
            cols.append(envelope_pairs(x0, dx, mins[c], maxs[c], centre, half))
            if rms is not None:
                # The loudness inside the peaks, brighter (as Audacity and ocenaudio draw it).
                lo = np.maximum(mins[c], -rms[c])
                hi = np.maximum(np.minimum(maxs[c], rms[c]), lo)
                loud.append(envelope_pairs(x0, dx, lo, hi, centre, half))
        for kind, pairs in (("columns", cols), ("rms", loud)):
            if pairs:
                xs = np.concatenate([x for x, _ in pairs])
                ys = np.concatenate([y for _, y in pairs])
                shapes.append((kind, pg.functions.arrayToQPath(xs, ys, connect="pairs")))
        for c in range(mins.shape[0]):
            centre = (c + 0.5) * lane_h * sy + oy
            if spp < 64:
                # Zoomed in far enough to see the wave's shape: trace its edges too.
                shapes.append(("outline", outline_path(x0, dx, maxs[c], centre, half)))
                shapes.append(("outline", outline_path(x0, dx, mins[c], centre, half)))
        return shapes

    def _paint_dots(
        self, painter: QPainter, points: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._colors.outline)
        for x, y in zip(*points):
            painter.drawEllipse(QPointF(float(x), float(y)), 2.5, 2.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _paint_labels(
        self, painter: QPainter, device: QTransform, x_lo: float, channels: int, lane_h: float
    ) -> None:
        lane_names = getattr(self._source, "lane_names", None)
        if lane_names is not None and len(lane_names) == channels:
            names = [str(n) for n in lane_names]  # one lane per track
        elif channels > 2:
            names = [str(i + 1) for i in range(channels)]
        elif channels == 2:
            names = ["L", "R"]
        else:
            names = ["M"]
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(8.0)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(self._colors.label)
        for c, name in enumerate(names):
            p = device.map(QPointF(x_lo, c * lane_h))
            painter.drawText(QPointF(p.x() + 6, p.y() + 14), name)
        painter.restore()
