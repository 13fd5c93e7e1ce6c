"""Transformer building blocks of the SA3 diffusion transformer (reference §3.3-§3.6).

Module and parameter names are chosen so that state-dict keys equal the official checkpoint keys
under ``model.model.transformer.`` (reference §3.7). Tensors inside the transformer are
sequence-last ``(B, S, E)`` where ``S = M + L`` counts the ``M`` memory tokens first.

Padding masks have two semantics, selected by :data:`AttentionMode`:

* ``"exact"``: padded keys are excluded from the softmax, padded query rows get a zero attention
  output and a zero feed-forward output. This is what the official CUDA path (flash-attn varlen)
  computes and what the weights were trained with.
* ``"official-cpu"``: the official fallback without flash-attn. Only the value rows of padded keys
  are zeroed; padded keys keep their softmax weight and the feed-forward runs on every row. The
  reference vectors record this semantics.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from sa3_studio.engine import devices
from sa3_studio.engine.models.rope import RotaryEmbedding, apply_rope

AttentionMode = Literal["exact", "official-cpu"]
ATTENTION_MODES: tuple[AttentionMode, ...] = ("exact", "official-cpu")


class ExpoFourierFeatures(nn.Module):
    """Log-spaced Fourier features ``[cos(2π u f_k) ‖ sin(2π u f_k)]`` (reference §3.3).

    ``f_k = min_freq · (max_freq/min_freq)^(k/(n-1))`` for ``k = 0 … n-1`` with ``n = dim/2``.
    Computed in float32 and returned in the input dtype. Parameter-free, so it adds no keys.
    """

    def __init__(self, dim: int = 256, min_freq: float = 0.5, max_freq: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"Fourier feature size must be even, got {dim}")
        self.dim = dim
        self.min_freq = min_freq
        self.max_freq = max_freq

    def frequencies(self, device: torch.device | None = None) -> torch.Tensor:
        """The ``dim/2`` frequencies in float32, built as the exponent of a log-linear ramp."""
        ramp = torch.linspace(0.0, 1.0, self.dim // 2, device=device, dtype=torch.float32)
        log_min, log_max = math.log(self.min_freq), math.log(self.max_freq)
        return torch.exp(ramp * (log_max - log_min) + log_min)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Features of ``u`` of shape (B,) or (B, 1); returns (B, dim) in ``u``'s dtype."""
        in_dtype = u.dtype
        u32 = u.to(torch.float32)
        if u32.dim() == 1:
            u32 = u32[:, None]  # (B, 1)
        # Same association as the official code: ((u · f) · 2) · π, all float32.
        args = u32 * self.frequencies(u32.device) * 2 * math.pi  # (B, dim/2)
        return torch.cat((torch.cos(args), torch.sin(args)), dim=-1).to(in_dtype)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) · γ`` over the last dim; ``force_fp32`` computes it in float32."""

    def __init__(self, dim: int, eps: float = 1e-5, force_fp32: bool = False) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.force_fp32 = force_fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (..., dim); the result has ``x``'s dtype."""
        if self.force_fp32:
            out = F.rms_norm(x.float(), x.shape[-1:], weight=self.gamma.float(), eps=self.eps)
            return out.to(x.dtype)
        return F.rms_norm(x, x.shape[-1:], weight=self.gamma, eps=self.eps)


class SwiGLU(nn.Module):
    """``[a | g] = proj(x)``; returns ``a ⊙ SiLU(g)``."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim_in) -> (..., dim_out)."""
        a, gate = self.proj(x).chunk(2, dim=-1)
        out: torch.Tensor = a * F.silu(gate)
        return out


