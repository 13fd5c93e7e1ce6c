"""The whole pipeline against the official ``generate`` vectors (every case, CPU float32).

Each case replays the recorded random draws in order, runs in the official CPU attention mode,
and compares the final audio and the recorded intermediates at no more than 10x the case's
float32-vs-float64 figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from vector_cases import PIPELINE_CASES, load_case, parity_tolerance

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


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_generate_matches_official(vectors_dir: Path, folder: str, case: str) -> None:
    vc = load_case(vectors_dir, folder, case)
    meta, outputs = vc.meta, vc.outputs
    tape = vc.tape()
    noise = TapeNoise(tape)
    traced: dict[str, torch.Tensor] = {}
    pipe = _pipeline(vectors_dir, folder)
    result = pipe.generate(
        vc.request(),
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
