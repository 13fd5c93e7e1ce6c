"""Fixtures of the editor window tests: services with a manual audio backend, a window whose
dialogs are scripted, a synthesised song, and real mouse events for the timeline."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from gui_helpers import ScriptedPrompts, add_bells_track, open_file
from gui_song import write_song
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.services import EditorServices, build_services
from sa3_studio.audio.player import ManualBackend, OutputDevice
from sa3_studio.ui.main_window import MainWindow


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


@pytest.fixture
def two_tracks(qtbot: Any, window: MainWindow, song_file: Path) -> tuple[MainWindow, str, str]:
    """The song opened in the window plus a 'Bells' track (see :func:`add_bells_track`):
    ``(window, song track id, bells track id)``."""
    open_file(qtbot, window, song_file)
    first = window.services.document.project.tracks[0].id
    return window, first, add_bells_track(window)