class FeedForward(nn.Module):
    """SwiGLU feed-forward ``Linear(inner → dim)(SwiGLU(dim → inner))`` with ``inner = mult·dim``.

    Keys ``ff.0.proj.*`` and ``ff.2.*``: index 1 is a parameter-free placeholder, as in the
    official layout.
    """

    def __init__(self, dim: int, mult: float = 4) -> None:
        super().__init__()
        inner = int(dim * mult)
        self.ff = nn.Sequential(SwiGLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, dim) -> (B, S, dim)."""
        out: torch.Tensor = self.ff(x)
        return out


@dataclass(frozen=True)
class AttentionPlan:
    """How one forward pass attends: padding semantics, valid rows and the kernel to use.

    Built once per forward pass and shared by every layer. Cross-attention uses
    :meth:`without_padding` of the same plan (it never masks).

    Attributes:
        mode: the padding semantics (see the module docstring).
        valid: (B, S) bool, True for real tokens (memory tokens included); None = all valid.
        use_flash: run flash-attn kernels ("exact" mode on CUDA with flash-attn installed).
        indices: flat indices of valid rows in ``B·S`` (flash varlen only).
        cu_seqlens: (B+1,) int32 cumulative valid lengths (flash varlen only).
        max_seqlen: the longest valid length (flash varlen only).
        context_bias: (B, N) float32 log-multiplicities of merged context tokens (see
            :func:`merge_repeated_tokens`), added to the cross-attention logits; None when the
            context was not merged.
        key_bias: (B, Sk) float32 added to every query's logit of key j; set on the
            cross-attention plan made by :meth:`for_context`.
    """

    mode: AttentionMode
    valid: torch.Tensor | None = None
    use_flash: bool = False
    indices: torch.Tensor | None = None
    cu_seqlens: torch.Tensor | None = None
    max_seqlen: int = 0
    context_bias: torch.Tensor | None = None
    key_bias: torch.Tensor | None = None

    @classmethod
    def build(
        cls,
        mode: AttentionMode,
        valid: torch.Tensor | None,
        device: torch.device,
        context_bias: torch.Tensor | None = None,
    ) -> AttentionPlan:
        """Make the plan; precomputes the varlen packing when flash-attn will be used."""
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode must be one of {ATTENTION_MODES}, got {mode!r}")
        use_flash = uses_flash(mode, device)
        if not use_flash or valid is None:
            return cls(mode, valid, use_flash, context_bias=context_bias)
        lengths = valid.sum(dim=-1, dtype=torch.int32)  # (B,)
        cu = F.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))
        indices = torch.nonzero(valid.flatten(), as_tuple=False).flatten()
        return cls(mode, valid, use_flash, indices, cu, int(lengths.max().item()), context_bias)

    def for_context(self) -> AttentionPlan:
        """The plan of cross-attention: no query or key padding, the merged-context bias.

        A merged context needs the bias, which flash-attn cannot add, so it runs with SDPA.
        """
        use_flash = self.use_flash and self.context_bias is None
        return AttentionPlan(self.mode, None, use_flash, key_bias=self.context_bias)


def uses_flash(mode: AttentionMode, device: torch.device) -> bool:
    """Whether attention runs flash-attn kernels: "exact" mode on a CUDA GPU of compute
    capability 8.0 or newer where flash-attn imports and has not failed (``engine.devices``;
    nothing is imported for other devices)."""
    return mode == "exact" and device.type == "cuda" and devices.flash_attn(device) is not None


def merge_repeated_tokens(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Merge runs of identical context tokens into one token plus a log-multiplicity.

    Softmax attention over ``n`` identical keys (and values) equals attention over one of them
    whose logit is raised by ``ln n``: the prompt's 256 tokens are a few real ones followed by
    one padding embedding repeated, so cross-attention shrinks from 257 keys to about 20 with
    the same result up to rounding. Items of a batch are padded to the longest merged length
    with zero tokens whose bias is ``-inf``.

    Args:
        tokens: (B, N, C) context tokens.

    Returns:
        ``(merged (B, U, C), bias (B, U) float32)``, or ``(tokens, None)`` when no two
        neighbouring tokens are equal.
    """
    b, n, _ = tokens.shape
    if n < 2:
        return tokens, None
    repeats = (tokens[:, 1:] == tokens[:, :-1]).all(dim=-1)  # (B, N-1): equal to the one before
    if not bool(repeats.any()):
        return tokens, None
    starts = torch.cat((repeats.new_ones(b, 1), ~repeats), dim=1)  # (B, N): first of its run
    kept = starts.sum(dim=1)  # (B,)
    width = int(kept.max())
    merged = tokens.new_zeros(b, width, tokens.shape[-1])
    bias = torch.full((b, width), -math.inf, dtype=torch.float32, device=tokens.device)
    positions = torch.arange(n + 1, device=tokens.device)
    for i in range(b):
        first = positions[:n][starts[i]]  # (U_i,) index of each run's first token
        ends = torch.cat((first[1:], positions[n:]))
        merged[i, : first.numel()] = tokens[i, first]
        bias[i, : first.numel()] = torch.log((ends - first).to(torch.float32))
    return merged, bias


