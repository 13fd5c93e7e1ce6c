"""Opening, saving, reopening, autosave and recovery, export and dragging regions out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from gui_helpers import open_file, prompts_of
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from sa3_studio.app.export_request import ExportRequest, ExportWhat
from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.services import EditorServices
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.dialogs import UnsavedChoice
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Path) -> MainWindow:
    open_file(qtbot, window, song_file)
    return window


def _wait_saved(qtbot: Any, win: MainWindow, action: str) -> None:
    with qtbot.waitSignal(win.services.files.saved, timeout=20000):
        win.actions[action].trigger()


def test_open_shows_the_song_with_its_facts(win: MainWindow, song_file: Path) -> None:
    audio, _rate = sf.read(str(song_file), dtype="float32", always_2d=True)
    project = win.services.document.project
    assert project.frames == audio.shape[0]
    np.testing.assert_allclose(render_mix(project), audio.T, atol=0)
    assert win.stack.currentWidget() is win.timeline
    assert win.windowTitle().startswith("song")
    assert "44.1 kHz" in win.format_label.text()
    assert win.services.settings.recent_files()[0] == str(song_file.resolve())
    assert win.services.session.view_range() == (0.0, pytest.approx(project.duration_s))


def test_a_file_that_is_not_audio_is_an_error_sentence(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("these are not samples\n")
    with qtbot.waitSignal(window.services.files.failed, timeout=10000):
        window.open_path(bad)
    title, message = prompts_of(window).errors[-1]
    assert title == "Could not open the file"
    assert "notes.wav" in message
    assert message.rstrip().endswith(".")
    assert not window.services.document.has_document


def test_save_reopen_keeps_audio_regions_and_undo(
    qtbot: Any, win: MainWindow, tmp_path: Path
) -> None:
    doc, s = win.services.document, win.services.session
    s.set_selection([(SR, 2 * SR)])
    win.actions["edit.silence"].trigger()
    [rid] = doc.add_regions([(3 * SR, 4 * SR)], prompt="a brass stab")
    mix = render_mix(doc.project)
    target = tmp_path / "my song.sa3proj"
    prompts_of(win).save_answer = target
    _wait_saved(qtbot, win, "file.save")  # first save asks where (Save As)
    assert target.is_file()
    assert not doc.is_dirty
    assert doc.path == target
    assert win.windowTitle().startswith("my song")
    # A second edit and a plain save go to the same file without asking.
    prompts_of(win).save_answer = None
    doc.gain([(5 * SR, 6 * SR)], -6.0)
    _wait_saved(qtbot, win, "file.save")
    mix2 = render_mix(doc.project)

    win.actions["file.close"].trigger()
    assert not doc.has_document
    open_file(qtbot, win, target)
    np.testing.assert_array_equal(render_mix(doc.project), mix2)
    assert doc.project.region(rid).prompt == "a brass stab"
    assert not doc.is_dirty
    # The undo history came back with the project.
    assert doc.undo_text().startswith("Undo Gain -6.0 dB")
    doc.undo()
    np.testing.assert_array_equal(render_mix(doc.project), mix)


def test_close_with_unsaved_changes_asks(qtbot: Any, win: MainWindow) -> None:
    doc = win.services.document
    doc.silence([(0, SR)])
    prompts = prompts_of(win)
    prompts.unsaved_answer = UnsavedChoice.CANCEL
    win.close()
    assert prompts.unsaved_asked == ["song"]
    assert win.isVisible()  # cancelled: still open, nothing lost
    assert doc.is_dirty
    prompts.unsaved_answer = UnsavedChoice.DISCARD
    win.close()
    assert not win.isVisible()


def test_opening_another_file_asks_about_unsaved_changes(
    qtbot: Any, win: MainWindow, song_file: Path
) -> None:
    win.services.document.silence([(0, SR)])
    prompts = prompts_of(win)
    prompts.unsaved_answer = UnsavedChoice.CANCEL
    win.open_path(song_file)
    assert prompts.unsaved_asked == ["song"]
    assert win.services.document.is_dirty  # kept
    prompts.unsaved_answer = UnsavedChoice.DISCARD
    open_file(qtbot, win, song_file)
    assert not win.services.document.is_dirty


def test_export_mix_selection_region_and_stems(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    s, doc, files = win.services.session, win.services.document, win.services.files
    [rid] = doc.add_regions([(2 * SR, 3 * SR)])
    s.set_selection([(SR, SR + SR // 2)])
    mix = render_mix(doc.project)
    keys = {f.key for f in files.export_formats()}
    assert {"wav16", "wav24", "flac24"} <= keys

    def run(req: ExportRequest) -> None:
        prompts_of(win).export_answer = req
        with qtbot.waitSignal(files.exported, timeout=20000):
            win.actions["file.export"].trigger()

    run(ExportRequest(ExportWhat.MIX, tmp_path / "mix.wav", "wav24", 48000))
    info = sf.info(str(tmp_path / "mix.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    assert abs(info.frames - round(mix.shape[1] * 48000 / SR)) <= 2

    run(
        ExportRequest(
            ExportWhat.SELECTION, tmp_path / "sel.wav", "wav32f", ranges=tuple(s.selection())
        )
    )
    sel, _ = sf.read(str(tmp_path / "sel.wav"), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(sel.T, mix[:, SR : SR + SR // 2])

    run(
        ExportRequest(
            ExportWhat.REGION, tmp_path / "reg.flac", "flac24", region_id=rid, handles_ms=250
        )
    )
    reg = sf.info(str(tmp_path / "reg.flac"))
    assert reg.frames == SR + 2 * (SR // 4)

    run(ExportRequest(ExportWhat.STEMS, tmp_path / "stems", "wav16"))
    stems = sorted((tmp_path / "stems").iterdir())
    assert [p.suffix for p in stems] == [".wav"]
    assert sf.info(str(stems[0])).frames == mix.shape[1]
    assert "Exported" in win.statusBar().currentMessage()


def test_dragging_a_region_out_writes_a_wav(win: MainWindow) -> None:
    doc = win.services.document
    [rid] = doc.add_regions([(2 * SR, 3 * SR)])
    doc.update_region(rid, name="Fill")
    started: list[Path] = []
    win.start_drag = started.append  # type: ignore[method-assign]
    win.timeline.region_drag_out.emit(rid)
    [path] = started
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == SR
    assert data.shape == (SR, 2)
    np.testing.assert_allclose(data.T, render_mix(doc.project)[:, 2 * SR : 3 * SR], atol=1e-6)
    urls = win.region_mime_data(path).urls()
    assert urls == [QUrl.fromLocalFile(str(path))]


def test_dropping_a_file_opens_it(qtbot: Any, window: MainWindow, song_file: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(song_file))])
    drop = QDropEvent(
        QPointF(100, 100),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.services.document.project_changed, timeout=20000):
        window.dropEvent(drop)
    assert drop.isAccepted()
    assert window.services.document.project.frames > 0


CRASHER = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import QCoreApplication
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.services import build_services
from sa3_studio.audio.player import ManualBackend

song, recovery = sys.argv[1], sys.argv[2]
app = QCoreApplication([])
guard_refcounts()
s = build_services(audio_backend=ManualBackend(), recovery_dir=recovery)
results = []
s.files.opened.connect(results.append)
s.files.open(song)
while not results:
    app.processEvents()
r = results[0]
s.files.adopt(r, discard_previous=False)
s.document.set_history(r.history, r.path)
s.document.silence([(44100, 88200)])
s.document.add_regions([(3 * 44100, 4 * 44100)], prompt="keep me")
s.files.autosave(s.document.history)
s.files.wait_for_writes()
os._exit(3)  # a crash: nothing is closed or saved
"""


