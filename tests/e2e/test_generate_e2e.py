"""End to end, offscreen, with the real engine on a tiny random 44.1 kHz model.

The whole window (main window, Generate and Takes panels) on a WAV file: select two spans,
generate two takes each, audition one in place with the A/B switch, accept it, undo, redo,
save, reopen, export stems, and check that every sample outside the regions is bit-identical to
the source file. The same on a six-minute file with a region in the middle, which sends only a
context window to the model and still finishes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from editor_answers import EditorAnswers
from PySide6.QtCore import QSettings, Qt

from sa3_studio.app.engine_client import EngineClient, ModelCatalog
from sa3_studio.app.export_request import ExportRequest, ExportWhat
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.services import EditorServices, build_services
from sa3_studio.audio.player import ManualBackend, OutputDevice, Source
from sa3_studio.engine.api import ModelInfo
from sa3_studio.engine.pipeline import load_pipeline
from sa3_studio.engine.synthetic import make_random_model
from sa3_studio.ui.generate_panel import GenerationUi, install_generation_ui
from sa3_studio.ui.main_window import MainWindow

SR = 44100
WAIT_MS = 120_000


def _pad_bool_refcounts() -> None:
    """Guard against PySide6 6.12.0 losing references to True/None (pinned away; defensive)."""
    guard_refcounts()


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    _pad_bool_refcounts()


@pytest.fixture(scope="module")
def tiny44k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("models") / "tiny44k", preset="tiny44k")


def write_song(path: Path, seconds: float) -> np.ndarray:
    """A 16-bit stereo WAV (chords and noise); returns the samples as the editor reads them."""
    rng = np.random.default_rng(7)
    t = np.arange(SR) / SR
    chord = 0.2 * np.sin(2 * math.pi * 196 * t) + 0.12 * np.sin(2 * math.pi * 247 * t)
    one = np.stack([chord, 0.8 * chord]) + 0.02 * rng.standard_normal((2, SR))
    n = round(seconds * SR)
    audio = np.tile(one, (1, math.ceil(n / SR)))[:, :n]
    sf.write(path, audio.T, SR, subtype="PCM_16")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T)


@pytest.fixture
def app(qtbot: Any, tmp_path: Path, tiny44k: Path) -> Iterator[tuple[MainWindow, GenerationUi]]:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    backend = ManualBackend([OutputDevice(0, "Test output", "Manual", 2, 44100.0, True)])
    services: EditorServices = build_services(
        settings_store=store, audio_backend=backend, recovery_dir=tmp_path / "recovery"
    )
    prompts = EditorAnswers()
    window = MainWindow(services, prompts)
    prompts.parent = window  # type: ignore[method-assign,assignment]

    def factory(path: str, *, device: str, dtype: str) -> Any:
        return load_pipeline(path, device="cpu", dtype="float32")

    engine = EngineClient(factory, device="cpu", dtype="float32")
    controller = GenerationController(
        services.document, services.session, engine, services.transport
    )
    info = ModelInfo("tiny44k", str(tiny44k), "tiny", "rf_denoiser", SR, 120.0, True)
    catalog = ModelCatalog(discover=lambda: [info])
    ui = install_generation_ui(window, controller, catalog)
    window.resize(1400, 860)
    window.show()
    qtbot.waitExposed(window)
    yield window, ui
    engine.shutdown()
    window.close()
    services.shutdown(discard_unsaved=True)
    window.deleteLater()


def open_file(qtbot: Any, window: MainWindow, path: Path, frames: int) -> None:
    services = window.services
    errors = window.prompts.errors  # type: ignore[attr-defined]
    opened: list[object] = []
    services.files.opened.connect(opened.append)
    window.open_path(path)
    qtbot.waitUntil(lambda: bool(opened) or bool(errors), timeout=WAIT_MS)
    assert errors == []
    qtbot.waitUntil(lambda: services.document.project.frames == frames, timeout=WAIT_MS)


def track_audio(window: MainWindow) -> np.ndarray:
    p = window.services.document.project
    return p.tracks[0].read(0, p.frames)


def assert_outside_identical(audio: np.ndarray, source: np.ndarray, spans: list[tuple[int, int]]):
    """Every sample outside ``spans`` equals the source bit for bit."""
    assert audio.shape == source.shape
    keep = np.ones(source.shape[1], dtype=bool)
    for a, b in spans:
        keep[a:b] = False
    assert np.array_equal(audio[:, keep].view(np.uint32), source[:, keep].view(np.uint32))


def test_generate_audition_accept_undo_save_reopen_export(qtbot, app, tmp_path):
    window, ui = app
    services = window.services
    controller = ui.generate_panel._controller
    prompts = window.prompts
    wav = tmp_path / "song.wav"
    source = write_song(wav, 20.0)
    open_file(qtbot, window, wav, source.shape[1])

    # Select two spans and generate two takes for each.
    spans = [(4 * SR, 6 * SR), (12 * SR, round(13.5 * SR))]
    services.session.set_selection(spans)
    panel = ui.generate_panel
    panel.prompt_edit.setPlainText("warm pads")
    panel.takes_spin.setValue(2)
    panel.seed_spin.setValue(11)
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS) as added:
        assert panel.generate() is not None
    project = services.document.project
    assert len(project.regions) == 2
    assert len(added.args[1]) == 4
    for region in project.regions:
        takes = project.takes_for(region.id)
        assert [t.seed for t in takes] == [11, 12]
        assert all(t.frames == region.length for t in takes)
        assert all(t.model_name == "tiny44k" for t in takes)
        assert all(np.isfinite(t.audio.samples).all() for t in takes)
        assert not np.array_equal(takes[0].audio.samples, takes[1].audio.samples)
    assert len(window.timeline.overlay_item.overlays()) == 2  # pending takes drawn
    assert_outside_identical(track_audio(window), source, [])  # nothing accepted yet

    # Audition take 2 of the first region in place, switch A/B, stop.
    region = min(project.regions, key=lambda r: r.start)
    take = project.takes_for(region.id)[1]
    takes_panel = ui.takes_panel
    assert takes_panel.select_take(take.id)
    takes_panel.tree.setFocus()
    qtbot.keyClick(takes_panel.tree, Qt.Key.Key_Space)
    player = services.transport.player
    assert services.transport.is_playing
    assert player.source is Source.TAKE
    assert player.position == region.start - 2 * SR
    qtbot.keyClick(takes_panel.tree, Qt.Key.Key_A)
    assert player.source is Source.ORIGINAL
    qtbot.keyClick(takes_panel.tree, Qt.Key.Key_Space)
    assert not services.transport.is_playing

    # Accept it: only the region changes.
    qtbot.keyClick(takes_panel.tree, Qt.Key.Key_Return)
    accepted = track_audio(window)
    assert_outside_identical(accepted, source, [(region.start, region.end)])
    assert not np.array_equal(
        accepted[:, region.start : region.end], source[:, region.start : region.end]
    )
    assert services.document.project.region(region.id).accepted_take_id == take.id

    # Undo and redo through the window's actions.
    window.actions["edit.undo"].trigger()
    assert_outside_identical(track_audio(window), source, [])
    window.actions["edit.redo"].trigger()
    np.testing.assert_array_equal(track_audio(window), accepted)

    # Save, then reopen the project.
    prompts.save_answer = tmp_path / "song.sa3"
    with qtbot.waitSignal(services.files.saved, timeout=WAIT_MS) as saved:
        window.save_as()
    saved_path = Path(saved.args[0])
    assert saved_path.is_file()
    window.actions["file.close"].trigger()
    assert services.document.project.frames == 0
    open_file(qtbot, window, saved_path, source.shape[1])
    reopened = services.document.project
    assert len(reopened.takes) == 4
    assert reopened.region(region.id).accepted_take_id == take.id
    assert reopened.take(take.id).audio == take.audio
    np.testing.assert_array_equal(track_audio(window), accepted)
    assert prompts.errors == []

    # Export stems and compare them with the source file.
    stems = tmp_path / "stems"
    request = ExportRequest(ExportWhat.STEMS, stems, format_key="wav32f")
    with qtbot.waitSignal(services.files.exported, timeout=WAIT_MS) as exported:
        services.files.export(reopened, request)
    (stem,) = exported.args[0].paths
    data, rate = sf.read(stem, dtype="float32", always_2d=True)
    assert rate == SR
    stem_audio = np.ascontiguousarray(data.T)
    assert_outside_identical(stem_audio, source, [(region.start, region.end)])
    fade = round(0.025 * SR)
    np.testing.assert_array_equal(
        stem_audio[:, region.start + fade : region.end - fade],
        take.audio.samples[:, fade:-fade],
    )


def test_a_region_in_the_middle_of_a_six_minute_song_uses_a_context_window(qtbot, app, tmp_path):
    window, ui = app
    services = window.services
    controller = ui.generate_panel._controller
    wav = tmp_path / "long.wav"
    source = write_song(wav, 360.0)
    open_file(qtbot, window, wav, source.shape[1])
    services.session.set_selection([(180 * SR, 184 * SR)])
    panel = ui.generate_panel
    panel.prompt_edit.setPlainText("bridge")
    panel.takes_spin.setValue(1)
    panel.context_combo.setCurrentIndex(panel.context_combo.findData(30.0))
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS) as added:
        panel.generate()
        panel.update_preview()
        assert "Window 2:" in panel.window_info.text()  # the user sees which window is sent
    (take_id,) = added.args[1]
    take = services.document.project.take(take_id)
    made = take.provenance
    assert made.window_end - made.window_start <= 30 * SR
    assert made.window_start < 180 * SR < 184 * SR < made.window_end
    assert take.settings.context_s <= 30.0
    assert controller.accept(take_id)
    assert_outside_identical(track_audio(window), source, [(180 * SR, 184 * SR)])
