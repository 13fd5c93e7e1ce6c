"""The overview strip: the whole song in miniature, with the visible span as a draggable window."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from sa3_studio.app.session import Session
from sa3_studio.ui.theme import DARK, Theme
from sa3_studio.ui.waveform import PeakSource, envelope_path

OVERVIEW_HEIGHT = 40


class OverviewStrip(QWidget):
    """Whole-project waveform; click or drag to scroll, wheel to zoom."""

    def __init__(
        self, session: Session, theme: Theme = DARK, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("overview")
        self._session = session
        self._theme = theme
        self._source: PeakSource | None = None
        self._pixmap: QPixmap | None = None
        self._regions: list[tuple[int, int]] = []
        self._playhead = 0
        self._grab_offset: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(OVERVIEW_HEIGHT)
        self.setMouseTracking(True)
        self.setToolTip("Overview: click or drag to scroll, wheel to zoom")
        session.view_changed.connect(lambda *_: self.update())
        session.selection_changed.connect(self.update)
        session.timeline_changed.connect(self.invalidate)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, OVERVIEW_HEIGHT)

    def set_source(self, source: PeakSource | None) -> None:
        """The audio to show."""
        self._source = source
        self.invalidate()

    def set_regions(self, spans: Sequence[tuple[int, int]]) -> None:
        """Region spans in frames, marked under the waveform."""
        self._regions = list(spans)
        self.update()

    def set_playhead(self, frame: int) -> None:
        """Where playback is."""
        if frame != self._playhead:
            self._playhead = frame
            self.update()

    def set_theme(self, theme: Theme) -> None:
        """Change colours."""
        self._theme = theme
        self.invalidate()

    def invalidate(self) -> None:
        """Rebuild the miniature (the audio changed)."""
        self._pixmap = None
        self.update()

    # -- geometry ------------------------------------------------------------------------------

    def _total(self) -> float:
        s = self._session
        return max(s.duration, s.view_span, 1e-6)

    def _x(self, seconds: float) -> float:
        return seconds / self._total() * self.width()

    def _seconds(self, x: float) -> float:
        return x / max(self.width(), 1) * self._total()

    # -- painting ------------------------------------------------------------------------------

    def _build_pixmap(self) -> QPixmap:
        w, h = max(self.width(), 1), max(self.height(), 1)
        ratio = self.devicePixelRatioF()
        pm = QPixmap(int(w * ratio), int(h * ratio))
        pm.setDevicePixelRatio(ratio)
        pm.fill(self._theme.overview_bg)
        src = self._source
        if src is None or src.frames == 0:
            return pm
        p = QPainter(pm)
        n = max(int(w * self._session.duration / self._total()), 1)
        mins, maxs = src.envelope(0, src.frames, n)
        # Both channels folded into one envelope: the strip is for finding your place.
        lo = np.min(mins, axis=0)
        hi = np.max(maxs, axis=0)
        p.setPen(QPen(self._theme.overview_wave.darker(150), 1.0))
        p.drawPath(envelope_path(0.5, 1.0, lo, hi, 0.5 * h, 0.5 * h - 3.0))
        rms_fn = getattr(src, "rms", None)
        if callable(rms_fn):
            rms = np.max(rms_fn(0, src.frames, n), axis=0)
            p.setPen(QPen(self._theme.overview_wave, 1.0))
            p.drawPath(
                envelope_path(
                    0.5, 1.0, np.maximum(lo, -rms), np.minimum(hi, rms), 0.5 * h, 0.5 * h - 3.0
                )
            )
        p.end()
        return pm

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self._pixmap is None or self._pixmap.size() != self.size() * self.devicePixelRatioF():
            self._pixmap = self._build_pixmap()
        p = QPainter(self)
        p.drawPixmap(0, 0, self._pixmap)
        theme = self._theme
        h = self.height()
        rate = self._session.sample_rate
        region_color = QColor(theme.region_edge)
        for a, b in self._regions:
            x0, x1 = self._x(a / rate), self._x(b / rate)
            p.fillRect(QRectF(x0, h - 4, max(x1 - x0, 1.0), 3), region_color)
        sel = QColor(theme.selection_fill)
        sel.setAlpha(min(255, sel.alpha() * 2))
        for a, b in self._session.selection():
            x0, x1 = self._x(a / rate), self._x(b / rate)
            p.fillRect(QRectF(x0, 0, max(x1 - x0, 1.0), h), sel)
        start, end = self._session.view_range()
        x0, x1 = self._x(start), self._x(end)
        win = QRectF(x0, 0.5, max(x1 - x0, 3.0), h - 1.0)
        p.fillRect(win, theme.overview_window)
        pen = QPen(theme.accent)
        pen.setWidthF(1.0)
        p.setPen(pen)
        p.drawRect(win)
        if self._playhead:
            px = self._x(self._playhead / rate)
            p.setPen(QPen(theme.playhead, 1.5))
            p.drawLine(QPointF(px, 0), QPointF(px, h))
        p.setPen(QPen(theme.grid))
        p.drawLine(0, h - 1, self.width(), h - 1)
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self._pixmap = None
        super().resizeEvent(event)

    # -- mouse ---------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        start, end = self._session.view_range()
        x0, x1 = self._x(start), self._x(end)
        if x0 <= x <= x1:
            self._grab_offset = self._seconds(x) - start
        else:
            # Clicking outside the window centres the view there.
            self._grab_offset = 0.5 * (end - start)
            self._session.scroll_to(self._seconds(x) - self._grab_offset)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._grab_offset is None:
            start, end = self._session.view_range()
            inside = self._x(start) <= event.position().x() <= self._x(end)
            self.setCursor(
                Qt.CursorShape.OpenHandCursor if inside else Qt.CursorShape.PointingHandCursor
            )
            return
        self._session.scroll_to(self._seconds(event.position().x()) - self._grab_offset)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._grab_offset = None

    def wheelEvent(self, event: object) -> None:  # noqa: N802
        delta = event.angleDelta().y() / 120.0  # type: ignore[attr-defined]
        if delta:
            anchor = self._seconds(event.position().x())  # type: ignore[attr-defined]
            self._session.zoom(1.25**delta, anchor)
        event.accept()  # type: ignore[attr-defined]
