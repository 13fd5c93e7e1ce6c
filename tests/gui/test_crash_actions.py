"""Failures inside menu actions reach the user as a message; the project stays as it was."""

from __future__ import annotations

from typing import Any

import pytest
from gui_helpers import open_file, prompts_of

from sa3_studio.document import edits
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Any) -> MainWindow:
    open_file(qtbot, window, song_file)
    return window


def _out_of_memory(*_args: object, **_kwargs: object) -> Any:
    raise MemoryError


def test_memory_error_in_a_menu_action_is_a_message(
    win: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = win.services.document
    before = doc.project
    monkeypatch.setattr(edits, "fade_in", _out_of_memory)
    win.services.session.set_selection([(SR, 2 * SR)])
    win.actions["edit.fade_in"].trigger()
    _title, message = prompts_of(win).errors[-1]
    assert "Fade In" in message
    assert "more memory" in message
    assert doc.project is before
    assert not doc.history.can_undo


def test_any_failure_inside_an_edit_is_a_message(win: MainWindow) -> None:
    doc = win.services.document
    before = doc.project

    def broken(_p: Any) -> Any:
        raise ValueError("a broken invariant")

    assert not doc.apply("Gain +1.0 dB 0:00–0:01", broken)
    _title, message = prompts_of(win).errors[-1]
    assert message.startswith("Gain +1.0 dB 0:00–0:01 failed (ValueError: a broken invariant)")
    assert doc.project is before