def test_work_lost_in_a_crash_is_offered_back(
    qtbot: Any, tmp_path: Path, song_file: Path, services: EditorServices
) -> None:
    recovery = services.files.recovery_dir
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(song_file), str(recovery)],
        cwd=REPO,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    from gui_helpers import ScriptedPrompts

    prompts = ScriptedPrompts()
    prompts.recover_answer = 0
    w = MainWindow(services, prompts)
    try:
        with qtbot.waitSignal(services.document.project_changed, timeout=20000):
            w.offer_recovery()
        assert prompts.recover_asked
        assert "song" in prompts.recover_asked[0][0]
        doc = services.document
        assert doc.is_dirty  # recovered work is not saved yet
        [region] = doc.project.regions
        assert region.prompt == "keep me"
        assert not render_mix(doc.project)[:, SR : 2 * SR].any()
        assert doc.undo_text().startswith("Undo Add Region")
        message = w.statusBar().currentMessage()
        # Named by the project's title, not by a file name (the recovery file's is internal).
        assert message.startswith("Recovered song."), message
        assert "untitled-" not in message
    finally:
        w.close()
        w.deleteLater()


def test_edits_are_autosaved_after_the_delay(qtbot: Any, win: MainWindow) -> None:
    from sa3_studio.app.settings import Preferences
    from sa3_studio.audio import store

    win.services.settings.set_preferences(Preferences(autosave_seconds=1))
    with qtbot.waitSignal(win.services.files.autosaved, timeout=10000):
        win.services.document.silence([(0, SR)])
    session = win.services.files.session
    assert session is not None
    state = session.recovered()
    assert state is not None
    assert state.history.labels()[-1] == "Silence 0:00–0:01"
    assert isinstance(state, store.StoredState)


