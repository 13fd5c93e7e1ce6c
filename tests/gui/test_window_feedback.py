"""Seeing what is going on: which of A and B is heard, pending vs accepted takes, the title,
region names, the tempo reaching the Generate panel, Snap to Beats asking for a tempo, and the
export dialog's summary and file names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import generate_takes, open_file, prompts_of
from PySide6.QtWidgets import QScrollArea
from test_generate_fakes import SR, Env, catalog, make_env, model_info, pad_bool_refcounts

from sa3_studio.app.export_request import ExportWhat, FormatChoice
from sa3_studio.app.generation import GenerateOptions
from sa3_studio.document.region_edits import add_region, default_region_name
from sa3_studio.ui.export_dialog import ExportDialog, safe_file_name
from sa3_studio.ui.generate_panel import GeneratePanel
from sa3_studio.ui.main_window import MainWindow
from sa3_studio.ui.takes_panel import TakesPanel, timeline_overlays

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def env(qtbot) -> Iterator[Env]:
    """A 20 s song with a region holding two pending takes."""
    e = make_env(model=model_info())
    p, rid = add_region(e.document.project, "track-1", 4 * SR, 6 * SR)
    generate_takes(qtbot, e, p, [rid], takes=2)
    yield e
    e.close()


def test_ab_button_and_waveform_badge_say_what_is_heard(qtbot, env):
    panel = TakesPanel(env.controller)
    qtbot.addWidget(panel)
    c = env.controller
    (pending,) = timeline_overlays(c.overlays(), hearing_take=c.hearing_take())
    assert "pending, not in the mix" in pending.label
    assert panel.ab_button.text() == "A | B"
    panel.audition()
    assert panel.ab_button.text() == "Hearing B: take"
    assert "You hear the take (B)" in panel.ab_button.toolTip()
    (playing,) = timeline_overlays(c.overlays(), hearing_take=c.hearing_take())
    assert "hearing B, the take" in playing.label
    with qtbot.waitSignal(c.ab_changed, timeout=WAIT_MS):
        panel.toggle_ab()
    assert panel.ab_button.text() == "Hearing A: original"
    assert "You hear the original (A)" in panel.ab_button.toolTip()
    (original,) = timeline_overlays(c.overlays(), hearing_take=c.hearing_take())
    assert "hearing A, the original" in original.label
    panel.audition()  # stop
    assert panel.ab_button.text() == "A | B"


def test_regions_are_named_in_order_or_from_their_prompt(env):
    project = env.document.project
    assert [r.name for r in project.regions] == ["Region 1"]
    project, rid = add_region(project, "track-1", 8 * SR, 9 * SR)
    assert project.region(rid).name == "Region 2"
    project, rid = add_region(project, "track-1", 10 * SR, 11 * SR, prompt="  warm   rhodes ")
    assert project.region(rid).name == "warm rhodes"
    long = "a very long prompt about brushed drums and a walking bass line"
    assert default_region_name(project, long) == "a very long prompt about brushed…"
    project, rid = add_region(project, "track-1", 12 * SR, 13 * SR, name="Chorus")
    assert project.region(rid).name == "Chorus"
    assert default_region_name(project) == "Region 3"


def test_set_tempo_reaches_the_generate_panel(qtbot, env):
    panel = GeneratePanel(env.controller, catalog([model_info()]))
    qtbot.addWidget(panel)
    assert panel.tempo_spin.value() == 0.0
    env.document.set_tempo(96.0)
    assert panel.tempo_spin.value() == pytest.approx(96.0)
    env.document.set_tempo(120.0)
    assert panel.tempo_spin.value() == pytest.approx(120.0)
    # A tempo typed into the panel is the user's: a later song tempo leaves it alone.
    panel.tempo_spin.setValue(140.0)
    env.document.set_tempo(100.0)
    assert panel.tempo_spin.value() == pytest.approx(140.0)


def test_title_and_snap_to_beats_without_a_tempo(
    qtbot: Any, qtlog: Any, window: MainWindow, song_file: Path
) -> None:
    assert window.windowTitle() == "SA3 Studio"
    open_file(qtbot, window, song_file)
    assert window.windowTitle() == "song[*] — SA3 Studio"
    doc = window.services.document
    assert doc.project.meta.grid is None
    prompts = prompts_of(window)
    prompts.tempo_answer = None  # the user cancels the tempo question: the snap stays off
    window.actions["view.snap_beats"].setChecked(True)
    assert not window.actions["view.snap_beats"].isChecked()
    assert not window.services.session.snap.beats
    prompts.tempo_answer = 110.0
    window.actions["view.snap_beats"].setChecked(True)
    assert window.actions["view.snap_beats"].isChecked()
    assert doc.project.meta.grid is not None
    assert doc.project.meta.grid.bpm == pytest.approx(110.0)
    window.actions["file.close"].trigger()
    assert window.windowTitle() == "SA3 Studio"
    assert not [r for r in qtlog.records if "[*]" in r.message]


def test_export_summary_and_file_names_every_system_accepts(qtbot, tmp_path: Path):
    formats = [
        FormatChoice("wav24", "WAV 24-bit", "wav", 24),
        FormatChoice("mp3", "MP3", "mp3", None),
    ]
    dlg = ExportDialog(
        formats,
        [("r1", "Region  1:59.64–2:05.68")],
        default_dir=tmp_path,
        base_name="song1",
    )
    qtbot.addWidget(dlg)
    assert dlg.summary.text() == "Writes the whole mix as WAV 24-bit at 44100 Hz."
    dlg.set_what(ExportWhat.REGION)
    name = Path(dlg.path_edit.text()).name
    assert name == "song1 - Region 1.59.64-2.05.68.wav"
    assert safe_file_name('a<b>c:"d"/e\\f|g?h*') == "a b c. d e f g h"
    assert safe_file_name("CON") == "_CON"
    assert safe_file_name("take. ") == "take"


def test_the_default_layout_works_at_1366_by_768(qtbot: Any, services: Any) -> None:
    from gui_helpers import ScriptedPrompts
    from test_generate_fakes import FakeFactory

    from sa3_studio.app.engine_client import EngineClient
    from sa3_studio.app.generation_controller import GenerationController
    from sa3_studio.ui.generate_panel import install_generation_ui

    window = MainWindow(services, ScriptedPrompts())
    qtbot.addWidget(window)
    s = window.services
    engine = EngineClient(FakeFactory(), device="cpu", dtype="float32")
    try:
        controller = GenerationController(s.document, s.session, engine, s.transport)
        ui = install_generation_ui(window, controller, catalog([model_info()]))
        window.resize(1366, 768)
        window.show()
        qtbot.waitExposed(window)
        table = window.regions_panel.table
        row = table.verticalHeader().defaultSectionSize()
        # Four regions fit in the Regions panel, and Generate stays in view.
        regions = window.panels["regions"]
        qtbot.waitUntil(lambda: regions.height() >= 4 * row + 60)
        button = ui.generate_panel.generate_button
        assert button.isVisible()
        assert button.visibleRegion().boundingRect().height() == button.height()
        # The Generate panel's settings keep a useful height above its footer.
        scroll = ui.generate_panel.findChild(QScrollArea, "generateScroll")
        assert scroll is not None
        assert scroll.viewport().height() >= 200
    finally:
        window.close()
        engine.shutdown()


def test_after_opening_no_progress_bar_is_left_behind(
    qtbot: Any, window: MainWindow, song_file: Path
) -> None:
    open_file(qtbot, window, song_file)
    files = window.services.files
    # The recovery file is primed in the background; the user does not wait for it.
    qtbot.waitUntil(lambda: not files.is_busy())
    assert not window.progress_label.isVisible()
    assert not window.cancel_button.isVisible()


def test_an_accepted_take_is_marked_in_the_mix_and_a_pending_one_is_not(
    qtbot: Any, window: MainWindow, song_file: Path
) -> None:
    from test_generate_fakes import FakeFactory

    from sa3_studio.app.engine_client import EngineClient
    from sa3_studio.app.generation import ModelChoice
    from sa3_studio.app.generation_controller import GenerationController
    from sa3_studio.ui.generate_panel import install_generation_ui

    open_file(qtbot, window, song_file)
    s = window.services
    engine = EngineClient(FakeFactory(), device="cpu", dtype="float32")
    try:
        controller = GenerationController(s.document, s.session, engine, s.transport)
        info = model_info()
        ui = install_generation_ui(window, controller, catalog([info]))
        controller.set_model(ModelChoice.from_info(info), load=False)
        s.session.set_selection([(2 * SR, 3 * SR)])
        with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
            controller.generate(GenerateOptions(prompt="drums", seed=5, takes=2))
        (region,) = s.document.project.regions
        first, second = [k.id for k in s.document.project.takes_for(region.id)]
        regions_item = window.timeline.regions_item
        assert regions_item.note(region.id) == ""
        controller.accept(first)
        assert regions_item.note(region.id) == "Take 1 in the mix"
        # The other take, chosen again, is drawn as pending and says it is not heard.
        ui.takes_panel.select_take(second)
        (overlay,) = window.timeline.overlay_item.overlays()
        assert "Take 2" in overlay.label
        assert "pending, not in the mix" in overlay.label
    finally:
        engine.shutdown()