def _flash_dtype(x: torch.Tensor) -> torch.Tensor:
    # flash-attn only takes half types; the official code casts float32 to float16.
    return x if x.dtype in (torch.float16, torch.bfloat16) else x.to(torch.float16)


def _attend_flash(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan
) -> torch.Tensor:
    """flash-attn, or the PyTorch path when it is unavailable or its call raises (a broken
    build; then it is off for the process, with one notice)."""
    out = devices.call_flash(q.device, lambda flash: _flash_call(flash, q, k, v, plan))
    if out is None:
        return _attend(q, k, v, dataclasses.replace(plan, use_flash=False))
    return out


def _flash_call(
    flash: ModuleType, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan
) -> torch.Tensor:
    in_dtype = q.dtype
    q_, k_, v_ = (_flash_dtype(t.transpose(1, 2)) for t in (q, k, v))  # (B, S, H, D)
    if plan.valid is None:
        out = flash.flash_attn_func(q_, k_, v_)
    else:
        if plan.indices is None or plan.cu_seqlens is None:
            raise RuntimeError("varlen attention needs the packing computed by AttentionPlan.build")
        b, s, h, d = q_.shape
        idx = plan.indices
        packed = flash.flash_attn_varlen_func(
            q_.reshape(b * s, h, d)[idx],
            k_.reshape(b * s, h, d)[idx],
            v_.reshape(b * s, h, d)[idx],
            plan.cu_seqlens,
            plan.cu_seqlens,
            plan.max_seqlen,
            plan.max_seqlen,
        )  # (N_valid, H, D)
        # Padded query rows come back as exact zeros, like the official unpadding helper.
        out = packed.new_zeros(b * s, h, d).index_copy_(0, idx, packed).view(b, s, h, d)
    return out.to(in_dtype).transpose(1, 2)  # type: ignore[no-any-return]


def _attend_biased(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor
) -> torch.Tensor:
    """Attention with a per-key logit bias (B, Sk), computed in float32.

    Used for merged context tokens, whose few keys make this cheap. The bias ``ln n`` must not
    be rounded to bfloat16 (5.49 would become 5.5 and shift the weight of the repeated padding
    token by 1.5 %), and SDPA only takes a mask in the query's dtype, so the logits, bias and
    softmax are float32 here whatever the model dtype.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = torch.matmul(q.float(), k.float().transpose(-1, -2)).mul_(scale)  # (B, H, Sq, Sk)
    weights = torch.softmax(logits.add_(key_bias[:, None, None, :]), dim=-1)
    return torch.matmul(weights, v.float()).to(q.dtype)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Attention of (B, H, Sq, D) queries on (B, H, Sk, D) keys/values; scale 1/sqrt(D)."""
    if plan.use_flash:
        return _attend_flash(q, k, v, plan)
    if plan.key_bias is not None:
        return _attend_biased(q, k, v, plan.key_bias)
    valid = plan.valid
    if valid is None:
        return F.scaled_dot_product_attention(q, k, v)
    if plan.mode == "official-cpu":
        # Official fallback: zero the padded value rows, keep every key in the softmax.
        v = v * valid[:, None, :, None].to(v.dtype)
        return F.scaled_dot_product_attention(q, k, v)
    # Exact semantics with SDPA: padded keys get no weight; padded query rows are zeroed.
    # Memory tokens are always valid, so no query row is fully masked.
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
    return out.masked_fill(~valid[:, None, :, None], 0.0)


