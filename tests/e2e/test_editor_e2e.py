"""End to end, offscreen, through the real window: open a WAV, select two spans with the mouse,
make regions, edit, undo, play, save, close, reopen and compare sample by sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
import soundfile as sf
from editor_answers import EditorAnswers
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from sa3_studio.app.export_request import ExportRequest, ExportWhat
from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.regions_model import PROMPT
from sa3_studio.app.services import EditorServices, build_services
from sa3_studio.audio.player import ManualBackend
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE


class Answers(EditorAnswers):
    """The shared answers, plus the gain and export dialogs this test drives."""

    def __init__(self) -> None:
        super().__init__(None)
        self.export_answer: ExportRequest | None = None

    def gain_db(self) -> float | None:
        return 6.0

    def export(self, formats: Any, regions: Any, **kwargs: object) -> ExportRequest | None:
        return self.export_answer


def _song(path: Path) -> np.ndarray:
    """Ten seconds of a chord over a pulse: (2, frames) float32, written as 24-bit WAV."""
    t = np.arange(10 * SR) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.12
    pulse = np.exp(-((t % 0.5) * 18.0)) * np.sin(2 * np.pi * 60.0 * t) * 0.4
    left, right = chord + pulse, chord * 0.8 + pulse * 1.1
    audio = np.stack([left, right]).astype(np.float32)
    sf.write(str(path), audio.T, SR, subtype="PCM_24")
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T)


def _mouse(w: QWidget, kind: QEvent.Type, p: QPointF, buttons: Qt.MouseButton, mods: Any) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    glob = QPointF(w.mapToGlobal(p.toPoint()))
    QApplication.sendEvent(w, QMouseEvent(kind, p, glob, button, buttons, mods))


def _drag(w: QWidget, a: QPointF, b: QPointF, mods: Any = Qt.KeyboardModifier.NoModifier) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _mouse(w, QEvent.Type.MouseMove, a, none, mods)
    _mouse(w, QEvent.Type.MouseButtonPress, a, left, mods)
    for i in range(1, 7):
        _mouse(w, QEvent.Type.MouseMove, a + (b - a) * (i / 6), left, mods)
    _mouse(w, QEvent.Type.MouseButtonRelease, b, none, mods)


@pytest.fixture
def card() -> ManualBackend:
    """A sound card the test pulls blocks from."""
    return ManualBackend()


@pytest.fixture
def editor(
    qtbot: Any, tmp_path: Path, card: ManualBackend
) -> Iterator[tuple[MainWindow, EditorServices, Answers]]:
    """The window on a manual sound card (``services.transport.player`` plays into it)."""
    guard_refcounts()
    rate_limit = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)  # the test moves faster than a hand
    services = build_services(
        settings_store=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
        audio_backend=card,
        recovery_dir=tmp_path / "recovery",
    )
    answers = Answers()
    window = MainWindow(services, answers)
    answers.parent = window
    window.resize(1280, 760)
    window.show()
    qtbot.waitExposed(window)
    yield window, services, answers
    window.close()
    window.deleteLater()
    QApplication.processEvents()
    pg.setConfigOption("mouseRateLimit", rate_limit)


def _open(qtbot: Any, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.services.document.project_changed, timeout=30000):
        window.open_path(path)


def test_open_select_edit_undo_save_reopen(
    qtbot: Any,
    tmp_path: Path,
    editor: tuple[MainWindow, EditorServices, Answers],
    card: ManualBackend,
) -> None:
    window, s, answers = editor
    source = _song(tmp_path / "song.wav")
    _open(qtbot, window, tmp_path / "song.wav")
    np.testing.assert_array_equal(render_mix(s.document.project), source)

    # Two spans with the mouse (the second with Ctrl held), then regions of them.
    s.session.set_view(0.0, 8.0)
    tl = window.timeline
    vp = tl.plot.viewport()

    def at(sec: float) -> QPointF:
        return tl.viewport_pos_of(round(sec * SR))

    _drag(vp, at(1.0), at(2.0))
    _drag(vp, at(4.0), at(5.5), Qt.KeyboardModifier.ControlModifier)
    spans = s.session.selection()
    assert len(spans) == 2
    window.actions["region.add"].trigger()
    regions = sorted(s.document.project.regions, key=lambda r: r.start)
    assert [(r.start, r.end) for r in regions] == spans
    assert window.regions_model.setData(window.regions_model.index(0, PROMPT), "tom fill")

    # Edits: +6 dB on both spans (one step), a fade-out on the second, then undo the fade.
    window.actions["edit.gain"].trigger()
    assert window.actions["edit.undo"].text() == "Undo Gain +6.0 dB 2 spans"
    s.session.set_selection([spans[1]])
    window.actions["edit.fade_out"].trigger()
    window.actions["edit.undo"].trigger()
    assert window.actions["edit.redo"].text().startswith("Redo Fade Out")

    expected = source.astype(np.float64)
    for a, b in spans:
        expected[:, a:b] *= 10 ** (6 / 20)
    expected = expected.astype(np.float32)
    edited = render_mix(s.document.project)
    np.testing.assert_allclose(edited, expected, rtol=1e-6, atol=1e-7)
    outside = np.ones(source.shape[1], dtype=bool)
    for a, b in spans:
        outside[a:b] = False
    np.testing.assert_array_equal(edited[:, outside], source[:, outside])

    # What plays is the edited song.
    s.session.clear_selection()
    s.session.set_cursor(spans[0][0])
    window.actions["transport.play"].trigger()
    heard = card.stream.render(2048, 512).T
    np.testing.assert_array_equal(heard, edited[:, spans[0][0] : spans[0][0] + 2048])
    window.actions["transport.stop"].trigger()

    # Save as a project, close it, reopen it.
    answers.save_answer = tmp_path / "edited.sa3proj"
    with qtbot.waitSignal(s.files.saved, timeout=30000):
        window.actions["file.save"].trigger()
    assert not s.document.is_dirty
    answers.export_answer = ExportRequest(ExportWhat.MIX, tmp_path / "edited.wav", "wav32f")
    with qtbot.waitSignal(s.files.exported, timeout=30000):
        window.actions["file.export"].trigger()
    window.actions["file.close"].trigger()
    assert not s.document.has_document
    _open(qtbot, window, tmp_path / "edited.sa3proj")

    reopened = s.document.project
    np.testing.assert_array_equal(render_mix(reopened), edited)
    got = sorted(reopened.regions, key=lambda r: r.start)
    assert [(r.id, r.start, r.end, r.prompt) for r in got] == [
        (r.id, r.start, r.end, "tom fill" if i == 0 else "") for i, r in enumerate(regions)
    ]
    exported, _ = sf.read(str(tmp_path / "edited.wav"), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(exported.T, edited)
    # The history survived the round trip: undo the gain and the source is back.
    assert window.actions["edit.undo"].text() == "Undo Gain +6.0 dB 2 spans"
    window.actions["edit.undo"].trigger()
    np.testing.assert_array_equal(render_mix(s.document.project), source)
    assert answers.errors == []
