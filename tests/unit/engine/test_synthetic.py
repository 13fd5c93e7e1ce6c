"""Synthetic model folders: official layout and sizes, loadable, and they make real audio."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sa3_studio.engine.api import GenerationRequest
from sa3_studio.engine.config import ModelConfig, load_model_config, parse_model_config
from sa3_studio.engine.pipeline import load_pipeline
from sa3_studio.engine.registry import inspect_folder, read_safetensors_header, verify
from sa3_studio.engine.synthetic import (
    TEXT_ENCODER_DIR,
    _state_shapes,
    make_random_model,
    model_config_dict,
)
from sa3_studio.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Path:
    return make_random_model(
        tmp_path_factory.mktemp("tiny44k") / "model",
        preset="tiny44k",
        seed=3,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
    )


def test_tiny_folder_is_a_complete_official_layout(tiny_folder: Path) -> None:
    config = load_model_config(tiny_folder)
    assert isinstance(config, ModelConfig)
    assert config.sample_rate == 44100
    assert config.downsampling_ratio == 4096
    assert config.autoencoder.pretransform.config.patch_size == 256
    assert config.autoencoder.encoder.config.strides == (16,)
    assert config.conditioning.prompt.model_path == TEXT_ENCODER_DIR
    assert config.max_seconds == pytest.approx(120.0, abs=0.1)
    header = read_safetensors_header(tiny_folder / "model.safetensors")
    prefixes = {k.split(".")[0] + "." + k.split(".")[1] + "." for k in header.tensors}
    assert prefixes == {"model.model.", "pretransform.model.", "conditioner.conditioners."}
    assert all(t.dtype == "F32" for t in header.tensors.values())
    assert (tiny_folder / TEXT_ENCODER_DIR / "tokenizer.json").is_file()
    info = inspect_folder(tiny_folder)
    assert info.complete, info.missing
    assert verify(tiny_folder) == ()


def test_tiny_model_generates_two_seconds_of_stereo(tiny_folder: Path) -> None:
    pipe = load_pipeline(tiny_folder, device="cpu", dtype="float32")
    result = pipe.generate(GenerationRequest(prompt="a bright synth", duration=2.0, seed=5))
    assert result.sample_rate == 44100
    assert result.audio.shape == (1, 2, 88200)
    assert result.audio.dtype == np.float32
    assert np.isfinite(result.audio).all()
    rms = float(np.sqrt(np.mean(result.audio**2)))
    assert 1e-3 < rms < 0.5, rms  # audible and not clipped flat
    assert float(np.mean(np.abs(result.audio) >= 1.0)) < 0.01
    assert result.seed == 5


def test_same_seed_writes_the_same_weights(tmp_path: Path, tiny_folder: Path) -> None:
    again = make_random_model(tmp_path / "again", preset="tiny44k", seed=3)
    other = make_random_model(tmp_path / "other", preset="tiny44k", seed=4)
    first = (tiny_folder / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == first
    assert (other / "model.safetensors").read_bytes()[-4096:] != first[-4096:]


@pytest.mark.parametrize(
    ("preset", "dit_keys", "dit_params", "ae_keys", "ae_params"),
    [
        # Reference §1.2 / §2.1 / §3.1: key counts and parameter counts of the real models.
        ("small", 438, 459.1e6, 244, 108.2e6),
        ("medium", 522, 1453.2e6, 472, 852.1e6),
    ],
)
def test_benchmark_presets_have_the_real_sizes(
    preset: str, dit_keys: int, dit_params: float, ae_keys: int, ae_params: float
) -> None:
    config = parse_model_config(model_config_dict(preset))  # type: ignore[arg-type]
    assert isinstance(config, ModelConfig)
    entries = _state_shapes(config)

    def group(prefix: str) -> tuple[int, float]:
        sel = [s for k, s in entries if k.startswith(prefix)]
        return len(sel), float(sum(math.prod(s) for s in sel))

    n, p = group("model.model.")
    assert n == dit_keys
    assert p == pytest.approx(dit_params, rel=1e-3)
    n, p = group("pretransform.model.")
    assert n == ae_keys
    assert p == pytest.approx(ae_params, rel=1e-3)
    assert group("conditioner.conditioners.")[0] == 3
    assert config.family == preset


def test_config_is_json_in_the_official_schema(tiny_folder: Path) -> None:
    data = json.loads((tiny_folder / "model_config.json").read_text())
    assert data["model_type"] == "diffusion_cond_inpaint"
    assert data["model"]["diffusion"]["local_add_cond_ids"] == [
        "inpaint_mask",
        "inpaint_masked_input",
    ]


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Unknown synthetic model preset"):
        model_config_dict("huge")  # type: ignore[arg-type]
