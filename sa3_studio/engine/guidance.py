"""Classifier-free guidance in denoised space, with adaptive projected guidance (APG).

Reference §4.4 and §5.4, vectors README facts 7-8. With rectified flow the denoised estimate is
``x̂₀ = x − t·v̂``. Guidance runs the model once on the batch [cond; uncond], moves the conditional
estimate along the guidance difference ``Δ = x̂₀ᶜ − x̂₀ᵘ`` (or its part orthogonal to ``x̂₀ᶜ``,
APG: Sadat et al., "Eliminating Oversaturation and Artifacts of High Guidance Scales in Diffusion
Models", 2024) and converts back to a velocity.

The math is in small pure functions; :func:`guided_velocity` composes them around one model call.
"""

from __future__ import annotations

from typing import Protocol

import torch

from sa3_studio.engine.models.transformer import AttentionMode


class VelocityModel(Protocol):
    """Anything called like :meth:`DiffusionTransformer.forward`."""

    def __call__(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cross_attn_cond: torch.Tensor,
        global_cond: torch.Tensor,
        local_add_cond: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        *,
        attention_mode: AttentionMode = "exact",
    ) -> torch.Tensor: ...


def _per_item(t: torch.Tensor) -> torch.Tensor:
    return t[:, None, None]  # (B,) -> (B, 1, 1), broadcast over (C, T)


