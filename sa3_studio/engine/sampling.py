"""Samplers for rectified-flow models, as small functions in the k-diffusion style.

Parameterisation (reference §5.1): ``x_t = (1 - t) x0 + t eps``; the network predicts the
velocity ``v = eps - x0``, so the denoised estimate is ``x0 = x_t - t v``.

* :func:`sample_pingpong` — the few-step sampler of the post-trained (``rf_denoiser``) models:
  denoise, then re-noise to the next time with fresh noise (a draw at every step, the last one
  included, as the official code does, so seeds stay portable).
* :func:`sample_euler` — deterministic Euler for the ``-base`` (``rectified_flow``) models
  (Liu et al., 2022, "Flow Straight and Fast").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sa3_studio.engine.api import CancelToken, StepCallback
from sa3_studio.engine.noise import NoiseSource

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x (B, C, L), t (B,) float32) -> v (B, C, L)``."""


def _times(sigmas: torch.Tensor, i: int, batch: int) -> torch.Tensor:
    """Time of step ``i`` for every item, float32 ``(B,)``; ``sigmas`` is (N+1,) or (B, N+1)."""
    if sigmas.ndim == 1:
        return sigmas[i].to(torch.float32).expand(batch)
    return sigmas[:, i].to(torch.float32)


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype)[:, None, None]  # (B, 1, 1)


def sample_pingpong(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    noise: NoiseSource,
    *,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Ping-pong sampling from ``x`` at ``sigmas[0]`` down to ``sigmas[-1]`` (= 0).

    Args:
        velocity: the guided model.
        x: start state ``(B, C, L)``.
        sigmas: times ``(N+1,)`` or per item ``(B, N+1)``.
        noise: source of the per-step draws.
        on_step: progress callback ``(done, total)`` after every step.
        cancel: checked before every step; raises Cancelled.
        on_denoised: test hook ``(step, denoised)``.
    """
    steps = sigmas.shape[-1] - 1
    batch = x.shape[0]
    for i in range(steps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        t = _times(sigmas, i, batch)
        t_next = _times(sigmas, i + 1, batch)
        v = velocity(x, t)
        denoised = x - _bcast(t, x) * v
        if on_denoised is not None:
            on_denoised(i, denoised)
        eps = noise.randn(x.shape, dtype=x.dtype, device=x.device)
        tn = _bcast(t_next, x)
        x = (1 - tn) * denoised + tn * eps
        if on_step is not None:
            on_step(i + 1, steps)
    return x


def sample_euler(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Deterministic Euler integration of ``dx/dt = v`` along ``sigmas``."""
    steps = sigmas.shape[-1] - 1
    batch = x.shape[0]
    for i in range(steps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        t = _times(sigmas, i, batch)
        t_next = _times(sigmas, i + 1, batch)
        v = velocity(x, t)
        if on_denoised is not None:
            on_denoised(i, x - _bcast(t, x) * v)
        x = x + _bcast(t_next - t, x) * v
        if on_step is not None:
            on_step(i + 1, steps)
    return x
