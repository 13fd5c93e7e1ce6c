"""Time schedules for the flow samplers (reference §5.2).

Official inference warps a linear grid with a logSNR shift: uniform in logSNR between
``logsnr_end`` (at u = 0) and ``anchor_logsnr`` (at u = 1). With ``rate = 0`` (the released
models) it does not depend on the sequence length. The first value is then forced to
``sigma_max``, which makes audio-to-audio schedules non-monotonic (a faithful port keeps that).

:func:`build_schedule` honours a model's ``sampling_distribution_shift_options`` (the official
``_create_dist_shift`` types ``none``, ``full``, ``flux`` and ``logsnr`` with their defaults);
without them it is the logSNR shift above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sa3_studio.engine.config import DistributionShiftOptions

DEFAULT_SAMPLING_SHIFT = DistributionShiftOptions(
    type="logsnr", anchor_length=2000, anchor_logsnr=-6.2, rate=0.0, logsnr_end=2.0
)
"""The official sampling shift of a config whose ``sampling_distribution_shift_options`` is
null (the released models)."""


def logsnr_schedule(
    steps: int,
    sigma_max: float = 1.0,
    *,
    anchor_logsnr: float = -6.2,
    logsnr_end: float = 2.0,
    rate: float = 0.0,
    length: float | None = None,
    anchor_length: float = 2000.0,
) -> torch.Tensor:
    """Flow times ``tau_0 .. tau_steps`` (float32, shape ``(steps + 1,)``) for a sampler.

    Args:
        steps: number of sampler steps (>= 1).
        sigma_max: starting noise level (1.0, or the init noise level for audio-to-audio).
        anchor_logsnr: logSNR at u = 1 for the anchor length.
        logsnr_end: logSNR at u = 0.
        rate: how the start logSNR moves with length (0 for the released models).
        length: effective latent length (only used when rate != 0).
        anchor_length: length at which ``anchor_logsnr`` applies.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    u = torch.linspace(sigma_max, 0.0, steps + 1, dtype=torch.float32)
    start = anchor_logsnr
    if rate and length:
        start = anchor_logsnr - rate * math.log2(length / anchor_length)
    logsnr = logsnr_end - u * (logsnr_end - start)
    tau = torch.sigmoid(-logsnr)
    tau = torch.where(u <= 0, torch.zeros_like(tau), tau)
    tau = torch.where(u >= 1, torch.ones_like(tau), tau)
    tau[0] = sigma_max
    return tau


def _shift(
    t: torch.Tensor, options: DistributionShiftOptions, length: torch.Tensor
) -> torch.Tensor:
    """Warp flow times ``t`` (N+1,) for sequence lengths ``length`` (B, 1) -> (B, N+1).

    Each type with the official class defaults for parameters the config leaves out."""
    kw = options.shift_kwargs()
    if options.type == "none":
        return t.expand(length.shape[0], -1).clone()
    if options.type == "logsnr":
        start = kw.get("anchor_logsnr", -6.2) - kw.get("rate", 1.0) * torch.log2(
            length / kw.get("anchor_length", 2000)
        )
        end = kw.get("logsnr_end", 2.0)
        out = torch.sigmoid(-(end - t * (end - start)))
        out = torch.where(t <= 0, torch.zeros_like(out), out)
        return torch.where(t >= 1, torch.ones_like(out), out)
    lo, hi = kw.get("min_length", 256), kw.get("max_length", 4096)
    clamped = length.clamp(lo, hi)
    if options.type == "full":
        base, top = kw.get("base_shift", 0.5), kw.get("max_shift", 1.15)
        mu = -(base + (top - base) * (clamped - lo) / (hi - lo))
        out = 1 - torch.exp(mu) / (torch.exp(mu) + (1 / (1 - t) - 1))
        return torch.sin(out * math.pi / 2) if kw.get("use_sine", False) else out
    # flux: alpha interpolated log-linearly in length, then t' = a t / (1 + (a - 1) t)
    a_min = math.log(max(kw.get("alpha_min", 1.0), 1e-8))
    a_max = math.log(max(kw.get("alpha_max", 1.0), 1e-8))
    log_lo, log_hi = math.log(lo), math.log(hi)
    if log_hi == log_lo:
        log_hi += 1e-8
    alpha = torch.exp(a_min + (torch.log(clamped) - log_lo) / (log_hi - log_lo) * (a_max - a_min))
    return alpha * t / (1 + (alpha - 1.0) * t)


def build_schedule(
    steps: int,
    sigma_max: float = 1.0,
    *,
    shift: DistributionShiftOptions | None = None,
    lengths: Sequence[float] = (1.0,),
) -> torch.Tensor:
    """Flow times for a sampler under a model's sampling shift (reference §5.2).

    As the official ``build_schedule``: a linear grid from ``sigma_max`` to 0 in float32,
    warped per item by the shift with that item's effective latent length, then the first
    value forced to ``sigma_max``.

    Args:
        steps: sampler steps (>= 1).
        sigma_max: starting noise level.
        shift: the model's ``sampling_distribution_shift_options``; ``None`` is the official
            default (:data:`DEFAULT_SAMPLING_SHIFT`).
        lengths: effective latent length of each batch item (``ceil(samples / downsampling)``
            of its duration); clamped to at least 1 as the official code does.

    Returns:
        ``(steps + 1,)`` when every item gets the same times, else ``(B, steps + 1)``. (The
        official code pairs item i with step i instead when B happens to equal steps + 1; that
        accident is not reproduced.)
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    options = DEFAULT_SAMPLING_SHIFT if shift is None else shift
    t = torch.linspace(sigma_max, 0.0, steps + 1, dtype=torch.float32)
    length = torch.tensor([max(float(v), 1.0) for v in lengths], dtype=torch.float32)[:, None]
    table = _shift(t, options, length).to(torch.float32)  # (B, N+1)
    table[:, 0] = sigma_max
    if bool((table == table[:1]).all()):
        return table[0].contiguous()
    return table
