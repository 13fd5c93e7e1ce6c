"""Editing through the window's commands: each edit is one undo step named after it; the
selection and the zoom are never undo steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gui_helpers import open_file, prompts_of
from PySide6.QtCore import Qt

from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.regions_model import NAME, PROMPT, START
from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Path) -> MainWindow:
    open_file(qtbot, window, song_file)
    return window


def _mix(win: MainWindow) -> np.ndarray:
    return render_mix(win.services.document.project)


def _undo_text(win: MainWindow) -> str:
    return win.actions["edit.undo"].text()


def test_cut_then_paste_restores_the_song(win: MainWindow) -> None:
    s, doc = win.services.session, win.services.document
    before = _mix(win)
    s.set_selection([(SR, 2 * SR)])
    win.actions["edit.cut"].trigger()
    assert doc.project.frames == before.shape[1] - SR
    assert _undo_text(win) == "Undo Cut 0:01–0:02"
    assert s.selection() == []
    assert s.cursor == SR
    assert win.actions["edit.paste"].isEnabled()
    win.actions["edit.paste"].trigger()
    assert _undo_text(win) == "Undo Paste 0:01–0:02"
    np.testing.assert_array_equal(_mix(win), before)
    assert s.selection() == [(SR, 2 * SR)]


def test_copy_is_not_an_undo_step(win: MainWindow) -> None:
    doc = win.services.document
    win.services.session.set_selection([(SR, 2 * SR)])
    steps = doc.history.undo_steps
    win.actions["edit.copy"].trigger()
    assert doc.history.undo_steps == steps
    assert doc.clipboard is not None
    assert doc.clipboard.length == SR


def test_delete_two_spans_is_one_step(win: MainWindow) -> None:
    s = win.services.session
    before = _mix(win)
    s.set_selection([(SR, 2 * SR), (4 * SR, 5 * SR)])
    win.actions["edit.delete"].trigger()
    expected = np.concatenate([before[:, :SR], before[:, 2 * SR : 4 * SR], before[:, 5 * SR :]], 1)
    np.testing.assert_array_equal(_mix(win), expected)
    assert _undo_text(win) == "Undo Delete 2 spans"
    win.actions["edit.undo"].trigger()
    np.testing.assert_array_equal(_mix(win), before)
    assert win.actions["edit.redo"].text() == "Redo Delete 2 spans"


def test_silence_keeps_the_length(win: MainWindow) -> None:
    win.services.session.set_selection([(SR, 2 * SR)])
    before = _mix(win)
    win.actions["edit.silence"].trigger()
    after = _mix(win)
    assert after.shape == before.shape
    assert not after[:, SR : 2 * SR].any()
    np.testing.assert_array_equal(after[:, :SR], before[:, :SR])
    np.testing.assert_array_equal(after[:, 2 * SR :], before[:, 2 * SR :])
    assert _undo_text(win) == "Undo Silence 0:01–0:02"


def test_fades(win: MainWindow) -> None:
    win.services.session.set_selection([(0, SR)])
    before = _mix(win)
    win.actions["edit.fade_in"].trigger()
    after = _mix(win)
    assert _undo_text(win) == "Undo Fade In 0:00–0:01"
    assert after[0, 0] == 0.0
    gain = np.abs(after[0, 1:SR]) / np.maximum(np.abs(before[0, 1:SR]), 1e-9)
    assert np.all(gain <= 1.0 + 1e-5)
    np.testing.assert_array_equal(after[:, SR:], before[:, SR:])
    win.services.session.set_selection([(3 * SR, 4 * SR)])
    win.actions["edit.fade_out"].trigger()
    assert _undo_text(win) == "Undo Fade Out 0:03–0:04"
    assert np.abs(_mix(win)[:, 4 * SR - 1]).max() == pytest.approx(0.0, abs=1e-6)


def test_gain_and_normalise_use_the_dialog_values(win: MainWindow) -> None:
    s = win.services.session
    s.set_selection([(SR, 2 * SR)])
    before = _mix(win)
    prompts_of(win).gain_answer = 6.0
    win.actions["edit.gain"].trigger()
    assert _undo_text(win) == "Undo Gain +6.0 dB 0:01–0:02"
    np.testing.assert_allclose(
        _mix(win)[:, SR : 2 * SR], before[:, SR : 2 * SR] * 10 ** (6 / 20), rtol=1e-5, atol=1e-7
    )
    prompts_of(win).normalize_answer = -3.0
    win.actions["edit.normalize"].trigger()
    assert _undo_text(win) == "Undo Normalise 0:01–0:02"
    peak = np.abs(_mix(win)[:, SR : 2 * SR]).max()
    assert peak == pytest.approx(10 ** (-3 / 20), rel=1e-5)
    # Cancelling the dialog changes nothing.
    steps = win.services.document.history.undo_steps
    prompts_of(win).gain_answer = None
    win.actions["edit.gain"].trigger()
    assert win.services.document.history.undo_steps == steps


def test_selection_and_zoom_are_not_undo_steps(win: MainWindow) -> None:
    doc, s = win.services.document, win.services.session
    steps = doc.history.undo_steps
    s.set_selection([(SR, 2 * SR)])
    win.actions["view.zoom_selection"].trigger()
    win.actions["view.zoom_in"].trigger()
    win.actions["edit.select_all"].trigger()
    win.actions["edit.nudge_right"].trigger()
    s.set_cursor(5 * SR)
    assert doc.history.undo_steps == steps
    assert not doc.is_dirty


def test_nudge_moves_the_selection_by_the_grid(win: MainWindow) -> None:
    s = win.services.session
    s.set_selection([(SR, 2 * SR)])
    win.actions["edit.nudge_right"].trigger()
    assert s.selection() == [(SR + 441, 2 * SR + 441)]
    win.actions["view.snap_latent"].setChecked(True)
    win.actions["edit.nudge_left"].trigger()
    assert s.selection() == [(SR + 441 - LATENT_FRAMES, 2 * SR + 441 - LATENT_FRAMES)]
    s.clear_selection()
    s.set_cursor(SR)
    win.actions["edit.nudge_right_big"].trigger()
    assert s.cursor == SR + 8 * LATENT_FRAMES


def test_edit_commands_need_a_selection(win: MainWindow) -> None:
    s = win.services.session
    s.clear_selection()
    for key in ("edit.cut", "edit.delete", "edit.silence", "edit.gain", "region.add"):
        assert not win.actions[key].isEnabled(), key
    s.set_selection([(SR, 2 * SR)])
    for key in ("edit.cut", "edit.delete", "edit.silence", "edit.gain", "region.add"):
        assert win.actions[key].isEnabled(), key


def test_refused_edit_shows_a_sentence_and_changes_nothing(win: MainWindow) -> None:
    doc = win.services.document
    before = doc.project
    # Silence past the end of the song cannot be made.
    doc.silence([(doc.project.frames + 10, doc.project.frames + 20)])
    assert doc.project is before
    _title, message = prompts_of(win).errors[-1]
    assert message.endswith(".")
    assert "end of the song" in message


def test_regions_add_rename_prompt_and_delete(win: MainWindow) -> None:
    s, doc = win.services.session, win.services.document
    s.set_selection([(SR, 2 * SR), (4 * SR, 5 * SR)])
    win.actions["region.add"].trigger()
    assert len(doc.project.regions) == 2
    assert _undo_text(win) == "Undo Add 2 Regions"
    assert len(s.selected_region_ids()) == 2
    model = win.regions_model
    assert model.rowCount() == 2
    assert model.setData(model.index(0, NAME), "Verse")
    assert model.setData(model.index(0, PROMPT), "funky drum fill")
    assert _undo_text(win) == "Undo Edit Prompt"
    first = min(doc.project.regions, key=lambda r: r.start)
    assert (first.name, first.prompt) == ("Verse", "funky drum fill")
    assert model.setData(model.index(0, START), "0:00.500")
    assert doc.project.region(first.id).start == SR // 2
    # Typing nonsense in a time column explains itself.
    assert not model.setData(model.index(0, START), "soon")
    assert "is not a time" in prompts_of(win).errors[-1][1]
    s.set_selected_regions([first.id])
    win.actions["region.delete"].trigger()
    assert [r.id for r in doc.project.regions] != []
    assert first.id not in {r.id for r in doc.project.regions}
    win.actions["edit.undo"].trigger()
    assert doc.project.region(first.id).prompt == "funky drum fill"


def test_keyboard_shortcuts_reach_the_commands(qtbot: Any, win: MainWindow) -> None:
    s, doc = win.services.session, win.services.document
    win.timeline.plot.setFocus()
    s.set_selection([(SR, 2 * SR)])
    qtbot.keyClick(win.timeline.plot, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert _undo_text(win) == "Undo Silence 0:01–0:02"
    qtbot.keyClick(win.timeline.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not doc.history.can_undo
    span = s.view_span
    qtbot.keyClick(win.timeline.plot, Qt.Key.Key_Plus)
    assert s.view_span == pytest.approx(span / 2)


def test_help_lists_every_shortcut(win: MainWindow) -> None:
    win.actions["help.shortcuts"].trigger()
    rows = prompts_of(win).shortcut_rows
    commands = {c for _, c, _ in rows}
    assert {"Play / Pause", "Undo", "Zoom In", "Snap to Latent Frames"} <= commands
    keys = {c: k for _, c, k in rows}
    assert keys["Play / Pause"] == "Space"
