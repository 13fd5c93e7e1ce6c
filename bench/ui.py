"""Editor window benchmark: open-and-draw time of a long song, redraw time per zoom/scroll step.

Runs the real window under offscreen Qt with a manual sound card. Targets (from the editor's
brief): a 6-minute stereo file opens and draws in under 1 s; a zoom or scroll step redraws in
under 16 ms (median).

    QT_QPA_PLATFORM=offscreen python bench/ui.py [--minutes 6] [--steps 200] [--json out.json]

Figures are printed; with ``--json`` they are also written to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gui"))  # the synthesised song

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from gui_song import RATE, make_song  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sa3_studio.app.qt_workarounds import guard_refcounts  # noqa: E402
from sa3_studio.app.services import build_services  # noqa: E402
from sa3_studio.audio.player import ManualBackend  # noqa: E402
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice  # noqa: E402
from sa3_studio.ui.main_window import MainWindow  # noqa: E402
from sa3_studio.ui.theme import DARK, apply_theme  # noqa: E402


class _Quiet(Prompts):
    def error(self, title: str, message: str) -> None:
        print(f"error: {title}: {message}")

    def info(self, title: str, message: str) -> None:
        pass

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        return UnsavedChoice.DISCARD

    def ask_recover(self, names: object) -> int | None:
        return None


def _write_song(path: Path, minutes: float) -> None:
    """A long song: 16 synthesised bars repeated (decoding cost is what matters here)."""
    bars = make_song(16)
    reps = int(np.ceil(minutes * 60 * RATE / bars.shape[1]))
    audio = np.tile(bars, (1, reps))[:, : int(minutes * 60 * RATE)]
    sf.write(str(path), audio.T, RATE, subtype="PCM_16")


def _stats(ms: list[float]) -> dict[str, float]:
    ms_sorted = sorted(ms)
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": ms_sorted[int(0.95 * (len(ms_sorted) - 1))],
        "max_ms": ms_sorted[-1],
    }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="length of the song")
    parser.add_argument("--steps", type=int, default=200, help="zoom and scroll steps")
    parser.add_argument("--width", type=int, default=1600, help="window width in pixels")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    app = QApplication([])
    guard_refcounts()
    apply_theme(app, DARK)
    work = Path(tempfile.mkdtemp(prefix="sa3-bench-ui-"))
    song = work / "song.wav"
    _write_song(song, args.minutes)
    services = build_services(
        settings_store=QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat),
        audio_backend=ManualBackend(),
        recovery_dir=work / "recovery",
    )
    window = MainWindow(services, _Quiet(None))  # type: ignore[arg-type]
    window.resize(args.width, 900)
    window.show()
    app.processEvents()
    viewport = window.timeline.plot.viewport()

    # Open and draw: from the call to the first complete paint of the waveform.
    loop = QEventLoop()
    services.document.project_changed.connect(loop.quit)
    QTimer.singleShot(60000, loop.quit)
    t0 = time.perf_counter()
    window.open_path(song)
    loop.exec()
    viewport.repaint()
    open_s = time.perf_counter() - t0
    frames = services.document.project.frames

    session = services.session
    zoom_ms: list[float] = []
    scroll_ms: list[float] = []
    session.zoom_fit()
    viewport.repaint()
    factor = 1.25
    for i in range(args.steps):
        # Zoom in towards 1/8 of the song and back out, like a user exploring it.
        f = factor if (i // 20) % 2 == 0 else 1.0 / factor
        t = time.perf_counter()
        session.zoom(f, anchor=session.duration * 0.37)
        viewport.repaint()
        zoom_ms.append((time.perf_counter() - t) * 1000.0)
    session.set_view(0.0, 20.0)
    viewport.repaint()
    for i in range(args.steps):
        t = time.perf_counter()
        session.scroll(0.1 if (i // 50) % 2 == 0 else -0.1)
        viewport.repaint()
        scroll_ms.append((time.perf_counter() - t) * 1000.0)

    figures = {
        "song_minutes": round(frames / RATE / 60.0, 2),
        "window_px": [window.width(), window.height()],
        "timeline_px": int(window.timeline.view_box.width()),
        "open_and_draw_s": round(open_s, 3),
        "zoom_step": {k: round(v, 2) for k, v in _stats(zoom_ms).items()},
        "scroll_step": {k: round(v, 2) for k, v in _stats(scroll_ms).items()},
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }
    print(f"song: {figures['song_minutes']} min stereo at {RATE} Hz; window {args.width} px wide")
    print(f"open and draw: {open_s * 1000:.0f} ms (target < 1000 ms)")
    for name in ("zoom_step", "scroll_step"):
        st = figures[name]
        print(
            f"{name.replace('_', ' ')}: median {st['median_ms']:.2f} ms, p95 {st['p95_ms']:.2f} ms,"
            f" max {st['max_ms']:.2f} ms (target: median < 16 ms)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    window.close()
    window.deleteLater()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
