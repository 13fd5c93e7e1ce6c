"""Helpers for the window tests: scripted dialogs, opening a file, mouse and wheel events.

They live in their own module (not conftest.py) so that every test imports the same one, whatever
other conftest modules a full run has loaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from sa3_studio.app.export_request import ExportRequest
from sa3_studio.app.generation import GenerateOptions
from sa3_studio.app.settings import Preferences
from sa3_studio.document.arrange import place_on_new_track
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice
from sa3_studio.ui.main_window import MainWindow

if TYPE_CHECKING:
    from test_generate_fakes import Env

    from sa3_studio.document.project import Project

GENERATE_WAIT_MS = 10_000


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


def generate_takes(
    qtbot: Any, env: Env, project: Project, regions: list[str], *, takes: int
) -> None:
    """Show ``project``, select ``regions`` and generate ``takes`` takes of each (prompt "drums",
    seed 100) on ``env``'s fake engine; returns once the takes have arrived."""
    env.document.set_project(project)
    env.session.set_selected_regions(regions)
    with qtbot.waitSignal(env.controller.takes_added, timeout=GENERATE_WAIT_MS):
        env.controller.generate(GenerateOptions(prompt="drums", seed=100, takes=takes))


def tone(seconds: float, freq: float, level: float) -> AudioData:
    """A stereo sine of ``freq`` Hz at peak ``level``, ``seconds`` long, at the project rate."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = (level * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    return AudioData.from_array(np.stack([wave, wave]), copy=False)


def add_bells_track(window: MainWindow) -> str:
    """Add a 'Bells' track holding a 4 s 1 kHz tone (level 0.25) from 2 s to 6 s, as one
    "New Track" step; returns the new track's id."""
    new: list[str] = []

    def add(p: Project) -> Project:
        p, tid = place_on_new_track(p, tone(4.0, 1000.0, 0.25), 2 * SAMPLE_RATE, track_name="Bells")
        new.append(tid)
        return p

    assert window.services.document.apply("New Track", add)
    return new[0]
