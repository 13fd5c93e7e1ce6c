"""Composition root: builds the application, settings, controllers and the main window."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _have_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def run_gui(paths: Sequence[str] = ()) -> int:
    """Open the editor window; returns the exit code of the Qt event loop."""
    if not _have_display():
        print(
            "sa3-studio: no display found. Start SA3 Studio from a desktop session, "
            "or set QT_QPA_PLATFORM=offscreen to run without a window.",
            file=sys.stderr,
        )
        return 2
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SA3 Studio")
    app.setOrganizationName("SA3 Studio")
    window = QMainWindow()
    window.setWindowTitle("SA3 Studio")
    window.resize(1200, 720)
    window.show()
    if os.environ.get("SA3_STUDIO_EXIT_AFTER_START"):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, app.quit)
    return int(app.exec())


def main() -> int:
    """GUI entry point (the ``sa3-studio-gui`` script)."""
    return run_gui(sys.argv[1:])