def denoised_from_velocity(x: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x̂₀ = x − t·v`` for x, v (B, C, T) and t (B,)."""
    return x - v * _per_item(t)


def velocity_from_denoised(
    x: torch.Tensor, denoised: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """``v = (x − x̂₀)/t`` for x, x̂₀ (B, C, T) and t (B,)."""
    return (x - denoised) / _per_item(t)


def uncond_cross_tokens(
    cross_attn_cond: torch.Tensor,
    negative_cross_attn_cond: torch.Tensor | None = None,
    negative_cross_attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-attention tokens of the unconditional branch (reference §4.4).

    Args:
        cross_attn_cond: the positive tokens (B, N, D); only their shape and dtype are used when
            there is no negative prompt.
        negative_cross_attn_cond: negative-prompt tokens (B, N, D) or None.
        negative_cross_attn_mask: (B, N), true for real negative tokens; positions where it is
            false are set to zero (overriding the learned padding). None keeps every token.

    Returns:
        (B, N, D): zeros without a negative prompt, else the masked negative tokens.
    """
    if negative_cross_attn_cond is None:
        return torch.zeros_like(cross_attn_cond)
    neg = negative_cross_attn_cond.to(cross_attn_cond.dtype)
    if negative_cross_attn_mask is None:
        return neg
    keep = negative_cross_attn_mask.to(device=neg.device, dtype=torch.bool)[:, :, None]
    return torch.where(keep, neg, torch.zeros_like(neg))


def apg_project(
    diff: torch.Tensor, reference: torch.Tensor, padding_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``diff`` into parts parallel and orthogonal to ``reference``, per item over (C, T).

    Computed in float32 and returned in ``diff``'s dtype. With a padding mask (B, T) only valid
    frames enter the direction and the inner product, and the orthogonal part is zero on padded
    frames (the official semantics).

    Args:
        diff: (B, C, T) vector to split.
        reference: (B, C, T) direction (the conditional denoised estimate).
        padding_mask: (B, T) bool, True = valid; None = all valid.

    Returns:
        (parallel, orthogonal), each (B, C, T).
    """
    dtype = diff.dtype
    d, r = diff.float(), reference.float()
    dims = (-2, -1)
    if padding_mask is None:
        # Same floor as torch.nn.functional.normalize, which the official unmasked path uses.
        n = r / r.norm(dim=dims, keepdim=True).clamp_min(1e-12)
        parallel = (d * n).sum(dim=dims, keepdim=True) * n
        orthogonal = d - parallel
    else:
        m = padding_mask.to(device=d.device, dtype=torch.float32)[:, None, :]  # (B, 1, T)
        rm = r * m
        n = rm / rm.norm(dim=dims, keepdim=True).clamp_min(1e-8)
        coef = (d * n).sum(dim=dims, keepdim=True)  # n is zero on padded frames
        parallel = coef * n
        orthogonal = (d - coef * n) * m
    return parallel.to(dtype), orthogonal.to(dtype)


def limit_guidance_norm(
    diff: torch.Tensor, threshold: float, padding_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scale each item of ``diff`` (B, C, T) by ``min(1, threshold/‖diff‖)`` over valid frames.

    ``threshold <= 0`` returns ``diff`` unchanged (the official default).
    """
    if threshold <= 0:
        return diff
    masked = diff if padding_mask is None else diff * padding_mask[:, None, :].to(diff.dtype)
    norm = masked.norm(p=2, dim=(-2, -1), keepdim=True)
    return diff * torch.clamp(threshold / norm, max=1.0)


def guided_denoised(
    cond_denoised: torch.Tensor,
    uncond_denoised: torch.Tensor,
    cfg_scale: float,
    apg_scale: float = 1.0,
    padding_mask: torch.Tensor | None = None,
    norm_threshold: float = 0.0,
) -> torch.Tensor:
    """``x̂₀ = x̂₀ᶜ + (cfg − 1)·Δ*`` with ``Δ* = apg·Δ_⊥ + (1 − apg)·Δ`` (reference §5.4).

    Args:
        cond_denoised: x̂₀ᶜ (B, C, T).
        uncond_denoised: x̂₀ᵘ (B, C, T).
        cfg_scale: guidance scale; 1 returns x̂₀ᶜ.
        apg_scale: 1 = pure orthogonal part (APG), 0 = vanilla CFG, in between a blend.
        padding_mask: (B, T) bool, True = valid; restricts the APG projection.
        norm_threshold: optional cap on ‖Δ‖ per item (0 = off).

    Returns:
        Guided x̂₀ (B, C, T).
    """
    diff = limit_guidance_norm(cond_denoised - uncond_denoised, norm_threshold, padding_mask)
    if apg_scale == 0.0:
        guidance = diff
    else:
        _, orthogonal = apg_project(diff, cond_denoised, padding_mask)
        if apg_scale == 1.0:
            guidance = orthogonal
        else:
            guidance = apg_scale * orthogonal + (1 - apg_scale) * diff
    return cond_denoised + (cfg_scale - 1) * guidance


def guided_velocity(
    model: VelocityModel,
    x: torch.Tensor,
    t: torch.Tensor,
    cross_attn_cond: torch.Tensor,
    global_cond: torch.Tensor,
    local_add_cond: torch.Tensor | None = None,
    padding_mask: torch.Tensor | None = None,
    *,
    cfg_scale: float = 1.0,
    apg_scale: float = 1.0,
    negative_cross_attn_cond: torch.Tensor | None = None,
    negative_cross_attn_mask: torch.Tensor | None = None,
    cfg_interval: tuple[float, float] = (0.0, 1.0),
    cfg_norm_threshold: float = 0.0,
    cfg_rescale: float = 0.0,
    attention_mode: AttentionMode = "exact",
) -> torch.Tensor:
    """The velocity the sampler uses: one model pass, or a guided [cond; uncond] pass.

    Follows the official DiT wrapper: with ``cfg_scale == 1`` or ``t[0]`` outside
    ``cfg_interval`` it is a single conditional pass. Otherwise x, t, global and local
    conditioning and the padding mask are duplicated, the unconditional half gets
    :func:`uncond_cross_tokens`, and the result is ``(x − x̂₀)/t`` with x̂₀ from
    :func:`guided_denoised`. Arguments are those of :meth:`DiffusionTransformer.forward` plus the
    guidance settings above.

    Returns:
        v (B, C, T). The guided result follows torch type promotion with the float32 t (so it is
        float32 for a half-precision model, as in the official code).
    """
    use_cfg = cfg_scale != 1.0 and cfg_interval[0] <= float(t[0]) <= cfg_interval[1]
    if not use_cfg:
        return model(
            x,
            t,
            cross_attn_cond,
            global_cond,
            local_add_cond,
            padding_mask,
            attention_mode=attention_mode,
        )

    def twice(a: torch.Tensor | None) -> torch.Tensor | None:
        return None if a is None else torch.cat((a, a), dim=0)

    uncond = uncond_cross_tokens(
        cross_attn_cond, negative_cross_attn_cond, negative_cross_attn_mask
    )
    v_both = model(
        torch.cat((x, x), dim=0),
        torch.cat((t, t), dim=0),
        torch.cat((cross_attn_cond, uncond), dim=0),
        torch.cat((global_cond, global_cond), dim=0),
        twice(local_add_cond),
        twice(padding_mask),
        attention_mode=attention_mode,
    )
    v_cond, v_uncond = v_both.chunk(2, dim=0)
    x = x.to(v_both.dtype)
    t32 = t.float()
    cond_denoised = denoised_from_velocity(x, v_cond, t32)
    uncond_denoised = denoised_from_velocity(x, v_uncond, t32)
    denoised = guided_denoised(
        cond_denoised, uncond_denoised, cfg_scale, apg_scale, padding_mask, cfg_norm_threshold
    )
    v = velocity_from_denoised(x, denoised, t32)
    return rescale_guided(v, v_cond, cfg_rescale) if cfg_rescale != 0.0 else v


def rescale_guided(v: torch.Tensor, v_cond: torch.Tensor, phi: float) -> torch.Tensor:
    """CFG rescale (official ``scale_phi``): blend ``v`` with itself scaled so that its
    standard deviation over channels matches the conditional velocity's at every frame,
    ``phi · v·(std(v_cond)/std(v)) + (1 − phi) · v`` (std over dim 1, unbiased)."""
    ratio = v_cond.std(dim=1, keepdim=True) / v.std(dim=1, keepdim=True)
    return phi * (v * ratio) + (1 - phi) * v
