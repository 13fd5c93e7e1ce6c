"""Lengths, padding masks and inpainting masks of a generation (reference §5.5, §5.7).

The official ``generate`` makes room for ``pad_seconds`` (6 s) of headroom after the requested
duration, aligns the audio length to whole autoencoder chunks, marks latents past
``effective + headroom`` as padding, and after decoding zeroes and truncates the audio.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sa3_studio.errors import GenerationError

PAD_SECONDS = 6.0


@dataclass(frozen=True, slots=True)
class LengthPlan:
    """Sizes of one generation.

    Attributes:
        audio_samples: samples the model works on (A), a multiple of the alignment.
        latent_len: latent frames (L = A / downsampling).
        valid_latents: per item, latents that are not padding.
        output_samples: per item, ``int(duration * sample_rate)``.
        truncate: True when every item has the same duration (the output is cut to it).
    """

    audio_samples: int
    latent_len: int
    valid_latents: tuple[int, ...]
    output_samples: tuple[int, ...]
    truncate: bool

    def padding_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Bool ``(B, L)``: True for latents that are not padding."""
        idx = torch.arange(self.latent_len, device=device)[None, :]
        valid = torch.tensor(self.valid_latents, device=device)[:, None]
        return idx < valid


def plan_lengths(
    durations: Sequence[float],
    *,
    sample_rate: int,
    downsampling: int,
    align_latents: int,
    max_samples: int,
    pad_seconds: float = PAD_SECONDS,
) -> LengthPlan:
    """The official length rules for per-item ``durations`` (seconds).

    Raises:
        GenerationError: a duration is not positive or exceeds the model's maximum.
    """
    if not durations:
        raise GenerationError("No duration was given.")
    max_seconds = max_samples / sample_rate
    for d in durations:
        if not (d > 0) or not math.isfinite(d):
            raise GenerationError(f"Duration must be a positive number of seconds, not {d}.")
        if d > max_seconds + 1e-9:
            raise GenerationError(
                f"{d:.1f} s is longer than this model can make ({max_seconds:.1f} s); "
                "choose a shorter duration, or use a context window."
            )
    longest = max(durations)
    audio = int((longest + pad_seconds) * sample_rate)
    audio = math.ceil(audio / downsampling) * downsampling
    align = downsampling * align_latents
    audio = math.ceil(audio / align) * align
    audio = min(audio, max_samples)
    latent_len = audio // downsampling
    headroom = int(pad_seconds * sample_rate / downsampling)
    valid = tuple(
        min(math.ceil(int(d * sample_rate) / downsampling) + headroom, latent_len)
        for d in durations
    )
    outputs = tuple(int(d * sample_rate) for d in durations)
    return LengthPlan(
        audio_samples=audio,
        latent_len=latent_len,
        valid_latents=valid,
        output_samples=outputs,
        truncate=len(set(durations)) == 1,
    )


def validate_regions(
    regions: Sequence[tuple[float, float]], audio_seconds: float
) -> tuple[tuple[float, float], ...]:
    """Check inpainting regions: inside the audio, non-empty, sorted and disjoint.

    Raises:
        GenerationError: with a sentence naming the bad region.
    """
    out: list[tuple[float, float]] = []
    for start, end in regions:
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise GenerationError(
                f"Region {start:.3f}-{end:.3f} s is empty or negative; "
                "a region must end after it starts."
            )
        if start >= audio_seconds:
            raise GenerationError(
                f"Region {start:.3f}-{end:.3f} s starts after the end of the audio "
                f"({audio_seconds:.3f} s)."
            )
        out.append((float(start), float(end)))
    out.sort()
    for (s0, e0), (s1, e1) in itertools.pairwise(out):
        if s1 < e0:
            raise GenerationError(
                f"Regions {s0:.3f}-{e0:.3f} s and {s1:.3f}-{e1:.3f} s overlap; "
                "merge them or make them disjoint."
            )
    return tuple(out)


def inpaint_mask(
    plan: LengthPlan,
    regions: Sequence[tuple[float, float]],
    durations: Sequence[float],
    *,
    sample_rate: int,
    downsampling: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Latent keep-mask ``(B, 1, L)`` float32: 1 = keep, 0 = generate.

    Built at the sample rate (regions ``[int(start*sr), int(end*sr))`` and everything past each
    item's duration set to 0), then each latent takes the value of its frame's first sample.
    """
    batch = len(durations)
    mask = torch.ones(batch, plan.audio_samples, dtype=torch.float32, device=device)
    for start, end in regions:
        mask[:, int(start * sample_rate) : int(end * sample_rate)] = 0
    for b, d in enumerate(durations):
        mask[b, int(d * sample_rate) :] = 0
    return mask[:, None, ::downsampling][..., : plan.latent_len].contiguous()  # (B, 1, L)
