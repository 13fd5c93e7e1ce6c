"""What the screenshot scripts in this folder share: the app, the prompts, settling and grabbing.

Importing this module puts ``tests/gui`` on ``sys.path`` (for the synthesised song in
``gui_song``), so import it before ``gui_song``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "gui"))  # the synthesised song

from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from sa3_studio.app.qt_workarounds import guard_refcounts  # noqa: E402
from sa3_studio.app.services import EditorServices, build_services  # noqa: E402
from sa3_studio.audio.player import ManualBackend  # noqa: E402
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice  # noqa: E402
from sa3_studio.ui.main_window import MainWindow  # noqa: E402
from sa3_studio.ui.theme import DARK, apply_theme  # noqa: E402


class NoDialogs(Prompts):
    """Prompts that never block: errors go to stderr, unsaved work is discarded."""

    def error(self, title: str, message: str) -> None:
        print(f"error: {title}: {message}", file=sys.stderr)

    def info(self, title: str, message: str) -> None:
        pass

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        return UnsavedChoice.DISCARD

    def ask_recover(self, names: object) -> int | None:
        return None


def start_app(work: Path) -> QApplication:
    """The themed application, with its data folder under ``work`` (nothing of the user's)."""
    os.environ["SA3_STUDIO_DATA_DIR"] = str(work / "data")
    app = QApplication(sys.argv[:1])
    guard_refcounts()
    app.setApplicationName("SA3 Studio")
    apply_theme(app, DARK)
    return app


def editor_services(work: Path) -> EditorServices:
    """The editor's services with settings and recovery files under ``work``, and no sound."""
    return build_services(
        settings_store=QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat),
        audio_backend=ManualBackend(),
        recovery_dir=work / "recovery",
    )


def show_and_open(app: QApplication, window: MainWindow, song: Path) -> None:
    """Show ``window``, open ``song`` in it and wait until it is open and drawn."""
    window.show()
    settle(app)
    loop = QEventLoop()
    window.services.document.project_changed.connect(loop.quit)
    window.open_path(song)
    loop.exec()
    settle(app)


def settle(app: QApplication, ms: int = 400) -> None:
    """Run the event loop for ``ms`` milliseconds so layout and painting catch up."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def grab(widget: QWidget, path: Path, *, whole_screen: bool = True) -> None:
    """Save the screen (or, failing that or when asked, just ``widget``) to ``path``."""
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0) if whole_screen and screen is not None else widget.grab()
    if shot.isNull() or shot.width() < widget.width():
        shot = widget.grab()
    shot.save(str(path))
    print(f"wrote {path} ({shot.width()}x{shot.height()})")
