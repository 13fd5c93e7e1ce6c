"""Time schedules for the flow samplers (reference §5.2).

Official inference warps a linear grid with a logSNR shift: uniform in logSNR between
``logsnr_end`` (at u = 0) and ``anchor_logsnr`` (at u = 1). With ``rate = 0`` (the released
models) it does not depend on the sequence length. The first value is then forced to
``sigma_max``, which makes audio-to-audio schedules non-monotonic (a faithful port keeps that).
"""

from __future__ import annotations

import math

import torch


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
