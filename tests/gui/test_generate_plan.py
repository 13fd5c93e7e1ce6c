"""From project, regions and panel settings to passes and requests, and back to takes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_generate_fakes import SR, FakePipeline, pad_bool_refcounts, project, seed_frequency

from sa3_studio.app.generation import (
    PROMPT_PREFIXES,
    GenerateOptions,
    GenerationTask,
    Mode,
    ModelChoice,
    compose_prompt,
    options_from_take,
    plan_generation,
    prepare_extend,
    prepare_new,
    random_seed,
    seam_is_bad,
    seam_score_of,
    strip_prefix,
    takes_from_outcome,
)
from sa3_studio.document.region_edits import add_region, add_take
from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import Cancelled, EditError, GenerationError
from sa3_studio.workflow.request import DECODE_MARGIN_S

MUSIC = PROMPT_PREFIXES["Music"]
MODEL = ModelChoice("small-music", "/m/small-music", SR, 120.0, False)
BASE = ModelChoice("small-music-base", "/m/base", SR, 120.0, True)


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


def with_regions(
    seconds: float, spans: list[tuple[float, float]], prompts: list[str] | None = None
):
    p = project(seconds)
    ids = []
    for i, (a, b) in enumerate(spans):
        prompt = prompts[i] if prompts else ""
        p, rid = add_region(p, "track-1", round(a * SR), round(b * SR), prompt=prompt)
        ids.append(rid)
    return p, ids


def run(plan, p, pipeline=None):
    pipeline = pipeline or FakePipeline()
    steps: list[tuple[int, int]] = []
    out = GenerationTask(plan, p).run(pipeline, lambda d, t: steps.append((d, t)), CancelToken())
    return out, pipeline, steps


# -- prompts -----------------------------------------------------------------------------------


def test_prompt_gets_the_prefix_tempo_and_key():
    assert compose_prompt(MUSIC, "warm pads", tempo_bpm=120, key="A minor") == (
        "TrackType: Music, VocalType: Instrumental, warm pads, 120 BPM, A minor"
    )
    assert compose_prompt("TrackType: SFX, ", "door slam") == "TrackType: SFX, door slam"
    assert compose_prompt("", "  lots   of\nspace ") == "lots of space"
    assert compose_prompt(MUSIC, "") == "TrackType: Music, VocalType: Instrumental,"


def test_a_prefix_the_user_typed_is_not_added_twice():
    typed = "TrackType: Music, VocalType: Instrumental, bass"
    assert compose_prompt(MUSIC, typed) == typed
    assert strip_prefix(typed) == ("Music", "bass")
    assert strip_prefix("just words") == ("None", "just words")


def test_seeds_are_numbers_and_one_per_take():
    options = GenerateOptions(seed=2**31 - 1, takes=3)
    assert options.seeds() == (2**31 - 1, 0, 1)
    seeds = {random_seed() for _ in range(20)}
    assert all(0 <= s < 2**31 for s in seeds)
    assert len(seeds) > 1


# -- planning ----------------------------------------------------------------------------------


def test_regions_that_share_a_prompt_go_in_one_pass():
    p, ids = with_regions(30.0, [(5, 7), (12, 14)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="drums", seed=3, takes=2), MODEL)
    assert len(plan.passes) == 1
    (only,) = plan.passes
    assert set(only.region_ids) == set(ids)
    assert only.prompt == f"{MUSIC}drums"
    assert only.window.start == 0
    assert only.window.end == p.frames
    assert plan.seeds == (3, 4)
    assert plan.label == "Regenerate 2 regions · 2 takes"
    assert plan.cfg_scale is None  # post-trained: no CFG


def test_regions_with_their_own_prompts_get_a_pass_each():
    p, ids = with_regions(30.0, [(5, 7), (12, 14), (20, 22)], ["", "snare roll", ""])
    plan = plan_generation(p, ids, GenerateOptions(prompt="drums"), MODEL)
    prompts = sorted(ps.prompt for ps in plan.passes)
    assert prompts == [f"{MUSIC}drums", f"{MUSIC}snare roll"]
    merged = plan_generation(
        p, ids, GenerateOptions(prompt="drums", use_region_prompts=False), MODEL
    )
    assert len(merged.passes) == 1


def test_a_long_song_sends_a_window_around_the_region():
    p, ids = with_regions(360.0, [(180.0, 184.0)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", context_s=30.0), MODEL)
    (only,) = plan.passes
    w = only.window
    assert w.length <= round(30.0 * SR)
    assert w.start < 180 * SR
    assert w.end > 184 * SR
    assert w.start % 4096 == 0  # latent-aligned
    assert plan.describe()[0].startswith("Window 2:")
    # The model's maximum caps the context: 120 s here even when 380 s is asked for.
    capped = plan_generation(p, ids, GenerateOptions(prompt="x", context_s=380.0), MODEL)
    assert capped.passes[0].window.length <= round(120.0 * SR)


def test_a_region_too_long_for_the_context_is_refused_with_advice():
    p, ids = with_regions(100.0, [(10.0, 40.0)])
    with pytest.raises(GenerationError, match=r"split the region .*, or choose a longer context"):
        plan_generation(p, ids, GenerateOptions(context_s=20.0), MODEL)


def test_bad_settings_and_missing_regions_are_refused():
    p, ids = with_regions(20.0, [(2, 4)])
    with pytest.raises(EditError, match="select a part"):
        plan_generation(p, [], GenerateOptions(), MODEL)
    with pytest.raises(GenerationError, match="takes"):
        plan_generation(p, ids, GenerateOptions(takes=0), MODEL)
    with pytest.raises(GenerationError, match="strength"):
        plan_generation(p, ids, GenerateOptions(mode=Mode.VARY, vary_strength=0.0), MODEL)
    with pytest.raises(EditError, match="not in the project"):
        plan_generation(p, ["region-gone"], GenerateOptions(), MODEL)


def test_cfg_and_negative_prompt_reach_only_base_models():
    p, ids = with_regions(20.0, [(2, 4)])
    options = GenerateOptions(prompt="x", negative_prompt="vocals", cfg_scale=5.0)
    base_plan = plan_generation(p, ids, options, BASE)
    assert base_plan.cfg_scale == 5.0
    _out, pipe, _ = run(base_plan, p)
    assert pipe.requests[0].cfg_scale == 5.0
    assert pipe.requests[0].negative_prompt == "vocals"
    plain_plan = plan_generation(p, ids, options, MODEL)
    assert plain_plan.cfg_scale is None


def test_the_sampler_reaches_base_models_and_their_takes():
    p, ids = with_regions(20.0, [(2, 4)])
    options = GenerateOptions(prompt="x", sampler="dpmpp", takes=1)
    out, pipe, _ = run(plan_generation(p, ids, options, BASE), p)
    assert pipe.requests[0].sampler == "dpmpp"
    (take,) = takes_from_outcome(p, out)
    assert take.settings.sampler == "dpmpp"
    assert options_from_take(take, GenerateOptions()).sampler == "dpmpp"
    # Post-trained models always use ping-pong: the choice is not passed on.
    _out, plain, _ = run(plan_generation(p, ids, options, MODEL), p)
    assert plain.requests[0].sampler is None
    with pytest.raises(GenerationError, match="'heun' is not a sampler"):
        plan_generation(p, ids, GenerateOptions(sampler="heun"), BASE)


# -- running -----------------------------------------------------------------------------------


def test_each_take_is_cut_from_the_window_at_the_regions_place():
    p, ids = with_regions(30.0, [(5.0, 7.0), (12.0, 13.5)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", seed=10, takes=2), MODEL)
    out, pipe, steps = run(plan, p)
    assert len(out.takes) == 4
    assert len(pipe.encoded) == 1  # the window is encoded once for both takes
    assert all(r.source_latents is not None for r in pipe.requests)
    assert [r.seed for r in pipe.requests] == [10, 11]
    assert steps[-1] == (16, 16)  # 8 steps x 2 takes
    for g in out.takes:
        region = p.region(g.region_id)
        assert g.audio.samples.shape == (2, region.length)
        # The fake writes sin(2 pi f t) over the window; the take must start at the region.
        t = (region.start - plan.passes[0].window.start + np.arange(region.length)) / SR
        expected = 0.3 * np.sin(2 * np.pi * seed_frequency(g.seed) * t)
        np.testing.assert_allclose(g.audio.samples[0], expected, atol=1e-4)
        made = g.provenance
        assert g.settings.seed == g.seed
        assert g.settings.steps == 8
        assert made.seam is not None
        assert made.loudness is not None
        assert made.mode == "regenerate"
        assert made.user_prompt == "x"


def test_decoding_only_the_regions_span_is_asked_for():
    p, ids = with_regions(60.0, [(30.0, 32.0)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", takes=1), MODEL)
    _, pipe, _ = run(plan, p)
    start, end = pipe.requests[0].decode_range
    w = plan.passes[0].window
    # The regions plus a margin for the resampler's filter.
    assert start == pytest.approx((30 * SR - w.start) / SR - DECODE_MARGIN_S)
    assert end == pytest.approx((32 * SR - w.start) / SR + DECODE_MARGIN_S)


def test_a_model_at_another_rate_gets_resampled_audio():
    p, ids = with_regions(20.0, [(8.0, 10.0)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", takes=1), MODEL)
    pipe = FakePipeline(sample_rate=256)
    out, _, _ = run(plan, p, pipe)
    shape, duration = pipe.encoded[0]
    assert shape == (2, round(p.frames * 256 / SR))
    assert duration == pytest.approx(p.frames / SR)
    (g,) = out.takes
    assert g.audio.samples.shape == (2, 2 * SR)  # back at the project rate, exact length
    assert g.provenance.model_rate == 256


def test_vary_sends_the_window_as_init_audio_with_the_strength():
    p, ids = with_regions(20.0, [(8.0, 10.0)])
    plan = plan_generation(
        p, ids, GenerateOptions(mode=Mode.VARY, prompt="x", vary_strength=0.4, takes=1), MODEL
    )
    out, pipe, _ = run(plan, p)
    r = pipe.requests[0]
    assert r.init_noise_level == pytest.approx(0.4)
    assert r.init_audio is not None
    assert r.init_audio.shape == (2, p.frames)
    assert r.inpaint_regions  # the song around the region stays the context
    assert out.takes[0].settings.init_noise_level == pytest.approx(0.4)


def test_cancel_between_takes_stops_the_task():
    p, ids = with_regions(20.0, [(8.0, 10.0)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", takes=3), MODEL)
    token = CancelToken()
    pipe = FakePipeline()

    def on_step(done: int, total: int) -> None:
        if done == 8:
            token.cancel()

    with pytest.raises(Cancelled):
        GenerationTask(plan, p).run(pipe, on_step, token)
    assert len(pipe.requests) == 1


def test_takes_are_numbered_per_region_and_keep_their_provenance():
    p, ids = with_regions(30.0, [(5.0, 7.0), (12.0, 14.0)])
    plan = plan_generation(p, ids, GenerateOptions(prompt="x", seed=1, takes=2), MODEL)
    out, _, _ = run(plan, p)
    takes = takes_from_outcome(p, out, now=lambda: 1000.0)
    by_region: dict[str, list[int]] = {}
    for t in takes:
        by_region.setdefault(t.region_id, []).append(t.number)
        assert t.model_name == "small-music"
        assert t.weights_hash == "fake1234"
        assert t.created_at == 1000.0
        assert t.elapsed_s >= 0.0
        p = add_take(p, t)
    assert sorted(by_region.values()) == [[1, 2], [1, 2]]
    again = takes_from_outcome(p, out)
    assert sorted(t.number for t in again if t.region_id == ids[0]) == [3, 4]


def test_seam_flags_read_from_a_take():
    p, ids = with_regions(20.0, [(8.0, 10.0)])
    out, _, _ = run(plan_generation(p, ids, GenerateOptions(prompt="x", takes=1), MODEL), p)
    (take,) = takes_from_outcome(p, out)
    seam = take.provenance.seam
    assert seam is not None
    assert seam_score_of(take) == max(seam.seam_in, seam.seam_out)
    # A pure sine cut into a chord at an arbitrary phase is an audible seam.
    assert seam_is_bad(take) is True


def test_copy_settings_round_trip():
    p, ids = with_regions(20.0, [(8.0, 10.0)])
    options = GenerateOptions(
        prompt="brushed drums", prefix="SFX", seed=77, steps=12, tempo_bpm=96.0, key="D minor"
    )
    out, _, _ = run(plan_generation(p, ids, dataclasses.replace(options, takes=1), MODEL), p)
    (take,) = takes_from_outcome(p, out)
    assert take.prompt == "TrackType: SFX, brushed drums, 96 BPM, D minor"
    back = options_from_take(take, GenerateOptions())
    assert (back.prompt, back.prefix, back.seed, back.steps) == ("brushed drums", "SFX", 77, 12)
    assert (back.tempo_bpm, back.key) == (96.0, "D minor")
    assert back.compose() == take.prompt


# -- making room -------------------------------------------------------------------------------


def test_extend_after_appends_silence_and_a_region_over_it():
    p = project(10.0)
    p2, rid = prepare_extend(p, "track-1", "after", 4.0, "outro")
    region = p2.region(rid)
    assert (region.start, region.end) == (10 * SR, 14 * SR)
    assert p2.frames == 14 * SR
    assert region.prompt == "outro"
    np.testing.assert_array_equal(p2.tracks[0].read(0, 10 * SR), p.tracks[0].read(0, 10 * SR))


def test_extend_before_shifts_the_song_and_keeps_it_intact():
    p = project(10.0)
    p2, rid = prepare_extend(p, "track-1", "before", 2.0)
    region = p2.region(rid)
    assert (region.start, region.end) == (0, 2 * SR)
    np.testing.assert_array_equal(p2.tracks[0].read(2 * SR, 12 * SR), p.tracks[0].read(0, 10 * SR))
    with pytest.raises(EditError, match="more than zero"):
        prepare_extend(p, "track-1", "after", 0.0)


def test_new_audio_on_a_new_track_or_at_the_cursor():
    p = project(10.0)
    p2, rid, text_only = prepare_new(p, "track", 3 * SR, 5.0, "rain")
    region = p2.region(rid)
    assert text_only
    assert len(p2.tracks) == 2
    assert region.track_id == p2.tracks[1].id
    assert (region.start, region.end) == (3 * SR, 8 * SR)
    plan = plan_generation(
        p2, [rid], GenerateOptions(prompt="rain", takes=1), MODEL, text_only=True
    )
    out, pipe, _ = run(plan, p2)
    assert pipe.encoded == []
    assert pipe.requests[0].inpaint_regions == ()
    assert pipe.requests[0].duration == pytest.approx(5.0)
    assert out.takes[0].audio.frames == 5 * SR
    assert out.takes[0].provenance.text_only is True

    p3, rid3, text_only3 = prepare_new(p, "cursor", 4 * SR, 2.0)
    assert not text_only3
    assert p3.frames == 12 * SR
    assert (p3.region(rid3).start, p3.region(rid3).end) == (4 * SR, 6 * SR)
