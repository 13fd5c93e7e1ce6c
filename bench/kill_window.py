"""Kill test of the real editor window: how much work survives a SIGKILL at a random instant.

The parent process starts the editor window (offscreen) in a child process, which opens a song
and then edits it at random intervals (0.15-1.5 s apart): gain on a span, a new region, a tempo
change, and a generated take added and accepted (an undoable splice). Each edit is logged with
the time it was made. At a random instant the parent sends SIGKILL, then reads what the next
start would find: the recovery folder's unsaved work, and the saved project where a Save As
happened on the way (half the runs save after the third edit and keep editing).

It reports kills, edits made, edits lost with their age at the kill (the time between the edit
and the kill), and files damaged (a file that does not open or fails SQLite's integrity check).

Usage::

    python bench/kill_window.py --kills 50             # about 5 minutes on 2 cores
    python bench/kill_window.py --kills 5 --seed 3     # a quick look
    python bench/kill_window.py --latency 30           # time 30 autosaves, no kills

Figures go to stdout; this is a benchmark script, not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# Runnable as a script from the repository root without installing the package.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RATE = 48000
SAVE_AFTER = 3


# ------------------------------------------------------------------------------------ child


def _child(song: Path, work: Path, log_path: Path, seed: int, save_as: bool) -> None:
    """Run the window and edit until killed (never returns normally)."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from sa3_studio.app.qt_workarounds import guard_refcounts
    from sa3_studio.app.services import build_services
    from sa3_studio.audio.player import ManualBackend
    from sa3_studio.document.audio_data import AudioData
    from sa3_studio.document.region_edits import new_take
    from sa3_studio.ui.dialogs import Prompts
    from sa3_studio.ui.main_window import MainWindow

    class BenchPrompts(Prompts):
        """No modal dialogs: errors go to the log; Save As answers the bench's path."""

        def error(self, title: str, message: str) -> None:
            _log(f"error {title}: {message}")

        def info(self, title: str, message: str) -> None:
            _log(f"info {title}: {message}")

        def save_path(self, suggested: str) -> Path | None:
            return work / "saved.sa3proj"

    log_file = log_path.open("a", encoding="utf-8")

    def _log(line: str) -> None:
        # A killed process loses nothing already written to the OS: no fsync needed here.
        log_file.write(line + "\n")
        log_file.flush()

    app = QApplication([])
    guard_refcounts()
    store = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    services = build_services(
        settings_store=store,
        audio_backend=ManualBackend(),
        recovery_dir=work / "recovery",
        parent=app,
    )
    window = MainWindow(services, BenchPrompts(None))  # type: ignore[arg-type]
    window.resize(1200, 700)
    window.show()
    rng = random.Random(seed)
    doc = services.document
    count = 0

    def edit() -> None:
        nonlocal count
        project = doc.project
        frames = project.frames
        kind = (count % 4) + 1
        a = rng.randrange(0, frames - RATE)
        changed = False
        if kind == 1:
            changed = doc.gain([(a, a + RATE // 2)], rng.choice((-3.0, -1.5, 2.0)))
        elif kind == 2:
            changed = bool(doc.add_regions([(a, a + RATE)], prompt=f"edit {count + 1}"))
        elif kind == 3:
            changed = doc.set_tempo(60.0 + count + 1)
        else:
            regions = project.regions
            if regions:
                region = regions[-1]
                noise = np.random.default_rng(count).standard_normal((2, region.length))
                take = new_take(
                    project,
                    region.id,
                    AudioData.from_array(0.1 * noise.astype(np.float32)),
                    prompt=region.prompt,
                    seed=count,
                    model_name="bench",
                    weights_hash="0" * 16,
                )
                doc.add_take(take)
                changed = doc.accept_take(region.id, take.id)
        if changed:
            count += 1
            _log(f"edit {count} {time.time():.6f} {kind}")
            if save_as and count == SAVE_AFTER:
                window.save()
                _log(f"save {count} {time.time():.6f}")
        QTimer.singleShot(rng.randint(150, 1500), edit)

    def on_project(*_args: object) -> None:
        if doc.has_document and not started:
            started.append(True)
            _log(f"ready {time.time():.6f}")
            QTimer.singleShot(rng.randint(150, 1500), edit)

    started: list[bool] = []
    doc.project_changed.connect(on_project)
    QTimer.singleShot(0, lambda: window.open_path(song))
    app.exec()


# ------------------------------------------------------------------------------------ parent


@dataclass
class RunResult:
    made: int
    persisted: int
    lost_ages: list[float]
    damaged: list[str]
    killed_after_ready_s: float


def _read_log(path: Path) -> tuple[float | None, list[float], list[str]]:
    ready: float | None = None
    edits: list[float] = []
    errors: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "ready":
            ready = float(parts[1])
        elif parts[0] == "edit" and len(parts) >= 3:
            edits.append(float(parts[2]))
        elif parts[0] == "error":
            errors.append(line)
    return ready, edits, errors


def _states(work: Path) -> tuple[int, list[str]]:
    """Edits the next start would get back, and the files that are damaged."""
    from sa3_studio.audio import store
    from sa3_studio.errors import ProjectFileError

    best = 0
    damaged: list[str] = []
    files = sorted((work / "recovery").glob(f"*{store.PROJECT_SUFFIX}"))
    saved = work / "saved.sa3proj"
    if saved.exists():
        files.append(saved)
    for f in files:
        try:
            with store.ProjectFile.open(f) as opened:
                if opened.integrity_check() != "ok":
                    damaged.append(f"{f.name}: integrity check failed")
                    continue
                for slot in (store.SAVED, store.AUTOSAVE):
                    state = opened.read(slot)
                    if state is not None:
                        best = max(best, len(state.history.snapshots) - 1)
        except ProjectFileError as exc:
            damaged.append(f"{f.name}: {exc}")
    return best, damaged


def _one_run(song: Path, seed: int, max_delay_s: float) -> RunResult:
    rng = random.Random(seed)
    save_as = rng.random() < 0.5
    with tempfile.TemporaryDirectory(prefix="sa3-kill-") as tmp:
        work = Path(tmp)
        log_path = work / "edits.log"
        log_path.touch()
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        args = [sys.executable, __file__, "--child", str(song), str(work), str(seed)]
        if save_as:
            args.append("--save-as")
        proc = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            ready = None
            while ready is None and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"the window exited early (code {proc.returncode})")
                ready, _, _ = _read_log(log_path)
                time.sleep(0.02)
            if ready is None:
                raise RuntimeError("the window did not open the song in 120 s")
            delay = rng.uniform(0.0, max_delay_s)
            time.sleep(max(0.0, ready + delay - time.time()))
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ready, edits, errors = _read_log(log_path)
        for e in errors:
            print(f"  window error: {e}")
        made = [t for t in edits if t <= killed_at]
        persisted, damaged = _states(work)
        lost = [killed_at - t for t in made[persisted:]]
        return RunResult(len(made), persisted, lost, damaged, killed_at - (ready or killed_at))


def _latency(song: Path, edits: int) -> None:
    """Time each edit's autosave in the real services: the part on the GUI thread (taking the
    record) and the time until the autosaved signal says it is on disk."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer

    from sa3_studio.app.qt_workarounds import guard_refcounts
    from sa3_studio.app.services import build_services
    from sa3_studio.audio.player import ManualBackend

    app = QCoreApplication([])
    guard_refcounts()
    with tempfile.TemporaryDirectory(prefix="sa3-latency-") as tmp:
        store = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        s = build_services(
            settings_store=store, audio_backend=ManualBackend(), recovery_dir=Path(tmp) / "rec"
        )
        opened: list[object] = []
        s.files.opened.connect(opened.append)
        t0 = time.perf_counter()
        s.files.open(song)
        while not opened:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        result = opened[0]
        s.files.adopt(result, discard_previous=False)  # type: ignore[arg-type]
        s.document.set_history(result.history, None)  # type: ignore[attr-defined]
        s.store_runner.wait()
        prime = time.perf_counter() - t0
        gui: list[float] = []
        disk: list[float] = []
        rng = random.Random(0)
        done: list[float] = []
        s.files.autosaved.connect(lambda: done.append(time.perf_counter()))
        for _ in range(edits):
            a = rng.randrange(0, s.document.project.frames - RATE)
            s.document.gain([(a, a + RATE // 2)], -1.0)
            done.clear()
            start = time.perf_counter()
            s.files.autosave(s.document.history)
            gui.append(time.perf_counter() - start)
            while not done:
                app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
            disk.append(done[0] - start)
        QTimer.singleShot(0, app.quit)
        s.shutdown(discard_unsaved=True)
    print(f"open and base write of the song: {prime * 1000:.0f} ms")
    print(
        f"autosave of one edit: on the GUI thread median {statistics.median(gui) * 1000:.1f} ms "
        f"(max {max(gui) * 1000:.1f}); on disk after median "
        f"{statistics.median(disk) * 1000:.1f} ms (max {max(disk) * 1000:.1f})"
    )


def _write_song(path: Path, seconds: float) -> None:
    t = np.arange(round(seconds * RATE)) / RATE
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(str(path), np.stack([left, right], axis=1).astype(np.float32), RATE, "PCM_24")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--song-seconds", type=float, default=180.0)
    parser.add_argument("--max-delay", type=float, default=6.0, help="longest run before a kill")
    parser.add_argument("--child", nargs=3, metavar=("SONG", "WORK", "SEED"))
    parser.add_argument("--save-as", action="store_true")
    parser.add_argument(
        "--latency", type=int, metavar="EDITS", help="time EDITS autosaves instead of killing"
    )
    args = parser.parse_args()
    if args.child:
        song, work, seed = args.child
        _child(Path(song), Path(work), Path(work) / "edits.log", int(seed), args.save_as)
        return 0
    if args.latency:
        with tempfile.TemporaryDirectory(prefix="sa3-kill-song-") as tmp:
            song = Path(tmp) / "song.wav"
            _write_song(song, args.song_seconds)
            _latency(song, args.latency)
        return 0
    with tempfile.TemporaryDirectory(prefix="sa3-kill-song-") as tmp:
        song = Path(tmp) / "song.wav"
        _write_song(song, args.song_seconds)
        results: list[RunResult] = []
        started = time.monotonic()
        for i in range(args.kills):
            r = _one_run(song, args.seed * 100003 + i, args.max_delay)
            results.append(r)
            oldest = max(r.lost_ages, default=0.0)
            print(
                f"kill {i + 1:3d}: {r.killed_after_ready_s:4.1f} s after open, "
                f"{r.made:2d} edits made, {r.persisted:2d} recovered, "
                f"{len(r.lost_ages)} lost (oldest {oldest * 1000:.0f} ms)"
                + (f", DAMAGED {r.damaged}" if r.damaged else ""),
                flush=True,
            )
    ages = [a for r in results for a in r.lost_ages]
    made = sum(r.made for r in results)
    print()
    print(f"kills: {len(results)} in {time.monotonic() - started:.0f} s")
    print(f"edits made before the kills: {made}")
    print(f"edits lost: {len(ages)} in {sum(1 for r in results if r.lost_ages)} kills")
    if ages:
        print(
            f"age of lost edits at the kill: max {max(ages) * 1000:.0f} ms, "
            f"median {statistics.median(ages) * 1000:.0f} ms"
        )
        print(f"lost edits older than 0.5 s: {sum(1 for a in ages if a > 0.5)}")
    print(f"files damaged: {sum(len(r.damaged) for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
