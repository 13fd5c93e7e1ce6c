"""Strict parsing of Stable Audio 3 ``model_config.json`` files (reference §1.4, §2.1).

A config is parsed once into frozen, slotted dataclasses whose field names are the JSON keys, so a
model class can be built with ``Cls(**section.to_kwargs())``. Parsing is strict: an unknown key
anywhere, a missing required key, a value of the wrong type or an unsupported choice raises
:class:`~sa3_studio.errors.ConfigError` naming the file and the dotted field path
(``model.pretransform.config.encoder.config.chunk_size``).

Two kinds of file are understood:

* full SA3 models (``model_type: "diffusion_cond_inpaint"``) -> :class:`ModelConfig`;
* standalone SAME autoencoders (``model_type: "autoencoder"``, the autoencoder config directly
  under ``model``) -> :class:`AutoencoderModelConfig`.

The component vectors in ``shared/vectors`` (``dit_tiny``, ``conditioner_tiny``) hold config
fragments without ``model_type``; :func:`load_fragment_config` reads those.

Defaults are the official code's defaults for a key that is absent, except where noted. Where the
official default selects an architecture this engine does not implement (for example
``global_cond_type: "prepend"``), the key is required instead, so an odd file fails loudly.

This module imports only the standard library: the registry (and through it the GUI) uses it
without loading torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from sa3_studio.errors import ConfigError

__all__ = [
    "AttnKwargs",
    "AutoencoderConfig",
    "AutoencoderModelConfig",
    "BottleneckSpec",
    "ConditionerSpec",
    "ConditioningConfig",
    "DecoderSpec",
    "DiffusionConfig",
    "DistributionShiftOptions",
    "DitConfig",
    "EncoderSpec",
    "FragmentConfig",
    "ModelConfig",
    "ModelSection",
    "NormKwargs",
    "NumberConditionerConfig",
    "PatchedConfig",
    "PatchedSpec",
    "PretransformConfig",
    "SameDecoderConfig",
    "SameEncoderConfig",
    "SoftNormConfig",
    "T5GemmaConditionerConfig",
    "load_fragment_config",
    "load_model_config",
    "parse_model_config",
]

CONFIG_FILE = "model_config.json"

# Real-model widths that name a family; anything else is a test ("tiny") model.
_DIT_FAMILY = {1024: "small", 1536: "medium"}
_SAME_FAMILY = {768: "small", 1536: "medium"}

# Upper bounds checked before anything is built. Each is far above every released model (DiT
# depth 24, width 1536; SAME widths 1536, strides 16; 256 prompt tokens) and low enough that a
# crafted file fails in milliseconds instead of allocating gigabytes or aborting the process.
MAX_DEPTH = 512
"""Layers of a DiT, or transformer blocks of one SAME stage."""
MAX_WIDTH = 65536
"""Any channel count or embedding width."""
MAX_STAGES = 16
"""SAME encoder/decoder stages."""
MAX_STRIDE = 65536
"""A SAME stride or the patch size."""
MAX_PROMPT_TOKENS = 8192
"""Prompt tokens (``max_length`` of the text conditioner; the released models use 256)."""
MAX_LENGTH_TOKENS = 1 << 20
"""Chunk sizes and memory tokens."""
MAX_SAMPLE_RATE = 768000
MAX_AUDIO_CHANNELS = 64
MAX_SAMPLE_SIZE = (1 << 31) - 1
"""``sample_size``: about 13.5 hours at 44.1 kHz."""
MAX_NESTING = 64
"""JSON nesting levels (the released configs use 8)."""
MAX_CONFIG_BYTES = 16 << 20
"""A model_config.json is a few kB; a larger file is not one."""


class _Node:
    """Base of every config dataclass: conversion to constructor kwargs."""

    __slots__ = ()

    # Keys accepted in the JSON, validated, and then dropped (not fields, not kwargs).
    _ignored_keys: ClassVar[tuple[str, ...]] = ()
    # Fields that are parsed and kept but not passed to model constructors because the official
    # code ignores them (known only from third-party reports of the real files).
    _not_kwargs: ClassVar[tuple[str, ...]] = ()
    # Fields set after parsing, never read from the JSON.
    _derived: ClassVar[tuple[str, ...]] = ()
    # Non-empty: an unknown key in this section changes the computation (the text says how), so
    # it is refused instead of ignored.
    _strict_keys: ClassVar[str] = ""

    def to_kwargs(self) -> dict[str, Any]:
        """Plain ``dict`` of this section's fields, nested sections as plain dicts too."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name in self._not_kwargs:
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out

    def _check(self, where: _Where) -> None:
        """Cross-field validation; subclasses raise ``where.error(...)``."""


def _plain(value: Any) -> Any:
    if isinstance(value, _Node):
        return value.to_kwargs()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


