"""Samplers for rectified-flow models, as small functions in the k-diffusion style.

Parameterisation (reference §5.1): ``x_t = (1 - t) x0 + t eps``; the network predicts the
velocity ``v = eps - x0``, so the denoised estimate is ``x0 = x_t - t v``.

* :func:`sample_pingpong` — the few-step sampler of the post-trained (``rf_denoiser``) models:
  denoise, then re-noise to the next time with fresh noise (a draw at every step, the last one
  included, as the official code does, so seeds stay portable).
* :func:`sample_euler` — deterministic Euler for the ``-base`` (``rectified_flow``) models
  (Liu et al., 2022, "Flow Straight and Fast").
* :func:`sample_dpmpp` — DPM-Solver++(2M) written for rectified flow (Lu et al., 2022), the
  official ``"dpmpp"`` option for base models: second order for the price of one evaluation.
* :func:`sample_rk4` — classic fourth-order Runge-Kutta on ``dx/dt = v`` (four evaluations a
  step), the official ``"rk4"`` option.

Every sampler has the same signature, ``(velocity, x, sigmas, *, noise, on_step, cancel,
on_denoised)``, and :data:`SAMPLERS` picks one by name (:func:`get_sampler`), as in k-diffusion.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import torch

from sa3_studio.engine.api import CancelToken, StepCallback
from sa3_studio.engine.noise import NoiseSource
from sa3_studio.errors import GenerationError

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x (B, C, L), t (B,) float32) -> v (B, C, L)``."""

DenoisedHook = Callable[[int, torch.Tensor], None]
"""``(step, denoised estimate (B, C, L))``: a diagnostic hook."""


class Sampler(Protocol):
    """The one signature of every sampler."""

    def __call__(
        self,
        velocity: VelocityFn,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        *,
        noise: NoiseSource | None = None,
        on_step: StepCallback | None = None,
        cancel: CancelToken | None = None,
        on_denoised: DenoisedHook | None = None,
    ) -> torch.Tensor: ...


def _times(sigmas: torch.Tensor, i: int, batch: int) -> torch.Tensor:
    """Time of step ``i`` for every item, float32 ``(B,)``; ``sigmas`` is (N+1,) or (B, N+1)."""
    if sigmas.ndim == 1:
        return sigmas[i].to(torch.float32).expand(batch)
    return sigmas[:, i].to(torch.float32)


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype)[:, None, None]  # (B, 1, 1)


