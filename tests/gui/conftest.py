"""Fixtures of the editor window tests: services with a manual audio backend, a window whose
dialogs are scripted, a synthesised song, and real mouse events for the timeline."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from gui_song import write_song
from PySide6.QtCore import QEvent, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from sa3_studio.app.export_request import ExportRequest
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.services import EditorServices, build_services
from sa3_studio.app.settings import Preferences
from sa3_studio.audio.player import ManualBackend, OutputDevice
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice
from sa3_studio.ui.main_window import MainWindow


class ScriptedPrompts(Prompts):
    """Answers the window's questions from attributes and records what was asked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.unsaved_answer = UnsavedChoice.DISCARD
        self.unsaved_asked: list[str] = []
        self.recover_answer: int | None = None
        self.recover_asked: list[list[str]] = []
        self.recover_newer_answer = True
        self.save_answer: Path | None = None
        self.gain_answer: float | None = 6.0
        self.normalize_answer: float | None = -1.0
        self.tempo_answer: float | None = 120.0
        self.export_answer: ExportRequest | None = None
        self.settings_answer: Preferences | None = None
        self.shortcut_rows: list[tuple[str, str, str]] = []

    def error(self, title: str, message: str) -> None:
        self.errors.append((title, message))

    def info(self, title: str, message: str) -> None:
        self.infos.append((title, message))

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        self.unsaved_asked.append(name)
        return self.unsaved_answer

    def ask_recover(self, names: Any) -> int | None:
        self.recover_asked.append(list(names))
        return self.recover_answer

    def ask_recover_newer(self, name: str) -> bool:
        return self.recover_newer_answer

    def open_path(self, folder: str) -> Path | None:
        return None

    def save_path(self, suggested: str) -> Path | None:
        return self.save_answer

    def gain_db(self) -> float | None:
        return self.gain_answer

    def normalize_target(self) -> float | None:
        return self.normalize_answer

    def tempo(self, current: float | None) -> float | None:
        return self.tempo_answer

    def export(self, formats: Any, regions: Any, **kwargs: object) -> ExportRequest | None:
        return self.export_answer

    def settings(self, prefs: Preferences, output_devices: Any) -> Preferences | None:
        return self.settings_answer

    def shortcuts(self, rows: Any) -> None:
        self.shortcut_rows = list(rows)

    def about(self) -> None:
        self.infos.append(("About", ""))


@pytest.fixture(scope="session", autouse=True)
def _qt_true_guard() -> None:
    """PySide6 6.12.0 loses references to None and True (see app.qt_workarounds)."""
    guard_refcounts()


@pytest.fixture(scope="session")
def song_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-bar synthesised song (16 s at 120 BPM), 16-bit WAV."""
    return write_song(tmp_path_factory.mktemp("song") / "song.wav", bars=8)


@pytest.fixture
def backend() -> ManualBackend:
    """A sound card the test drives by pulling blocks."""
    return ManualBackend([OutputDevice(0, "Test output", "Manual", 2, 44100.0, True)])


@pytest.fixture
def services(tmp_path: Path, backend: ManualBackend) -> Iterator[EditorServices]:
    """Controllers with temporary settings and recovery folder and a manual audio backend."""
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s = build_services(
        settings_store=store, audio_backend=backend, recovery_dir=tmp_path / "recovery"
    )
    yield s
    s.shutdown(discard_unsaved=True)


@pytest.fixture
def window(qtbot: Any, services: EditorServices) -> Iterator[MainWindow]:
    """The main window with scripted dialogs (see :class:`ScriptedPrompts`)."""
    prompts = ScriptedPrompts()
    w = MainWindow(services, prompts)
    prompts.parent = w
    w.resize(1200, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    # Delete the window while the QApplication lives: left to the garbage collector at
    # interpreter exit, Qt objects are destroyed after the application and crash.
    w.deleteLater()
    QApplication.processEvents()
    gc.collect()


@pytest.fixture
def no_mouse_rate_limit() -> Iterator[None]:
    """pyqtgraph drops mouse moves closer than 10 ms apart; tests move faster than people."""
    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


def open_file(qtbot: Any, window: MainWindow, path: Path) -> None:
    """Open ``path`` in ``window`` and wait until it is shown (fails with the error shown)."""
    files = window.services.files
    done: list[str] = []
    hooks = [
        (window.services.document.project_changed, lambda *_: done.append("opened")),
        (files.failed, lambda *_: done.append("failed")),
        (files.cancelled, lambda *_: done.append("cancelled")),
    ]
    for signal, slot in hooks:
        signal.connect(slot)
    try:
        window.open_path(path)
        qtbot.waitUntil(lambda: bool(done), timeout=20000)
    finally:
        for signal, slot in hooks:
            signal.disconnect(slot)
    assert done[0] == "opened", prompts_of(window).errors


def prompts_of(window: MainWindow) -> ScriptedPrompts:
    """The window's scripted prompts."""
    assert isinstance(window.prompts, ScriptedPrompts)
    return window.prompts


def _mouse(
    widget: QWidget,
    kind: QEvent.Type,
    pos: QPointF,
    button: Qt.MouseButton,
    buttons: Qt.MouseButton,
    modifiers: Qt.KeyboardModifier,
) -> None:
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QMouseEvent(kind, pos, glob, button, buttons, modifiers)
    QApplication.sendEvent(widget, ev)


def drag(
    widget: QWidget,
    start: QPointF,
    end: QPointF,
    *,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
    steps: int = 6,
    on_step: Any = None,
) -> None:
    """Press at ``start``, move to ``end`` in ``steps`` moves, release: a real mouse drag."""
    left = Qt.MouseButton.LeftButton
    none = Qt.MouseButton.NoButton
    _mouse(widget, QEvent.Type.MouseMove, start, none, none, modifiers)
    _mouse(widget, QEvent.Type.MouseButtonPress, start, left, left, modifiers)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        _mouse(widget, QEvent.Type.MouseMove, p, none, left, modifiers)
        if on_step is not None:
            on_step(i)
    _mouse(widget, QEvent.Type.MouseButtonRelease, end, left, none, modifiers)


def click(
    widget: QWidget,
    pos: QPointF,
    *,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press and release at ``pos`` without moving."""
    left = Qt.MouseButton.LeftButton
    none = Qt.MouseButton.NoButton
    _mouse(widget, QEvent.Type.MouseMove, pos, none, none, modifiers)
    _mouse(widget, QEvent.Type.MouseButtonPress, pos, left, left, modifiers)
    _mouse(widget, QEvent.Type.MouseButtonRelease, pos, left, none, modifiers)


def wheel(
    widget: QWidget,
    pos: QPointF,
    notches: float,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Turn the mouse wheel by ``notches`` (positive = away from the user)."""
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    delta = int(120 * notches)
    ev = QWheelEvent(
        pos,
        glob,
        QPoint(0, 0),
        QPoint(0, delta),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)