def _wait_writes(qtbot: Any, win: MainWindow) -> None:
    runner = win.services.store_runner
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=20000)


def test_the_opened_song_is_in_the_recovery_file_before_the_first_edit(
    qtbot: Any, win: MainWindow
) -> None:
    from sa3_studio.audio import store

    _wait_writes(qtbot, win)
    session = win.services.files.session
    assert session is not None
    assert session.untitled
    base = session.file.read(store.BASE)
    assert base is not None
    [cid] = win.services.document.project.audio_buffers()
    assert cid in base.history.current_snapshot.audio
    assert session.recovered() is None  # nothing to recover until something changes


def test_each_edit_is_autosaved_as_it_is_made(qtbot: Any, win: MainWindow) -> None:
    doc = win.services.document
    _wait_writes(qtbot, win)
    session = win.services.files.session
    assert session is not None
    labels = []
    for i in range(3):
        with qtbot.waitSignal(win.services.files.autosaved, timeout=5000):
            doc.gain([(i * SR, (i + 1) * SR)], -3.0)
        state = session.recovered()
        assert state is not None
        labels.append(state.history.labels()[-1])
    assert labels == ["Gain -3.0 dB 0:00–0:01", "Gain -3.0 dB 0:01–0:02", "Gain -3.0 dB 0:02–0:03"]
    # Undo back to the opened state: nothing is left to recover.
    for _ in range(3):
        doc.undo()
    qtbot.waitUntil(lambda: session.recovered() is None, timeout=5000)


def test_edits_made_during_a_save_as_follow_into_the_saved_project(
    qtbot: Any, win: MainWindow, tmp_path: Path
) -> None:
    doc, files = win.services.document, win.services.files
    doc.gain([(0, SR)], -3.0)
    target = tmp_path / "during.sa3proj"
    prompts_of(win).save_answer = target
    with qtbot.waitSignal(files.saved, timeout=20000):
        win.actions["file.save"].trigger()
        doc.gain([(SR, 2 * SR)], -3.0)  # made while the copy is written
    assert doc.is_dirty
    session = files.session
    assert session is not None
    assert session.path == target
    qtbot.waitUntil(lambda: session.recovered() is not None, timeout=10000)
    state = session.recovered()
    assert state is not None
    assert state.history.labels()[-1] == "Gain -3.0 dB 0:01–0:02"


def test_an_accepted_take_is_autosaved_at_once(qtbot: Any, win: MainWindow) -> None:
    from sa3_studio.document.audio_data import AudioData
    from sa3_studio.document.region_edits import new_take

    doc = win.services.document
    [rid] = doc.add_regions([(SR, 2 * SR)], prompt="a fill")
    project = doc.project
    take = new_take(
        project,
        rid,
        AudioData.from_array(np.full((2, SR), 0.25, dtype=np.float32)),
        prompt="a fill",
        seed=7,
        model_name="test",
        weights_hash="0" * 16,
    )
    assert doc.add_take(take)
    with qtbot.waitSignal(win.services.files.autosaved, timeout=5000):
        assert doc.accept_take(rid, take.id)
    session = win.services.files.session
    assert session is not None
    state = session.recovered()
    assert state is not None
    assert state.history.labels()[-1].startswith("Accept")
    assert state.project().takes_for(rid)[0].id == take.id


def test_close_with_save_saves_then_closes(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    win.services.document.silence([(0, SR)])
    prompts = prompts_of(win)
    prompts.unsaved_answer = UnsavedChoice.SAVE
    prompts.save_answer = tmp_path / "kept.sa3proj"
    with qtbot.waitSignal(win.services.files.saved, timeout=20000):
        win.close()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=5000)
    assert (tmp_path / "kept.sa3proj").is_file()


def test_reopening_the_open_project_changes_nothing(
    qtbot: Any, win: MainWindow, tmp_path: Path
) -> None:
    prompts_of(win).save_answer = tmp_path / "p.sa3proj"
    _wait_saved(qtbot, win, "file.save")
    project = win.services.document.project
    win.open_path(tmp_path / "p.sa3proj")
    assert win.services.document.project is project
    assert "already open" in win.statusBar().currentMessage()
    assert prompts_of(win).errors == []
