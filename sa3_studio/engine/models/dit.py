"""The SA3 diffusion transformer ``f_θ(x, t, cond) → v̂`` (reference §3).

State-dict keys equal the official ones under the prefix ``model.model.`` (reference §3.7), so a
checkpoint loads with that prefix stripped. Classifier-free guidance lives in
:mod:`sa3_studio.engine.guidance`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sa3_studio.engine.models.transformer import (
    AttentionMode,
    ContinuousTransformer,
    ExpoFourierFeatures,
    merge_repeated_tokens,
    uses_flash,
)
from sa3_studio.errors import ConfigError

_NORM_KWARGS = frozenset({"force_fp32", "eps"})
_ATTN_KWARGS = frozenset({"qk_norm", "qk_norm_eps", "differential"})
_FF_KWARGS = frozenset({"mult"})

# Fixed log-SNR range of the optional log-SNR timestep conditioning (reference §3.3).
_LOGSNR_MIN = -12.0
_LOGSNR_MAX = 5.0


def _check_choice(field: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"The diffusion config sets {field} = {value!r}, which SA3 Studio does not support; "
            f"use {' or '.join(repr(a) for a in allowed)}."
        )


def _check_kwargs(field: str, value: Mapping[str, Any] | None, allowed: frozenset[str]) -> None:
    unknown = sorted(set(value or {}) - allowed)
    if unknown:
        raise ConfigError(
            f"The diffusion config's {field} has unsupported entries {unknown}; "
            f"only {sorted(allowed)} are understood."
        )


def logsnr_time_features(t: torch.Tensor) -> torch.Tensor:
    """Map flow time t to the normalised log-SNR ``(5 − clamp(ln((1−t)/t), −12, 5))/17``.

    Only used when ``timestep_features_logsnr`` is set (believed off in released models).
    """
    tc = t.float().clamp(1e-7, 1 - 1e-7)
    logsnr = torch.log((1 - tc) / tc).clamp(_LOGSNR_MIN, _LOGSNR_MAX)
    return ((_LOGSNR_MAX - logsnr) / (_LOGSNR_MAX - _LOGSNR_MIN)).to(t.dtype)


class DiffusionTransformer(nn.Module):
    """The DiT of reference §3.2, with adaLN global conditioning and expo timestep features.

    Constructor arguments are named like the fields of ``model.diffusion.config`` in
    ``model_config.json``. Only the variant used by SA3 is built (continuous transformer, adaLN,
    expo timestep features, RMSNorm, projected cross tokens); anything else is a ConfigError.
    """

    def __init__(
        self,
        *,
        io_channels: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        cond_token_dim: int,
        global_cond_dim: int,
        local_add_cond_dim: int = 0,
        project_cond_tokens: bool = True,
        transformer_type: str = "continuous_transformer",
        global_cond_type: str = "adaLN",
        timestep_features_type: str = "expo",
        timestep_features_logsnr: bool = False,
        num_memory_tokens: int = 0,
        norm_type: str = "rms_norm",
        norm_kwargs: Mapping[str, Any] | None = None,
        attn_kwargs: Mapping[str, Any] | None = None,
        ff_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_choice("transformer_type", transformer_type, ("continuous_transformer",))
        _check_choice("global_cond_type", global_cond_type, ("adaLN",))
        _check_choice("timestep_features_type", timestep_features_type, ("expo",))
        _check_choice("norm_type", norm_type, ("rms_norm",))
        _check_choice("project_cond_tokens", project_cond_tokens, (True,))
        _check_kwargs("norm_kwargs", norm_kwargs, _NORM_KWARGS)
        _check_kwargs("attn_kwargs", attn_kwargs, _ATTN_KWARGS)
        _check_kwargs("ff_kwargs", ff_kwargs, _FF_KWARGS)
        attn = dict(attn_kwargs or {})
        # An absent or null qk_norm means none, as in the official Attention default.
        attn["qk_norm"] = attn.get("qk_norm") or "none"
        _check_choice("attn_kwargs.qk_norm", attn["qk_norm"], ("rms", "none"))
        if min(io_channels, embed_dim, depth, num_heads, cond_token_dim, global_cond_dim) <= 0:
            raise ConfigError(
                "The diffusion config needs positive io_channels, embed_dim, depth, num_heads, "
                "cond_token_dim and global_cond_dim."
            )
        if embed_dim % num_heads:
            raise ConfigError(
                f"The diffusion config's embed_dim {embed_dim} is not a multiple of num_heads "
                f"{num_heads}; fix the model_config.json."
            )
        self.io_channels = io_channels
        self.embed_dim = embed_dim
        self.timestep_features_logsnr = timestep_features_logsnr

        features_dim = 256
        self.timestep_features = ExpoFourierFeatures(features_dim, 0.5, 10000.0)
        self.to_timestep_embed = nn.Sequential(
            nn.Linear(features_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.to_cond_embed = nn.Sequential(
            nn.Linear(cond_token_dim, embed_dim, bias=False),
            nn.SiLU(),
            nn.Linear(embed_dim, embed_dim, bias=False),
        )
        self.to_global_embed = nn.Sequential(
            nn.Linear(global_cond_dim, embed_dim, bias=False),
            nn.SiLU(),
            nn.Linear(embed_dim, embed_dim, bias=False),
        )
        self.transformer = ContinuousTransformer(
            embed_dim,
            depth,
            dim_in=io_channels,
            dim_out=io_channels,
            dim_heads=embed_dim // num_heads,
            num_memory_tokens=num_memory_tokens,
            local_add_cond_dim=local_add_cond_dim,
            norm_kwargs=dict(norm_kwargs or {}),
            attn_kwargs=attn,
            ff_kwargs=dict(ff_kwargs or {}),
        )
        self.preprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)

    @classmethod
    def from_config_dict(cls, config: Mapping[str, Any]) -> DiffusionTransformer:
        """Build from the ``model.diffusion.config`` object of a ``model_config.json``.

        Raises:
            ConfigError: a field is unknown, missing or has an unsupported value.
        """
        params = inspect.signature(cls.__init__).parameters
        known = {n for n in params if n != "self"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"The diffusion config has unknown fields {unknown}; "
                f"check the model_config.json against the SA3 schema."
            )
        required = {n for n in known if params[n].default is inspect.Parameter.empty}
        missing = sorted(required - set(config))
        if missing:
            raise ConfigError(
                f"The diffusion config lacks the required fields {missing}; "
                f"check the model_config.json."
            )
        return cls(**dict(config))

    @property
    def dtype(self) -> torch.dtype:
        """The parameter dtype (the model dtype)."""
        return self.preprocess_conv.weight.dtype

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cross_attn_cond: torch.Tensor,
        global_cond: torch.Tensor,
        local_add_cond: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        *,
        attention_mode: AttentionMode = "exact",
    ) -> torch.Tensor:
        """Predict the velocity ``v̂`` (reference §3.2).

        Args:
            x: noisy latents (B, C, L).
            t: flow times (B,), kept in float32 until the Fourier features.
            cross_attn_cond: cross-attention tokens (B, N, cond_token_dim).
            global_cond: global conditioning (B, global_cond_dim).
            local_add_cond: local conditioning (B, local_add_cond_dim, L). The SA3 pipeline always
                feeds it (zeros for text-to-audio); None skips the local term entirely.
            padding_mask: (B, L) bool, True = valid frame; None means all valid.
            attention_mode: ``"exact"`` (true masking, the trained semantics) or
                ``"official-cpu"`` (the official no-flash fallback, V-zeroing only).

        Returns:
            v̂ of shape (B, C, L) in the model dtype.
        """
        dtype = self.dtype
        x = x.to(dtype)
        t = t.float()
        tokens = cross_attn_cond.to(dtype)
        context_bias = None
        if attention_mode == "exact" and not uses_flash(attention_mode, x.device):
            # The padded prompt positions are one token repeated: attend to it once, weighted.
            tokens, context_bias = merge_repeated_tokens(tokens)
        context = self.to_cond_embed(tokens)  # (B, N, E)
        global_embed = self.to_global_embed(global_cond.to(dtype))  # (B, E)

        t_cond = logsnr_time_features(t) if self.timestep_features_logsnr else t
        # The official code rounds t to the model dtype right before its Fourier features
        # (float16 on CUDA), and so do we in float16. bfloat16 would round t by up to 0.002,
        # a visible change of every step's output, so there (as in float32) the features are
        # computed from the float32 t (they lie in [-1, 1] and are rounded afterwards).
        if dtype == torch.float16:
            t_cond = t_cond.to(dtype)
        features = self.timestep_features(t_cond[:, None]).to(dtype)  # (B, 256)
        global_embed = global_embed + self.to_timestep_embed(features)  # (B, E)

        x = self.preprocess_conv(x) + x  # (B, C, L)
        local = None
        if local_add_cond is not None:
            local = local_add_cond.to(dtype).transpose(1, 2)  # (B, L, C_local)
        out = self.transformer(
            x.transpose(1, 2),
            context,
            global_embed,
            local_add_cond=local,
            padding_mask=padding_mask,
            attention_mode=attention_mode,
            context_bias=context_bias,
        ).transpose(1, 2)  # (B, C, L)
        return self.postprocess_conv(out) + out  # type: ignore[no-any-return]
