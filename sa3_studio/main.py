"""Composition root: builds the application, settings, controllers and the main window."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)


def _have_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def _load_pipeline(path: object, **kwargs: object) -> object:
    """The engine's model loader, imported on first use (torch loads only when a model does)."""
    import torch

    from sa3_studio.engine.pipeline import load_pipeline

    # Leave one core to the window: the model thread must never starve the event loop.
    cores = os.cpu_count() or 1
    if cores > 1 and torch.get_num_threads() >= cores:
        torch.set_num_threads(cores - 1)
    return load_pipeline(path, **kwargs)  # type: ignore[arg-type]


def build_window(paths: Sequence[str] = (), *, generation: bool = True) -> object:
    """Build the services and the main window (a QApplication must exist).

    Args:
        paths: files to open once the window shows (the first one is opened).
        generation: give the window the Generate and Takes panels and the model thread.

    Returns:
        The :class:`~sa3_studio.ui.main_window.MainWindow`.
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from sa3_studio.app.services import build_services
    from sa3_studio.ui.generate_panel import attach_generation
    from sa3_studio.ui.main_window import MainWindow
    from sa3_studio.ui.theme import apply_theme, theme_named

    app = QApplication.instance()
    services = build_services(parent=app)
    if isinstance(app, QApplication):
        apply_theme(app, theme_named(services.settings.preferences().theme))
    window = MainWindow(services)
    if generation:
        attach_generation(window, services, _load_pipeline)
    if paths:
        first = paths[0]
        QTimer.singleShot(0, lambda: window.open_path(first))
    return window


def run_gui(paths: Sequence[str] = ()) -> int:
    """Open the editor window; returns the exit code of the Qt event loop."""
    if not _have_display():
        print(
            "sa3-studio: no display found. Start SA3 Studio from a desktop session, "
            "or set QT_QPA_PLATFORM=offscreen to run without a window.",
            file=sys.stderr,
        )
        return 2
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from sa3_studio.app.qt_workarounds import guard_refcounts
    from sa3_studio.ui.theme import RESOURCES

    app = QApplication.instance() or QApplication(sys.argv[:1])
    guard_refcounts()
    app.setApplicationName("SA3 Studio")
    # Wayland matches the window to the menu entry (and its icon) by this name.
    app.setDesktopFileName("sa3-studio")
    app.setOrganizationName("SA3 Studio")
    app.setApplicationDisplayName("SA3 Studio")
    app_icon = RESOURCES / "icons" / "sa3-studio.svg"
    if app_icon.is_file():
        app.setWindowIcon(QIcon(str(app_icon)))
    window = build_window(paths)
    window.show()  # type: ignore[attr-defined]
    if os.environ.get("SA3_STUDIO_EXIT_AFTER_START"):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, window.close)  # type: ignore[attr-defined]
        QTimer.singleShot(0, app.quit)
    code = int(app.exec())
    # Destroy the window while the application still exists (not at interpreter exit).
    window.deleteLater()  # type: ignore[attr-defined]
    app.processEvents()
    del window
    return code


def main() -> int:
    """GUI entry point (the ``sa3-studio-gui`` script)."""
    return run_gui(sys.argv[1:])
