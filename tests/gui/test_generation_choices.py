"""The Generate panel's choices (model, takes, LoRAs and strengths, prefix, sampler) are kept per
user: a second window, or a new settings object on the same store, starts with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from test_generate_fakes import (
    FakeFactory,
    catalog,
    make_env,
    model_info,
    pad_bool_refcounts,
)

from sa3_studio.app.engine_client import EngineClient
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.settings import AppSettings, GenerationChoices
from sa3_studio.ui.generate_panel import GeneratePanel, install_generation_ui
from sa3_studio.ui.generation_choices import remember_choices
from sa3_studio.ui.main_window import MainWindow

MUSIC = model_info("small-music", "/m/small-music")
BASE = model_info("small-music-base", "/m/base", objective="rectified_flow")
MODELS = [MUSIC, BASE]


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


def _store(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def lora(tmp_path: Path) -> Path:
    path = tmp_path / "brushes.safetensors"
    path.write_bytes(b"not read by these tests")
    return path


@pytest.fixture
def gen_window(qtbot: Any, window: MainWindow) -> Iterator[tuple[MainWindow, GeneratePanel]]:
    s = window.services
    engine = EngineClient(FakeFactory(), device="cpu", dtype="float32")
    controller = GenerationController(s.document, s.session, engine, s.transport)
    ui = install_generation_ui(window, controller, catalog(list(MODELS)), settings=s.settings)
    yield window, ui.generate_panel
    engine.shutdown()


def test_choices_survive_a_restart(qtbot: Any, gen_window, lora: Path, tmp_path: Path) -> None:
    window, panel = gen_window
    # First start: the first model, the defaults.
    assert panel.model_combo.currentData() == MUSIC.path
    assert window.services.settings.generation_choices() == GenerationChoices()
    panel.choose_model(BASE.path, load=False)
    panel.takes_spin.setValue(5)
    panel.prefix_combo.setCurrentIndex(panel.prefix_combo.findData("Instrument"))
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("dpmpp"))
    row = panel.add_lora(str(lora), 0.5)
    assert row is not None
    row.strength.setValue(0.7)

    # A new settings object on the same store (as after a restart) reads them back.
    again = AppSettings(_store(tmp_path))
    assert again.generation_choices() == GenerationChoices(
        model_path=BASE.path,
        takes=5,
        loras=((str(lora), 0.7),),
        prefix="Instrument",
        sampler="dpmpp",
    )

    # A second panel built on those settings shows them, and the model is the one chosen.
    env = make_env()
    try:
        engine2 = env.engine
        controller2 = GenerationController(env.document, env.session, engine2, env.transport)
        panel2 = GeneratePanel(controller2, catalog(list(MODELS)))
        qtbot.addWidget(panel2)
        notes = remember_choices(panel2, controller2, again)
        assert notes == []
        assert controller2.model is not None
        assert controller2.model.path == BASE.path
        assert panel2.model_combo.currentData() == BASE.path
        assert panel2.takes_spin.value() == 5
        assert panel2.prefix_combo.currentData() == "Instrument"
        assert panel2.sampler_combo.currentData() == "dpmpp"
        assert [(r.path, r.strength.value()) for r in panel2.lora_rows] == [(str(lora), 0.7)]
        # Removing the LoRA is remembered too.
        panel2._remove_lora_row(panel2.lora_rows[0])
        assert AppSettings(_store(tmp_path)).generation_choices().loras == ()
    finally:
        env.close()


def test_a_model_or_lora_that_is_gone_is_skipped_with_a_note(qtbot: Any, tmp_path: Path) -> None:
    settings = AppSettings(_store(tmp_path))
    settings.set_generation_choices(
        GenerationChoices(
            model_path="/m/deleted",
            takes=3,
            loras=((str(tmp_path / "gone.safetensors"), 1.0),),
        )
    )
    env = make_env()
    try:
        panel = GeneratePanel(env.controller, catalog(list(MODELS)))
        qtbot.addWidget(panel)
        notes = remember_choices(panel, env.controller, settings)
        assert len(notes) == 2
        assert "deleted" in notes[0]
        assert "gone.safetensors" in notes[1]
        assert env.controller.model is not None
        assert env.controller.model.path == MUSIC.path
        assert panel.takes_spin.value() == 3
        assert panel.lora_rows == []
    finally:
        env.close()


def test_stored_nonsense_falls_back_to_defaults(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.setValue("generate/takes", "many")
    store.setValue("generate/lora_paths", ["/a.safetensors"])
    store.setValue("generate/lora_strengths", ["strong"])
    choices = AppSettings(store).generation_choices()
    assert choices.takes == 2
    assert choices.loras == (("/a.safetensors", 1.0),)
