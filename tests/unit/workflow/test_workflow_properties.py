"""Workflow invariants over rates, channel counts, lengths and region sets (hypothesis)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workflow_fakes import FakePipeline

from sa3_studio.errors import GenerationError
from sa3_studio.workflow import Mode, ModelLimits, SampleRange, Settings, plan_extend, plan_regions
from sa3_studio.workflow.plan import context_frames
from sa3_studio.workflow.run import run_plan
from sa3_studio.workflow.splice import check_channels

MODEL_RATE = 44100
MAX_S = 1.0
LIMITS = ModelLimits(MODEL_RATE, round(MAX_S * MODEL_RATE), latent_frames=2048)
RATES = st.sampled_from([8000, 11025, 22050, 44100, 48000, 88200, 96000, 192000])


def _source(channels: int, frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.9, 0.9, (channels, frames)).astype(np.float32)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[int, int, int, list[SampleRange]]:
    rate = draw(RATES)
    channels = draw(st.sampled_from([1, 2, 6]))
    most = LIMITS.frames_at(rate)
    frames = draw(st.integers(min_value=rate // 10, max_value=3 * most))
    count = draw(st.integers(min_value=1, max_value=4))
    cuts = sorted(draw(st.lists(st.integers(0, frames), min_size=2 * count, max_size=2 * count)))
    regions = []
    for i in range(count):
        s, e = cuts[2 * i], cuts[2 * i + 1]
        # Keep regions short enough for a window with context (the plan refuses longer ones).
        e = min(e, s + most // 3)
        if e > s:
            regions.append(SampleRange(s, e))
    if not regions:
        regions = [SampleRange(0, min(frames, 1 + most // 4))]
    return rate, channels, frames, regions


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cases(), seed=st.integers(0, 1000))
def test_regenerate_keeps_length_and_every_sample_outside_the_regions(
    case: tuple[int, int, int, list[SampleRange]], seed: int
) -> None:
    rate, channels, frames, regions = case
    source = _source(channels, frames, seed)
    if channels > 2:
        with pytest.raises(GenerationError, match=r"6 channels.*--channels 2"):
            check_channels(channels)
        source = np.stack([source[0::2].mean(axis=0), source[1::2].mean(axis=0)])
    plan = plan_regions(frames, rate, regions, LIMITS)
    # Every region is in exactly one window, every window within the model's limit.
    ids = [r.id for w in plan.windows for r in w.regions]
    assert sorted(ids) == sorted(f"r{i}" for i in range(1, len(regions) + 1))
    for w in plan.windows:
        assert w.model_frames <= LIMITS.max_frames
        assert w.length <= context_frames(LIMITS, rate)
        assert 0 <= w.start < w.end <= frames
        for r in w.regions:
            assert w.start <= r.start < r.end <= w.end
    pipe = FakePipeline(max_seconds=MAX_S, latent=LIMITS.latent_frames)
    fade = round(0.005 * rate)
    outcome = run_plan(
        pipe, plan, Settings(prompt="x", seed=seed, takes=2), source, crossfade_frames=fade
    )
    for request in pipe.requests:
        assert isinstance(request.duration, float)
        assert int(request.duration * MODEL_RATE) <= LIMITS.max_frames
    assert len(outcome.outputs) == 2
    keep = np.ones(frames, dtype=bool)
    for r in regions:
        keep[r.start : r.end] = False
    for out in outcome.outputs:
        assert out.shape == source.shape
        assert out.dtype == source.dtype
        np.testing.assert_array_equal(out[:, keep], source[:, keep])
        assert np.isfinite(out).all()
    # Inside the regions (past the crossfades) the new audio is there.
    longest = max(regions, key=lambda r: r.length)
    if longest.length > 4 * fade + 8:
        mid = slice(longest.start + 2 * fade, longest.end - 2 * fade)
        assert not np.array_equal(outcome.outputs[0][:, mid], source[:, mid])


@settings(max_examples=25, deadline=None)
@given(
    rate=RATES,
    channels=st.sampled_from([1, 2]),
    seconds=st.floats(0.1, 3.0 * MAX_S),
    added_s=st.floats(0.01, 0.5),
    side=st.sampled_from(["before", "after"]),
)
def test_extend_adds_exactly_and_keeps_the_source(
    rate: int, channels: int, seconds: float, added_s: float, side: str
) -> None:
    frames, added = round(seconds * rate), max(1, round(added_s * rate))
    source = _source(channels, frames, 3)
    plan = plan_extend(frames, rate, side, added, LIMITS)
    assert all(w.model_frames <= LIMITS.max_frames for w in plan.windows)
    outcome = run_plan(
        FakePipeline(max_seconds=MAX_S, latent=LIMITS.latent_frames),
        plan,
        Settings(seed=1),
        source,
        crossfade_frames=round(0.025 * rate),
    )
    (out,) = outcome.outputs
    assert out.shape == (channels, frames + added)
    kept = out[:, added:] if side == "before" else out[:, :frames]
    np.testing.assert_array_equal(kept, source)
    new = out[:, :added] if side == "before" else out[:, frames:]
    assert np.abs(new).max() > 0


def test_bad_regions_get_a_sentence_naming_them() -> None:
    rate = 48000
    with pytest.raises(GenerationError, match=r"Region r1 \(1\.000-1\.000 s\) is empty"):
        plan_regions(10 * rate, rate, [SampleRange(rate, rate)], LIMITS)
    with pytest.raises(GenerationError, match=r"ends after the end of the source \(2\.000 s\)"):
        plan_regions(2 * rate, rate, [SampleRange(rate, 3 * rate)], LIMITS)
    with pytest.raises(GenerationError, match="starts before the source"):
        plan_regions(2 * rate, rate, [SampleRange(-5, 100)], LIMITS)
    with pytest.raises(GenerationError, match=r"r1 .* and r2 .* overlap"):
        plan_regions(2 * rate, rate, [SampleRange(0, 100), SampleRange(50, 150)], LIMITS)
    with pytest.raises(GenerationError, match="adds nothing"):
        plan_extend(rate, rate, "after", 0, LIMITS)
    with pytest.raises(GenerationError, match="nothing to extend"):
        plan_extend(0, rate, "after", rate, LIMITS)
    with pytest.raises(
        GenerationError,
        match=r"Region r1 \(1\.000-2\.000 s\) is 1\.000 s long, but the model sees at most 1",
    ):
        plan_regions(10 * rate, rate, [SampleRange(rate, 2 * rate + 1)], LIMITS)


def test_regions_sharing_a_prompt_go_in_one_pass_and_far_ones_apart() -> None:
    rate = 44100
    near = [SampleRange(rate // 10, rate // 5), SampleRange(rate // 4, rate // 3)]
    plan = plan_regions(3 * rate, rate, near, LIMITS)
    assert len(plan.windows) == 1
    assert len(plan.windows[0].regions) == 2
    far = [SampleRange(rate // 10, rate // 5), SampleRange(2 * rate + rate // 2, 2 * rate + rate)]
    assert len(plan_regions(3 * rate, rate, far, LIMITS).windows) == 2
    own = [SampleRange(rate // 10, rate // 5), SampleRange(rate // 4, rate // 3, prompt="other")]
    assert len(plan_regions(3 * rate, rate, own, LIMITS).windows) == 2


def test_importing_the_workflow_loads_neither_torch_nor_qt() -> None:
    code = (
        "import sys, sa3_studio.workflow, sa3_studio.workflow.loop;"
        "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@settings(max_examples=20, deadline=None)
@given(rate=RATES, channels=st.sampled_from([1, 2]), seconds=st.floats(0.05, 3.0 * MAX_S))
def test_loop_keeps_its_length_and_changes_only_the_join(
    rate: int, channels: int, seconds: float
) -> None:
    from sa3_studio.workflow.loop import plan_loop

    frames = max(8, round(seconds * rate))
    source = _source(channels, frames, 5)
    loop = plan_loop(frames, rate, LIMITS)
    assert all(w.model_frames <= LIMITS.max_frames for w in loop.plan.windows)
    outcome = run_plan(
        FakePipeline(max_seconds=MAX_S, latent=LIMITS.latent_frames),
        loop.plan,
        Settings(seed=2),
        loop.turn(source),
        crossfade_frames=round(0.01 * rate),
    )
    out = loop.unturn(outcome.outputs[0])
    assert out.shape == source.shape
    (h0, h1), (t0, t1) = loop.seam_frames()
    assert h0 == 0
    assert t1 == frames
    keep = np.ones(frames, dtype=bool)
    keep[:h1] = False
    keep[t0:] = False
    np.testing.assert_array_equal(out[:, keep], source[:, keep])
    # The new audio runs across the wrap: the turned output is continuous there.
    turned = outcome.outputs[0]
    seam = loop.seam
    assert not np.array_equal(
        turned[:, seam.start : seam.end], loop.turn(source)[:, seam.start : seam.end]
    )


@settings(max_examples=25, deadline=None)
@given(
    rate=RATES,
    channels=st.sampled_from([1, 2]),
    seconds=st.floats(0.5, 3.0 * MAX_S),
    lo=st.floats(0.0, 1.0),
    hi=st.floats(0.0, 1.0),
    mode=st.sampled_from([Mode.REGENERATE, Mode.VARY]),
)
def test_a_region_longer_than_a_window_is_made_in_parts(
    rate: int, channels: int, seconds: float, lo: float, hi: float, mode: Mode
) -> None:
    frames = round(seconds * rate)
    start, end = sorted((round(lo * frames), round(hi * frames)))
    if end - start < 2:
        end = min(frames, start + 2)
        start = end - 2
    source = _source(channels, frames, 9)
    plan = plan_regions(frames, rate, [SampleRange(start, end)], LIMITS, mode=mode, split_long=True)
    parts = plan.regions
    # The parts tile the region exactly, in order; each window is within the model's limit.
    assert parts[0].start == start
    assert parts[-1].end == end
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    assert all(w.model_frames <= LIMITS.max_frames for w in plan.windows)
    pipe = FakePipeline(max_seconds=MAX_S, latent=LIMITS.latent_frames)
    outcome = run_plan(pipe, plan, Settings(seed=4), source, crossfade_frames=round(0.005 * rate))
    (out,) = outcome.outputs
    assert out.shape == source.shape
    np.testing.assert_array_equal(out[:, :start], source[:, :start])
    np.testing.assert_array_equal(out[:, end:], source[:, end:])
    if rate == MODEL_RATE and channels == 2 and len(plan.windows) > 1:
        # Each window after the first hears the parts made before it, not the source.
        second = plan.windows[1]
        heard = pipe.requests[1].inpaint_audio
        a, b = parts[0].start - second.start, parts[0].end - second.start
        a = max(a, 0)
        np.testing.assert_array_equal(heard[:, a:b], out[:, second.start + a : second.start + b])


def test_parts_are_made_one_take_at_a_time() -> None:
    rate = MODEL_RATE
    plan = plan_regions(3 * rate, rate, [SampleRange(0, 3 * rate)], LIMITS, split_long=True)
    assert plan.in_parts
    with pytest.raises(GenerationError, match="one take at a time; ask for 1 take, not 2"):
        run_plan(FakePipeline(), plan, Settings(takes=2), _source(2, 3 * rate, 1))