# --------------------------------------------------------------------------------------------
# SAME autoencoder (reference §2.1); keys under ...encoder.config / ...decoder.config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SameEncoderConfig(_Node):
    """``encoder.config`` of a SAME autoencoder: kwargs of the SAME encoder constructor."""

    _not_kwargs: ClassVar[tuple[str, ...]] = ("mapping_style", "use_snake")

    in_channels: int
    channels: int
    c_mults: tuple[int, ...]
    strides: tuple[int, ...]
    latent_dim: int
    transformer_depths: tuple[int, ...]
    checkpointing: bool = False
    differential: bool = True
    dyt: bool = True
    dim_heads: int = 128
    variable_stride: bool = False
    # generate() aligns lengths with the encoder's chunk_size, default 32 (reference §5.5); the
    # official block's own default (128) never matters for the released models because the only
    # config that omits chunk_size (SAME-L) uses sliding-window attention instead of chunks.
    chunk_size: int = 32
    chunk_midpoint_shift: bool = False
    sliding_window: tuple[int, int] | None = None
    conv_mapping: bool = False
    mask_noise: float = 0.0
    conv_bias: bool = True
    mapping_style: str | None = None
    use_snake: bool | None = None

    @property
    def width(self) -> int:
        """Transformer width D = channels * c_mults[-1]."""
        return self.channels * self.c_mults[-1]

    def _check(self, where: _Where) -> None:
        _check_same_lists(self, where, self.transformer_depths)


@dataclass(frozen=True, slots=True)
class SameDecoderConfig(_Node):
    """``decoder.config`` of a SAME autoencoder: kwargs of the SAME decoder constructor.

    ``sinusoidal_blocks`` defaults to one 0 per stage (the official default is ``[0, 0, 0, 0]``
    for four stages).
    """

    _not_kwargs: ClassVar[tuple[str, ...]] = ("mapping_style", "use_snake")

    out_channels: int
    channels: int
    c_mults: tuple[int, ...]
    strides: tuple[int, ...]
    latent_dim: int
    transformer_depths: tuple[int, ...]
    sinusoidal_blocks: tuple[int, ...] | None = None
    checkpointing: bool = False
    differential: bool = True
    dyt: bool = True
    dim_heads: int = 128
    variable_stride: bool = False
    chunk_size: int = 32
    chunk_midpoint_shift: bool = False
    sliding_window: tuple[int, int] | None = None
    conv_mapping: bool = False
    mask_noise: float = 0.0
    conv_bias: bool = True
    mapping_style: str | None = None
    use_snake: bool | None = None

    @property
    def width(self) -> int:
        """Transformer width D = channels * c_mults[-1]."""
        return self.channels * self.c_mults[-1]

    def _check(self, where: _Where) -> None:
        _check_same_lists(self, where, self.transformer_depths)
        if self.sinusoidal_blocks is None:
            object.__setattr__(self, "sinusoidal_blocks", (0,) * len(self.c_mults))
        elif len(self.sinusoidal_blocks) != len(self.c_mults):
            raise where.error(
                "sinusoidal_blocks",
                f"has {len(self.sinusoidal_blocks)} entries but c_mults has {len(self.c_mults)}",
            )


def _check_same_lists(
    cfg: SameEncoderConfig | SameDecoderConfig, where: _Where, depths: tuple[int, ...]
) -> None:
    n = len(cfg.c_mults)
    if n == 0:
        raise where.error("c_mults", "must not be empty")
    if len(cfg.strides) != n or len(depths) != n:
        raise where.error(
            "strides",
            f"c_mults, strides and transformer_depths must have the same length "
            f"(got {n}, {len(cfg.strides)}, {len(depths)})",
        )
    for name in ("channels", "latent_dim", "dim_heads", "chunk_size"):
        if getattr(cfg, name) <= 0:
            raise where.error(name, "must be positive")
    if any(s <= 0 for s in cfg.strides):
        raise where.error("strides", "must all be positive")
    _check_range(where, "c_mults", n, MAX_STAGES, "stages")
    _check_range(where, "channels", cfg.channels, MAX_WIDTH)
    _check_range(where, "latent_dim", cfg.latent_dim, MAX_WIDTH)
    _check_range(where, "chunk_size", cfg.chunk_size, MAX_LENGTH_TOKENS)
    for i, (mult, stride, depth) in enumerate(zip(cfg.c_mults, cfg.strides, depths)):
        _check_range(where, f"c_mults[{i}]", cfg.channels * mult, MAX_WIDTH, "channels")
        _check_range(where, f"strides[{i}]", stride, MAX_STRIDE)
        _check_range(where, f"transformer_depths[{i}]", depth, MAX_DEPTH, "blocks")
        if depth < 0:
            raise where.error(f"transformer_depths[{i}]", "must not be negative")
    if cfg.sliding_window is None and cfg.chunk_size % cfg.strides[0] != 0:
        raise where.error(
            "chunk_size",
            f"({cfg.chunk_size}) must be a multiple of the first stride ({cfg.strides[0]})",
        )


@dataclass(frozen=True, slots=True)
class EncoderSpec(_Node):
    """``encoder``: ``{"type": ..., "config": {...}}``. The type string is not used by the
    official factory (third parties report ``"taae_v2"`` in the real files), so any is kept."""

    type: str
    config: SameEncoderConfig


@dataclass(frozen=True, slots=True)
class DecoderSpec(_Node):
    """``decoder``: type, config, and ``soft_clip`` (official default false)."""

    type: str
    config: SameDecoderConfig
    soft_clip: bool = False


