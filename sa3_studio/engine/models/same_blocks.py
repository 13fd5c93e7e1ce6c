"""Building blocks of the SAME autoencoders (reference §2.3, §2.7, §2.8, §2.12).

Everything here is named so that the module tree reproduces the official state-dict keys
(``pre_norm.alpha``, ``self_attn.to_qkv.weight``, ``ff.ff.0.proj.weight``, ``rope.inv_freq``,
``mapping.weight_g`` ...). The attention kernels are chosen per call:

* full attention inside fixed chunks (SAME-S): ``F.scaled_dot_product_attention``;
* symmetric sliding-window (band) attention (SAME-L): flash-attn's ``window_size`` when it is
  installed and the tensors are fp16/bf16 on CUDA, otherwise a blocked SDPA whose memory grows
  linearly with the sequence (queries in blocks, each with its band of keys; never an N x N mask).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sa3_studio.engine import devices
from sa3_studio.engine.models.rope import RotaryEmbedding, apply_rope

# The official code multiplies the sinusoidal gate by this literal (not math.pi); in float32 the
# two round to the same value, but keeping the literal documents where it comes from.
_SIN_GATE_PI = 3.14159265359

# Queries per block in the CPU band attention. Each block reads block + window keys, so the
# extra work is (block + wl + wr) / (wl + wr + 1); 64 keeps that small for the ±17 SAME-L band.
BAND_QUERY_BLOCK = 64


class DynamicTanh(nn.Module):
    """DyT: ``gamma * tanh(alpha * x) + beta`` with a scalar alpha (reference §2.3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), 4.0))
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.gamma * torch.tanh(self.alpha * x) + self.beta).to(x.dtype)


