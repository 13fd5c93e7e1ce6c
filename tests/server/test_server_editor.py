"""The editor with Settings > Engine set to a server: the whole window, offscreen, generating
takes on the local Ray Serve (the package's server) through the model thread, unchanged."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from editor_answers import EditorAnswers
from PySide6.QtCore import QSettings
from server_helpers import LiveServer

from sa3_studio.app.engine_client import EngineClient, ModelCatalog
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.remote_engine import engine_catalog, engine_factory
from sa3_studio.app.services import EditorServices, build_services
from sa3_studio.app.settings import Preferences
from sa3_studio.audio.player import ManualBackend, OutputDevice
from sa3_studio.ui.generate_panel import GenerationUi, install_generation_ui
from sa3_studio.ui.main_window import MainWindow

SR = 44100
WAIT_MS = 120_000


def _no_local_engine(path: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"the local engine was asked to load {path}")


@pytest.fixture
def editor(
    qtbot: Any, tmp_path: Path, server: LiveServer
) -> Iterator[tuple[MainWindow, GenerationUi]]:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    backend = ManualBackend([OutputDevice(0, "Test output", "Manual", 2, 44100.0, True)])
    services: EditorServices = build_services(
        settings_store=store, audio_backend=backend, recovery_dir=tmp_path / "recovery"
    )
    services.settings.set_preferences(
        Preferences(engine="server", server_url=server.url, server_token=server.token)
    )
    prompts = EditorAnswers()
    window = MainWindow(services, prompts)
    engine = EngineClient(engine_factory(services.settings, _no_local_engine))
    controller = GenerationController(
        services.document, services.session, engine, services.transport
    )
    catalog = engine_catalog(services.settings, ModelCatalog(discover=lambda: []))
    ui = install_generation_ui(window, controller, catalog)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    yield window, ui
    engine.shutdown()
    window.close()
    services.shutdown(discard_unsaved=True)
    window.deleteLater()


def _song(path: Path, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    x = 0.2 * np.sin(2 * math.pi * 196 * t)
    sf.write(path, np.stack([x, 0.8 * x]).T, SR, subtype="PCM_16")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T)


def test_the_editor_generates_takes_on_the_server(qtbot, editor, server, tmp_path):
    window, ui = editor
    services = window.services
    panel = ui.generate_panel
    assert [m.name for m in panel.models()] == ["tiny44k"]
    assert panel.models()[0].path.startswith("server:tiny44k@")

    wav = tmp_path / "song.wav"
    source = _song(wav, 5.0)  # the whole song is the context window: under the upload limit
    opened: list[object] = []
    services.files.opened.connect(opened.append)
    window.open_path(wav)
    qtbot.waitUntil(lambda: bool(opened), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: services.document.project.frames == source.shape[1], timeout=WAIT_MS)

    span = (2 * SR, 3 * SR)
    services.session.set_selection([span])
    panel.prompt_edit.setPlainText("bright bells")
    panel.takes_spin.setValue(2)
    panel.seed_spin.setValue(21)
    controller = panel._controller
    progress: list[tuple[int, int]] = []
    controller.engine.progress.connect(
        lambda _id, done, total, _eta: progress.append((done, total))
    )
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    project = services.document.project
    (region,) = project.regions
    takes = project.takes_for(region.id)
    assert [t.seed for t in takes] == [21, 22]
    assert all(t.model_name == "tiny44k" for t in takes)
    assert all(t.weights_hash and t.frames == region.length for t in takes)
    assert not np.array_equal(takes[0].audio.samples, takes[1].audio.samples)
    assert progress  # per-step progress came back from the server
    assert window.prompts.errors == []
    # Nothing outside the region changed (no take accepted yet).
    p = services.document.project
    assert np.array_equal(p.tracks[0].read(0, p.frames), source)
