"""Schedules, length rules and inpainting masks against the official vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from vector_cases import PIPELINE_CASES, load_case

from sa3_studio.engine.lengths import inpaint_mask, plan_lengths, validate_regions
from sa3_studio.engine.schedules import logsnr_schedule
from sa3_studio.errors import GenerationError

CASES = PIPELINE_CASES


def _case(vectors_dir: Path, folder: str, case: str) -> tuple[dict, dict[str, torch.Tensor]]:
    vc = load_case(vectors_dir, folder, case)
    return vc.kwargs, vc.outputs


def _durations(kwargs: dict) -> list[float]:
    d = kwargs["duration"]
    batch = kwargs.get("batch_size", 1)
    return [float(x) for x in d] if isinstance(d, list) else [float(d)] * batch


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_schedule_matches_official(vectors_dir: Path, folder: str, case: str) -> None:
    kwargs, out = _case(vectors_dir, folder, case)
    sigma_max = float(kwargs.get("init_noise_level", 1.0)) if "init_audio" in kwargs else 1.0
    ours = logsnr_schedule(int(kwargs["steps"]), sigma_max)
    ref = out["sampler/sigmas"]
    for row in ref:
        torch.testing.assert_close(ours, row, rtol=0, atol=2e-7)


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_lengths_and_padding_mask_match_official(vectors_dir: Path, folder: str, case: str) -> None:
    kwargs, out = _case(vectors_dir, folder, case)
    cfg = json.loads((vectors_dir / folder / "model_config.json").read_text())
    ae = cfg["model"]["pretransform"]["config"]
    enc = ae["encoder"]["config"]
    durations = _durations(kwargs)
    plan = plan_lengths(
        durations,
        sample_rate=cfg["sample_rate"],
        downsampling=ae["downsampling_ratio"],
        align_latents=enc.get("chunk_size", 32) // enc["strides"][0],
        max_samples=5292032,
    )
    assert plan.audio_samples == int(out["audio_sample_size"])
    assert torch.equal(plan.padding_mask(), out["sampler/padding_mask"])
    expected_len = out["generate_out"].shape[-1]
    if plan.truncate:
        assert plan.output_samples[0] == expected_len
    else:
        assert plan.audio_samples == expected_len


@pytest.mark.parametrize("case", ["inpaint_one", "inpaint_two", "continuation", "t2a"])
def test_inpaint_mask_matches_official(vectors_dir: Path, case: str) -> None:
    kwargs, out = _case(vectors_dir, "pipeline_tiny", case)
    durations = _durations(kwargs)
    plan = plan_lengths(
        durations, sample_rate=256, downsampling=16, align_latents=2, max_samples=5292032
    )
    if "inpaint_audio" not in kwargs:
        assert not out["dit_kwargs/local_add_cond"].any()
        return
    starts = kwargs["inpaint_mask_start_seconds"]
    ends = kwargs["inpaint_mask_end_seconds"]
    starts = starts if isinstance(starts, list) else [starts]
    ends = ends if isinstance(ends, list) else [ends]
    mask = inpaint_mask(plan, list(zip(starts, ends)), durations, sample_rate=256, downsampling=16)
    assert torch.equal(mask, out["dit_kwargs/local_add_cond"][:, :1])


def test_non_monotonic_audio_to_audio_schedule_is_kept() -> None:
    tau = logsnr_schedule(8, 0.9)
    assert tau[0].item() == pytest.approx(0.9)
    assert tau[1].item() > tau[0].item()  # the official quirk: re-noise after the first step
    assert tau[-1].item() == 0.0


def test_duration_beyond_the_model_limit_names_the_limit() -> None:
    with pytest.raises(GenerationError, match=r"120\.0 s"):
        plan_lengths(
            [130.0], sample_rate=44100, downsampling=4096, align_latents=2, max_samples=5292032
        )


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ([(2.0, 1.0)], "must end after it starts"),
        ([(11.0, 12.0)], "after the end of the audio"),
        ([(1.0, 3.0), (2.0, 4.0)], "overlap"),
        ([(-1.0, 1.0)], "must end after it starts"),
    ],
)
def test_bad_regions_are_explained(regions: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(GenerationError, match=message):
        validate_regions(regions, 10.0)


def test_regions_are_sorted() -> None:
    assert validate_regions([(5.0, 6.0), (1.0, 2.0)], 10.0) == ((1.0, 2.0), (5.0, 6.0))


def test_default_shift_is_the_official_logsnr_schedule() -> None:
    from sa3_studio.engine.schedules import build_schedule

    for sigma_max in (1.0, 0.9):
        want = logsnr_schedule(8, sigma_max)
        got = build_schedule(8, sigma_max, lengths=[100, 388])
        assert got.shape == (9,)
        assert torch.equal(got, want)


def test_sampling_shift_options_change_the_schedule() -> None:
    from sa3_studio.engine.config import DistributionShiftOptions
    from sa3_studio.engine.schedules import build_schedule

    default = build_schedule(8, lengths=[388])
    # "full" (the training shift, which the TensorRT port samples with): reference §5.2 values.
    full = build_schedule(8, shift=DistributionShiftOptions(type="full"), lengths=[388])
    want = [1, 0.9219, 0.8349, 0.7375, 0.6277, 0.5029, 0.3598, 0.1941, 0]
    torch.testing.assert_close(full, torch.tensor(want, dtype=torch.float32), atol=1e-4, rtol=0)
    assert not torch.allclose(full, default)
    # "none": the linear grid.
    linear = build_schedule(4, shift=DistributionShiftOptions(type="none"))
    assert torch.equal(linear, torch.linspace(1.0, 0.0, 5))
    # "flux" with a constant alpha: t' = a t / (1 + (a - 1) t).
    flux = build_schedule(
        4, shift=DistributionShiftOptions(type="flux", alpha_min=6.93, alpha_max=6.93)
    )
    u = torch.linspace(1.0, 0.0, 5)
    torch.testing.assert_close(flux, 6.93 * u / (1 + 5.93 * u))
    # "logsnr" with a rate: longer items start at a lower log-SNR, so one table per item.
    per_item = build_schedule(
        8, shift=DistributionShiftOptions(type="logsnr", rate=1.0), lengths=[100, 400]
    )
    assert per_item.shape == (2, 9)
    assert bool((per_item[1, 1:-1] > per_item[0, 1:-1]).all())
    assert per_item[:, 0].tolist() == [1.0, 1.0]
    assert per_item[:, -1].tolist() == [0.0, 0.0]
    # sigma_max is forced first whatever the shift (audio-to-audio).
    assert float(build_schedule(8, 0.7, shift=DistributionShiftOptions(type="full"))[0]) == (
        pytest.approx(0.7)
    )