@dataclass(frozen=True, slots=True)
class SoftNormConfig(_Node):
    """``bottleneck.config`` of the soft-normalisation bottleneck (reference §2.9)."""

    dim: int
    noise_augment_dim: int = 0
    noise_regularize: bool = False
    auto_scale: bool = False
    freeze: bool = False


@dataclass(frozen=True, slots=True)
class BottleneckSpec(_Node):
    """``bottleneck``: only ``"softnorm"`` exists in SA3."""

    type: Literal["softnorm"]
    config: SoftNormConfig


@dataclass(frozen=True, slots=True)
class PatchedConfig(_Node):
    """``pretransform.config`` inside the autoencoder: the parameter-free patching (§2.2)."""

    patch_size: int
    channels: int

    def _check(self, where: _Where) -> None:
        if self.patch_size <= 0 or self.channels <= 0:
            raise where.error("patch_size", "patch_size and channels must be positive")
        _check_range(where, "patch_size", self.patch_size, MAX_STRIDE)
        _check_range(where, "channels", self.channels, MAX_AUDIO_CHANNELS)


@dataclass(frozen=True, slots=True)
class PatchedSpec(_Node):
    """The autoencoder's own ``pretransform``: only ``"patched"`` exists in SA3."""

    type: Literal["patched"]
    config: PatchedConfig


