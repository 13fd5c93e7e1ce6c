"""Fade curves and the equal-power splice used to accept a take (numpy only).

The splice keeps the region's length and works only inside it: it fades from the old audio into
the new over the first ``fade`` frames and back over the last ``fade`` frames. Samples outside
the region are never touched, so they stay bit-identical.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from sa3_studio.document.audio_data import FloatArray

FadeShape = Literal["linear", "equal_power", "s_curve"]
"""Fade curve: straight gain ramp, sine (constant power), or raised cosine (smooth both ends)."""

FADE_SHAPES: tuple[FadeShape, ...] = ("linear", "equal_power", "s_curve")


def fade_in_curve(frames: int, shape: FadeShape = "linear") -> npt.NDArray[np.float64]:
    """Gain rising from 0 over ``frames`` frames: the first gain is exactly 0 and the frame
    after the fade has gain 1 (so ``curve[i] = f(i / frames)``).

    Args:
        frames: curve length.
        shape: see :data:`FadeShape`.
    """
    t = np.arange(frames, dtype=np.float64) / max(frames, 1)
    if shape == "linear":
        return t
    if shape == "equal_power":
        return np.sin(0.5 * np.pi * t)
    if shape == "s_curve":
        return 0.5 - 0.5 * np.cos(np.pi * t)
    raise ValueError(f"unknown fade shape {shape!r}")


def fade_out_curve(frames: int, shape: FadeShape = "linear") -> npt.NDArray[np.float64]:
    """Gain falling to 0 over ``frames`` frames (the mirror of :func:`fade_in_curve`): the
    last gain is exactly 0."""
    return fade_in_curve(frames, shape)[::-1].copy()


def equal_power_weights(
    frames: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Weights ``(incoming, outgoing)`` for an equal-power crossfade of ``frames`` frames.

    Sampled at frame centres, so ``incoming**2 + outgoing**2 == 1`` at every frame and the two
    curves mirror each other exactly.
    """
    t = (np.arange(frames, dtype=np.float64) + 0.5) / max(frames, 1)
    return np.sin(0.5 * np.pi * t), np.cos(0.5 * np.pi * t)


def splice_frames(length: int, crossfade_frames: int) -> int:
    """The fade length :func:`splice` uses for a region of ``length`` frames: the request,
    shortened to half the region when the region is too short for two full fades."""
    return max(0, min(crossfade_frames, length // 2))


def crossfade(outgoing: FloatArray, incoming: FloatArray) -> FloatArray:
    """Equal-power crossfade from ``outgoing`` to ``incoming`` over their whole (equal) length.

    Returns:
        New float32 audio of the same shape.
    """
    if outgoing.shape != incoming.shape:
        raise ValueError(f"cannot crossfade {outgoing.shape} into {incoming.shape}")
    rise, fall = equal_power_weights(outgoing.shape[-1])
    mixed = outgoing.astype(np.float64) * fall + incoming.astype(np.float64) * rise
    return mixed.astype(np.float32)


def splice(original: FloatArray, replacement: FloatArray, crossfade_frames: int) -> FloatArray:
    """Blend ``replacement`` into ``original`` with equal-power fades inside the span.

    Args:
        original: ``(channels, frames)`` audio being replaced.
        replacement: ``(channels, frames)`` new audio of the same shape.
        crossfade_frames: fade length at each end (see :func:`splice_frames`).

    Returns:
        New ``(channels, frames)`` float32 audio: ``original`` fading into ``replacement`` over
        the first fade, ``replacement`` in the middle, and fading back over the last fade.
    """
    if original.shape != replacement.shape:
        raise ValueError(f"cannot splice {replacement.shape} into {original.shape}")
    n = splice_frames(original.shape[1], crossfade_frames)
    out = np.array(replacement, dtype=np.float32, copy=True)  # (C, T)
    if n == 0:
        return out
    out[:, :n] = crossfade(original[:, :n], replacement[:, :n])
    out[:, -n:] = crossfade(replacement[:, -n:], original[:, -n:])
    return out
