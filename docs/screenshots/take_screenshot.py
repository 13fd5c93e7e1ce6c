"""Take the screenshots in this folder: the real window on a real X server (Xvfb).

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/take_screenshot.py

Opens a synthesised song (drums, bass and chords), sets the tempo, marks two regions with
prompts, selects one, moves the playhead, and grabs the window (``editor.png``), then the
same with the spectrogram lane (``editor-spectrogram.png``). Settings, autosaves and recovery
files go to a temporary folder, so nothing of the user's is touched.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# shot_common first: it puts tests/gui (gui_song) on the path.
from shot_common import (
    HERE,
    NoDialogs,
    editor_services,
    grab,
    settle,
    show_and_open,
    start_app,
)

# isort: split

from gui_song import write_song
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

SR = SAMPLE_RATE


def main() -> int:
    """Build the window, stage a session, and save the screenshots."""
    work = Path(tempfile.mkdtemp(prefix="sa3-shot-"))
    app = start_app(work)
    song = write_song(work / "Night Drive.wav", bars=32)
    services = editor_services(work)
    window = MainWindow(services, NoDialogs(None))  # type: ignore[arg-type]
    from sa3_studio.main import attach_generation

    def no_engine(path: object, **kwargs: object) -> object:
        raise RuntimeError("the screenshot loads no model")

    attach_generation(window, services, no_engine)
    screen = QGuiApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.geometry())
    show_and_open(app, window, song)

    doc, s = services.document, services.session
    doc.set_tempo(120.0)
    window.actions["view.snap_beats"].setChecked(True)
    window.actions["view.follow"].setChecked(True)
    bar = 2 * SR
    [fill, lift] = doc.add_regions([(15 * bar, 16 * bar), (19 * bar, 21 * bar)])
    doc.update_region(fill, name="Drum fill")
    doc.update_region(fill, prompt="tight funk drum fill, crisp snare rolls, 120 BPM")
    doc.update_region(lift, name="Lift")
    doc.update_region(lift, prompt="airy synth swell rising into the chorus")
    s.set_view(11.5 * bar / SR, 25 * bar / SR)
    s.set_selected_regions([lift])
    s.set_selection([(19 * bar, 21 * bar)])
    s.set_cursor(19 * bar)
    s.set_playhead(int(13.6 * bar))
    window.timeline.set_playhead_visible(True)
    window.resizeDocks([window.panels["regions"]], [470], Qt.Orientation.Horizontal)
    settle(app, 800)
    grab(window, HERE / "editor.png")

    window.actions["view.spectrogram"].setChecked(True)
    settle(app, 1500)
    grab(window, HERE / "editor-spectrogram.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
