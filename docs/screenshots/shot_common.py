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

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from sa3_studio.app.qt_workarounds import guard_refcounts  # noqa: E402
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice  # noqa: E402
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
