"""Complete model folders with random weights, in the official layout (tests and benchmarks).

:func:`make_random_model` writes what a Stable Audio 3 repository on the Hugging Face hub holds:
``model_config.json`` in the official schema, ``model.safetensors`` with float32 tensors under
the official prefixes (``model.model.``, ``pretransform.model.``,
``conditioner.conditioners.``) and a T5Gemma text-encoder folder that the config's
``model_path`` points at. The folder loads with
:func:`sa3_studio.engine.pipeline.load_pipeline` like a downloaded model.

Presets:

* ``"tiny44k"``: 44.1 kHz stereo with the real 4096x downsampling (patch 256, stride 16) and
  tiny widths, so the application's real sample-rate paths run in well under a second per
  generation. Used by the engine, CLI and editor end-to-end tests.
* ``"small"``: the sizes of small-music (SAME-S and the 459 M DiT), for benchmarks.
* ``"medium"``: the sizes of medium (SAME-L and the 1.45 B differential DiT), for benchmarks.

Weights are seeded random normals scaled like a trained network's (about ``1/sqrt(fan_in)``
for matrices, norm gains near 1), so audio is finite and not silent. Rotary ``inv_freq``
buffers keep their constructor values, as in real checkpoints. The weights file is written
tensor by tensor, so even the 9 GB medium preset needs little memory.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from sa3_studio.engine.config import ModelConfig, parse_model_config
from sa3_studio.engine.models.rope import rope_inv_freq
from sa3_studio.errors import ConfigError

__all__ = [
    "PRESETS",
    "TEXT_ENCODER_DIR",
    "Preset",
    "default_text_encoder_src",
    "make_random_model",
    "model_config_dict",
    "write_random_text_encoder",
]

Preset = Literal["tiny44k", "small", "medium"]
PRESETS: tuple[Preset, ...] = ("tiny44k", "small", "medium")


def default_text_encoder_src() -> Path:
    """The tiny T5Gemma folder of the shared test vectors.

    ``$SA3_SHARED_DIR/vectors/t5gemma_tiny`` when that variable is set, else
    ``../shared/vectors/t5gemma_tiny`` next to the source checkout.
    """
    shared = os.environ.get("SA3_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared"
    return root / "vectors" / "t5gemma_tiny"


TEXT_ENCODER_DIR = "t5gemma-b-b-ul2"
"""Name of the text-encoder folder inside a written model (as in the released repos)."""

_SAMPLE_RATE = 44100
_SMALL_SAMPLE_SIZE = 5292032  # about 120 s (reference §1.4)
_MEDIUM_SAMPLE_SIZE = 16777216  # about 380 s

# (DiT sizes, SAME sizes, prompt max_length, sample_size) per preset. SAME sizes follow
# reference §2.1; DiT sizes §3.1.
_PRESET_SIZES: Mapping[str, Mapping[str, Any]] = {
    "tiny44k": {
        "latent_dim": 16,
        "dit": {"embed_dim": 128, "depth": 2, "num_heads": 2, "memory": 8, "differential": False},
        "same": {
            "channels": 16,
            "mult": 4,
            "depth": 2,
            "dim_heads": 32,
            "sliding": False,
            "sinusoidal": 0,
        },
        "max_length": 64,
        "sample_size": _SMALL_SAMPLE_SIZE,
    },
    "small": {
        "latent_dim": 256,
        "dit": {
            "embed_dim": 1024,
            "depth": 20,
            "num_heads": 16,
            "memory": 64,
            "differential": False,
        },
        "same": {
            "channels": 128,
            "mult": 6,
            "depth": 6,
            "dim_heads": 64,
            "sliding": False,
            "sinusoidal": 0,
        },
        "max_length": 256,
        "sample_size": _SMALL_SAMPLE_SIZE,
    },
    "medium": {
        "latent_dim": 256,
        "dit": {
            "embed_dim": 1536,
            "depth": 24,
            "num_heads": 24,
            "memory": 64,
            "differential": True,
        },
        "same": {
            "channels": 256,
            "mult": 6,
            "depth": 12,
            "dim_heads": 64,
            "sliding": True,
            "sinusoidal": 8,
        },
        "max_length": 256,
        "sample_size": _MEDIUM_SAMPLE_SIZE,
    },
}


def _same_config(sizes: Mapping[str, Any], latent_dim: int, *, decoder: bool) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "out_channels" if decoder else "in_channels": 512,
        "channels": sizes["channels"],
        "c_mults": [sizes["mult"]],
        "strides": [16],
        "latent_dim": latent_dim,
        "transformer_depths": [sizes["depth"]],
    }
    if decoder:
        cfg["sinusoidal_blocks"] = [sizes["sinusoidal"]]
    cfg.update(
        {
            "checkpointing": False,
            "differential": True,
            "dyt": True,
            "dim_heads": sizes["dim_heads"],
            "variable_stride": True,
        }
    )
    if sizes["sliding"]:
        # SAME-L: sliding-window attention, k=1 mappings (reference §2.1).
        cfg["sliding_window"] = [1, 1]
        cfg["conv_mapping"] = False
    else:
        # SAME-S: chunks of 32 patches with the midpoint shift, k=3 decoder mapping.
        cfg["chunk_size"] = 32
        cfg["chunk_midpoint_shift"] = True
        cfg["conv_mapping"] = decoder
    cfg["mask_noise"] = 0.01 if decoder else 0.0
    return cfg


def model_config_dict(
    preset: Preset,
    *,
    objective: Literal["rf_denoiser", "rectified_flow"] = "rf_denoiser",
    text_encoder_path: str = TEXT_ENCODER_DIR,
) -> dict[str, Any]:
    """The ``model_config.json`` object of a preset, in the official schema (reference §1.4).

    Args:
        preset: "tiny44k", "small" or "medium".
        objective: "rf_denoiser" (post-trained) or "rectified_flow" (a -base model).
        text_encoder_path: the conditioner's ``model_path`` (relative to the model folder).

    Raises:
        ConfigError: unknown preset or objective.
    """
    if preset not in _PRESET_SIZES:
        raise ConfigError(f"Unknown synthetic model preset {preset!r}; use one of {PRESETS}.")
    if objective not in ("rf_denoiser", "rectified_flow"):
        raise ConfigError(f"Unknown objective {objective!r}; use rf_denoiser or rectified_flow.")
    sizes = _PRESET_SIZES[preset]
    latent = int(sizes["latent_dim"])
    dit = sizes["dit"]
    same = sizes["same"]
    return {
        "model_type": "diffusion_cond_inpaint",
        "sample_size": sizes["sample_size"],
        "sample_rate": _SAMPLE_RATE,
        "audio_channels": 2,
        "model": {
            "io_channels": latent,
            "pretransform": {
                "type": "autoencoder",
                "chunked": True,
                "iterate_batch": False,
                "config": {
                    "encoder": {
                        "type": "taae_v2",
                        "config": _same_config(same, latent, decoder=False),
                    },
                    "decoder": {
                        "type": "taae_v2",
                        "config": _same_config(same, latent, decoder=True),
                        "soft_clip": False,
                    },
                    "bottleneck": {
                        "type": "softnorm",
                        "config": {
                            "dim": latent,
                            "noise_augment_dim": 0,
                            "noise_regularize": True,
                            "auto_scale": True,
                            "freeze": True,
                        },
                    },
                    "pretransform": {
                        "type": "patched",
                        "config": {"patch_size": 256, "channels": 2},
                    },
                    "latent_dim": latent,
                    "downsampling_ratio": 4096,
                    "io_channels": 2,
                },
            },
            "conditioning": {
                "cond_dim": 768,
                "configs": [
                    {
                        "id": "prompt",
                        "type": "t5gemma",
                        "config": {
                            "max_length": sizes["max_length"],
                            "padding_mode": "learned",
                            "model_path": text_encoder_path,
                        },
                    },
                    {
                        "id": "seconds_total",
                        "type": "number",
                        "config": {"min_val": 0, "max_val": 384, "fourier_features_type": "expo"},
                    },
                ],
            },
            "diffusion": {
                "type": "dit",
                "diffusion_objective": objective,
                "cross_attention_cond_ids": ["prompt", "seconds_total"],
                "global_cond_ids": ["seconds_total"],
                "local_add_cond_ids": ["inpaint_mask", "inpaint_masked_input"],
                "distribution_shift_options": {
                    "type": "full",
                    "min_length": 256,
                    "max_length": 4096,
                },
                "sampling_distribution_shift_options": None,
                "mask_padding_attention": True,
                "use_effective_length_for_schedule": True,
                "config": {
                    "io_channels": latent,
                    "embed_dim": dit["embed_dim"],
                    "depth": dit["depth"],
                    "num_heads": dit["num_heads"],
                    "cond_token_dim": 768,
                    "global_cond_dim": 768,
                    "local_add_cond_dim": latent + 1,
                    "project_cond_tokens": True,
                    "transformer_type": "continuous_transformer",
                    "global_cond_type": "adaLN",
                    "timestep_features_type": "expo",
                    "timestep_features_logsnr": False,
                    "num_memory_tokens": dit["memory"],
                    "norm_type": "rms_norm",
                    "norm_kwargs": {"force_fp32": True},
                    "attn_kwargs": {"qk_norm": "rms", "differential": dit["differential"]},
                },
            },
        },
    }


def _state_shapes(config: ModelConfig) -> list[tuple[str, tuple[int, ...]]]:
    """(full key, shape) of every tensor the official checkpoint of ``config`` holds."""
    # Imported here: pipeline imports this module's users, not the other way round.
    from sa3_studio.engine.models.conditioners import MultiConditioner
    from sa3_studio.engine.models.dit import DiffusionTransformer
    from sa3_studio.engine.pipeline import AE_PREFIX, COND_PREFIX, DIT_PREFIX, build_autoencoder

    with torch.device("meta"):
        parts = (
            (DIT_PREFIX, DiffusionTransformer(**config.diffusion.dit_kwargs())),
            (AE_PREFIX, build_autoencoder(config)),
            (COND_PREFIX, MultiConditioner.from_config_dict(config.conditioning.to_kwargs())),
        )
    return [
        (prefix + name, tuple(t.shape))
        for prefix, module in parts
        for name, t in module.state_dict().items()
    ]


def _random_tensor(
    name: str, shape: tuple[int, ...], gen: torch.Generator, decoder_out_gain: float
) -> torch.Tensor:
    """A plausible random value for one official key (float32)."""
    numel = math.prod(shape)
    if numel == 0:
        return torch.empty(shape)
    leaf = name.rsplit(".", 1)[-1]

    def normal(std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std + mean

    if leaf == "inv_freq":
        return rope_inv_freq(2 * shape[0])
    if leaf == "running_std":
        return torch.full(shape, 1.0)
    if name.endswith("bottleneck.scaling_factor"):
        return normal(0.1, 1.0)
    if leaf == "alpha":  # DyT: tanh(alpha * x)
        if ".q_norm." in name or ".k_norm." in name:
            # Sharper attention, so the two maps of differential attention differ.
            return normal(0.6, 3.0).clamp_min(1.0)
        return normal(0.2, 1.0).clamp_min(0.3)
    if leaf == "gamma":
        return normal(0.1, 1.0)
    if leaf in ("beta", "bias"):
        return normal(0.05)
    if leaf == "weight_g":
        # The decoder's last mapping sets the output level: keep audio well inside [-1, 1].
        gain = decoder_out_gain if ".decoder." in name else 1.0
        return normal(0.1 * gain, gain)
    if leaf == "weight_v":
        return normal(1.0)
    if leaf in ("memory_tokens", "new_tokens", "padding_embedding"):
        return normal(0.2)
    if leaf == "to_scale_shift_gate":
        return normal(0.1)
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        if name.startswith("pretransform.") and name.endswith("self_attn.to_out.weight"):
            # With plain random weights the learned new tokens dominate SAME's residual stream
            # and decoded audio hardly depends on the latents; a strong attention output makes
            # it follow them (and the DiT's noise), as a trained decoder does.
            return normal(20.0 / math.sqrt(fan_in))
        return normal(1.0 / math.sqrt(fan_in))
    return normal(0.1)


def _write_safetensors(
    path: Path,
    entries: list[tuple[str, tuple[int, ...]]],
    tensors: Iterator[torch.Tensor],
    metadata: Mapping[str, str],
) -> None:
    """Write float32 tensors one at a time (they arrive in ``entries`` order)."""
    table: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, shape in entries:
        nbytes = 4 * math.prod(shape)
        table[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header = json.dumps(table, separators=(",", ":")).encode("utf-8")
    header += b" " * ((-len(header)) % 8)  # the format aligns the data section to 8 bytes
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)))
        fh.write(header)
        for (name, shape), t in zip(entries, tensors, strict=True):
            if tuple(t.shape) != shape:
                raise AssertionError(f"{name}: made {tuple(t.shape)}, declared {shape}")
            fh.write(t.to(torch.float32).contiguous().numpy().tobytes())
    tmp.replace(path)


def write_random_text_encoder(
    dest: str | Path,
    *,
    tokenizer_src: str | Path | None = None,
    num_layers: int = 12,
    num_heads: int = 12,
    head_dim: int = 64,
    intermediate_size: int = 2048,
    seed: int = 0,
) -> Path:
    """A T5Gemma encoder folder with the real encoder's sizes and random weights (benchmarks).

    The tokenizer (and so the vocabulary) is copied from ``tokenizer_src``; the widths default
    to those of ``google/t5gemma-b-b-ul2``'s encoder (12 layers, 768 wide, 12 heads, GeGLU
    2048), so encoding a prompt costs what it costs with the real model.

    Returns:
        ``dest``.
    """
    from transformers import AutoConfig, T5GemmaEncoderModel

    src = Path(tokenizer_src) if tokenizer_src is not None else default_text_encoder_src()
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    config = AutoConfig.from_pretrained(src, local_files_only=True)
    for sub in (config.encoder, config.decoder):
        sub.num_hidden_layers = num_layers
        sub.num_attention_heads = num_heads
        sub.num_key_value_heads = num_heads
        sub.head_dim = head_dim
        sub.query_pre_attn_scalar = head_dim
        sub.intermediate_size = intermediate_size
        sub.layer_types = ["sliding_attention", "full_attention"] * (num_layers // 2) + (
            ["sliding_attention"] if num_layers % 2 else []
        )
    config.is_encoder_decoder = False
    torch.manual_seed(seed)
    model = T5GemmaEncoderModel(config)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(src / name, out / name)
    return out


def make_random_model(
    folder: str | Path,
    *,
    preset: Preset,
    seed: int = 0,
    text_encoder_src: str | Path | None = None,
    objective: Literal["rf_denoiser", "rectified_flow"] = "rf_denoiser",
) -> Path:
    """Write a complete model folder with random float32 weights.

    Args:
        folder: where to write (created; existing files of the same names are replaced).
        preset: "tiny44k" (tests), "small" or "medium" (benchmarks, 2.3 GB / 9.2 GB).
        seed: seed of the weights (same seed, same file).
        text_encoder_src: a T5Gemma folder (config.json, model.safetensors, tokenizer files)
            copied into ``folder/t5gemma-b-b-ul2``; the config's ``model_path`` names it.
            Default: :func:`default_text_encoder_src`.
        objective: "rf_denoiser" (post-trained: ping-pong, no CFG) or "rectified_flow"
            (a -base model: Euler, CFG, negative prompts).

    Returns:
        The model folder.

    Raises:
        ConfigError: unknown preset or objective.
        FileNotFoundError: ``text_encoder_src`` is not a folder.
    """
    out = Path(folder)
    src = Path(text_encoder_src) if text_encoder_src is not None else default_text_encoder_src()
    if not src.is_dir():
        raise FileNotFoundError(f"text encoder folder {src} does not exist")
    data = model_config_dict(preset, objective=objective)
    config = parse_model_config(copy.deepcopy(data), f"synthetic {preset}")
    assert isinstance(config, ModelConfig)
    out.mkdir(parents=True, exist_ok=True)
    encoder_dir = out / TEXT_ENCODER_DIR
    if encoder_dir.exists():
        shutil.rmtree(encoder_dir)
    shutil.copytree(src, encoder_dir)
    for p in encoder_dir.rglob("*"):  # the shared vectors are read-only; keep copies writable
        p.chmod(0o755 if p.is_dir() else 0o644)
    encoder_dir.chmod(0o755)

    entries = _state_shapes(config)
    gen = torch.Generator().manual_seed(int(seed))
    # A quieter decoder output for the wide presets, whose hidden states are larger.
    gain = 0.05 if preset == "tiny44k" else 0.02
    tensors = (_random_tensor(name, shape, gen, gain) for name, shape in entries)
    _write_safetensors(
        out / "model.safetensors",
        entries,
        tensors,
        {"format": "pt", "sa3_studio_synthetic": preset, "seed": str(seed)},
    )
    (out / "model_config.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out