class Attention(nn.Module):
    """Multi-head attention with RMS QK-norm, standard or differential (reference §3.5).

    Self-attention (``dim_context`` None) uses one fused ``to_qkv``; cross-attention uses ``to_q``
    and ``to_kv``. Differential attention computes ``attn(q, k, v) − attn(q₂, k₂, v)`` with the same
    QK-norms for both pairs.
    """

    def __init__(
        self,
        dim: int,
        dim_heads: int = 64,
        dim_context: int | None = None,
        qk_norm: Literal["rms", "none"] = "rms",
        qk_norm_eps: float = 1e-6,
        differential: bool = False,
    ) -> None:
        super().__init__()
        if dim % dim_heads:
            raise ValueError(f"width {dim} is not a multiple of the head size {dim_heads}")
        if dim_context is not None and dim_context != dim:
            raise ValueError("cross-attention context must be projected to the model width")
        self.num_heads = dim // dim_heads
        self.dim_heads = dim_heads
        self.differential = differential
        self.is_cross = dim_context is not None
        n_q = 2 if differential else 1
        if self.is_cross:
            self.to_q = nn.Linear(dim, dim * n_q, bias=False)
            self.to_kv = nn.Linear(dim, dim * (n_q + 1), bias=False)
        else:
            self.to_qkv = nn.Linear(dim, dim * (2 * n_q + 1), bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.q_norm: nn.Module
        self.k_norm: nn.Module
        if qk_norm == "rms":
            # Not force_fp32: the official QK-norm runs in the model dtype.
            self.q_norm = RMSNorm(dim_heads, eps=qk_norm_eps)
            self.k_norm = RMSNorm(dim_heads, eps=qk_norm_eps)
        elif qk_norm == "none":
            self.q_norm = nn.Identity()
            self.k_norm = nn.Identity()
        else:
            raise ValueError(f"unsupported qk_norm {qk_norm!r}")

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, s, _ = t.shape
        return t.view(b, s, self.num_heads, self.dim_heads)  # (B, S, H, D)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        plan: AttentionPlan | None = None,
    ) -> torch.Tensor:
        """Attend from ``x`` (B, S, E) to itself, or to ``context`` (B, N, E) for cross-attention.

        Args:
            x: queries (B, S, E).
            context: cross-attention keys/values source (B, N, E); required iff cross-attention.
            rope: (cos, sin) of shape (S, rotary_dims) in float32, applied to q and k.
            plan: padding and kernel plan; None attends to every key with SDPA.

        Returns:
            (B, S, E) after ``to_out``.
        """
        if self.is_cross:
            if context is None:
                raise ValueError("cross-attention needs a context")
            qs = list(self.to_q(x).chunk(2 if self.differential else 1, dim=-1))
            kv = self.to_kv(context).chunk(3 if self.differential else 2, dim=-1)
            ks, v = list(kv[:-1]), kv[-1]
        else:
            parts = self.to_qkv(x).chunk(5 if self.differential else 3, dim=-1)
            # Official chunk order: q, k, v, then q₂, k₂.
            qs, ks, v = [parts[0], *parts[3:4]], [parts[1], *parts[4:5]], parts[2]
        plan = plan or AttentionPlan("exact")
        v_h = self._heads(v).transpose(1, 2)  # (B, H, S, D)
        outs = []
        for q, k in zip(qs, ks, strict=True):
            # Norm and rotate in the (B, S, H, D) layout the projection wrote (last dim
            # contiguous, several times faster than on the transposed view), then transpose.
            q_h, k_h = self._heads(q), self._heads(k)
            q_h = self.q_norm(q_h).to(q_h.dtype)
            k_h = self.k_norm(k_h).to(k_h.dtype)
            if rope is not None:
                cos, sin = rope[0][:, None, :], rope[1][:, None, :]  # (S, 1, rot)
                q_h = apply_rope(q_h, cos, sin).to(v_h.dtype)
                k_h = apply_rope(k_h, cos, sin).to(v_h.dtype)
            outs.append(_attend(q_h.transpose(1, 2), k_h.transpose(1, 2), v_h, plan))
        out = outs[0] - outs[1] if self.differential else outs[0]  # (B, H, S, D)
        b, _, s, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, s, -1))  # type: ignore[no-any-return]


