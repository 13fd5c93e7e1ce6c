"""Engine requests for planned windows: prompts, seeds, and the window audio at the model's rate.

:func:`compose_prompt` makes the prompt the model is trained on (tag prefix, the user's words,
tempo and key); :class:`Settings` holds what the user chose; :func:`window_audio` cuts a window
out of the source and converts it to the model's rate and stereo; :func:`build_request` makes
the :class:`~sa3_studio.engine.api.GenerationRequest` for one window. Window times in the
request are the only seconds of the workflow; they are relative to the window.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.resample import resample
from sa3_studio.engine.api import SAMPLERS, GenerationRequest
from sa3_studio.errors import GenerationError
from sa3_studio.workflow.plan import Mode, ModelLimits, Plan, WindowPlan

SEED_LIMIT = 2**31
"""Seeds are drawn from ``[0, SEED_LIMIT)`` and shown as plain numbers."""

PROMPT_PREFIXES: Mapping[str, str] = {
    "Music": "TrackType: Music, VocalType: Instrumental, ",
    "Instrument": "TrackType: Instrument, ",
    "SFX": "TrackType: SFX, ",
    "None": "",
}
"""The tag prefixes of the official prompting guide, by name."""

TAG_START = "TrackType:"
"""A prompt that starts with this carries its own tags: no prefix is added."""

DECODE_MARGIN_S = 0.1
"""Decoded audio kept beyond each side of a window's regions (for the resampler's filter)."""


def random_seed(rng: random.Random | None = None) -> int:
    """A fresh seed in ``[0, 2**31)`` (never -1: seeds are always shown as numbers)."""
    return (rng or random.SystemRandom()).randrange(SEED_LIMIT)


def default_prefix(model_name: str) -> str:
    """The prefix name the official guide recommends for a model ("SFX" or "Music")."""
    return "SFX" if "sfx" in model_name.lower() else "Music"


def compose_prompt(prefix: str, text: str, *, tempo_bpm: float | None = None, key: str = "") -> str:
    """The prompt sent to the model: prefix, the user's text, then tempo and key.

    Args:
        prefix: the tag prefix itself (e.g. ``"TrackType: SFX, "``) or "" for none. It is left
            out when the text already starts with it, or with tags of its own.
        text: what the user typed.
        tempo_bpm: appended as ``"120 BPM"`` when set.
        key: appended as ``"A minor"`` when set.

    Returns:
        e.g. ``"TrackType: Music, VocalType: Instrumental, warm pads, 120 BPM, A minor"``.
    """
    body = " ".join(text.split())
    if prefix and (
        body.lower().startswith(prefix.strip().rstrip(",").lower()) or body.startswith(TAG_START)
    ):
        prefix = ""  # the user typed the tags already
    extras: list[str] = []
    if tempo_bpm is not None and tempo_bpm > 0:
        extras.append(f"{tempo_bpm:g} BPM")
    if key:
        extras.append(key)
    tail = ", ".join(p for p in (body.rstrip(", "), *extras) if p)
    return f"{prefix}{tail}".strip()


@dataclass(frozen=True, slots=True)
class Settings:
    """What the user chose for one generation.

    Attributes:
        prompt: the user's words (without the prefix).
        prefix: the tag prefix itself ("" for none).
        negative_prompt: what should not be heard (-base models; "" for none).
        tempo_bpm: appended to the prompt when set.
        key: appended to the prompt when set.
        seed: the first take's seed (always a real number).
        takes: takes made together in one batch (same seed, one request).
        steps: sampler steps (``None``: the model's default).
        cfg_scale: guidance scale (-base models; ``None``: the model's default).
        sampler: one of ``engine.api.SAMPLERS`` (``None``: the model's default).
        vary_strength: init noise level of a variation (mode vary), 0 < s <= 1.
        loras: ``(file, strength)`` of the LoRAs to apply, in order.
    """

    prompt: str = ""
    prefix: str = ""
    negative_prompt: str = ""
    tempo_bpm: float | None = None
    key: str = ""
    seed: int = 0
    takes: int = 1
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    vary_strength: float = 0.6
    loras: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.seed < SEED_LIMIT:
            raise GenerationError(
                f"The seed {self.seed} is out of range; use a whole number from 0 to "
                f"{SEED_LIMIT - 1}."
            )
        if self.takes < 1:
            raise GenerationError(f"{self.takes} takes: make at least 1.")
        if self.steps is not None and self.steps < 1:
            raise GenerationError(f"{self.steps} steps: use at least 1.")
        if self.cfg_scale is not None and not math.isfinite(self.cfg_scale):
            raise GenerationError(f"The guidance scale {self.cfg_scale} is not a number.")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise GenerationError(
                f"{self.sampler!r} is not a sampler; use one of {', '.join(SAMPLERS)}."
            )
        if not 0.0 < self.vary_strength <= 1.0:
            raise GenerationError(
                f"The variation strength {self.vary_strength} must be more than 0 and at most 1."
            )
        if self.tempo_bpm is not None and not (
            math.isfinite(self.tempo_bpm) and self.tempo_bpm > 0
        ):
            raise GenerationError(f"The tempo {self.tempo_bpm} BPM must be a positive number.")
        for path, strength in self.loras:
            if not math.isfinite(strength):
                raise GenerationError(f"The strength of the LoRA {path} must be a number.")

    def full_prompt(self, text: str | None = None) -> str:
        """The prompt sent for ``text`` (default: :attr:`prompt`)."""
        return compose_prompt(
            self.prefix,
            self.prompt if text is None else text,
            tempo_bpm=self.tempo_bpm,
            key=self.key,
        )

    def window_prompts(self, window: WindowPlan) -> tuple[str, str]:
        """(full prompt, negative prompt) for a window (its regions' own, or these)."""
        negative = (
            self.negative_prompt if window.negative_prompt is None else window.negative_prompt
        )
        return self.full_prompt(window.prompt), negative.strip()


def to_stereo(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """``(C, n)`` as stereo float32: mono is duplicated, two channels are kept.

    Raises:
        GenerationError: more than two channels (convert them to stereo first).
    """
    channels = audio.shape[0]
    if channels == 1:
        return np.repeat(np.asarray(audio, dtype=np.float32), 2, axis=0)
    if channels == 2:
        return np.asarray(audio, dtype=np.float32)
    raise GenerationError(
        f"The source has {channels} channels, but the model makes stereo; convert it to stereo "
        "first (on the command line: --channels 2, which writes a stereo result)."
    )


def window_audio(
    source: npt.NDArray[np.floating], plan: Plan, window: WindowPlan
) -> npt.NDArray[np.float32]:
    """The window's audio at the model's rate, stereo, exactly ``window.model_frames`` long.

    Args:
        source: ``(channels, plan.source_frames)`` at ``plan.rate``.
        plan: the plan.
        window: one of its windows (output frames; the parts outside the source are silence).
    """
    if source.shape[-1] != plan.source_frames:
        raise ValueError(f"source has {source.shape[-1]} frames, the plan {plan.source_frames}")
    out = np.zeros((source.shape[0], window.length), dtype=np.float32)  # (C, W)
    lo = max(window.start, plan.offset)
    hi = min(window.end, plan.offset + plan.source_frames)
    if hi > lo:
        out[:, lo - window.start : hi - window.start] = source[
            :, lo - plan.offset : hi - plan.offset
        ]
    return to_model(out, plan.rate, plan.limits, window.model_frames)


def to_model(
    audio: npt.NDArray[np.floating], rate: int, limits: ModelLimits, model_frames: int
) -> npt.NDArray[np.float32]:
    """Window audio ``(C, W)`` at ``rate`` as the model takes it: stereo, at its rate,
    exactly ``model_frames`` long."""
    stereo = to_stereo(audio)
    model_rate = limits.sample_rate
    converted = stereo if rate == model_rate else resample(stereo, rate, model_rate)
    return fit(converted, model_frames)


def fit(audio: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float32]:
    """``(C, n)`` cut or zero-padded at the end to ``frames``."""
    if audio.shape[-1] == frames:
        return np.ascontiguousarray(audio, dtype=np.float32)
    out = np.zeros((audio.shape[0], frames), dtype=np.float32)
    n = min(frames, audio.shape[-1])
    out[:, :n] = audio[:, :n]
    return out


def window_seconds(plan: Plan, window: WindowPlan) -> tuple[tuple[float, float], ...]:
    """The window's regions as ``(start, end)`` seconds in window time, touching ones merged."""
    merged: list[list[int]] = []
    for r in window.regions:
        s, e = r.start - window.start, r.end - window.start
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple((s / plan.rate, e / plan.rate) for s, e in merged)


def decode_range(plan: Plan, window: WindowPlan) -> tuple[float, float]:
    """Seconds of the window to decode: its regions with a margin on each side."""
    first = window.regions[0].start - window.start
    last = max(r.end for r in window.regions) - window.start
    margin = round(DECODE_MARGIN_S * plan.rate)
    return max(0, first - margin) / plan.rate, min(window.length, last + margin) / plan.rate


def build_request(
    plan: Plan,
    window: WindowPlan,
    settings: Settings,
    *,
    seed: int | None = None,
    audio: npt.NDArray[np.float32] | None = None,
    latents: object = None,
    whole: bool = False,
) -> GenerationRequest:
    """The engine request for one window.

    Args:
        plan: the plan.
        window: the window.
        settings: the user's choices.
        seed: this request's seed (default ``settings.seed``).
        audio: the window at the model's rate (:func:`window_audio`); not needed for "new".
        latents: the window's latents from ``pipeline.encode`` (encode once, many takes).
        whole: decode the whole window, not only around its regions.

    Raises:
        GenerationError: a window with source context but no audio.
    """
    prompt, negative = settings.window_prompts(window)
    duration = window.model_frames / plan.limits.sample_rate
    request = GenerationRequest(
        prompt=prompt,
        negative_prompt=negative or None,
        duration=duration,
        steps=settings.steps,
        cfg_scale=settings.cfg_scale,
        sampler=settings.sampler,
        seed=settings.seed if seed is None else seed,
        batch_size=settings.takes,
        clamp_output=False,
    )
    if window.text_only:
        return request
    if audio is None:
        raise GenerationError("This window needs the source audio around its regions.")
    vary = plan.mode is Mode.VARY
    return dataclasses.replace(
        request,
        inpaint_audio=None if latents is not None else audio,
        inpaint_regions=window_seconds(plan, window),
        source_latents=latents,
        init_audio=audio if vary else None,
        init_noise_level=settings.vary_strength if vary else 1.0,
        decode_range=None if whole else decode_range(plan, window),
    )
