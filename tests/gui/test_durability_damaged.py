"""A damaged autosave never blocks the saved project; damaged and odd files get clear words."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import open_file, prompts_of

from sa3_studio.app.mixdown import render_mix
from sa3_studio.audio import store
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE


def _saved_project_with_autosave(qtbot: Any, win: MainWindow, tmp_path: Path) -> Path:
    """A saved project plus newer autosaved work (new audio) left as a crash would leave it."""
    doc = win.services.document
    target = tmp_path / "song.sa3proj"
    prompts_of(win).save_answer = target
    with qtbot.waitSignal(win.services.files.saved, timeout=20000):
        win.actions["file.save"].trigger()
    with qtbot.waitSignal(win.services.files.autosaved, timeout=10000):
        doc.gain([(SR, 2 * SR)], -6.0)  # new audio, used only by the autosave slot
    return target


def _autosave_only_audio(path: Path) -> list[str]:
    with store.ProjectFile.open(path) as f:
        saved = f.read(store.SAVED)
        newer = f.read(store.AUTOSAVE)
    assert saved is not None
    assert newer is not None
    used = set(saved.history.current_snapshot.audio)
    return [a for s in newer.history.snapshots for a in s.audio if a not in used]


def test_a_damaged_autosave_opens_the_saved_state_and_keeps_the_file_aside(
    qtbot: Any, window: MainWindow, song_file: Path, tmp_path: Path
) -> None:
    open_file(qtbot, window, song_file)
    saved_mix = render_mix(window.services.document.project)
    target = _saved_project_with_autosave(qtbot, window, tmp_path)
    # Leave the project as a crash would (the autosave stays), then damage its new audio.
    window.services.files.close_document(discard_unsaved=False)
    window.services.document.close()
    [damaged_id] = _autosave_only_audio(target)
    con = sqlite3.connect(str(target))
    con.execute(
        "UPDATE audio_chunk SET data = zeroblob(length(data)) WHERE audio_id = ?", (damaged_id,)
    )
    con.commit()
    con.close()

    open_file(qtbot, window, target)
    doc = window.services.document
    assert doc.has_document
    assert doc.path == target
    assert not doc.is_dirty
    assert (render_mix(doc.project) == saved_mix).all()
    title, message = prompts_of(window).infos[-1]
    assert title == "Unsaved changes could not be recovered"
    assert "The last saved version is open" in message
    [aside] = tmp_path.glob("song.damaged-autosave-*.sa3proj")
    assert aside.name in message
    with store.ProjectFile.open(aside) as kept:  # the damaged autosave is kept in the copy
        assert kept.has(store.AUTOSAVE)
    session = window.services.files.session
    assert session is not None
    assert session.recovered() is None  # the damaged work is out of the project itself


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Path) -> MainWindow:
    open_file(qtbot, window, song_file)
    return window


def _pretend_read_only(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    """Tests run as root, who may write anything: make os.access say no for ``paths``; the
    code under test then takes its real read-only path (SQLite's mode=ro)."""
    real = os.access
    denied = {p.resolve() for p in paths}

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(path).resolve() in denied:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_project_opens_read_only_and_offers_save_as(
    qtbot: Any,
    win: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    what: str,
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    target = folder / "song.sa3proj"
    prompts_of(win).save_answer = target
    with qtbot.waitSignal(win.services.files.saved, timeout=20000):
        win.actions["file.save"].trigger()
    saved_mix = render_mix(win.services.document.project)
    win.actions["file.close"].trigger()
    before = target.read_bytes()
    _pretend_read_only(monkeypatch, target if what == "file" else folder)

    open_file(qtbot, win, target)
    doc = win.services.document
    assert doc.has_document
    assert (render_mix(doc.project) == saved_mix).all()
    title, message = prompts_of(win).infos[-1]
    assert title == "Opened read-only"
    assert "Save As" in message
    assert doc.path is None  # Save asks where (Save As)
    with qtbot.waitSignal(win.services.files.autosaved, timeout=10000):
        doc.gain([(0, SR)], -3.0)  # autosaved into the recovery folder, not the project
    copy = tmp_path / "mine.sa3proj"
    prompts_of(win).save_answer = copy
    with qtbot.waitSignal(win.services.files.saved, timeout=20000):
        win.actions["file.save"].trigger()
    assert doc.path == copy
    assert target.read_bytes() == before  # the read-only project was never written
    assert not list(folder.glob("*-wal"))
    assert not list(folder.glob("*.tmp"))