class TransformerBlock(nn.Module):
    """One adaLN DiT block (reference §3.4).

    ``y = RMSNorm(x)(1 + s₁) + h₁; x += σ(1 − γ₁)·SelfAttn(y); x += CrossAttn(RMSNorm(x), c);
    x += [0_M ; LocalEmbed(ℓ)]; y = RMSNorm(x)(1 + s₂) + h₂; x += σ(1 − γ₂)·FF(y)``.
    """

    def __init__(
        self,
        dim: int,
        dim_heads: int,
        local_add_cond_dim: int = 0,
        norm_kwargs: dict[str, Any] | None = None,
        attn_kwargs: dict[str, Any] | None = None,
        ff_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        norm_kwargs = dict(norm_kwargs or {})
        attn_kwargs = dict(attn_kwargs or {})
        self.pre_norm = RMSNorm(dim, **norm_kwargs)
        self.self_attn = Attention(dim, dim_heads, **attn_kwargs)
        self.cross_attend_norm = RMSNorm(dim, **norm_kwargs)
        self.cross_attn = Attention(dim, dim_heads, dim_context=dim, **attn_kwargs)
        self.ff_norm = RMSNorm(dim, **norm_kwargs)
        self.ff = FeedForward(dim, **(ff_kwargs or {}))
        self.to_scale_shift_gate = nn.Parameter(torch.zeros(6 * dim))
        self.to_local_embed: nn.Sequential | None = None
        if local_add_cond_dim > 0:
            self.to_local_embed = nn.Sequential(
                nn.Linear(local_add_cond_dim, dim), nn.SiLU(), nn.Linear(dim, dim)
            )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        global_cond: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        local_add_cond: torch.Tensor | None = None,
        plan: AttentionPlan | None = None,
    ) -> torch.Tensor:
        """Run the block.

        Args:
            x: (B, S, E) with the memory tokens first.
            context: projected cross-attention tokens (B, N, E).
            global_cond: adaLN parameters (B, 6E) from ``global_cond_embedder``.
            rope: (cos, sin) for positions 0 … S-1.
            local_add_cond: (B, L, C_local) sequence-last local conditioning; None adds nothing.
            plan: padding semantics, valid rows (memory tokens valid) and kernel choice.

        Returns:
            (B, S, E).
        """
        mod = (self.to_scale_shift_gate + global_cond)[:, None, :]  # (B, 1, 6E)
        scale_sa, shift_sa, gate_sa, scale_ff, shift_ff, gate_ff = mod.chunk(6, dim=-1)

        # addcmul: the same products and sums as "a * b + c" in one pass over the tokens.
        y = torch.addcmul(shift_sa, self.pre_norm(x), 1 + scale_sa)
        plan = plan or AttentionPlan("exact")
        x = torch.addcmul(x, self.self_attn(y, rope=rope, plan=plan), torch.sigmoid(1 - gate_sa))

        # Cross-attention: no RoPE and no key mask (the official code discards the mask).
        cross_plan = plan.for_context()
        x = x + self.cross_attn(self.cross_attend_norm(x), context=context, plan=cross_plan)

        if local_add_cond is not None and self.to_local_embed is not None:
            local = self.to_local_embed(local_add_cond)  # (B, L, E)
            # The memory tokens at the front get no local term.
            x = x + F.pad(local, (0, 0, x.shape[1] - local.shape[1], 0))

        y = torch.addcmul(shift_ff, self.ff_norm(x), 1 + scale_ff)
        ff: torch.Tensor = self.ff(y)
        if plan.valid is not None and plan.mode == "exact":
            # Padded rows get no feed-forward term (the official varlen path packs them out).
            ff = ff.masked_fill(~plan.valid[:, :, None], 0.0)
        return torch.addcmul(x, ff, torch.sigmoid(1 - gate_ff))