class RMSNorm(nn.Module):
    """RMS norm with a learned gain; used only when a config sets ``dyt: false``."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, x.shape[-1:], weight=self.gamma, eps=self.eps)


def make_norm(dim: int, *, dyt: bool, eps: float) -> nn.Module:
    """The SAME norm layer: DyT, or RMSNorm(eps) for non-DyT configs."""
    return DynamicTanh(dim) if dyt else RMSNorm(dim, eps)


class WNConv1d(nn.Module):
    """Conv1d with legacy weight-norm parameters ``weight_g`` (out,1,1) and ``weight_v``.

    The effective weight is ``g * v / ||v||`` with the norm over (in, k) per output channel,
    folded on every call (in float32, then cast to the input dtype). Padding is "same" for
    odd kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WNConv1d needs an odd kernel for 'same' padding, got {kernel_size}")
        self.kernel_size = kernel_size
        self.weight_g = nn.Parameter(torch.ones(out_channels, 1, 1))
        self.weight_v = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.normal_(self.weight_v, std=1.0 / math.sqrt(in_channels * kernel_size))

    def folded_weight(self) -> torch.Tensor:
        """``g * v / ||v||`` in float32, shape (out, in, k)."""
        v: torch.Tensor = self.weight_v.to(torch.float32)
        g: torch.Tensor = self.weight_g.to(torch.float32)
        weight: torch.Tensor = v * (g / v.norm(dim=(1, 2), keepdim=True))
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) -> (B, C_out, T)
        weight = self.folded_weight().to(x.dtype)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.conv1d(x, weight, bias, padding=self.kernel_size // 2)


class GLUProjection(nn.Module):
    """``[a | g] = proj(x)``; returns ``a * act(g)`` (value half first, gate half second)."""

    def __init__(self, dim_in: int, dim_out: int, sinusoidal: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)
        self.sinusoidal = sinusoidal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.proj(x)
        value, gate = projected.chunk(2, dim=-1)
        if self.sinusoidal:
            return value * torch.sin(_SIN_GATE_PI * gate)
        return value * F.silu(gate)


class FeedForward(nn.Module):
    """GLU feed-forward, inner width ``mult * dim``; keys ``ff.0.proj.*`` and ``ff.2.*``."""

    def __init__(self, dim: int, mult: int = 3, sinusoidal: bool = False) -> None:
        super().__init__()
        inner = dim * mult
        # Official indices 1 and 3 are parameter-free identities; naming the two real layers
        # "0" and "2" keeps the checkpoint keys without carrying the identities around.
        self.ff = nn.Sequential(
            OrderedDict(
                [("0", GLUProjection(dim, inner, sinusoidal)), ("2", nn.Linear(inner, dim))]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.ff(x)
        return out


def band_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: tuple[int, int],
    *,
    block: int = BAND_QUERY_BLOCK,
) -> torch.Tensor:
    """Attention where query i sees keys j with ``-window[0] <= j - i <= window[1]``.

    Equals SDPA with a dense band mask. Uses flash-attn's ``window_size`` for fp16/bf16 CUDA
    tensors when flash-attn is installed; otherwise queries are processed in blocks of
    ``block``, each against its ``block + wl + wr`` keys, so memory is linear in N.

    Args:
        q: Queries (B, H, N, d).
        k: Keys (B, H, N, d).
        v: Values (B, H, N, d).
        window: (left, right) band half-widths in tokens.
        block: Queries per block on the SDPA path.

    Returns:
        The attention output (B, H, N, d).
    """
    wl, wr = int(window[0]), int(window[1])
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        # Only here is flash-attn looked up (never on a CPU); unavailable or failing, the
        # blocked SDPA path below runs instead.
        out = devices.call_flash(
            q.device,
            lambda flash: flash.flash_attn_func(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), window_size=(wl, wr)
            ),
        )
        if out is not None:
            return out.transpose(1, 2)

    n = q.shape[-2]
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    n_pad = n_blocks * block
    span = block + wl + wr
    lead = q.shape[:-2]
    qb = F.pad(q, (0, 0, 0, n_pad - n)).reshape(*lead, n_blocks, block, q.shape[-1])
    # Keys of block b are padded positions [b*block, b*block + span), i.e. real positions
    # [b*block - wl, b*block + block + wr).
    kp = F.pad(k, (0, 0, wl, n_pad - n + wr))
    vp = F.pad(v, (0, 0, wl, n_pad - n + wr))
    kb = kp.unfold(-2, span, block).transpose(-1, -2)  # (..., n_blocks, span, d)
    vb = vp.unfold(-2, span, block).transpose(-1, -2)  # (..., n_blocks, span, d)

    device = q.device
    q_idx = torch.arange(n_pad, device=device).view(n_blocks, block, 1)
    k_idx = (
        torch.arange(n_blocks, device=device).view(n_blocks, 1, 1) * block
        - wl
        + torch.arange(span, device=device).view(1, 1, span)
    )
    delta = k_idx - q_idx
    in_band = (delta >= -wl) & (delta <= wr)
    real_key = (k_idx >= 0) & (k_idx < n)
    # Padded queries (i >= n) are discarded; letting them see padded keys keeps them finite.
    mask = in_band & (real_key | (q_idx >= n))  # (n_blocks, block, span)
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask)
    return out.reshape(*lead, n_pad, q.shape[-1])[..., :n, :]


class SelfAttention(nn.Module):
    """Self-attention with optional differential heads, q/k norm and partial RoPE.

    Differential: ``to_qkv`` yields q, k, v, q2, k2 (in that order) and the output is
    ``softmax(q k^T) v - softmax(q2 k2^T) v`` (reference §2.3). q_norm is shared by q and q2,
    k_norm by k and k2; both run before RoPE.
    """

    def __init__(
        self, dim: int, dim_heads: int, *, differential: bool, dyt: bool, qk_norm_eps: float
    ) -> None:
        super().__init__()
        if dim % dim_heads != 0:
            raise ValueError(f"width {dim} is not a multiple of dim_heads {dim_heads}")
        self.dim = dim
        self.dim_heads = dim_heads
        self.num_heads = dim // dim_heads
        self.differential = differential
        self.to_qkv = nn.Linear(dim, dim * (5 if differential else 3), bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.q_norm = make_norm(dim_heads, dyt=dyt, eps=qk_norm_eps)
        self.k_norm = make_norm(dim_heads, dyt=dyt, eps=qk_norm_eps)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, H, N, d)
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.dim_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        window: tuple[int, int] | None,
    ) -> torch.Tensor:
        """Attend over ``x`` (B, N, D); full attention if ``window`` is None, else a band.

        ``cos``/``sin`` (N, rotary_dims) float32 hold the RoPE angles of the N positions.
        """
        b, n, _ = x.shape
        parts = [self._heads(t) for t in self.to_qkv(x).chunk(5 if self.differential else 3, -1)]
        v = parts[2]
        pairs = [(parts[0], parts[1])]
        if self.differential:
            pairs.append((parts[3], parts[4]))

        out: torch.Tensor | None = None
        for q, k in pairs:
            q = apply_rope(self.q_norm(q), cos, sin).to(v.dtype)
            k = apply_rope(self.k_norm(k), cos, sin).to(v.dtype)
            if window is None:
                o = F.scaled_dot_product_attention(q, k, v)
            else:
                o = band_attention(q, k, v, window)
            out = o if out is None else out - o
        assert out is not None
        merged: torch.Tensor = self.to_out(out.transpose(1, 2).reshape(b, n, self.dim))
        return merged


