"""Rotary position embedding shared by SAME and the DiT (reference §2.8).

Partial rotary: only the first ``2 * len(inv_freq)`` dims of each head rotate, paired half-split
(GPT-NeoX style): dim j pairs with dim j + n/2. Angles are computed in float32.
"""

from __future__ import annotations

import torch
from torch import nn


def rope_inv_freq(rotary_dims: int, base: float = 10000.0) -> torch.Tensor:
    """``base^(-2j/rotary_dims)`` for j in 0..rotary_dims/2-1, float32."""
    return 1.0 / (base ** (torch.arange(0, rotary_dims, 2, dtype=torch.float32) / rotary_dims))


class RotaryEmbedding(nn.Module):
    """Holds the persistent ``inv_freq`` buffer that official checkpoints carry."""

    inv_freq: torch.Tensor

    def __init__(self, rotary_dims: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", rope_inv_freq(rotary_dims, base), persistent=True)

    def angles(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of shape ``(len(positions), rotary_dims)`` (float32) for the positions."""
        freqs = positions.to(torch.float32)[:, None] * self.inv_freq.to(torch.float32)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, rotary_dims)
        return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``cos.shape[-1]`` dims of ``x`` (..., T, head_dim); float32 math."""
    rot = cos.shape[-1]
    dtype = x.dtype
    x_rot, x_pass = x[..., :rot].to(torch.float32), x[..., rot:]
    half = rot // 2
    x1, x2 = x_rot[..., :half], x_rot[..., half:]
    rotated = torch.cat((-x2, x1), dim=-1)
    out = x_rot * cos + rotated * sin
    return torch.cat((out.to(dtype), x_pass), dim=-1)
