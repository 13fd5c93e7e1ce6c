"""Keyboard and focus in the whole window: Space never types into a field the user did not pick,
Escape leaves a field, the keys work right after opening a file, the Generate commands have
shortcuts shown in menus and tooltips, the F1 list is readable, spin boxes leave the wheel to
the panel unless focused, and End scrolls to the cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import open_file, prompts_of
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget
from test_generate_fakes import FakeFactory, StepGate, catalog, model_info, pad_bool_refcounts

from sa3_studio.app.engine_client import EngineClient
from sa3_studio.app.generation import ModelChoice
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.document.constants import SAMPLE_RATE as SR
from sa3_studio.document.region_edits import add_region
from sa3_studio.ui.focus import is_text_field
from sa3_studio.ui.generate_panel import GenerationUi, install_generation_ui
from sa3_studio.ui.main_window import MainWindow

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def gen(qtbot: Any, window: MainWindow) -> Iterator[tuple[MainWindow, GenerationUi, FakeFactory]]:
    """The window with its Generate and Takes panels on a fake pipeline."""
    factory = FakeFactory()
    s = window.services
    engine = EngineClient(factory, device="cpu", dtype="float32")
    controller = GenerationController(s.document, s.session, engine, s.transport)
    info = model_info()
    ui = install_generation_ui(window, controller, catalog([info]))
    controller.set_model(ModelChoice.from_info(info), load=False)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    yield window, ui, factory
    engine.shutdown()


def focus_settles(qtbot: Any) -> QWidget | None:
    """Let the focus guard's deferred correction run; return the focused widget."""
    for _ in range(3):
        QApplication.processEvents()
    return QApplication.focusWidget()


def open_song(qtbot: Any, window: MainWindow, path: Path) -> None:
    """Open ``path`` and wait until the waveform has the keyboard."""
    open_file(qtbot, window, path)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.timeline.plot, timeout=WAIT_MS)


def test_right_after_opening_a_file_the_keys_reach_the_waveform(qtbot, gen, song_file: Path):
    window, _ui, _f = gen
    open_file(qtbot, window, song_file)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.timeline.plot, timeout=WAIT_MS)
    s = window.services.session
    span = s.view_span
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Equal)
    assert s.view_span == pytest.approx(span / 2)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Minus)
    assert s.view_span == pytest.approx(span)


def test_focus_handed_on_by_qt_does_not_land_in_a_field(qtbot, gen, song_file: Path):
    window, ui, _f = gen
    open_song(qtbot, window, song_file)
    prompt = ui.generate_panel.prompt_edit
    # Qt moves the focus on by itself (as when a focused button disappears): Tab reason, no Tab.
    prompt.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.timeline.plot, timeout=WAIT_MS)
    # A click is the user's choice: the field keeps the keyboard, and Space types there.
    prompt.setFocus(Qt.FocusReason.MouseFocusReason)
    assert focus_settles(qtbot) is prompt
    qtbot.keyClick(prompt, Qt.Key.Key_Space)
    assert prompt.toPlainText() == " "
    assert not window.services.transport.is_playing


def test_a_cancel_from_the_queue_leaves_the_keyboard_out_of_the_prompt(qtbot, gen, song_file: Path):
    window, ui, factory = gen
    open_song(qtbot, window, song_file)
    s, doc = window.services.session, window.services.document
    project, rid = add_region(doc.project, doc.project.tracks[0].id, 2 * SR, 4 * SR)
    doc.set_project(project)
    doc.update_region(rid, prompt="my prompt")
    s.set_selected_regions([rid])
    takes = ui.takes_panel
    window.panels["takes"].show()
    qtbot.waitUntil(lambda: takes.region_prompt.text() == "my prompt", timeout=WAIT_MS)
    assert takes.region_prompt.isVisible()
    gate = StepGate(1)
    factory.pipeline.gate = gate
    panel = ui.generate_panel
    assert panel.generate() is not None
    # The generation runs (held at its second step); the load job's row is gone.
    qtbot.waitUntil(lambda: factory.pipeline.steps_run >= 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(panel.queue_rows()) == 1, timeout=WAIT_MS)
    (row,) = panel.queue_rows()
    row.cancel.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    # As in the reported case, the region's prompt comes next in the focus chain.
    QWidget.setTabOrder(row.cancel, takes.region_prompt)
    row.cancel.setFocus(Qt.FocusReason.MouseFocusReason)
    assert focus_settles(qtbot) is row.cancel
    row.cancel.click()
    gate.open()
    qtbot.waitUntil(lambda: not panel.queue_rows(), timeout=WAIT_MS)
    focused = focus_settles(qtbot)
    assert not is_text_field(focused), focused
    qtbot.keyClick(focused or window, Qt.Key.Key_Space)
    assert takes.region_prompt.text() == "my prompt"
    assert doc.project.region(rid).prompt == "my prompt"


