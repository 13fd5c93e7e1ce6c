"""The headers left of the track lanes: each track's name, mute, solo, gain and remove.

Shown when the project has more than one track (a one-track project looks as it always did).
Every change is an undoable edit through :mod:`sa3_studio.app.tracks`; mute and solo change the
mix that plays and exports at once.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app import tracks
from sa3_studio.app.document_controller import DocumentController
from sa3_studio.document.project import Project, Track
from sa3_studio.ui.focus import wheel_only_when_focused
from sa3_studio.ui.timeline import TimelineWidget

HEADER_WIDTH = 164

STYLE = """
QFrame#trackHeader { border-bottom: 1px solid palette(mid); }
QToolButton[trackToggle="true"] { min-width: 20px; padding: 1px 4px; font-weight: 600; }
QToolButton#trackMute:checked { background: #c8a032; color: black; }
QToolButton#trackSolo:checked { background: #3a9f5a; color: black; }
"""


class TrackHeader(QFrame):
    """One track's controls."""

    def __init__(self, doc: DocumentController, track: Track, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trackHeader")
        self._doc = doc
        self.track_id = track.id
        self.name_edit = QLineEdit(track.name)
        self.name_edit.setObjectName("trackName")
        self.name_edit.setToolTip("The track's name (used for its stem file)")
        self.mute = QToolButton()
        self.mute.setObjectName("trackMute")
        self.mute.setText("M")
        self.mute.setCheckable(True)
        self.mute.setToolTip("Mute: leave this track out of playback and export")
        self.solo = QToolButton()
        self.solo.setObjectName("trackSolo")
        self.solo.setText("S")
        self.solo.setCheckable(True)
        self.solo.setToolTip("Solo: while any track is solo, only solo tracks are heard")
        for b in (self.mute, self.solo):
            b.setProperty("trackToggle", True)
        self.gain = QDoubleSpinBox()
        self.gain.setObjectName("trackGain")
        self.gain.setRange(*tracks.GAIN_RANGE_DB)
        self.gain.setDecimals(1)
        self.gain.setSingleStep(0.5)
        self.gain.setSuffix(" dB")
        self.gain.setKeyboardTracking(False)
        self.gain.setToolTip("The track's level in the mix")
        self.remove = QToolButton()
        self.remove.setObjectName("trackRemove")
        self.remove.setText("✕")
        self.remove.setToolTip("Remove this track with its regions and takes (undoable)")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for w in (self.mute, self.solo):
            row.addWidget(w)
        row.addWidget(self.gain, 1)
        row.addWidget(self.remove)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 3, 4, 3)
        lay.setSpacing(2)
        lay.addWidget(self.name_edit)
        lay.addLayout(row)
        lay.addStretch(1)
        self.show_track(track)
        wheel_only_when_focused(self)

        self.mute.toggled.connect(lambda on: tracks.set_muted(doc, self.track_id, on))
        self.solo.toggled.connect(lambda on: tracks.set_solo(doc, self.track_id, on))
        self.gain.valueChanged.connect(lambda v: tracks.set_gain(doc, self.track_id, v))
        self.remove.clicked.connect(lambda: tracks.remove(doc, self.track_id))
        self.name_edit.editingFinished.connect(self._rename)

    def show_track(self, track: Track) -> None:
        """Show ``track``'s state without making edits."""
        for w, value in ((self.mute, track.muted), (self.solo, track.solo)):
            w.blockSignals(True)
            w.setChecked(value)
            w.blockSignals(False)
        self.gain.blockSignals(True)
        self.gain.setValue(track.gain_db)
        self.gain.blockSignals(False)
        if not self.name_edit.hasFocus():
            self.name_edit.setText(track.name)

    def _rename(self) -> None:
        name = self.name_edit.text()
        track = self._doc.project.track(self.track_id)
        if name.strip() == track.name:
            return
        if not tracks.rename(self._doc, self.track_id, name):
            self.name_edit.setText(track.name)


class TrackHeaders(QWidget):
    """The column of track headers, each beside its lane of the timeline.

    Args:
        doc: the document (the headers edit its tracks).
        timeline: the timeline whose lanes the headers follow.
    """

    def __init__(
        self, doc: DocumentController, timeline: TimelineWidget, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trackHeaders")
        self.setStyleSheet(STYLE)
        self.setFixedWidth(HEADER_WIDTH)
        self._doc = doc
        self._timeline = timeline
        self.headers: list[TrackHeader] = []
        doc.project_changed.connect(self.sync)
        timeline.lanes_changed.connect(lambda: QTimer.singleShot(0, self.place))
        timeline.set_track_headers(self)
        self.sync(doc.project)

    def sync(self, project: Project | None = None) -> None:
        """Rows for the project's tracks (shown only with more than one track)."""
        project = project if project is not None else self._doc.project
        lanes = self._doc.has_document and len(project.tracks) > 1
        self.setVisible(lanes)
        ids = [t.id for t in project.tracks] if lanes else []
        if [h.track_id for h in self.headers] != ids:
            for h in self.headers:
                h.deleteLater()
            self.headers = [TrackHeader(self._doc, t, self) for t in project.tracks if lanes]
            for h in self.headers:
                h.show()
        for h, t in zip(self.headers, project.tracks, strict=False):
            h.show_track(t)
        self.place()

    def place(self) -> None:
        """Line every header up with its lane."""
        spans = self._timeline.lane_spans()
        if len(spans) != len(self.headers):
            return
        for h, (top, height) in zip(self.headers, spans, strict=True):
            h.setGeometry(0, top, self.width(), height)

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.place()

    def header(self, track_id: str) -> TrackHeader:
        """The header of a track."""
        return next(h for h in self.headers if h.track_id == track_id)
