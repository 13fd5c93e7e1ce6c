"""Composition root: builds the application, settings, controllers and the main window.

The only place that wires: the model thread, the generation controller and the model catalog
(bound to the engine's registry) are made here and handed to the widgets, which know only
``engine.api`` and the controllers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the window, Qt and the engine load only when the editor starts
    from sa3_studio.app.engine_client import ModelCatalog
    from sa3_studio.app.services import EditorServices
    from sa3_studio.app.settings import Preferences
    from sa3_studio.engine.api import ModelInfo, PipelineFactory
    from sa3_studio.ui.generate_panel import GenerationHost, GenerationUi

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


def registry_catalog(models_folder: Callable[[], str]) -> ModelCatalog:
    """The catalog of the model registry: discovery in the usual places, hub downloads.

    Args:
        models_folder: the models folder from the settings, read at each discovery.
    """
    from sa3_studio.app.engine_client import ModelCatalog, OfficialModelEntry
    from sa3_studio.engine import registry

    def folder() -> str | None:
        return models_folder() or None

    def discover() -> list[ModelInfo]:
        return [m for m in registry.discover(folder()) if m.objective != "autoencoder"]

    def download(
        name: str, dest: str | None, *, progress: Callable[[int, int], None], token: str | None
    ) -> ModelInfo:
        return registry.download(name, dest, progress=progress, token=token)

    def places() -> tuple[str, ...]:
        return tuple(f"{loc.path} ({loc.source})" for loc in registry.search_locations(folder()))

    official = tuple(
        OfficialModelEntry(
            name=m.name,
            repo_id=m.repo_id,
            url=m.url,
            gated=m.gated,
            max_seconds=m.max_seconds,
            family=m.family,
            objective=m.objective,
        )
        for m in registry.OFFICIAL_MODELS.values()
        if m.kind == "sa3"
    )
    return ModelCatalog(discover, download, official, places)


def attach_generation(
    window: GenerationHost,
    services: EditorServices,
    factory: PipelineFactory,
    catalog: ModelCatalog | None = None,
) -> GenerationUi:
    """Give the editor window its model thread, generation controller and panels.

    Called once by :func:`build_window` with the pipeline factory (the only place that names
    the engine's pipeline). Preferences (device, precision, crossfade, models folder) apply as
    they change; opening another document supersedes its generations; the model thread stops
    when the application quits.

    Args:
        window: the main window.
        services: its controllers.
        factory: ``factory(path, device=, dtype=)`` loads a model (``load_pipeline``).
        catalog: where models are found (default: the model registry's usual places).
    """
    from PySide6.QtWidgets import QApplication, QWidget

    from sa3_studio.app.engine_client import EngineClient
    from sa3_studio.app.generation_controller import GenerationController
    from sa3_studio.ui.generate_panel import install_generation_ui

    prefs = services.settings.preferences()
    parent = window if isinstance(window, QWidget) else None
    engine = EngineClient(factory, parent, device=prefs.compute_device, dtype=prefs.precision)
    controller = GenerationController(
        services.document, services.session, engine, services.transport, parent
    )
    controller.set_crossfade_ms(prefs.crossfade_ms)
    if catalog is None:
        catalog = registry_catalog(lambda: services.settings.preferences().models_folder)
    ui = install_generation_ui(
        window,
        controller,
        catalog,
        models_folder=prefs.models_folder,
        settings=services.settings,
    )

    def on_preferences(new: Preferences) -> None:
        engine.set_compute(new.compute_device, new.precision)
        controller.set_crossfade_ms(new.crossfade_ms)
        ui.generate_panel.refresh_models()

    services.settings.preferences_changed.connect(on_preferences)
    services.files.opened.connect(lambda *_: controller.document_replaced())
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(engine.shutdown)
    ui.engine = engine
    ui.controller = controller
    return ui


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
    from sa3_studio.ui.main_window import MainWindow
    from sa3_studio.ui.theme import apply_theme, theme_named

    app = QApplication.instance()
    services = build_services(parent=app)
    if isinstance(app, QApplication):
        apply_theme(app, theme_named(services.settings.preferences().theme))
    window = MainWindow(services)
    if generation:
        from sa3_studio.app.remote_engine import engine_catalog, engine_factory

        settings = services.settings
        # Settings > Engine: the local engine, or an SA3 Studio server (no Ray needed here).
        catalog = engine_catalog(
            settings, registry_catalog(lambda: settings.preferences().models_folder)
        )
        attach_generation(window, services, engine_factory(settings, _load_pipeline), catalog)
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