def test_escape_leaves_a_field_and_keeps_the_selection(qtbot, gen, song_file: Path):
    window, ui, _f = gen
    open_song(qtbot, window, song_file)
    s = window.services.session
    s.set_selection([(SR, 2 * SR)])
    prompt = ui.generate_panel.prompt_edit
    prompt.setFocus(Qt.FocusReason.MouseFocusReason)
    assert focus_settles(qtbot) is prompt
    qtbot.keyClick(prompt, Qt.Key.Key_Escape)
    assert focus_settles(qtbot) is window.timeline.plot
    assert s.selection() == [(SR, 2 * SR)]
    # On the waveform, Escape is Select None again.
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_Escape)
    assert s.selection() == []


def _wheel(widget: QWidget, up: bool = True) -> None:
    pos = QPointF(widget.rect().center())
    ev = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 if up else -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def test_the_seed_box_takes_the_wheel_only_when_focused(qtbot, gen):
    _window, ui, _f = gen
    panel = ui.generate_panel
    seed = panel.seed_spin
    seed.setValue(1000)
    assert seed.focusPolicy() == Qt.FocusPolicy.StrongFocus
    _wheel(seed)
    assert seed.value() == 1000
    assert not seed.hasFocus()
    seed.setFocus(Qt.FocusReason.MouseFocusReason)
    assert focus_settles(qtbot) is seed
    _wheel(seed)
    assert seed.value() == 1001
    # LoRA rows added later follow the same rule.
    row = panel.add_lora("/loras/a.safetensors", 0.5)
    assert row is not None
    _wheel(row.strength)
    assert row.strength.value() == pytest.approx(0.5)


def test_generate_commands_have_shortcuts_in_menus_tooltips_and_help(qtbot, gen, song_file: Path):
    window, ui, _f = gen
    open_song(qtbot, window, song_file)
    a = window.actions
    menu_actions = window.menus["Generate"].actions()
    for key in ("take.generate", "take.accept", "take.next", "take.previous", "take.ab"):
        assert a[key] in menu_actions
        assert a[key].isEnabled()
    assert a["take.generate"].toolTip() == "Generate (Ctrl+Return)"
    assert ui.generate_panel.generate_button.toolTip().endswith("(Ctrl+Return)")
    assert ui.takes_panel.accept_button.toolTip().endswith("(Shift+Return)")
    assert ui.takes_panel.reroll_button.toolTip().endswith("(R)")
    a["help.shortcuts"].trigger()
    rows = {c: k for _, c, k in prompts_of(window).shortcut_rows}
    assert rows["Undo"] == "Ctrl+Z"
    assert rows["Delete"] == "Del or Backspace"
    assert rows["Generate"] == "Ctrl+Return"
    assert rows["Re-roll Take"] == "R"
    assert all("F14" not in k and ", " not in k for k in rows.values())

    # The keys work: generate from the waveform, step through takes, accept.
    s, doc = window.services.session, window.services.document
    ui.generate_panel.takes_spin.setValue(2)
    s.set_selection([(2 * SR, 4 * SR)])
    window.timeline.plot.setFocus(Qt.FocusReason.MouseFocusReason)
    controller = ui.takes_panel._controller
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        qtbot.keyClick(window.timeline.plot, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: ui.takes_panel.current_take_id() is not None, timeout=WAIT_MS)
    first = ui.takes_panel.current_take_id()
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_BracketRight)
    second = ui.takes_panel.current_take_id()
    assert second not in (None, first)
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_BracketLeft)
    assert ui.takes_panel.current_take_id() == first
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    (region,) = doc.project.regions
    assert region.accepted_take_id == first


def test_end_scrolls_the_view_to_the_cursor(qtbot, window: MainWindow, song_file: Path):
    open_file(qtbot, window, song_file)
    s = window.services.session
    s.set_view(0.0, 2.0)
    assert s.view_range() == (0.0, 2.0)
    window.timeline.plot.setFocus()
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_End)
    assert s.cursor == s.length
    start, end = s.view_range()
    assert start <= s.duration <= end + 1e-6
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_Home)
    assert s.view_range()[0] == 0.0


def test_cancel_and_reroll_keys(qtbot, gen, song_file: Path):
    window, ui, factory = gen
    open_song(qtbot, window, song_file)
    s = window.services.session
    panel, takes = ui.generate_panel, ui.takes_panel
    controller = takes._controller
    engine = panel.engine
    plot = window.timeline.plot
    # Ctrl+. cancels the running generation.
    gate = StepGate(1)
    factory.pipeline.gate = gate
    s.set_selection([(2 * SR, 3 * SR)])
    panel.takes_spin.setValue(1)
    assert panel.generate() is not None
    qtbot.waitUntil(lambda: factory.pipeline.steps_run >= 1, timeout=WAIT_MS)
    plot.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.keyClick(plot, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    gate.open()
    qtbot.waitUntil(lambda: not engine.jobs(), timeout=WAIT_MS)
    assert not window.services.document.project.takes
    # R makes one more take of the chosen one's region.
    factory.pipeline.gate = None
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    qtbot.waitUntil(lambda: takes.current_take_id() is not None, timeout=WAIT_MS)
    plot.setFocus(Qt.FocusReason.MouseFocusReason)
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        qtbot.keyClick(plot, Qt.Key.Key_R)
    assert len(window.services.document.project.takes) == 2