@dataclass(frozen=True, slots=True)
class AutoencoderConfig(_Node):
    """A SAME autoencoder: ``model.pretransform.config`` (full models) or ``model`` (SAME repos).

    Use :meth:`encoder_kwargs`, :meth:`decoder_kwargs`, :meth:`bottleneck_kwargs` and
    :meth:`patch_kwargs` for the component constructors, or :meth:`to_kwargs` for all of it.
    """

    encoder: EncoderSpec
    decoder: DecoderSpec
    bottleneck: BottleneckSpec
    pretransform: PatchedSpec
    latent_dim: int
    downsampling_ratio: int
    io_channels: int

    def encoder_kwargs(self) -> dict[str, Any]:
        """Kwargs of the SAME encoder (the ``encoder.config`` fields)."""
        return self.encoder.config.to_kwargs()

    def decoder_kwargs(self) -> dict[str, Any]:
        """Kwargs of the SAME decoder (the ``decoder.config`` fields)."""
        return self.decoder.config.to_kwargs()

    def bottleneck_kwargs(self) -> dict[str, Any]:
        """Kwargs of the soft-norm bottleneck (the ``bottleneck.config`` fields)."""
        return self.bottleneck.config.to_kwargs()

    def patch_kwargs(self) -> dict[str, Any]:
        """Kwargs of the patching pretransform (``patch_size``, ``channels``)."""
        return self.pretransform.config.to_kwargs()

    def to_kwargs(self) -> dict[str, Any]:
        """``encoder``/``decoder``/``bottleneck``/``pretransform`` kwargs dicts (type strings
        dropped) plus ``latent_dim``, ``downsampling_ratio``, ``io_channels``, ``soft_clip``."""
        return {
            "encoder": self.encoder_kwargs(),
            "decoder": self.decoder_kwargs(),
            "bottleneck": self.bottleneck_kwargs(),
            "pretransform": self.patch_kwargs(),
            "latent_dim": self.latent_dim,
            "downsampling_ratio": self.downsampling_ratio,
            "io_channels": self.io_channels,
            "soft_clip": self.decoder.soft_clip,
        }

    @property
    def attention(self) -> Literal["chunked", "sliding_window"]:
        """SAME-S style chunked attention, or SAME-L style sliding-window attention."""
        return "chunked" if self.encoder.config.sliding_window is None else "sliding_window"

    @property
    def family(self) -> str:
        """ "small" (SAME-S width 768), "medium" (SAME-L width 1536) or "tiny" (test models)."""
        return _SAME_FAMILY.get(self.encoder.config.width, "tiny")

    @property
    def latent_alignment(self) -> int:
        """Audio samples that generated lengths are rounded up to (reference §5.5).

        ``downsampling_ratio * (encoder chunk_size // strides[0])``: 8192 for the released models.
        """
        enc = self.encoder.config
        return self.downsampling_ratio * (enc.chunk_size // enc.strides[0])

    def _check(self, where: _Where) -> None:
        enc, dec = self.encoder.config, self.decoder.config
        if self.latent_dim <= 0 or self.downsampling_ratio <= 0 or self.io_channels <= 0:
            raise where.error(
                "latent_dim", "latent_dim, downsampling_ratio and io_channels must be positive"
            )
        dims = {
            "latent_dim": self.latent_dim,
            "encoder.config.latent_dim": enc.latent_dim,
            "decoder.config.latent_dim": dec.latent_dim,
            "bottleneck.config.dim": self.bottleneck.config.dim,
        }
        if len(set(dims.values())) != 1:
            raise where.error(
                "latent_dim",
                "latent sizes disagree: " + ", ".join(f"{k} = {v}" for k, v in dims.items()),
            )
        patch = self.pretransform.config
        if enc.in_channels != patch.patch_size * patch.channels:
            raise where.error(
                "encoder.config.in_channels",
                f"({enc.in_channels}) must equal patch_size * channels "
                f"({patch.patch_size} * {patch.channels})",
            )
        if dec.out_channels != enc.in_channels:
            raise where.error(
                "decoder.config.out_channels",
                f"({dec.out_channels}) must equal encoder.config.in_channels ({enc.in_channels})",
            )
        expected_ratio = patch.patch_size * math.prod(enc.strides)
        if self.downsampling_ratio != expected_ratio:
            raise where.error(
                "downsampling_ratio",
                f"({self.downsampling_ratio}) must equal patch_size * prod(strides) "
                f"({expected_ratio})",
            )
        if self.io_channels != patch.channels:
            raise where.error(
                "io_channels",
                f"({self.io_channels}) must equal pretransform.config.channels ({patch.channels})",
            )


# --------------------------------------------------------------------------------------------
# Conditioning (reference §4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class T5GemmaConditionerConfig(_Node):
    """``config`` of the ``t5gemma`` prompt conditioner.

    The text encoder is found through ``model_path`` (a folder, relative to the model folder
    when not absolute), else ``subfolder`` of the model folder (``t5gemma-b-b-ul2`` in the
    released repos). ``repo_id``/``model_name`` are kept for provenance; SA3 Studio never
    downloads implicitly.
    """

    max_length: int = 128
    padding_mode: Literal["learned", "zero"] = "zero"
    model_path: str | None = None
    repo_id: str | None = None
    subfolder: str | None = None
    model_name: Literal["google/t5gemma-b-b-ul2"] = "google/t5gemma-b-b-ul2"
    project_out: bool = False

    def _check(self, where: _Where) -> None:
        if self.max_length <= 0:
            raise where.error("max_length", "must be positive")
        _check_range(where, "max_length", self.max_length, MAX_PROMPT_TOKENS, "tokens")


@dataclass(frozen=True, slots=True)
class NumberConditionerConfig(_Node):
    """``config`` of the ``number`` conditioner (``seconds_total``)."""

    fourier_features_type: Literal["expo"]
    min_val: float = 0.0
    max_val: float = 1.0

    def _check(self, where: _Where) -> None:
        if not self.max_val > self.min_val:
            raise where.error("max_val", f"({self.max_val}) must exceed min_val ({self.min_val})")


_CONDITIONER_TYPES: Mapping[str, type[_Node]] = types.MappingProxyType(
    {"t5gemma": T5GemmaConditionerConfig, "number": NumberConditionerConfig}
)


@dataclass(frozen=True, slots=True)
class ConditionerSpec(_Node):
    """One entry of ``conditioning.configs``: ``id``, ``type`` and its ``config``."""

    id: str
    type: Literal["t5gemma", "number"]
    config: T5GemmaConditionerConfig | NumberConditionerConfig


@dataclass(frozen=True, slots=True)
class ConditioningConfig(_Node):
    """``model.conditioning``."""

    cond_dim: int
    configs: tuple[ConditionerSpec, ...]

    def by_id(self, cond_id: str) -> ConditionerSpec:
        """The conditioner with this id (KeyError if absent)."""
        for spec in self.configs:
            if spec.id == cond_id:
                return spec
        raise KeyError(cond_id)

    @property
    def prompt(self) -> T5GemmaConditionerConfig:
        """The (single) T5Gemma prompt conditioner's config."""
        for spec in self.configs:
            if isinstance(spec.config, T5GemmaConditionerConfig):
                return spec.config
        raise KeyError("t5gemma")

    def _check(self, where: _Where) -> None:
        ids = [c.id for c in self.configs]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise where.error("configs", f"has duplicate ids: {', '.join(dup)}")
        if sum(c.type == "t5gemma" for c in self.configs) > 1:
            raise where.error("configs", "has more than one t5gemma conditioner")
        if self.cond_dim <= 0:
            raise where.error("cond_dim", "must be positive")
        _check_range(where, "cond_dim", self.cond_dim, MAX_WIDTH)


# --------------------------------------------------------------------------------------------
# Diffusion transformer (reference §3.1)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NormKwargs(_Node):
    """``norm_kwargs`` of the DiT."""

    force_fp32: bool = False


@dataclass(frozen=True, slots=True)
class AttnKwargs(_Node):
    """``attn_kwargs`` of the DiT."""

    _strict_keys: ClassVar[str] = "it is an attention option"

    qk_norm: Literal["rms"] | None = None
    differential: bool = False


@dataclass(frozen=True, slots=True)
class DitConfig(_Node):
    """``model.diffusion.config``: kwargs of the DiT constructor (``attn_kwargs`` and
    ``norm_kwargs`` become plain dicts in :meth:`to_kwargs`)."""

    io_channels: int
    embed_dim: int
    depth: int
    num_heads: int
    global_cond_type: Literal["adaLN"]
    timestep_features_type: Literal["expo"]
    norm_type: Literal["rms_norm"]
    cond_token_dim: int = 0
    global_cond_dim: int = 0
    local_add_cond_dim: int = 0
    project_cond_tokens: bool = True
    transformer_type: Literal["continuous_transformer"] = "continuous_transformer"
    timestep_features_logsnr: bool = False
    num_memory_tokens: int = 0
    norm_kwargs: NormKwargs = NormKwargs()
    attn_kwargs: AttnKwargs = AttnKwargs()

    def _check(self, where: _Where) -> None:
        for name in ("io_channels", "embed_dim", "depth", "num_heads"):
            if getattr(self, name) <= 0:
                raise where.error(name, "must be positive")
        _check_range(where, "depth", self.depth, MAX_DEPTH, "layers")
        for name in ("io_channels", "embed_dim", "cond_token_dim", "global_cond_dim"):
            _check_range(where, name, getattr(self, name), MAX_WIDTH)
        _check_range(where, "local_add_cond_dim", self.local_add_cond_dim, MAX_WIDTH + 1)
        _check_range(where, "num_memory_tokens", self.num_memory_tokens, MAX_LENGTH_TOKENS)
        if self.embed_dim % self.num_heads != 0:
            raise where.error(
                "num_heads",
                f"({self.num_heads}) must divide embed_dim ({self.embed_dim})",
            )


_SHIFT_PARAMS: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        "none": frozenset(),
        "full": frozenset({"base_shift", "max_shift", "min_length", "max_length", "use_sine"}),
        "flux": frozenset({"min_length", "max_length", "alpha_min", "alpha_max"}),
        "logsnr": frozenset({"anchor_length", "anchor_logsnr", "rate", "logsnr_end"}),
    }
)


