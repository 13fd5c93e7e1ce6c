"""Accepting a take over 0 dBTP: limit, gain down or keep, asked or remembered; never silent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gui_helpers import generate_takes
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QToolButton
from test_generate_fakes import (
    SR,
    Env,
    FakeFactory,
    FakePipeline,
    make_env,
    model_info,
    pad_bool_refcounts,
    temp_settings,
)

from sa3_studio.app.settings import AppSettings
from sa3_studio.app.take_level import OVER_PEAK_SETTING, LevelAnswer, OverPeak
from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.document.region_edits import add_region
from sa3_studio.engine.api import GenerationResult
from sa3_studio.ui.over_peak_dialog import OverPeakDialog, install_over_peak

START, END = 4 * SR, 6 * SR
FADE = round(0.025 * SR)


@dataclass
class LoudPipeline(FakePipeline):
    """The fake's sines made 6x louder: 1.8 peak, about +5.1 dBTP."""

    def generate(self, request: Any, **kwargs: Any) -> GenerationResult:
        result = FakePipeline.generate(self, request, **kwargs)
        loud = np.ascontiguousarray(result.audio * np.float32(6.0))
        return GenerationResult(
            audio=loud,
            sample_rate=result.sample_rate,
            seed=result.seed,
            start_frame=result.start_frame,
            timings=result.timings,
            model_id=result.model_id,
            weights_hash=result.weights_hash,
        )


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def env(qtbot) -> Iterator[Env]:
    e = make_env(FakeFactory(pipeline=LoudPipeline()), model=model_info())
    p, region = add_region(e.document.project, "track-1", START, END)
    generate_takes(qtbot, e, p, [region], takes=1)
    yield e
    e.close()


def _mix(env: Env) -> np.ndarray:
    return env.document.project.tracks[0].read(0, env.document.project.frames)


