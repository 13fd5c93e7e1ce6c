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
        extra: settings this version does not know, as sorted ``(name, JSON scalar)`` pairs,
            kept so that they survive a round trip (how a take was made is in
            :attr:`Take.provenance`, not here).
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
class LoraUse:
    """A LoRA applied when a take was made.

    Attributes:
        path: its file (as given; only the name is shown).
        strength: 0 = off, 1 = as trained.
        file_hash: short hash of the file's bytes ("" when unknown, e.g. older projects).
    """

    path: str
    strength: float
    file_hash: str = ""

    def __post_init__(self) -> None:
        _check_finite("LoRA strength", self.strength)

    @property
    def name(self) -> str:
        """The file name without folder or suffix ("drums")."""
        base = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        return base.rsplit(".", 1)[0] if "." in base else base


@dataclass(frozen=True, slots=True)
class SeamReport:
    """How audible a take's splice seams are (higher is worse; ``None`` at the song's edges).

    Attributes:
        seam_in: score of the seam at the take's start.
        seam_out: score of the seam at its end.
        bad: True when a seam scored as audible.
    """

    seam_in: float | None = None
    seam_out: float | None = None
    bad: bool = False

    def __post_init__(self) -> None:
        _check_finite("seam_in", self.seam_in)
        _check_finite("seam_out", self.seam_out)

    @property
    def worst(self) -> float | None:
        """The worse of the two scores, or ``None`` when there is none."""
        scores = [s for s in (self.seam_in, self.seam_out) if s is not None]
        return max(scores) if scores else None


@dataclass(frozen=True, slots=True)
class LoudnessReport:
    """The gain that would match a take's loudness to the song around it.

    Attributes:
        gain_db: the gain in dB (0 when there is nothing to match).
        note: the sentence saying why.
    """

    gain_db: float = 0.0
    note: str = ""

    def __post_init__(self) -> None:
        _check_finite("gain_db", self.gain_db)


@dataclass(frozen=True, slots=True)
class Provenance:
    """How a take was made, beyond what :class:`Take` and its settings hold.

    The prompt sent, negative prompt, seed, model and weights hash are on the take; steps,
    guidance, sampler and context length are in its :class:`GenerationSettings`.

    Attributes:
        mode: "regenerate", "extend", "vary", "new" or "loop" ("" when unknown).
        prefix: name of the tag prefix ("Music", "SFX", ...; "" when unknown).
        user_prompt: the user's own words in the prompt (without prefix, tempo and key).
        tempo_bpm: tempo added to the prompt, if any.
        key: key added to the prompt ("" for none).
        window_start: first project frame of the window sent to the model.
        window_end: project frame after the window.
        model_rate: the model's sample rate.
        text_only: made from the prompt alone (no song around it).
        loras: LoRAs applied, in order.
        seam: how the take's seams score, when scored.
        loudness: the loudness match, when measured.
    """

    mode: str = ""
    prefix: str = ""
    user_prompt: str = ""
    tempo_bpm: float | None = None
    key: str = ""
    window_start: int | None = None
    window_end: int | None = None
    model_rate: int | None = None
    text_only: bool = False
    loras: tuple[LoraUse, ...] = ()
    seam: SeamReport | None = None
    loudness: LoudnessReport | None = None

    def __post_init__(self) -> None:
        _check_finite("tempo_bpm", self.tempo_bpm)
        if (
            self.window_start is not None
            and self.window_end is not None
            and self.window_end < self.window_start
        ):
            raise ValueError(
                f"window ends before it starts: {self.window_start}, {self.window_end}"
            )

    @property
    def loras_text(self) -> str:
        """How the LoRAs are shown: ``"drums 0.8, keys 1"``."""
        return ", ".join(f"{lora.name} {lora.strength:g}" for lora in self.loras)

    @classmethod
    def from_extra(
        cls, extra: Iterable[tuple[str, SettingValue]]
    ) -> tuple[Provenance, tuple[tuple[str, SettingValue], ...]]:
        """Read the string-keyed settings older versions wrote for a take.

        Returns:
            ``(provenance, the pairs it did not know)``.
        """
        values = dict(extra)
        known = set(_EXTRA_KEYS)

        def text(name: str) -> str:
            v = values.get(name)
            return v if isinstance(v, str) else ""

        def number(name: str) -> float | None:
            v = values.get(name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                return None
            return float(v)

        def whole(name: str) -> int | None:
            v = number(name)
            return None if v is None else int(v)

        loras = tuple(_lora_from_text(part) for part in text("loras").split(", ") if part)
        seam = None
        if {"seam_in", "seam_out", "seam_bad"} & values.keys():
            seam = SeamReport(number("seam_in"), number("seam_out"), bool(values.get("seam_bad")))
        loudness = None
        if "loudness_gain_db" in values:
            loudness = LoudnessReport(number("loudness_gain_db") or 0.0, text("loudness_note"))
        tempo = number("tempo_bpm")
        provenance = cls(
            mode=text("mode"),
            prefix=text("prefix"),
            user_prompt=text("user_prompt"),
            tempo_bpm=tempo if tempo else None,
            key=text("key"),
            window_start=whole("window_start"),
            window_end=whole("window_end"),
            model_rate=whole("model_rate"),
            text_only=bool(values.get("text_only", False)),
            loras=loras,
            seam=seam,
            loudness=loudness,
        )
        rest = tuple((k, v) for k, v in sorted(values.items()) if k not in known)
        return provenance, rest


_EXTRA_KEYS = (
    "mode",
    "prefix",
    "user_prompt",
    "tempo_bpm",
    "key",
    "window_start",
    "window_end",
    "model_rate",
    "text_only",
    "loras",
    "seam_in",
    "seam_out",
    "seam_bad",
    "loudness_gain_db",
    "loudness_note",
)
"""The ``extra`` names older versions used for what :class:`Provenance` now holds."""


def _lora_from_text(part: str) -> LoraUse:
    """``"drums 0.8"`` (how older versions recorded a LoRA) as a :class:`LoraUse`."""
    name, _, strength = part.rpartition(" ")
    try:
        value = float(strength)
    except ValueError:
        return LoraUse(part, 1.0)
    return LoraUse(name or part, value if math.isfinite(value) else 1.0)


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
        provenance: how it was made (mode, prompt parts, window, LoRAs, seam and loudness).
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
    provenance: Provenance = field(default_factory=Provenance)

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
