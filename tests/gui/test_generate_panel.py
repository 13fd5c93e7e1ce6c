"""The Generate panel: every control, the window sent, the queue and its cancel buttons."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from test_generate_fakes import (
    SR,
    Env,
    FakeFactory,
    FakePipeline,
    StepGate,
    catalog,
    make_env,
    model_info,
    pad_bool_refcounts,
    project,
)

from sa3_studio.app.engine_client import JobKind
from sa3_studio.app.generation import Mode
from sa3_studio.document.region_edits import add_region
from sa3_studio.errors import GenerationError
from sa3_studio.ui.generate_panel import GeneratePanel

WAIT_MS = 10_000
MUSIC = model_info("small-music", "/m/small-music")
BASE = model_info("small-music-base", "/m/base", objective="rectified_flow")
SFX = model_info("small-sfx", "/m/sfx", max_seconds=30.0)
BROKEN = model_info("medium", "/m/medium", complete=False)


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def env() -> Iterator[Env]:
    e = make_env()
    yield e
    e.close()


def make_panel(qtbot, env: Env, models=(MUSIC, BASE, SFX, BROKEN), **kw) -> GeneratePanel:
    panel = GeneratePanel(env.controller, catalog(list(models)), rng=random.Random(5), **kw)
    qtbot.addWidget(panel)
    panel.resize(340, 900)
    return panel


def texts(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_the_picker_lists_models_with_their_length_and_marks_broken_ones(qtbot, env):
    panel = make_panel(qtbot, env)
    items = texts(panel.model_combo)
    assert items[0].startswith("small-music")
    assert "2:00" in items[0]
    assert any(t.startswith("small-sfx") and "0:30" in t for t in items)
    broken = panel.model_combo.findData("/m/medium")
    assert "(incomplete)" in items[broken]
    assert not panel.model_combo.model().item(broken).isEnabled()
    assert "missing: model.safetensors" in panel.model_combo.itemData(
        broken, Qt.ItemDataRole.ToolTipRole
    )
    # The first usable model is chosen (not loaded until asked); the status says so.
    assert env.controller.model is not None
    assert env.controller.model.path == "/m/small-music"
    assert "device: cpu" in panel.model_status.text()
    assert "2:00 per pass" in panel.model_status.text()


def test_choosing_a_model_loads_it_and_shows_where_it_runs(qtbot, env):
    panel = make_panel(qtbot, env)
    with qtbot.waitSignal(env.engine.model_loaded, timeout=WAIT_MS):
        assert panel.choose_model("/m/sfx")
        assert panel.load_bar.isVisible() or env.engine.loading_name == "small-sfx"
    assert env.factory.calls == [("/m/sfx", "cpu", "float32")]
    assert panel.model_status.text().startswith("● Ready on cpu · float32")
    assert not panel.load_bar.isVisible()
    assert panel.prefix_combo.currentData() == "SFX"


def test_without_models_the_panel_says_what_to_do_and_generate_opens_get_models(qtbot, env):
    opened: list[int] = []
    panel = make_panel(qtbot, env, models=(BROKEN,), open_models_dialog=lambda: opened.append(1))
    assert env.controller.model is None
    assert "No Stable Audio 3 model found" in panel.model_status.text()
    assert "Get Models" in panel.model_status.text()
    assert texts(panel.model_combo)[0] == "No model found"
    panel.generate()
    assert opened == [1]
    qtbot.mouseClick(panel.get_models_button, Qt.MouseButton.LeftButton)
    assert opened == [1, 1]


def test_get_models_is_a_signal_when_no_opener_is_given(qtbot, env):
    panel = make_panel(qtbot, env)
    with qtbot.waitSignal(panel.get_models_requested, timeout=WAIT_MS):
        panel.get_models_button.click()


def test_the_prefix_is_added_visibly_with_tempo_and_key(qtbot, env):
    panel = make_panel(qtbot, env)
    assert panel.prefix_combo.currentData() == "Music"
    panel.prompt_edit.setPlainText("warm pads")
    panel.tempo_spin.setValue(120.0)
    panel.key_combo.setCurrentIndex(panel.key_combo.findData("A minor"))
    panel.update_preview()
    assert panel.prefix_chip.text() == "TrackType: Music, VocalType: Instrumental"
    assert panel.full_prompt.text() == (
        "Sent: TrackType: Music, VocalType: Instrumental, warm pads, 120 BPM, A minor"
    )
    options = panel.options()
    assert (options.prompt, options.tempo_bpm, options.key) == ("warm pads", 120.0, "A minor")
    panel.prefix_combo.setCurrentIndex(panel.prefix_combo.findData("None"))
    panel.tempo_spin.setValue(0.0)
    panel.update_preview()
    assert panel.tempo_spin.text() == "—"
    assert panel.options().tempo_bpm is None
    assert panel.full_prompt.text() == "Sent: warm pads, A minor"
    assert panel.prefix_chip.text() == "no prefix"


def test_negative_prompt_and_cfg_only_for_base_models(qtbot, env):
    panel = make_panel(qtbot, env)
    assert not panel.negative_edit.isEnabled()
    assert not panel.cfg_spin.isEnabled()
    assert not panel.sampler_combo.isEnabled()
    assert "-base" in panel.cfg_spin.toolTip()
    assert panel.options().sampler is None
    assert panel.steps_spin.value() == 8
    panel.negative_edit.setText("vocals")
    assert panel.options().negative_prompt == ""
    assert panel.options().cfg_scale is None
    panel.choose_model("/m/base", load=False)
    assert panel.negative_edit.isEnabled()
    assert panel.cfg_spin.isEnabled()
    assert panel.steps_spin.value() == 50
    assert panel.cfg_spin.value() == 7.0
    options = panel.options()
    assert (options.negative_prompt, options.cfg_scale, options.steps) == ("vocals", 7.0, 50)
    assert panel.sampler_combo.isEnabled()
    assert options.sampler == "euler"
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("rk4"))
    assert panel.options().sampler == "rk4"
    panel.apply_options(dataclasses.replace(options, sampler="dpmpp"))
    assert panel.sampler_combo.currentData() == "dpmpp"


def test_the_seed_is_always_a_number_random_per_run_unless_locked(qtbot, env):
    panel = make_panel(qtbot, env)
    env.session.set_selection([(SR, 2 * SR)])
    first = panel.seed_spin.value()
    assert 0 <= first < 2**31
    assert panel.seed_spin.text() == str(first)
    assert panel.generate() is not None
    second = panel.seed_spin.value()
    assert second != first
    panel.seed_lock.setChecked(True)
    env.session.set_selection([(3 * SR, 4 * SR)])
    env.session.set_selected_regions([])
    assert panel.generate() is not None
    assert panel.seed_spin.value() == second
    panel.seed_dice.click()
    assert panel.seed_spin.value() != second
    submitted = [j.task.plan.seeds for j in env.engine.jobs() if j.kind is JobKind.GENERATE]
    assert submitted[0][0] == first
    assert submitted[1][0] == second


def test_takes_steps_and_context_reach_the_options(qtbot, env):
    panel = make_panel(qtbot, env)
    panel.takes_spin.setValue(3)
    panel.steps_spin.setValue(12)
    contexts = [panel.context_combo.itemData(i) for i in range(panel.context_combo.count())]
    assert contexts[0] is None  # Auto
    assert max(c for c in contexts if c is not None) < 120.0  # the model's maximum
    panel.context_combo.setCurrentIndex(panel.context_combo.findData(30.0))
    options = panel.options()
    assert (options.takes, options.steps, options.context_s) == (3, 12, 30.0)
    assert options.seeds() == tuple(panel.seed_spin.value() + i for i in range(3))


def test_modes_switch_their_settings(qtbot, env):
    panel = make_panel(qtbot, env)
    assert panel.mode() is Mode.REGENERATE
    panel.mode_buttons[Mode.EXTEND].click()
    assert panel.mode_stack.currentIndex() == 1
    panel.extend_side.setCurrentIndex(panel.extend_side.findData("before"))
    panel.extend_length.setValue(6.5)
    assert (panel.options().extend_side, panel.options().extend_s) == ("before", 6.5)
    panel.mode_buttons[Mode.VARY].click()
    assert panel.mode_stack.currentIndex() == 2
    panel.strength.setValue(35)
    assert panel.strength_label.text() == "0.35"
    assert panel.options().vary_strength == pytest.approx(0.35)
    panel.mode_buttons[Mode.NEW].click()
    panel.new_place.setCurrentIndex(panel.new_place.findData("cursor"))
    panel.new_length.setValue(4.0)
    options = panel.options()
    assert (options.mode, options.new_place, options.new_s) == (Mode.NEW, "cursor", 4.0)
    panel.update_preview()
    assert "Insert 0:04 of new audio at 0:00" in panel.window_info.text()


def test_the_user_sees_which_window_of_a_long_song_is_sent(qtbot):
    p = project(360.0)
    p, rid = add_region(p, "track-1", 180 * SR, 184 * SR)
    env = make_env(song_project=p)
    try:
        panel = make_panel(qtbot, env)
        env.session.set_selected_regions([rid])
        panel.context_combo.setCurrentIndex(panel.context_combo.findData(30.0))
        panel.update_preview()
        assert panel.targets_label.text() == "1 selected region"
        info = panel.window_info.text()
        assert info.startswith("Sent to the model: Window 2:")
        assert "(0:29." in info
        assert "for 1 region" in info
        assert not panel.window_problem.isVisible()
        # A region longer than the context allows is explained before anything is sent.
        panel.context_combo.setCurrentIndex(panel.context_combo.findData(10.0))
        panel.update_preview()
        assert "choose a longer context" in panel.window_problem.text()
    finally:
        env.close()


def test_generate_makes_regions_from_the_selection_and_shows_the_job_in_the_queue(qtbot):
    gate = StepGate(3)
    env = make_env(FakeFactory(FakePipeline(gate=gate)))
    try:
        panel = make_panel(qtbot, env)
        panel.prompt_edit.setPlainText("brushed drums")
        env.session.set_selection([(2 * SR, 4 * SR), (8 * SR, 9 * SR)])
        panel.update_preview()
        assert "becomes new regions" in panel.targets_label.text()
        job = panel.generate()
        assert job is not None
        project_now = env.document.project
        assert len(project_now.regions) == 2
        assert {r.prompt for r in project_now.regions} == {"brushed drums"}
        assert env.document.undo_text().startswith("Undo Add 2 Regions")
        rows = panel.queue_rows()
        assert [r.title.text() for r in rows] == [
            "Load small-music",
            "Regenerate 2 regions · 2 takes",
        ]
        assert rows[1].state.text() == "queued"
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "step 3/16" in panel.queue_rows()[0].state.text(), timeout=WAIT_MS)
        assert "left" in panel.queue_rows()[0].state.text()
        with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS) as added:
            gate.open()
        assert len(added.args[1]) == 4
        assert len(env.document.project.takes) == 4
        qtbot.waitUntil(lambda: panel.queue_rows() == [], timeout=WAIT_MS)
        assert panel.queue_empty.isVisible() or not panel.isVisible()
    finally:
        gate.open()
        env.close()


def test_the_cancel_button_of_a_row_cancels_that_job(qtbot):
    gate = StepGate(1)
    env = make_env(FakeFactory(FakePipeline(gate=gate)))
    try:
        panel = make_panel(qtbot, env)
        env.session.set_selection([(2 * SR, 4 * SR)])
        job = panel.generate()
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        row = panel.queue_rows()[0]
        assert row.job_id == job
        with qtbot.waitSignal(env.engine.job_cancelled, timeout=WAIT_MS):
            qtbot.mouseClick(row.cancel, Qt.MouseButton.LeftButton)
            assert row.state.text() == "cancelling…"
            gate.open()
        assert env.document.project.takes == ()
        qtbot.waitUntil(lambda: panel.queue_rows() == [], timeout=WAIT_MS)
    finally:
        gate.open()
        env.close()


def test_cancel_all_empties_the_queue(qtbot):
    gate = StepGate(1)
    env = make_env(FakeFactory(FakePipeline(gate=gate)))
    try:
        panel = make_panel(qtbot, env)
        env.session.set_selection([(2 * SR, 4 * SR)])
        panel.generate()
        panel.generate()
        assert len(panel.queue_rows()) == 3
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        panel.cancel_all_button.click()
        gate.open()
        qtbot.waitUntil(lambda: panel.queue_rows() == [], timeout=WAIT_MS)
        assert env.document.project.takes == ()
    finally:
        gate.open()
        env.close()


def test_a_failed_generation_becomes_an_error_dialog(qtbot):
    env = make_env(
        FakeFactory(FakePipeline(fail=GenerationError("The source audio contains NaN samples.")))
    )
    try:
        panel = make_panel(qtbot, env)
        env.session.set_selection([(2 * SR, 4 * SR)])
        with qtbot.waitSignal(env.engine.job_failed, timeout=WAIT_MS):
            panel.generate()
        assert env.errors == [("Cannot generate", "The source audio contains NaN samples.")]
    finally:
        env.close()


def test_nothing_selected_is_explained(qtbot, env):
    panel = make_panel(qtbot, env)
    panel.update_preview()
    assert "Select a part of the waveform" in panel.targets_label.text()
    assert panel.generate() is None
    assert env.errors[0][0] == "Nothing selected"
    assert env.engine.jobs() == []


def test_apply_options_shows_a_takes_settings_and_locks_its_seed(qtbot, env):
    panel = make_panel(qtbot, env)
    options = panel.options()
    from dataclasses import replace

    panel.apply_options(
        replace(options, prompt="strings", seed=4242, steps=20, context_s=45.0, key="E minor")
    )
    got = panel.options()
    assert (got.prompt, got.seed, got.steps, got.context_s, got.key) == (
        "strings",
        4242,
        20,
        45.0,
        "E minor",
    )
    assert panel.seed_lock.isChecked()