@dataclass(frozen=True, slots=True)
class DistributionShiftOptions(_Node):
    """``distribution_shift_options`` / ``sampling_distribution_shift_options``.

    ``None`` means "the official class default". :meth:`shift_kwargs` gives only the
    parameters that were set. Which parameters a type accepts is checked.
    """

    type: Literal["none", "full", "flux", "logsnr"] = "full"
    min_length: int | None = None
    max_length: int | None = None
    base_shift: float | None = None
    max_shift: float | None = None
    use_sine: bool | None = None
    alpha_min: float | None = None
    alpha_max: float | None = None
    anchor_length: int | None = None
    anchor_logsnr: float | None = None
    rate: float | None = None
    logsnr_end: float | None = None

    def shift_kwargs(self) -> dict[str, Any]:
        """The parameters that were given (without ``type``)."""
        return {k: v for k, v in self.to_kwargs().items() if k != "type" and v is not None}

    def _check(self, where: _Where) -> None:
        allowed = _SHIFT_PARAMS[self.type]
        for name in self.shift_kwargs():
            if name not in allowed:
                raise where.error(name, f"is not a parameter of a {self.type!r} shift")


@dataclass(frozen=True, slots=True)
class DiffusionConfig(_Node):
    """``model.diffusion``."""

    type: Literal["dit"]
    diffusion_objective: Literal["rf_denoiser", "rectified_flow"]
    config: DitConfig
    cross_attention_cond_ids: tuple[str, ...] = ()
    global_cond_ids: tuple[str, ...] = ()
    local_add_cond_ids: tuple[str, ...] = ()
    distribution_shift_options: DistributionShiftOptions | None = None
    sampling_distribution_shift_options: DistributionShiftOptions | None = None
    mask_padding_attention: bool = False
    use_effective_length_for_schedule: bool = False

    def dit_kwargs(self) -> dict[str, Any]:
        """Kwargs of the DiT constructor (the ``config`` fields)."""
        return self.config.to_kwargs()


# --------------------------------------------------------------------------------------------
# Top level
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PretransformConfig(_Node):
    """``model.pretransform`` of a full model: the SAME autoencoder and how it is run."""

    type: Literal["autoencoder"]
    config: AutoencoderConfig
    chunked: bool = False
    iterate_batch: bool = False


@dataclass(frozen=True, slots=True)
class ModelSection(_Node):
    """``model`` of a full SA3 config."""

    io_channels: int
    pretransform: PretransformConfig
    conditioning: ConditioningConfig
    diffusion: DiffusionConfig

    def _check(self, where: _Where) -> None:
        dit = self.diffusion.config
        ae = self.pretransform.config
        if not (self.io_channels == dit.io_channels == ae.latent_dim):
            raise where.error(
                "io_channels",
                f"({self.io_channels}) must equal diffusion.config.io_channels "
                f"({dit.io_channels}) and the autoencoder's latent_dim ({ae.latent_dim})",
            )
        ids = {c.id for c in self.conditioning.configs}
        for field_name in ("cross_attention_cond_ids", "global_cond_ids"):
            for cond_id in getattr(self.diffusion, field_name):
                if cond_id not in ids:
                    raise where.error(
                        f"diffusion.{field_name}",
                        f"names {cond_id!r}, which is not in conditioning.configs",
                    )
        local = self.diffusion.local_add_cond_ids
        if local and dit.local_add_cond_dim != self.io_channels + 1:
            raise where.error(
                "diffusion.config.local_add_cond_dim",
                f"({dit.local_add_cond_dim}) must be io_channels + 1 ({self.io_channels + 1}) "
                "for the inpainting mask and masked latents",
            )
        if dit.cond_token_dim and dit.cond_token_dim != self.conditioning.cond_dim:
            raise where.error(
                "diffusion.config.cond_token_dim",
                f"({dit.cond_token_dim}) must equal conditioning.cond_dim "
                f"({self.conditioning.cond_dim})",
            )