def _steps(
    sigmas: torch.Tensor,
    batch: int,
    on_step: StepCallback | None,
    cancel: CancelToken | None,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """The sampler loop: ``(i, t, t_next)`` per step, cancel checked before and progress
    reported after each one."""
    steps = sigmas.shape[-1] - 1
    for i in range(steps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield i, _times(sigmas, i, batch), _times(sigmas, i + 1, batch)
        if on_step is not None:
            on_step(i + 1, steps)


def sample_pingpong(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: NoiseSource | None = None,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: DenoisedHook | None = None,
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
    if noise is None:
        raise GenerationError("The ping-pong sampler needs a noise source for its draws.")
    for i, t, t_next in _steps(sigmas, x.shape[0], on_step, cancel):
        v = velocity(x, t)
        denoised = x - _bcast(t, x) * v
        if on_denoised is not None:
            on_denoised(i, denoised)
        eps = noise.randn(x.shape, dtype=x.dtype, device=x.device)
        tn = _bcast(t_next, x)
        x = (1 - tn) * denoised + tn * eps
    return x


def sample_euler(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: NoiseSource | None = None,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: DenoisedHook | None = None,
) -> torch.Tensor:
    """Deterministic Euler integration of ``dx/dt = v`` along ``sigmas``."""
    for i, t, t_next in _steps(sigmas, x.shape[0], on_step, cancel):
        v = velocity(x, t)
        if on_denoised is not None:
            on_denoised(i, x - _bcast(t, x) * v)
        x = x + _bcast(t_next - t, x) * v
    return x


LOG_SNR_CLAMP = 1e-10
"""``1 - t`` and ``t`` are clamped to at least this before the log-SNR is taken (official)."""


def _log_snr(t: torch.Tensor) -> torch.Tensor:
    """``λ(t) = ln((1 - t)/t)`` with both terms clamped to 1e-10, as the official solver does:
    finite at t = 1 (about -23.03) and t = 0, so the step after one that starts at t = 1 has a
    finite ratio ``r`` and is second order."""
    return torch.log((1 - t).clamp(min=LOG_SNR_CLAMP) / t.clamp(min=LOG_SNR_CLAMP))


def sample_dpmpp(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: NoiseSource | None = None,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: DenoisedHook | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) along ``sigmas`` in rectified-flow form (reference §5.4).

    With ``c = (t' - t)/((1 - t') t)`` each step is ``x <- (t'/t) x - (1 - t') c D``, the exact
    solution of the flow ODE if the denoised estimate ``D`` held still over the step. ``D`` is
    the model's estimate on the first step and on a step that ends at t' = 0; otherwise it
    extrapolates from the previous estimate with ``r = h_prev / h``, ``h = λ(t') - λ(t)``:
    ``D = (1 + 1/(2r)) x̂0 - (1/(2r)) x̂0_prev``. λ is the official clamped log-SNR
    (:func:`_log_snr`), so the second step of a schedule that starts at t = 1 is second order
    too, with ``λ(1) = ln(1e-10)``.
    """
    previous: torch.Tensor | None = None
    h_previous: torch.Tensor | None = None
    for i, t, t_next in _steps(sigmas, x.shape[0], on_step, cancel):
        v = velocity(x, t)
        denoised = x - _bcast(t, x) * v
        if on_denoised is not None:
            on_denoised(i, denoised)
        h = _log_snr(t_next) - _log_snr(t)
        c = (t_next - t) / ((1 - t_next).clamp(min=LOG_SNR_CLAMP) * t.clamp(min=LOG_SNR_CLAMP))
        estimate = denoised
        if previous is not None and h_previous is not None:
            # 1/(2r); zero (first order) for an item whose step ends at t' = 0.
            half_inv_r = torch.where(t_next > 0, h / (2 * h_previous), torch.zeros_like(h))
            half_inv_r = _bcast(half_inv_r, x)
            estimate = (1 + half_inv_r) * denoised - half_inv_r * previous
        ratio = t_next / t.clamp(min=LOG_SNR_CLAMP)
        x = _bcast(ratio, x) * x - _bcast((1 - t_next) * c, x) * estimate
        previous, h_previous = denoised, h
    return x


RK4_MIN_TIME = 1e-5
"""The fourth evaluation of an RK4 step never runs the model below this time (official)."""


def sample_rk4(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: NoiseSource | None = None,
    on_step: StepCallback | None = None,
    cancel: CancelToken | None = None,
    on_denoised: DenoisedHook | None = None,
) -> torch.Tensor:
    """Classic RK4 on ``dx/dt = v`` along ``sigmas``: four model evaluations per step, the last
    at ``max(t', 1e-5)`` (reference §5.4). Progress and cancel are per step."""
    for i, t, t_next in _steps(sigmas, x.shape[0], on_step, cancel):
        dt = t_next - t
        half = _bcast(dt / 2, x)
        k1 = velocity(x, t)
        if on_denoised is not None:
            on_denoised(i, x - _bcast(t, x) * k1)
        k2 = velocity(x + half * k1, t + dt / 2)
        k3 = velocity(x + half * k2, t + dt / 2)
        k4 = velocity(x + _bcast(dt, x) * k3, t_next.clamp(min=RK4_MIN_TIME))
        x = x + _bcast(dt / 6, x) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


SAMPLERS: Mapping[str, Sampler] = types.MappingProxyType(
    {
        "pingpong": sample_pingpong,
        "euler": sample_euler,
        "dpmpp": sample_dpmpp,
        "rk4": sample_rk4,
    }
)
"""Every sampler by the name a request gives (``engine.api.SAMPLERS`` lists the same names)."""


def get_sampler(name: str) -> Sampler:
    """The sampler called ``name``.

    Raises:
        GenerationError: no sampler has that name.
    """
    try:
        return SAMPLERS[name]
    except KeyError:
        raise GenerationError(
            f"Unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}."
        ) from None
