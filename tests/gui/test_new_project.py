"""New audio generated with no file open makes an untitled project that is shown at once and can
be saved; opening a file then asks before replacing it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import prompts_of
from test_generate_fakes import FakeFactory, catalog, model_info, pad_bool_refcounts

from sa3_studio.app.engine_client import EngineClient
from sa3_studio.app.generation import Mode, ModelChoice
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.ui.dialogs import UnsavedChoice
from sa3_studio.ui.generate_panel import GenerationUi, install_generation_ui
from sa3_studio.ui.main_window import MainWindow

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def gen(qtbot: Any, window: MainWindow) -> Iterator[tuple[MainWindow, GenerationUi]]:
    s = window.services
    engine = EngineClient(FakeFactory(), device="cpu", dtype="float32")
    controller = GenerationController(s.document, s.session, engine, s.transport)
    info = model_info()
    ui = install_generation_ui(window, controller, catalog([info]))
    controller.set_model(ModelChoice.from_info(info), load=False)
    yield window, ui
    engine.shutdown()


def test_new_audio_in_an_empty_editor_is_an_untitled_project(
    qtbot: Any, gen, tmp_path: Path, song_file: Path
) -> None:
    window, ui = gen
    doc, a = window.services.document, window.actions
    assert not doc.has_document
    assert window.stack.currentWidget() is window.welcome
    panel = ui.generate_panel
    panel.set_mode(Mode.NEW)
    panel.new_length.setValue(3.0)
    panel.prompt_edit.setPlainText("soft rain on a tin roof")
    controller = ui.controller or ui.takes_panel._controller
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    # Shown at once, with a track, under the name "Untitled".
    assert doc.has_document
    assert window.stack.currentWidget() is window.timeline
    assert len(doc.project.tracks) >= 1
    (region,) = doc.project.regions
    assert window.services.session.length >= region.end
    assert window.windowTitle().startswith("Untitled")
    # Accepting the take puts the audio in the song.
    takes = ui.takes_panel
    qtbot.waitUntil(lambda: takes.current_take_id() is not None, timeout=WAIT_MS)
    takes.accept()
    assert doc.project.frames >= region.end
    for key in ("file.save", "file.save_as", "file.export", "file.close"):
        assert a[key].isEnabled(), key

    # Opening a file asks first; cancelling keeps the new audio.
    prompts = prompts_of(window)
    prompts.unsaved_answer = UnsavedChoice.CANCEL
    window.open_path(song_file)
    assert prompts.unsaved_asked == ["Untitled"]
    assert doc.has_document
    assert doc.path is None

    # Save asks for a name and writes the project.
    target = tmp_path / "rain.sa3proj"
    prompts.save_answer = target
    files = window.services.files
    done: list[str] = []
    files.saved.connect(lambda *_: done.append("saved"))
    files.failed.connect(lambda *args: done.append(f"failed {args}"))
    a["file.save"].trigger()
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    assert done == ["saved"], (done, prompts.errors)
    assert target.exists(), prompts.errors
    assert not doc.is_dirty


def test_a_pending_extension_is_shown_past_the_end_of_the_song(
    qtbot: Any, gen, song_file: Path
) -> None:
    from gui_helpers import open_file

    window, ui = gen
    open_file(qtbot, window, song_file)
    doc, s = window.services.document, window.services.session
    end = doc.project.frames
    panel = ui.generate_panel
    panel.set_mode(Mode.EXTEND)
    panel.extend_length.setValue(4.0)
    controller = ui.controller or ui.takes_panel._controller
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    (region,) = doc.project.regions
    assert region.end > end  # the extension lies after the song's audio
    # The timeline reaches the end of the extension, and its pending take is drawn there.
    assert s.length >= region.end
    (overlay,) = window.timeline.overlay_item.overlays()
    assert overlay.end > end
    # The view showed the whole song: it still does, extension included.
    assert s.view_range()[1] * 44100 >= region.end - 1
    # Zoomed in on the end, the view follows the song's new end.
    s.set_view(s.duration - 4.0, s.duration)
    with qtbot.waitSignal(controller.takes_added, timeout=WAIT_MS):
        assert panel.generate() is not None
    last = max(r.end for r in doc.project.regions)
    assert s.view_range()[1] * 44100 >= last - 1
    assert s.view_span == pytest.approx(4.0)