@dataclass(frozen=True, slots=True)
class ModelConfig(_Node):
    """A full SA3 model (``model_type: "diffusion_cond_inpaint"``).

    The top-level ``training`` section is accepted and ignored. ``sample_size`` defaults to
    5 292 032 (``generate()``'s default cap, about 120 s at 44.1 kHz).
    """

    _ignored_keys: ClassVar[tuple[str, ...]] = ("training",)
    _derived: ClassVar[tuple[str, ...]] = ("ignored_fields",)
    _not_kwargs: ClassVar[tuple[str, ...]] = ("ignored_fields",)

    model_type: Literal["diffusion_cond_inpaint"]
    sample_rate: int
    model: ModelSection
    sample_size: int = 5292032
    audio_channels: int = 2
    ignored_fields: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    """Dotted paths of fields in the file that this version does not read (and ignores)."""

    @property
    def autoencoder(self) -> AutoencoderConfig:
        """The SAME autoencoder config (``model.pretransform.config``)."""
        return self.model.pretransform.config

    @property
    def diffusion(self) -> DiffusionConfig:
        """``model.diffusion``."""
        return self.model.diffusion

    @property
    def dit(self) -> DitConfig:
        """``model.diffusion.config`` (kwargs of the DiT via ``to_kwargs()``)."""
        return self.model.diffusion.config

    @property
    def conditioning(self) -> ConditioningConfig:
        """``model.conditioning``."""
        return self.model.conditioning

    @property
    def max_seconds(self) -> float:
        """Longest audio the model generates: ``sample_size / sample_rate``."""
        return self.sample_size / self.sample_rate

    @property
    def family(self) -> str:
        """ "small" (DiT width 1024), "medium" (1536) or "tiny" (test models)."""
        return _DIT_FAMILY.get(self.dit.embed_dim, "tiny")

    @property
    def objective(self) -> str:
        """``"rf_denoiser"`` (post-trained) or ``"rectified_flow"`` (base)."""
        return self.diffusion.diffusion_objective

    @property
    def is_base(self) -> bool:
        """True for -base (rectified-flow) models."""
        return self.objective == "rectified_flow"

    @property
    def downsampling_ratio(self) -> int:
        """Audio samples per latent frame (4096 for the released models)."""
        return self.autoencoder.downsampling_ratio

    @property
    def latent_alignment(self) -> int:
        """Audio samples that generated lengths are rounded up to (8192 for released models)."""
        return self.autoencoder.latent_alignment

    def text_encoder_dir(self, model_dir: str | Path) -> Path:
        """Folder of the T5Gemma encoder and tokenizer for a model stored in ``model_dir``.

        Raises:
            ConfigError: the prompt conditioner names neither ``model_path`` nor ``subfolder``.
        """
        prompt = self.conditioning.prompt
        if prompt.model_path:
            p = Path(prompt.model_path).expanduser()
            return p if p.is_absolute() else Path(model_dir) / p
        if prompt.subfolder:
            return Path(model_dir) / prompt.subfolder
        raise ConfigError(
            f"The model config in {model_dir} does not say where its text encoder is "
            "(neither model_path nor subfolder is set in the t5gemma conditioner); "
            "use an official model_config.json."
        )

    def _check(self, where: _Where) -> None:
        _check_rate(self.sample_rate, self.audio_channels, where)
        if self.sample_size <= 0:
            raise where.error("sample_size", "must be positive")
        _check_range(where, "sample_size", self.sample_size, MAX_SAMPLE_SIZE, "samples")
        if self.audio_channels != self.autoencoder.io_channels:
            raise where.error(
                "audio_channels",
                f"({self.audio_channels}) must equal the autoencoder's io_channels "
                f"({self.autoencoder.io_channels})",
            )


@dataclass(frozen=True, slots=True)
class AutoencoderModelConfig(_Node):
    """A standalone SAME autoencoder (``model_type: "autoencoder"``; SAME-S, SAME-L repos)."""

    _ignored_keys: ClassVar[tuple[str, ...]] = ("training",)
    _derived: ClassVar[tuple[str, ...]] = ("ignored_fields",)
    _not_kwargs: ClassVar[tuple[str, ...]] = ("ignored_fields",)

    model_type: Literal["autoencoder"]
    sample_rate: int
    model: AutoencoderConfig
    audio_channels: int = 2
    sample_size: int | None = None
    ignored_fields: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    """Dotted paths of fields in the file that this version does not read (and ignores)."""

    @property
    def autoencoder(self) -> AutoencoderConfig:
        """The autoencoder config (``model``)."""
        return self.model

    @property
    def family(self) -> str:
        """ "small" (SAME-S), "medium" (SAME-L) or "tiny"."""
        return self.model.family

    @property
    def objective(self) -> str:
        """Always ``"autoencoder"``."""
        return "autoencoder"

    @property
    def downsampling_ratio(self) -> int:
        """Audio samples per latent frame."""
        return self.model.downsampling_ratio

    @property
    def latent_alignment(self) -> int:
        """See :attr:`AutoencoderConfig.latent_alignment`."""
        return self.model.latent_alignment

    @property
    def max_seconds(self) -> float:
        """``sample_size / sample_rate`` when a sample_size is given, else 0 (no limit)."""
        return 0.0 if self.sample_size is None else self.sample_size / self.sample_rate

    def _check(self, where: _Where) -> None:
        _check_rate(self.sample_rate, self.audio_channels, where)
        if self.audio_channels != self.model.io_channels:
            raise where.error(
                "audio_channels",
                f"({self.audio_channels}) must equal model.io_channels ({self.model.io_channels})",
            )


