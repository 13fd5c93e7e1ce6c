"""Toolbar read-outs: the big position clock and the selection's start, end and length."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from sa3_studio.app.session import Session
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.timefmt import format_bars_beats, format_time


def _mono(size: float, bold: bool = False) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSizeF(size)
    font.setBold(bold)
    return font


class TimeDisplay(QFrame):
    """The position clock: playhead while playing, edit cursor otherwise; bars.beats below."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeDisplay")
        self._session = session
        self._grid: BeatGrid | None = None
        self._playing = False
        self.time = QLabel("0:00.000")
        self.time.setObjectName("timeDisplayMain")
        self.time.setFont(_mono(17.0, bold=True))
        self.time.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.sub = QLabel("")
        self.sub.setObjectName("timeDisplaySub")
        self.sub.setFont(_mono(8.5))
        self.sub.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 2, 10, 2)
        lay.setSpacing(0)
        lay.addWidget(self.time)
        lay.addWidget(self.sub)
        self.setMinimumWidth(150)
        session.playhead_changed.connect(self._on_playhead)
        session.cursor_changed.connect(self._on_cursor)
        self._show(0)

    def set_playing(self, playing: bool) -> None:
        """Show the playhead (True) or the cursor (False)."""
        self._playing = playing
        self._show(self._session.playhead if playing else self._session.cursor)

    def set_grid(self, grid: BeatGrid | None) -> None:
        """Show bars.beats under the clock for ``grid`` (``None`` hides it)."""
        self._grid = grid
        self._show(self._session.playhead if self._playing else self._session.cursor)

    def _on_playhead(self, frame: int) -> None:
        if self._playing:
            self._show(frame)

    def _on_cursor(self, frame: int) -> None:
        if not self._playing:
            self._show(frame)

    def _show(self, frame: int) -> None:
        rate = self._session.sample_rate
        self.time.setText(format_time(frame, rate))
        if self._grid is not None:
            self.sub.setText(f"bar {format_bars_beats(frame, self._grid)}")
        else:
            self.sub.setText(f"{frame:,} smp".replace(",", " "))


class SelectionDisplay(QFrame):
    """Start, end and length of the selection (of its whole extent with several spans)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("selectionDisplay")
        self._session = session
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 2, 10, 2)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(0)
        self.values: dict[str, QLabel] = {}
        for col, name in enumerate(("Start", "End", "Length")):
            head = QLabel(name.upper())
            head.setObjectName("selectionHead")
            value = QLabel("–")
            value.setObjectName("selectionValue")
            value.setFont(_mono(10.0))
            grid.addWidget(head, 0, col)
            grid.addWidget(value, 1, col)
            self.values[name] = value
        session.selection_changed.connect(self._update)
        self._update()

    def _update(self) -> None:
        s = self._session
        bounds = s.selection_bounds()
        if bounds is None:
            for v in self.values.values():
                v.setText("–")
            return
        a, b = bounds
        rate = s.sample_rate
        self.values["Start"].setText(format_time(a, rate))
        self.values["End"].setText(format_time(b, rate))
        spans = len(s.selection())
        length = format_time(b - a, rate)
        self.values["Length"].setText(length if spans == 1 else f"{length} ({spans})")
