"""The whole pipeline against the official ``generate`` vectors (every case, CPU float32).

Each case replays the recorded random draws in order, runs in the official CPU attention mode,
and compares the final audio and the recorded intermediates at no more than 10x the case's
float32-vs-float64 figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from vector_cases import PIPELINE_CASES, load_case, parity_tolerance

from sa3_studio.engine.api import GenerationRequest
from sa3_studio.engine.noise import TapeNoise
from sa3_studio.engine.pipeline import Pipeline, load_pipeline

CASES = PIPELINE_CASES

_PIPELINES: dict[str, Pipeline] = {}


def _pipeline(vectors_dir: Path, folder: str) -> Pipeline:
    if folder not in _PIPELINES:
        _PIPELINES[folder] = load_pipeline(
            vectors_dir / folder, device="cpu", dtype="float32", attention="official-cpu"
        )
    return _PIPELINES[folder]


def _as_list(v: Any) -> list[float]:
    return [float(x) for x in v] if isinstance(v, list) else [float(v)]


def _request(kwargs: dict[str, Any], inputs: dict[str, torch.Tensor]) -> GenerationRequest:
    extra: dict[str, Any] = {}
    if "inpaint_audio" in kwargs:
        starts = _as_list(kwargs["inpaint_mask_start_seconds"])
        ends = _as_list(kwargs["inpaint_mask_end_seconds"])
        extra["inpaint_audio"] = inputs["inpaint_audio"].numpy()
        extra["inpaint_regions"] = tuple(zip(starts, ends, strict=True))
    if "init_audio" in kwargs:
        extra["init_audio"] = inputs["init_audio"].numpy()
        extra["init_noise_level"] = float(kwargs["init_noise_level"])
    duration = kwargs["duration"]
    return GenerationRequest(
        prompt=kwargs["prompt"],
        negative_prompt=kwargs.get("negative_prompt"),
        duration=duration,
        steps=int(kwargs["steps"]),
        cfg_scale=float(kwargs.get("cfg_scale", 1.0)),
        apg_scale=float(kwargs.get("apg_scale", 1.0)),
        seed=int(kwargs["seed"]),
        batch_size=int(kwargs.get("batch_size", 1)),
        **extra,
    )


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_generate_matches_official(vectors_dir: Path, folder: str, case: str) -> None:
    vc = load_case(vectors_dir, folder, case)
    meta, inputs, outputs = vc.meta, vc.inputs, vc.outputs
    tape = vc.tape()
    noise = TapeNoise(tape)
    traced: dict[str, torch.Tensor] = {}
    pipe = _pipeline(vectors_dir, folder)
    result = pipe.generate(
        _request(meta["kwargs"], inputs),
        noise=noise,
        trace=lambda name, t: traced.__setitem__(name, t.detach().clone()),
    )
    assert noise.remaining == 0, "every recorded draw must be consumed"
    checks = meta["checks"]
    steps = int(meta["kwargs"]["steps"])
    pairs = {
        "x_init": "sampler/x_init",
        "local_add_cond": "dit_kwargs/local_add_cond",
        **{f"denoised.{i}": f"step.{i}/denoised" for i in range(steps)},
        "latents": "pretransform_decode/in_latents",
        "decoded": "pretransform_decode/out_audio",
    }
    for ours, official in pairs.items():
        tol = parity_tolerance(checks, official)
        torch.testing.assert_close(traced[ours], outputs[official], rtol=0, atol=tol, msg=ours)
    ref = outputs["generate_out"].numpy()
    assert result.audio.shape == ref.shape
    np.testing.assert_allclose(
        result.audio, ref, rtol=0, atol=parity_tolerance(checks, "generate_out")
    )
    assert result.seed == int(meta["kwargs"]["seed"])