@dataclass(frozen=True, slots=True)
class FragmentConfig(_Node):
    """A partial config as found in component test vectors (no ``model_type``).

    Any of the sections may be absent (``None``).
    """

    io_channels: int | None = None
    pretransform: PretransformConfig | None = None
    conditioning: ConditioningConfig | None = None
    diffusion: DiffusionConfig | None = None


def _check_rate(sample_rate: int, audio_channels: int, where: _Where) -> None:
    if sample_rate <= 0:
        raise where.error("sample_rate", "must be positive")
    if audio_channels <= 0:
        raise where.error("audio_channels", "must be positive")
    _check_range(where, "sample_rate", sample_rate, MAX_SAMPLE_RATE, "Hz")
    _check_range(where, "audio_channels", audio_channels, MAX_AUDIO_CHANNELS, "channels")


def _check_range(where: _Where, name: str, value: int, limit: int, unit: str = "") -> None:
    """Refuse a size above ``limit`` before anything is built from it."""
    if value > limit:
        what = f"{limit} {unit}".rstrip()
        raise where.error(
            name,
            f"is {value}, more than SA3 Studio allows ({what}); the file is damaged or not a "
            "Stable Audio 3 config",
        )


# --------------------------------------------------------------------------------------------
# The strict parser
# --------------------------------------------------------------------------------------------