def _accept(env: Env, choice: OverPeak | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Accept the take; (mix before, mix after, the history label)."""
    before = _mix(env)
    (take,) = env.document.project.takes
    assert true_peak_dbtp(take.audio.samples) > 5.0  # the take really is over 0 dBTP
    assert env.controller.accept(take.id, over_peak=choice)
    after = _mix(env)
    # Outside the region every sample is the original's, bit for bit.
    assert np.array_equal(after[:, :START], before[:, :START])
    assert np.array_equal(after[:, END:], before[:, END:])
    label = env.document.undo_text()
    assert env.document.undo()
    assert np.array_equal(_mix(env), before)  # undo restores, in one step
    assert env.document.project.region(env.document.project.regions[0].id).accepted_take_id is None
    return before, after, label


def test_limit_brings_the_spliced_take_to_minus_1_dbtp(qtbot, env):
    _, after, label = _accept(env, OverPeak.LIMIT)
    body = after[:, START + FADE : END - FADE]
    assert -1.3 < true_peak_dbtp(body) <= -0.99
    # The fades blend the song with the limited take (equal power can add a little): no clip.
    assert true_peak_dbtp(after[:, START:END]) < 0.0
    assert label.startswith("Undo Accept take 1 at ")
    assert label.endswith(", limited from +5.1 to -1 dBTP")


def test_gain_brings_the_whole_take_down_to_minus_1_dbtp(qtbot, env):
    (take,) = env.document.project.takes
    _, after, label = _accept(env, OverPeak.GAIN)
    body = after[:, START + FADE : END - FADE]
    assert true_peak_dbtp(body) == pytest.approx(-1.0, abs=0.05)
    # One gain for the whole take: the body is the take scaled.
    own = take.audio.samples[:, FADE:-FADE]
    ratio = body[0, 1000] / own[0, 1000]
    np.testing.assert_allclose(body, own * ratio, atol=1e-6)
    assert ", -6.1 dB to peak at -1 dBTP" in label


def test_keep_splices_the_take_as_it_is_and_says_so(qtbot, env):
    (take,) = env.document.project.takes
    _, after, label = _accept(env, OverPeak.KEEP)
    body = after[:, START + FADE : END - FADE]
    assert np.array_equal(body, take.audio.samples[:, FADE:-FADE])
    assert true_peak_dbtp(body) > 5.0
    assert label.endswith(", kept at +5.1 dBTP")


def test_asks_and_remembers_the_answer_in_the_settings(qtbot, env, tmp_path):
    with temp_settings(tmp_path) as store:
        settings = AppSettings(store)
        install_over_peak(env.controller, None, settings)
        assert env.controller.over_peak is OverPeak.ASK
        asked: list[tuple[int, float]] = []

        def ask(number: int, peak: float) -> LevelAnswer | None:
            asked.append((number, peak))
            return LevelAnswer(OverPeak.GAIN, remember=True)

        env.controller.ask_over_peak = ask
        _, after, label = _accept(env)
        assert len(asked) == 1
        assert asked[0][0] == 1
        assert asked[0][1] == pytest.approx(5.1, abs=0.05)
        assert "-6.1 dB to peak at -1 dBTP" in label
        assert true_peak_dbtp(after[:, START + FADE : END - FADE]) == pytest.approx(-1, abs=0.05)
        assert store.value(OVER_PEAK_SETTING) == "gain"
        # Remembered: no second question; a new controller reads the setting back.
        _accept(env)
        assert len(asked) == 1
        env.controller.over_peak = OverPeak.ASK
        install_over_peak(env.controller, None, settings)
        assert env.controller.over_peak is OverPeak.GAIN


def test_cancelling_the_question_accepts_nothing(qtbot, env):
    env.controller.ask_over_peak = lambda _n, _p: None
    before = _mix(env)
    (take,) = env.document.project.takes
    assert not env.controller.accept(take.id)
    assert np.array_equal(_mix(env), before)
    assert not env.document.history.can_undo


def test_the_dialog_answers_with_the_button_clicked(qtbot, env):
    made: list[OverPeakDialog] = []

    def dialog(number: int, peak: float) -> OverPeakDialog:
        box = OverPeakDialog(number, peak)
        qtbot.addWidget(box)
        box.remember.setChecked(False)
        QTimer.singleShot(0, box.choice_buttons[OverPeak.LIMIT].click)
        made.append(box)
        return box

    install_over_peak(env.controller, None, None, dialog=dialog)
    _, after, label = _accept(env)
    assert len(made) == 1
    text = made[0].findChild(QLabel)
    assert text is not None
    assert "+5.1 dBTP" in text.text()
    assert made[0].answer == LevelAnswer(OverPeak.LIMIT, False)
    assert env.controller.over_peak is OverPeak.ASK  # not remembered
    assert true_peak_dbtp(after[:, START + FADE : END - FADE]) <= -0.99
    assert "limited" in label


def test_the_accept_button_menu_changes_the_remembered_choice(qtbot, env, tmp_path):
    button = QToolButton()
    qtbot.addWidget(button)
    with temp_settings(tmp_path) as store:
        store.setValue(OVER_PEAK_SETTING, "keep")
        install_over_peak(env.controller, None, AppSettings(store), accept_button=button)
        assert env.controller.over_peak is OverPeak.KEEP
        menu = button.menu()
        assert menu is not None
        actions = {a.text(): a for a in menu.actions()}
        menu.aboutToShow.emit()
        assert actions["Over 0 dBTP: keep as is"].isChecked()
        actions["Over 0 dBTP: ask each time"].trigger()
        assert env.controller.over_peak is OverPeak.ASK
        assert store.value(OVER_PEAK_SETTING) == "ask"
        asked: list[int] = []
        env.controller.ask_over_peak = lambda n, _p: asked.append(n) or None
        (take,) = env.document.project.takes
        assert not env.controller.accept(take.id)  # asked again, and cancelled
        assert asked == [1]
