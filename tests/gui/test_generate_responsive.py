"""The window stays responsive while the real engine generates with a tiny 44.1 kHz model.

A 5 ms timer on the GUI thread records when it fires. Between two firings it measures the wall
time and the GUI thread's own CPU time (``time.thread_time``): the CPU time is the work the GUI
thread did before returning to the event loop, which must stay under 50 ms from Generate until
the takes are in the document and on screen (the panels are shown, so their updates count too).
The wall gap also counts time the operating system gave the core to someone else, which on a
shared two-core machine can be long whatever the editor does: it is reported, and only bounded
at 2 s, as a hang.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QSplitter
from test_generate_fakes import SR, Env, catalog, make_env, model_info, pad_bool_refcounts

from sa3_studio.app import levels
from sa3_studio.app.generation import GenerateOptions
from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.document.region_edits import add_region
from sa3_studio.engine.pipeline import load_pipeline
from sa3_studio.engine.synthetic import make_random_model
from sa3_studio.ui.generate_panel import GeneratePanel
from sa3_studio.ui.takes_panel import TakesPanel

WAIT_MS = 120_000
STALL_LIMIT_S = 0.050  # the GUI thread's own work between two returns to the event loop
HANG_LIMIT_S = 2.0  # wall time between two timer firings


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture(scope="module")
def tiny44k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("models") / "tiny44k", preset="tiny44k")


class StallMeter:
    """Largest gaps between firings of a fast GUI-thread timer: in wall time, and in the GUI
    thread's own CPU time."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.last_cpu = 0.0
        self.worst = 0.0
        self.worst_cpu = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self.last:
            self.worst = max(self.worst, now - self.last)
            self.worst_cpu = max(self.worst_cpu, cpu - self.last_cpu)
        self.last, self.last_cpu = now, cpu
        self.ticks += 1

    def start(self) -> None:
        self.last = self.last_cpu = 0.0
        self.worst = self.worst_cpu = 0.0
        self.timer.start()

    def stop(self) -> tuple[float, float]:
        """(worst wall gap, worst GUI-thread CPU time in a gap), seconds."""
        self.timer.stop()
        return self.worst, self.worst_cpu


@pytest.fixture
def env(tiny44k: Path) -> Iterator[Env]:
    def factory(path: str, *, device: str, dtype: str) -> object:
        # Leave a core to the GUI thread, as the application does on small machines.
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        return load_pipeline(path, device="cpu", dtype="float32")

    threads = torch.get_num_threads()
    e = make_env(factory, model=model_info("tiny44k", str(tiny44k)))
    yield e
    e.close()
    torch.set_num_threads(threads)


def _not_on_the_gui_thread(audio: object) -> float:
    raise AssertionError("a generated take's true peak was measured in the window")


def test_generation_never_stalls_the_event_loop_for_more_than_50_ms(
    qtbot, env, tiny44k, monkeypatch
):
    # The Takes panel shows each take's true peak; a generated take's is measured on the model
    # thread (it cost the window 40-60 ms for two 2 s takes on a slow CPU when it was not).
    monkeypatch.setattr(levels, "true_peak_dbtp", _not_on_the_gui_thread)
    p, rid = add_region(env.document.project, "track-1", 8 * SR, 10 * SR)
    env.document.set_project(p)
    env.session.set_selected_regions([rid])
    window = QSplitter()
    panel = GeneratePanel(env.controller, catalog([model_info("tiny44k", str(tiny44k))]))
    takes = TakesPanel(env.controller)
    window.addWidget(panel)
    window.addWidget(takes)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(env.engine.model_loaded, timeout=WAIT_MS):
        env.engine.load_model(str(tiny44k), "tiny44k")

    meter = StallMeter()
    meter.start()
    with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS) as added:
        env.controller.generate(GenerateOptions(prompt="pads", seed=3, takes=2, steps=8))
    qtbot.wait(50)  # let the panels and overlays finish their updates, still measured
    worst, worst_cpu = meter.stop()
    assert len(added.args[1]) == 2
    assert len(takes.take_ids()) == 2
    assert meter.ticks > 20  # the meter really ran during the generation
    for take_id in takes.take_ids():
        audio = env.document.project.take(take_id).audio
        assert env.controller.true_peaks(audio) == pytest.approx(true_peak_dbtp(audio.samples))
    figures = f"GUI thread busy {worst_cpu * 1000:.0f} ms, wall gap {worst * 1000:.0f} ms"
    assert worst_cpu < STALL_LIMIT_S, f"the GUI thread worked without a break: {figures}"
    assert worst < HANG_LIMIT_S, f"the event loop hung: {figures}"