class ContinuousTransformer(nn.Module):
    """The DiT trunk: project in, prepend memory tokens, run the blocks, drop them, project out."""

    def __init__(
        self,
        dim: int,
        depth: int,
        *,
        dim_in: int,
        dim_out: int,
        dim_heads: int = 64,
        num_memory_tokens: int = 0,
        local_add_cond_dim: int = 0,
        norm_kwargs: dict[str, Any] | None = None,
        attn_kwargs: dict[str, Any] | None = None,
        ff_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.num_memory_tokens = num_memory_tokens
        self.project_in = nn.Linear(dim_in, dim, bias=False)
        self.project_out = nn.Linear(dim, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(max(dim_heads // 2, 32))
        if num_memory_tokens > 0:
            self.memory_tokens = nn.Parameter(torch.zeros(num_memory_tokens, dim))
        self.global_cond_embedder = nn.Sequential(
            nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim * 6)
        )
        self.layers = nn.ModuleList(
            TransformerBlock(
                dim,
                dim_heads,
                local_add_cond_dim=local_add_cond_dim,
                norm_kwargs=norm_kwargs,
                attn_kwargs=attn_kwargs,
                ff_kwargs=ff_kwargs,
            )
            for _ in range(depth)
        )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        global_cond: torch.Tensor,
        local_add_cond: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        attention_mode: AttentionMode = "exact",
        context_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the trunk.

        Args:
            x: (B, L, dim_in).
            context: projected cross-attention tokens (B, N, E).
            global_cond: the global vector G = g' + τ, (B, E).
            local_add_cond: (B, L, C_local) or None.
            padding_mask: (B, L) bool, True = valid; None means every frame is valid.
            attention_mode: padding semantics, ``"exact"`` or ``"official-cpu"``.
            context_bias: (B, N) log-multiplicities when ``context`` holds merged tokens
                (:func:`merge_repeated_tokens`); None attends to ``context`` as it is.

        Returns:
            (B, L, dim_out).
        """
        b = x.shape[0]
        m = self.num_memory_tokens
        h = self.project_in(x)  # (B, L, E)
        if m > 0:
            h = torch.cat((self.memory_tokens.expand(b, -1, -1), h), dim=1)  # (B, M+L, E)
        positions = torch.arange(h.shape[1], device=h.device)
        rope = self.rotary_pos_emb.angles(positions)  # RoPE positions 0 … M+L-1
        adaln = self.global_cond_embedder(global_cond)  # (B, 6E)
        valid = None
        if padding_mask is not None:
            memory_valid = torch.ones(b, m, dtype=torch.bool, device=h.device)
            valid = torch.cat((memory_valid, padding_mask.to(h.device, torch.bool)), dim=1)
        plan = AttentionPlan.build(attention_mode, valid, h.device, context_bias)
        for layer in self.layers:
            h = layer(h, context, adaln, rope, local_add_cond=local_add_cond, plan=plan)
        return self.project_out(h[:, m:, :])  # type: ignore[no-any-return]