class SameTransformerBlock(nn.Module):
    """``x += Attn(norm(x)); x += FF(norm(x))`` with RoPE on the first dim_heads/2 dims."""

    def __init__(
        self,
        dim: int,
        dim_heads: int,
        *,
        differential: bool,
        dyt: bool,
        sinusoidal: bool,
        ff_mult: int = 3,
    ) -> None:
        super().__init__()
        dim_heads = min(dim_heads, dim)
        self.pre_norm = make_norm(dim, dyt=dyt, eps=1e-3)
        self.self_attn = SelfAttention(
            dim, dim_heads, differential=differential, dyt=dyt, qk_norm_eps=1e-3
        )
        self.ff_norm = make_norm(dim, dyt=dyt, eps=1e-3)
        self.ff = FeedForward(dim, mult=ff_mult, sinusoidal=sinusoidal)
        self.rope = RotaryEmbedding(dim_heads // 2)

    def forward(
        self,
        x: torch.Tensor,
        *,
        window: tuple[int, int] | None = None,
        pos_offset: int = 0,
    ) -> torch.Tensor:
        """Run the block on ``x`` (B, N, D) whose first token sits at ``pos_offset``.

        RoPE positions are ``pos_offset .. pos_offset + N - 1``; the official model counts them
        from 0 over whatever sequence the block is given (one chunk, or the whole band sequence).
        """
        n = x.shape[-2]
        positions = torch.arange(pos_offset, pos_offset + n, device=self.rope.inv_freq.device)
        cos, sin = self.rope.angles(positions)
        cos, sin = cos.to(x.device), sin.to(x.device)
        x = x + self.self_attn(self.pre_norm(x), cos, sin, window)
        out: torch.Tensor = x + self.ff(self.ff_norm(x))
        return out


def run_blocks_on_chunks(
    blocks: nn.ModuleList | list[Any], x: torch.Tensor, max_tokens: int
) -> torch.Tensor:
    """Apply ``blocks`` in turn to independent chunks ``x`` (chunks, C, D), a few at a time.

    Chunks never attend to each other, so each slice of chunks runs through all the blocks
    before the next: peak memory is bounded by ``max_tokens`` tokens of activations.
    """
    per_slice = max(1, max_tokens // max(1, x.shape[1]))
    if x.shape[0] <= per_slice:
        for block in blocks:
            x = block(x)
        return x
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], per_slice):
        part = x[start : start + per_slice]
        for block in blocks:
            part = block(part)
        out[start : start + per_slice] = part
    return out


def run_blocks_banded(
    blocks: nn.ModuleList | list[Any],
    x: torch.Tensor,
    window: tuple[int, int],
    max_tokens: int,
) -> torch.Tensor:
    """Apply ``blocks`` with band attention to ``x`` (B, N, D) in token tiles.

    Each tile of queries is run with a halo of ``window`` keys on each side (positions stay
    global), so peak memory holds two (B, N, D) buffers plus one tile's work.
    """
    n = x.shape[1]
    wl, wr = window
    if n <= max_tokens:
        for block in blocks:
            x = block(x, window=window)
        return x
    for block in blocks:
        out = torch.empty_like(x)
        for start in range(0, n, max_tokens):
            stop = min(n, start + max_tokens)
            lo, hi = max(0, start - wl), min(n, stop + wr)
            y = block(x[:, lo:hi], window=window, pos_offset=lo)
            out[:, start:stop] = y[:, start - lo : stop - lo]
        x = out
    return x
