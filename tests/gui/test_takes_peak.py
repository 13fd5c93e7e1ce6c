"""The Takes panel shows each take's true peak and flags takes that go over 0 dBTP."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from gui_helpers import generate_takes
from test_generate_fakes import SR, Env, make_env, model_info, pad_bool_refcounts

from sa3_studio.app import levels
from sa3_studio.app.levels import TruePeakMemo
from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.region_edits import add_region, add_take
from sa3_studio.ui.takes_panel import COLUMNS, TakesPanel

PEAK = COLUMNS.index("Peak")


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def env(qtbot) -> Iterator[Env]:
    e = make_env(model=model_info())
    p, region = add_region(e.document.project, "track-1", 4 * SR, 6 * SR)
    generate_takes(qtbot, e, p, [region], takes=1)
    yield e
    e.close()


def test_true_peak_column_and_the_flag_over_0_dbtp(qtbot, env):
    panel = TakesPanel(env.controller)
    qtbot.addWidget(panel)
    (take,) = env.document.project.takes
    item = panel.tree.topLevelItem(0).child(0)
    want = true_peak_dbtp(take.audio.samples)
    assert item.text(PEAK) == f"{want:+.1f} dBTP"
    assert not item.text(PEAK).startswith("⚠")
    assert "No clipping" in item.toolTip(PEAK)
    # A take whose samples stay at 0.99 but whose waveform peaks between them at +2.9 dBTP
    # (an fs/4 tone at 45 degrees): sample peaks would call it safe.
    n = np.arange(take.frames)
    loud = 0.99 * np.sqrt(2) * np.sin(np.pi / 2 * n + np.pi / 4)
    assert np.abs(loud).max() < 1.0
    audio = AudioData.from_array(np.stack([loud, loud]).astype(np.float32))
    louder = dataclasses.replace(take, id=take.id + "-loud", number=2, audio=audio)
    env.document.set_project(add_take(env.document.project, louder))
    panel.refresh()
    # A take the window has not seen made is measured on a background thread: "…" until then.
    first = panel.tree.topLevelItem(0).child(1)
    assert first.text(PEAK) == "…"
    assert first.toolTip(PEAK) == "Measuring the true peak…"
    qtbot.waitUntil(lambda: panel.tree.topLevelItem(0).child(1).text(PEAK) != "…", timeout=10_000)
    flagged = panel.tree.topLevelItem(0).child(1)
    assert flagged.text(PEAK) == "⚠ +2.9 dBTP"
    assert "clips" in flagged.toolTip(PEAK)
    assert flagged.foreground(PEAK).color().name() == "#f0736a"


def test_true_peak_memo_measures_in_the_background_once(qtbot, monkeypatch):
    memo = TruePeakMemo()
    rng = np.random.default_rng(5)
    audio = AudioData.from_array((0.5 * rng.standard_normal((2, 4 * SR))).astype(np.float32))
    go, calls = threading.Event(), []

    def measure(samples: np.ndarray) -> float:
        calls.append(threading.current_thread().name)
        assert go.wait(10)
        return true_peak_dbtp(samples)

    monkeypatch.setattr(levels, "true_peak_dbtp", measure)
    with qtbot.waitSignal(memo.measured, timeout=10_000):
        assert memo.soon(audio) is None
        assert memo.soon(audio) is None  # asked again while measuring: still one measurement
        go.set()
    assert calls == ["true-peak"]  # once, on the background thread
    assert memo.soon(audio) == memo.known(audio) == true_peak_dbtp(audio.samples)
    handed = AudioData.from_array(np.zeros((2, SR), dtype=np.float32))
    memo.remember(handed, -3.0)  # a peak measured where the take was made is taken as it is
    assert memo.soon(handed) == memo(handed) == -3.0
