"""Takes: every generation for a region, with everything needed to reproduce it.

A :class:`Take` holds the generated audio for its region (exactly the region's length, at the
project rate), the prompt, negative prompt, seed, model and weights hash, all generation settings,
when it was made and how long it took, and the take it was derived from (its lineage). Takes stay
in the project until the user deletes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from sa3_studio.document.audio_data import AudioData

SettingValue: TypeAlias = str | int | float | bool | None
"""A JSON scalar: the values allowed in :attr:`GenerationSettings.extra`."""


def _check_finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """How to generate (per region) or how a take was generated.

    ``None`` means "the model's default" (see ``sa3_studio.engine.api.GenerationRequest``).

    Attributes:
        steps: sampler steps.
        cfg_scale: classifier-free guidance scale.
        apg_scale: adaptive projected guidance blend (1 = pure APG, 0 = vanilla CFG).
        sampler: "pingpong", "euler", "dpmpp" or "rk4".
        seed: the seed to use; ``None`` draws a new one for every take.
        init_noise_level: 1.0 = start from pure noise.
        context_s: seconds of audio the model sees around the region (the window length);
            ``None`` = as much as the model allows.
        extra: further settings as sorted ``(name, JSON scalar)`` pairs, so that settings added
            later survive a round trip through an older build.
    """

    steps: int | None = None
    cfg_scale: float | None = None
    apg_scale: float = 1.0
    sampler: str | None = None
    seed: int | None = None
    init_noise_level: float = 1.0
    context_s: float | None = None
    extra: tuple[tuple[str, SettingValue], ...] = ()

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        _check_finite("cfg_scale", self.cfg_scale)
        _check_finite("apg_scale", self.apg_scale)
        _check_finite("init_noise_level", self.init_noise_level)
        _check_finite("context_s", self.context_s)
        if self.context_s is not None and self.context_s <= 0:
            raise ValueError(f"context_s must be positive, got {self.context_s}")
        names = [name for name, _ in self.extra]
        if names != sorted(set(names)):
            raise ValueError("extra settings must be sorted by name without repeats")
        for name, value in self.extra:
            if not isinstance(value, str | int | float | bool | type(None)):
                raise ValueError(f"extra setting {name!r} is not a JSON scalar")
            if isinstance(value, float):
                _check_finite(name, value)

    @staticmethod
    def extra_from(mapping: Mapping[str, SettingValue]) -> tuple[tuple[str, SettingValue], ...]:
        """Turn a mapping into the sorted pairs :attr:`extra` wants."""
        return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True)
class Take:
    """One generation for a region.

    Attributes:
        id: unique in the project.
        region_id: the region it was generated for.
        number: 1, 2, 3... within its region, for display ("take 3").
        audio: ``(2, region frames)`` generated audio for exactly the region's span.
        prompt: the prompt used.
        negative_prompt: the negative prompt used ("" = none).
        seed: the seed actually used.
        model_name: the model id ("small-music", "medium-base", ...).
        weights_hash: short hash of the weights that made it.
        settings: every generation setting used.
        created_at: Unix time (seconds) when the take was made.
        elapsed_s: seconds the generation took.
        parent_take_id: the take this one was derived from (variation, re-roll), or ``None``.
    """

    id: str
    region_id: str
    number: int
    audio: AudioData
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    model_name: str = ""
    weights_hash: str = ""
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    created_at: float = 0.0
    elapsed_s: float = 0.0
    parent_take_id: str | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.region_id:
            raise ValueError("a take needs an id and a region id")
        if self.number < 1:
            raise ValueError(f"take numbers start at 1, got {self.number}")
        _check_finite("created_at", self.created_at)
        _check_finite("elapsed_s", self.elapsed_s)
        if self.elapsed_s < 0:
            raise ValueError("elapsed_s cannot be negative")
        if self.parent_take_id == self.id:
            raise ValueError("a take cannot be derived from itself")

    @property
    def frames(self) -> int:
        """Length of the take's audio in frames."""
        return self.audio.frames


def lineage(takes: Iterable[Take], take_id: str) -> tuple[Take, ...]:
    """Return the chain of takes that led to ``take_id``, oldest first, ending with that take.

    A parent that was deleted ends the chain (the chain starts at the oldest take still kept).

    Args:
        takes: the takes to search (usually ``project.takes``).
        take_id: the take whose ancestry is wanted.

    Raises:
        KeyError: ``take_id`` is not among ``takes``.
    """
    by_id = {take.id: take for take in takes}
    chain = [by_id[take_id]]
    seen = {take_id}
    while (parent := chain[-1].parent_take_id) is not None and parent in by_id:
        if parent in seen:  # a cycle can only come from a hand-edited file; stop rather than hang
            break
        seen.add(parent)
        chain.append(by_id[parent])
    return tuple(reversed(chain))
