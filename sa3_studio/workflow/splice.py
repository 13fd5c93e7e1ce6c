"""From the model's output back into the source, at the source's own rate and channel count.

:func:`region_audio` takes one engine result for a window and returns each region's new audio at
the source's rate (placed exactly: no float-seconds round trip). :func:`splice` writes those into
a copy of the source: outside the regions every sample is the source's own, bit for bit; inside,
equal-power crossfades lead in and out of the new audio (only at region edges that border the
source). Mono sources get the stereo result downmixed; more than two channels are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.resample import resample
from sa3_studio.document.crossfade import crossfade, splice_frames
from sa3_studio.engine.api import GenerationResult
from sa3_studio.errors import GenerationError
from sa3_studio.workflow.plan import PlacedRegion, Plan, WindowPlan

Audio = npt.NDArray[np.floating]


def check_channels(channels: int) -> None:
    """Raise when a source's channels cannot take the model's stereo result.

    Raises:
        GenerationError: not 1 or 2 channels.
    """
    if channels not in (1, 2):
        raise GenerationError(
            f"The source has {channels} channels, but the model makes stereo; convert it to "
            "stereo first (on the command line: --channels 2, which writes a stereo result)."
        )


def to_channels(audio: npt.NDArray[np.float32], channels: int) -> npt.NDArray[np.float32]:
    """Stereo ``(2, n)`` as ``channels`` channels: mono is the mean of the two."""
    check_channels(channels)
    if channels == 2 or audio.shape[0] == channels:
        return audio
    mono: npt.NDArray[np.float32] = np.mean(audio, axis=0, keepdims=True, dtype=np.float32)
    return mono


def _aligned_start(start_frame: int, model_rate: int, rate: int) -> int:
    """The latest model frame at or before ``start_frame`` that falls on a source frame."""
    step = model_rate // math.gcd(model_rate, rate)
    return start_frame - start_frame % step


def window_result(
    result_audio: npt.NDArray[np.float32], start_frame: int, plan: Plan, window: WindowPlan
) -> tuple[npt.NDArray[np.float32], int]:
    """A decoded result at the source's rate: ``((B, 2, n), window frame of its first sample)``.

    The decoded span is padded at the front to a model frame that lands exactly on a source
    frame, then resampled, so its place in the window is an exact integer.
    """
    audio = np.asarray(result_audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio[None]
    model_rate = plan.limits.sample_rate
    if plan.rate == model_rate:
        return audio, start_frame
    aligned = _aligned_start(start_frame, model_rate, plan.rate)
    pad = start_frame - aligned
    if pad:
        audio = np.concatenate((np.zeros((*audio.shape[:2], pad), np.float32), audio), axis=-1)
    converted = np.stack([resample(take, model_rate, plan.rate) for take in audio])
    return converted, aligned * plan.rate // model_rate


def region_audio(
    result: GenerationResult, plan: Plan, window: WindowPlan
) -> dict[str, npt.NDArray[np.float32]]:
    """Each region's new audio, ``(takes, 2, region frames)`` at the source's rate.

    Raises:
        GenerationError: the result does not cover a region (the engine decoded too little).
    """
    audio, first = window_result(result.audio, result.start_frame, plan, window)
    out: dict[str, npt.NDArray[np.float32]] = {}
    for r in window.regions:
        lo = r.start - window.start - first
        hi = lo + r.length
        if lo < 0:
            raise GenerationError(
                f"The model's output starts after region {r.id}; this is a bug, please report it."
            )
        piece = audio[..., lo:hi]
        if piece.shape[-1] < r.length:  # at most a frame or two short at the window's end
            missing = r.length - piece.shape[-1]
            if missing > max(2, plan.rate // 100):
                raise GenerationError(
                    f"The model's output ends {missing} frames before region {r.id} does; this "
                    "is a bug, please report it."
                )
            edge = piece[..., -1:] if piece.shape[-1] else np.zeros((*piece.shape[:2], 1))
            piece = np.concatenate((piece, np.repeat(edge, missing, axis=-1)), axis=-1)
        out[r.id] = np.ascontiguousarray(piece, dtype=np.float32)
    return out


def whole_window(
    result: GenerationResult, plan: Plan, window: WindowPlan
) -> npt.NDArray[np.float32]:
    """A whole decoded window, ``(takes, 2, window frames)`` at the source's rate."""
    audio, first = window_result(result.audio, result.start_frame, plan, window)
    out = np.zeros((audio.shape[0], audio.shape[1], window.length), dtype=np.float32)
    n = max(0, min(window.length - first, audio.shape[-1]))
    out[..., first : first + n] = audio[..., :n]
    return out


def place_source(source: Audio, plan: Plan) -> Audio:
    """The output before any region is replaced: the source at its offset, silence added."""
    if source.shape[-1] != plan.source_frames:
        raise ValueError(f"source has {source.shape[-1]} frames, the plan {plan.source_frames}")
    if plan.output_frames == plan.source_frames:
        return np.array(source, copy=True)
    out = np.zeros((source.shape[0], plan.output_frames), dtype=source.dtype)
    out[:, plan.offset : plan.offset + plan.source_frames] = source
    return out


def splice(
    source: Audio,
    plan: Plan,
    regions: Mapping[str, npt.NDArray[np.float32]],
    crossfade_frames: int,
) -> Audio:
    """The output: the source with the regions' new audio in place.

    Args:
        source: ``(channels, plan.source_frames)`` at ``plan.rate``; 1 or 2 channels; any float
            dtype (kept, so a float64 read of a 32-bit file stays exact).
        plan: the plan that made the regions.
        regions: region id -> ``(2, region frames)`` new audio (one take).
        crossfade_frames: equal-power fade at each region edge that borders the source,
            inside the region (shortened to half a short region).

    Returns:
        ``(channels, plan.output_frames)`` in ``source``'s dtype.

    Raises:
        GenerationError: the source has more than two channels, or a region is missing.
    """
    check_channels(source.shape[0])
    if crossfade_frames < 0:
        raise GenerationError(f"A crossfade of {crossfade_frames} frames: use 0 or more.")
    out = place_source(source, plan)
    for r in plan.regions:
        if r.id not in regions:
            raise GenerationError(f"There is no new audio for region {r.id}.")
        splice_region(out, r, regions[r.id], crossfade_frames)
    return out


def splice_region(
    out: Audio, region: PlacedRegion, new: npt.NDArray[np.float32], crossfade_frames: int
) -> None:
    """Write one region's new audio ``(2, region frames)`` into ``out`` (in place)."""
    body = np.array(to_channels(np.asarray(new, dtype=np.float32), out.shape[0]), copy=True)
    if body.shape[-1] != region.length:
        raise ValueError(
            f"region {region.id} is {region.length} frames, its audio {body.shape[-1]}"
        )
    old = out[:, region.start : region.end]
    n = splice_frames(region.length, crossfade_frames)
    if n and region.fade_in:
        body[:, :n] = crossfade(old[:, :n].astype(np.float32), body[:, :n])
    if n and region.fade_out:
        body[:, -n:] = crossfade(body[:, -n:], old[:, -n:].astype(np.float32))
    out[:, region.start : region.end] = body.astype(out.dtype)
