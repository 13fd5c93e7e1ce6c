"""Take the screenshots in this folder: the real window on a real X server (Xvfb).

    xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/take_screenshot.py

Opens a synthesised song (drums, bass and chords), sets the tempo, marks two regions with
prompts, selects one, moves the playhead, and grabs the window (``editor.png``), then the
same with the spectrogram lane (``editor-spectrogram.png``). Settings, autosaves and recovery
files go to a temporary folder, so nothing of the user's is touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "gui"))  # the synthesised song

from gui_song import write_song  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sa3_studio.app.qt_workarounds import guard_refcounts  # noqa: E402
from sa3_studio.app.services import build_services  # noqa: E402
from sa3_studio.audio.player import ManualBackend  # noqa: E402
from sa3_studio.document.constants import SAMPLE_RATE  # noqa: E402
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice  # noqa: E402
from sa3_studio.ui.main_window import MainWindow  # noqa: E402
from sa3_studio.ui.theme import DARK, apply_theme  # noqa: E402

SR = SAMPLE_RATE


class _NoDialogs(Prompts):
    def error(self, title: str, message: str) -> None:
        print(f"error: {title}: {message}", file=sys.stderr)

    def info(self, title: str, message: str) -> None:
        pass

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        return UnsavedChoice.DISCARD

    def ask_recover(self, names: object) -> int | None:
        return None


def _settle(app: QApplication, ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def _grab(window: MainWindow, path: Path) -> None:
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0) if screen is not None else window.grab()
    if shot.isNull() or shot.width() < window.width():
        shot = window.grab()
    shot.save(str(path))
    print(f"wrote {path} ({shot.width()}x{shot.height()})")


def main() -> int:
    """Build the window, stage a session, and save the screenshots."""
    work = Path(tempfile.mkdtemp(prefix="sa3-shot-"))
    os.environ["SA3_STUDIO_DATA_DIR"] = str(work / "data")
    app = QApplication(sys.argv[:1])
    guard_refcounts()
    app.setApplicationName("SA3 Studio")
    apply_theme(app, DARK)
    song = write_song(work / "Night Drive.wav", bars=32)
    services = build_services(
        settings_store=QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat),
        audio_backend=ManualBackend(),
        recovery_dir=work / "recovery",
    )
    window = MainWindow(services, _NoDialogs(None))  # type: ignore[arg-type]
    from sa3_studio.ui.generate_panel import attach_generation

    def no_engine(path: object, **kwargs: object) -> object:
        raise RuntimeError("the screenshot loads no model")

    attach_generation(window, services, no_engine)
    screen = QGuiApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.geometry())
    window.show()
    _settle(app)

    loop = QEventLoop()
    services.document.project_changed.connect(loop.quit)
    window.open_path(song)
    loop.exec()
    _settle(app)

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
    _settle(app, 800)
    _grab(window, HERE / "editor.png")

    window.actions["view.spectrogram"].setChecked(True)
    _settle(app, 1500)
    _grab(window, HERE / "editor-spectrogram.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
