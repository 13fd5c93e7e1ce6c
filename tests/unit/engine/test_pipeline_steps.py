"""The steps of ``Pipeline.generate`` on a tiny real model: the schedule follows the config's
sampling shift, an empty negative prompt is a prompt, and every take's true peak is reported."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sa3_studio.engine.api import GenerationRequest
from sa3_studio.engine.config import DistributionShiftOptions
from sa3_studio.engine.pipeline import Pipeline, load_pipeline, true_peak_dbtp
from sa3_studio.engine.schedules import build_schedule, logsnr_schedule
from sa3_studio.engine.synthetic import make_random_model
from sa3_studio.errors import GenerationError


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Path:
    return make_random_model(
        tmp_path_factory.mktemp("steps") / "tiny44k-base",
        preset="tiny44k",
        seed=21,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
        objective="rectified_flow",
    )


@pytest.fixture(scope="module")
def base_pipe(base_dir: Path) -> Pipeline:
    return load_pipeline(base_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def shifted_pipe(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    folder = tmp_path_factory.mktemp("shifted") / "tiny44k-base"
    shutil.copytree(base_dir, folder)
    config = folder / "model_config.json"
    data = json.loads(config.read_text())
    data["model"]["diffusion"]["sampling_distribution_shift_options"] = {
        "type": "flux",
        "alpha_min": 3.0,
        "alpha_max": 3.0,
    }
    config.write_text(json.dumps(data))
    return load_pipeline(folder, device="cpu", dtype="float32")


def _request(**kwargs: object) -> GenerationRequest:
    base: dict[str, object] = {"prompt": "a", "duration": 2.0, "steps": 3, "seed": 4}
    base.update(kwargs)
    return GenerationRequest(**base)  # type: ignore[arg-type]


def test_the_schedule_honours_sampling_distribution_shift_options(
    base_pipe: Pipeline, shifted_pipe: Pipeline
) -> None:
    job = base_pipe.check_inputs(_request())
    assert torch.equal(base_pipe.schedule(job, 1.0), logsnr_schedule(3))
    shifted = shifted_pipe.schedule(shifted_pipe.check_inputs(_request()), 1.0)
    want = build_schedule(
        3, shift=DistributionShiftOptions(type="flux", alpha_min=3.0, alpha_max=3.0)
    )
    assert torch.equal(shifted, want)
    assert not torch.allclose(shifted, logsnr_schedule(3))
    # Same weights and seed, another schedule: other audio.
    a = base_pipe.generate(_request(sampler="euler")).audio
    b = shifted_pipe.generate(_request(sampler="euler")).audio
    assert float(np.abs(a - b).max()) > 1e-4


def test_an_empty_negative_prompt_is_encoded_like_any_prompt(base_pipe: Pipeline) -> None:
    job = base_pipe.check_inputs(_request(cfg_scale=5.0))
    assert base_pipe.encode_conditioning(job, None).negative_cross is None
    empty = base_pipe.encode_conditioning(job, "")
    assert empty.negative_cross is not None
    assert empty.negative_mask is not None
    # The seconds token is kept, so the context is not the all-zero unconditional one.
    assert float(empty.negative_cross.abs().max()) > 0
    none = base_pipe.generate(_request(cfg_scale=5.0, negative_prompt=None)).audio
    blank = base_pipe.generate(_request(cfg_scale=5.0, negative_prompt="")).audio
    assert float(np.abs(none - blank).max()) > 1e-5
    # Without CFG the negative branch is never used.
    off = base_pipe.generate(_request(cfg_scale=1.0, negative_prompt="")).audio
    np.testing.assert_array_equal(off, base_pipe.generate(_request(cfg_scale=1.0)).audio)


def test_check_inputs_refuses_before_any_work(base_pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match="Unknown sampler 'heun'"):
        base_pipe.check_inputs(_request(sampler="heun"))
    job = base_pipe.check_inputs(_request(init_audio=np.zeros((2, 88200), np.float32)))
    assert job.sigma_max == 1.0
    job = base_pipe.check_inputs(
        _request(init_audio=np.zeros((2, 88200), np.float32), init_noise_level=0.4)
    )
    assert job.sigma_max == pytest.approx(0.4)
    assert job.sampler == "euler"
    assert job.steps == 3


def test_each_take_reports_its_true_peak(base_pipe: Pipeline) -> None:
    result = base_pipe.generate(_request(batch_size=2))
    assert len(result.true_peak_dbtp) == 2
    for take, peak in zip(result.audio, result.true_peak_dbtp):
        sample_peak = 20 * math.log10(float(np.abs(take).max()))
        # The true peak is at least the sample peak (clamped audio: at most 0 dBFS).
        assert peak >= min(sample_peak, 0.0) - 1e-4
    assert result.over_full_scale == tuple(p > 0 for p in result.true_peak_dbtp)


def test_true_peak_of_known_signals() -> None:
    n = np.arange(4096)
    # fs/4 at 45 degrees: every sample is +-0.707 (-3.01 dBFS), the waveform peaks at 1.0.
    quarter = np.sin(np.pi / 2 * n + np.pi / 4)
    # A full-scale 1 kHz sine at 48 kHz: true peak = sample peak = 0 dB.
    tone = np.sin(2 * np.pi * 1000 / 48000 * n + 0.3) * 0.5
    audio = torch.tensor(np.stack([np.stack([quarter, quarter]), np.stack([tone, tone])]))
    quarter_db, tone_db = true_peak_dbtp(audio.to(torch.float32))
    assert abs(float(np.max(np.abs(quarter))) - 0.7071) < 1e-3
    assert quarter_db == pytest.approx(0.0, abs=0.1)
    assert tone_db == pytest.approx(20 * math.log10(0.5), abs=0.05)
    silence = torch.zeros(1, 2, 100)
    assert true_peak_dbtp(silence) == (-200.0,)


def test_no_flash_attn_import_on_cpu(vectors_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole generation with SAME-L's band attention and the DiT on the CPU never imports
    flash-attn (importing a broken build can crash; it is useless off CUDA anyway). The text
    encoder's library only asks whether the package exists, without importing it."""
    import sys

    from sa3_studio.engine import devices

    devices._FLASH.reset()
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    pipe = load_pipeline(vectors_dir / "pipeline_medium_tiny", device="cpu", dtype="float32")
    assert pipe.choice.flash_attn is False
    result = pipe.generate(GenerationRequest(prompt="a", duration=2.0, steps=1, seed=1))
    assert np.isfinite(result.audio).all()
    assert not any(name.split(".")[0] == "flash_attn" for name in sys.modules)
    assert devices._FLASH._looked is False  # the gate never even looked it up
