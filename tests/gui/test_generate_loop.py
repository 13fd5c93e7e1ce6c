"""Make seamless loop: the region is the loop; where its end meets its start is regenerated."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
from test_generate_fakes import (
    SR,
    Env,
    FakePipeline,
    catalog,
    make_env,
    model_info,
    pad_bool_refcounts,
    project,
)

from sa3_studio.app.generation import GenerateOptions, GenerationTask, ModelChoice, plan_generation
from sa3_studio.document.region_edits import add_region
from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import GenerationError
from sa3_studio.ui.actions import build_actions
from sa3_studio.ui.generate_panel import GeneratePanel
from sa3_studio.ui.generation_actions import bind_generation_actions
from sa3_studio.ui.takes_panel import TakesPanel

MUSIC = model_info("small-music", "/m/small-music")
MODEL = ModelChoice("small-music", "/m/small-music", SR, 120.0, False)
WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


def _wraps_smoothly(loop: np.ndarray) -> bool:
    """The jump from the last sample to the first is no bigger than the steps of the new
    audio next to it (the fake model's sine)."""
    wrap = np.abs(loop[:, 0] - loop[:, -1]).max()
    return bool(wrap <= 1.01 * np.abs(np.diff(loop[:, : SR // 4], axis=-1)).max())


def test_a_loop_take_changes_only_the_join_and_wraps_without_a_jump():
    p, rid = add_region(project(20.0), "track-1", 4 * SR, 8 * SR)
    original = p.track("track-1").read(4 * SR, 8 * SR)
    plan = plan_generation(p, [rid], GenerateOptions(prompt="x", takes=2), MODEL, loop=True)
    assert plan.loop
    assert plan.label.startswith("Make seamless loop of 1 region")
    out = GenerationTask(plan, p).run(FakePipeline(), lambda d, t: None, CancelToken())
    assert len(out.takes) == 2
    for g in out.takes:
        take = g.audio.samples
        assert take.shape == original.shape
        assert g.provenance.mode == "loop"
        # The default join is 4 s / 3 around the wrap: the middle is the original, bit for bit.
        keep = slice(SR, 3 * SR)
        np.testing.assert_array_equal(take[:, keep], original[:, keep])
        assert _wraps_smoothly(take)
        assert not np.array_equal(take[:, : SR // 4], original[:, : SR // 4])


def test_a_loop_too_short_for_a_join_is_refused():
    p, rid = add_region(project(20.0), "track-1", 4 * SR, 4 * SR + 5)
    with pytest.raises(GenerationError, match="a loop needs some audio to repeat"):
        plan_generation(p, [rid], GenerateOptions(prompt="x"), MODEL, loop=True)


@pytest.fixture
def env() -> Iterator[Env]:
    e = make_env(model=MUSIC)
    yield e
    e.close()


def test_regions_menu_command_makes_a_loop_that_is_accepted_without_crossfades(qtbot, env):
    panel = GeneratePanel(env.controller, catalog([MUSIC]), rng=random.Random(5))
    takes = TakesPanel(env.controller)
    qtbot.addWidget(panel)
    qtbot.addWidget(takes)
    actions = build_actions(panel)
    assert actions["region.make_loop"].text() == "Make Seamless &Loop"
    bind_generation_actions(actions, panel, takes)
    assert actions["region.make_loop"].isEnabled()
    panel.prompt_edit.setPlainText("drum loop")
    env.session.set_selection([(2 * SR, 6 * SR)])
    before = env.document.project.track("track-1").read(0, 20 * SR)
    with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS) as added:
        actions["region.make_loop"].trigger()
    (take_id,) = added.args[1][:1]
    take = env.document.project.take(take_id)
    assert take.provenance.mode == "loop"
    assert env.controller.accept(take_id)
    after = env.document.project.track("track-1").read(0, 20 * SR)
    # Outside the region nothing changed; inside it is the take exactly (no crossfade).
    np.testing.assert_array_equal(after[:, : 2 * SR], before[:, : 2 * SR])
    np.testing.assert_array_equal(after[:, 6 * SR :], before[:, 6 * SR :])
    np.testing.assert_array_equal(after[:, 2 * SR : 6 * SR], take.audio.samples)
    assert not env.errors


def test_the_window_lists_the_command_under_regions_once_generation_is_installed(qtbot, window):
    from test_generate_fakes import FakeFactory

    from sa3_studio.app.engine_client import EngineClient
    from sa3_studio.app.generation_controller import GenerationController
    from sa3_studio.ui.generate_panel import install_generation_ui

    action = window.actions["region.make_loop"]
    assert action in window.menus["Regions"].actions()
    assert not action.isEnabled()  # no model thread yet
    s = window.services
    engine = EngineClient(FakeFactory(), device="cpu", dtype="float32")
    try:
        controller = GenerationController(s.document, s.session, engine, s.transport)
        install_generation_ui(window, controller, catalog([MUSIC]))
        assert action.isEnabled()
    finally:
        engine.shutdown()