class _Where:
    """Where a value sits: the file and the dotted path, for error messages. ``unknown`` is
    shared by the whole parse and collects the dotted paths of ignored unknown fields."""

    __slots__ = ("depth", "path", "source", "unknown")

    def __init__(
        self, source: str, path: str, unknown: list[str] | None = None, depth: int = 0
    ) -> None:
        self.source = source
        self.path = path
        self.unknown: list[str] = [] if unknown is None else unknown
        self.depth = depth

    def child(self, name: str) -> _Where:
        path = f"{self.path}.{name}" if self.path else name
        return _Where(self.source, path, self.unknown, self.depth + 1)

    def item(self, index: int) -> _Where:
        return _Where(self.source, f"{self.path}[{index}]", self.unknown, self.depth + 1)

    def error(self, field: str | None, problem: str) -> ConfigError:
        path = self.child(field).path if field else self.path
        return ConfigError(
            f"Model config {self.source}: `{path or '(top level)'}` {problem}. "
            "Use the model_config.json that came with the model (download it again if edited)."
        )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_node(cls: type[_Node], value: Any, where: _Where) -> Any:
    if not isinstance(value, dict):
        raise where.error(None, f"must be an object, not {_type_name(value)}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in value:
        if key in fields and key not in cls._derived:
            continue
        if key in cls._ignored_keys:
            continue
        _unknown_key(cls, key, value[key], where)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in cls._derived:
            continue
        if name in value:
            if name == "config" and cls is ConditionerSpec:
                continue  # parsed below, once its "type" is known
            kwargs[name] = _parse_value(hints[name], value[name], where.child(name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise where.error(name, "is missing")
    if cls is ConditionerSpec:
        kwargs["config"] = _parse_node(
            _CONDITIONER_TYPES[kwargs["type"]], value["config"], where.child("config")
        )
    node = cls(**kwargs)
    node._check(where)
    return node


# Keys the official code reads that this engine implements at one value only: accepted at that
# value (their official default), refused at any other because they change the computation.
_FIXED_KEYS: Mapping[type[_Node], Mapping[str, Any]] = types.MappingProxyType(
    {
        DitConfig: {
            "patch_size": 1,
            "project_global_cond": True,
            "input_concat_dim": 0,
            "prepend_cond_dim": 0,
            "timestep_cond_type": "global",
            "timestep_features_dim": 256,
        },
        DiffusionConfig: {
            "input_concat_ids": [],
            "prepend_cond_ids": [],
            "modular_local_cond_configs": [],
        },
    }
)


def _unknown_key(cls: type[_Node], key: str, value: Any, where: _Where) -> None:
    """A key this parser has no field for: refused when it changes the computation in a way
    this engine cannot honour, else recorded in ``where.unknown`` and ignored (as the official
    loader ignores what it does not read)."""
    fixed = _FIXED_KEYS.get(cls, {})
    if key in fixed:
        if value != fixed[key] or type(value) is not type(fixed[key]):
            raise where.error(
                key,
                f"is {value!r}; SA3 Studio implements only {fixed[key]!r} (another value "
                "changes the model's computation). Use an official Stable Audio 3 config, or "
                "update SA3 Studio",
            )
        return  # an official key at the one value this engine implements
    if cls._strict_keys:
        raise ConfigError(
            f"Model config {where.source} has the unknown field `{where.child(key).path}`, "
            f"which would change how the model computes ({cls._strict_keys}); this version of "
            "SA3 Studio cannot honour it. Use the model_config.json that came with the model, "
            "or update SA3 Studio."
        )
    where.unknown.append(where.child(key).path)


def _parse_value(tp: Any, value: Any, where: _Where) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise where.error(None, "must not be null")
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _parse_value(options[0], value, where)
        # Unions of sections are resolved by their parent (ConditionerSpec); anything else is
        # a scalar union that accepts the first matching option.
        for option in options:
            try:
                return _parse_value(option, value, where)
            except ConfigError:
                continue
        raise where.error(None, f"has an unexpected value {value!r}")
    if origin is Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return value
        choices = ", ".join(repr(a) for a in args)
        raise where.error(None, f"is {value!r}; SA3 Studio supports only {choices}")
    if origin is tuple:
        if not isinstance(value, list):
            raise where.error(None, f"must be a list, not {_type_name(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse_value(args[0], v, where.item(i)) for i, v in enumerate(value))
        if len(value) != len(args):
            raise where.error(None, f"must be a list of {len(args)} values, not {len(value)}")
        return tuple(_parse_value(a, v, where.item(i)) for i, (a, v) in enumerate(zip(args, value)))
    if isinstance(tp, type) and issubclass(tp, _Node):
        return _parse_node(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(None, f"must be true or false, not {_type_name(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(None, f"must be an integer, not {_type_name(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(None, f"must be a number, not {_type_name(value)}")
        if not math.isfinite(value):
            raise where.error(None, "must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(None, f"must be a string, not {_type_name(value)}")
        return value
    raise TypeError(f"config parser cannot handle type {tp!r}")  # a bug in this module


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _nesting(text: str) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _read_json(path: Path) -> Any:
    try:
        # Regular files only: reading a named pipe or a device would wait forever.
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"Model config {path} is not a regular file; a model folder needs a "
                f"{path.name} file (download the model again)."
            )
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"Model config {path} is {info.st_size} bytes, far more than a model config "
                "(a few kB); it is not a model_config.json (download the model again)."
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"There is no {path.name} at {path.parent}; a model folder needs one "
            "(download the model again)."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"Model config {path} is not UTF-8 text; it is damaged (download the model again)."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Model config {path} cannot be read ({exc.strerror}).") from None
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise ConfigError(
            f"Model config {path} nests {depth} levels deep (a model config has fewer than "
            f"{MAX_NESTING}); it is not a model_config.json (download the model again)."
        )
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise ConfigError(
            f"Model config {path} has the key {exc.key!r} twice in one object; "
            "use the model_config.json that came with the model."
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Model config {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); download the model again."
        ) from None


def parse_model_config(
    data: Any, source: str = "(in memory)"
) -> ModelConfig | AutoencoderModelConfig:
    """Parse an already-decoded ``model_config.json`` object.

    Args:
        data: the decoded JSON object.
        source: file name used in error messages.

    Returns:
        :class:`ModelConfig` for ``model_type`` "diffusion_cond_inpaint",
        :class:`AutoencoderModelConfig` for "autoencoder".

    Fields this version does not know are ignored, as the official loader ignores what it
    does not read, and listed in the result's ``ignored_fields``; a field that would change
    the computation in a way this engine cannot honour (an unknown block, attention option or
    objective, or an official option at a value not implemented here) is refused.

    Raises:
        ConfigError: refused or missing field, wrong type, unsupported value, a size out of
            range or inconsistent sizes; the message names the file and the field path.
    """
    where = _Where(source, "")
    if not isinstance(data, dict):
        raise where.error(None, f"must be a JSON object, not {_type_name(data)}")
    model_type = data.get("model_type")
    root: type[ModelConfig | AutoencoderModelConfig] | None = (
        {
            "diffusion_cond_inpaint": ModelConfig,
            "autoencoder": AutoencoderModelConfig,
        }.get(model_type)
        if isinstance(model_type, str)
        else None
    )
    if root is not None:
        config = typing.cast(ModelConfig | AutoencoderModelConfig, _parse_node(root, data, where))
        object.__setattr__(config, "ignored_fields", tuple(sorted(where.unknown)))
        return config
    if model_type is None:
        raise where.error("model_type", "is missing")
    raise where.error(
        "model_type",
        f"is {model_type!r}; SA3 Studio supports 'diffusion_cond_inpaint' (Stable Audio 3) and "
        "'autoencoder' (SAME)",
    )


def load_model_config(path: str | Path) -> ModelConfig | AutoencoderModelConfig:
    """Read and strictly parse a ``model_config.json`` (or a folder that holds one).

    Raises:
        ConfigError: the file is missing, unreadable, not JSON, or does not parse strictly.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_FILE
    return parse_model_config(_read_json(p), str(p))


def load_fragment_config(path: str | Path) -> FragmentConfig:
    """Read a partial config (component test vectors: ``{"model": {...}}`` without model_type).

    The sections present under ``model`` are parsed as strictly as in a full config.

    Raises:
        ConfigError: as :func:`load_model_config`.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_FILE
    data = _read_json(p)
    where = _Where(str(p), "")
    if not isinstance(data, dict):
        raise where.error(None, f"must be a JSON object, not {_type_name(data)}")
    unknown = [k for k in data if k not in ("model", "sample_rate", "audio_channels")]
    if unknown:
        raise where.error(unknown[0], "is not expected in a config fragment")
    return typing.cast(
        FragmentConfig, _parse_node(FragmentConfig, data.get("model", {}), where.child("model"))
    )
