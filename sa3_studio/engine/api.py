"""Torch-free types of the engine's public API.

The GUI, the CLI and the tests build a :class:`GenerationRequest`, hand it to
``Pipeline.generate(request, on_step=..., cancel=...)`` and get a :class:`GenerationResult`.
Nothing here imports torch, so the GUI can use these types without loading the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sa3_studio.errors import Cancelled

StepCallback = Callable[[int, int], None]
"""Called after every sampler step with (steps done, total steps)."""

DEFAULT_STEPS = 8
"""Official default number of sampler steps (post-trained models)."""

BASE_DEFAULT_STEPS = 50
"""Steps recommended by the official docs for -base (rectified-flow) models."""

BASE_DEFAULT_CFG = 7.0
"""CFG scale recommended by the official docs for -base models."""

SAMPLERS = ("pingpong", "euler", "dpmpp", "rk4")
"""Samplers a request may name: ping-pong (the post-trained models' default), Euler (the -base
models' default), DPM-Solver++(2M) and RK4 (the official alternatives for -base models)."""


class CancelToken:
    """A thread-safe cancel flag, checked by the engine once per sampler step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~sa3_studio.errors.Cancelled` if cancel() was called."""
        if self._event.is_set():
            raise Cancelled("Generation was cancelled.")


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything one generation needs; audio arrays are float32 at the model's sample rate.

    Attributes:
        prompt: one prompt for every batch item, or one per item.
        negative_prompt: only used when ``cfg_scale`` is not 1 (-base models).
        duration: seconds to generate (one value, or one per batch item). ``None`` means the
            length of ``inpaint_audio`` / ``init_audio``; required for text-to-audio.
        steps: sampler steps; ``None`` picks the model's default.
        cfg_scale: classifier-free guidance scale; ``None`` picks 1.0 (post-trained) or 7.0 (base).
        apg_scale: adaptive projected guidance blend (1 = pure APG, 0 = vanilla CFG).
        cfg_interval: ``(lo, hi)`` flow times (1 = noise, 0 = clean) at which guidance runs;
            outside it a step is one conditional pass (official ``cfg_interval``).
        cfg_rescale: 0-1 blend towards the guided velocity rescaled to the conditional one's
            standard deviation over channels (official ``scale_phi``; 0 = off).
        seed: ``None`` draws a random seed; the seed used is always reported in the result.
        batch_size: number of takes generated together.
        inpaint_audio: ``(channels, frames)`` source audio whose regions are regenerated.
        inpaint_regions: ``(start, end)`` seconds to regenerate; sorted, disjoint.
        source_latents: latents of ``inpaint_audio`` from ``Pipeline.encode`` (encode once,
            generate many takes); when given, ``inpaint_audio`` is not encoded again.
        init_audio: ``(channels, frames)`` audio for audio-to-audio.
        init_noise_level: 1.0 = pure noise; lower keeps more of ``init_audio``.
        sampler: one of :data:`SAMPLERS`; ``None`` picks the model's default.
        decode_range: ``(start, end)`` seconds: decode only the latent frames that cover this
            span (the result's ``start_frame`` says where its audio begins).
        clamp_output: clamp the audio to [-1, 1] as the official code does (hard clipping of
            loud renders). ``False`` returns the float audio as decoded, so a true-peak limiter
            or a gain can bring it under full scale without clipping (the editor and the CLI).
    """

    prompt: str | Sequence[str] = ""
    negative_prompt: str | None = None
    duration: float | Sequence[float] | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    apg_scale: float = 1.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)
    cfg_rescale: float = 0.0
    seed: int | None = None
    batch_size: int = 1
    inpaint_audio: npt.NDArray[np.float32] | None = None
    inpaint_regions: tuple[tuple[float, float], ...] = ()
    source_latents: Any = None
    init_audio: npt.NDArray[np.float32] | None = None
    init_noise_level: float = 1.0
    sampler: str | None = None
    decode_range: tuple[float, float] | None = None
    clamp_output: bool = True


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """The decoded takes of one request.

    Attributes:
        audio: ``(batch, channels, frames)`` float32, in [-1, 1] unless the request set
            ``clamp_output=False``.
        sample_rate: the model's sample rate.
        seed: the seed actually used (never -1).
        start_frame: request-time frame of ``audio[..., 0]`` (non-zero with ``decode_range``).
        timings: seconds spent per phase ("conditioning", "encode", "sampling", "decode", "total").
        model_id: name of the model that made it.
        weights_hash: short hash identifying the weights.
        true_peak_dbtp: each take's true peak (dBTP, 4x oversampled as ITU-R BS.1770) measured
            before the official clamp to [-1, 1]: above 0 the take was clipped, above -1 it
            needs a limiter or gain before a lossy export. Empty when not measured.
    """

    audio: npt.NDArray[np.float32]
    sample_rate: int
    seed: int
    start_frame: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    weights_hash: str = ""
    true_peak_dbtp: tuple[float, ...] = ()

    @property
    def over_full_scale(self) -> tuple[bool, ...]:
        """Per take: its true peak went over 0 dBTP (so the clamp clipped it)."""
        return tuple(p > 0.0 for p in self.true_peak_dbtp)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model folder found on disk.

    Attributes:
        name: the official id when known ("small-music", "medium-base", ...) else the folder name.
        path: folder that holds ``model_config.json``.
        family: "small" or "medium" (or "tiny" for test models).
        objective: "rf_denoiser" (post-trained) or "rectified_flow" (base).
        sample_rate: audio rate of the model.
        max_seconds: longest audio the model can generate.
        complete: all needed files are present.
        missing: files that are missing when not complete.
        size_bytes: total size of the files found.
        source: where it was found ("settings", "SA3_STUDIO_MODELS", "./models", "hf-cache", ...).
    """

    name: str
    path: str
    family: str
    objective: str
    sample_rate: int
    max_seconds: float
    complete: bool
    missing: tuple[str, ...] = ()
    size_bytes: int = 0
    source: str = ""

    @property
    def is_base(self) -> bool:
        """True for -base (rectified-flow) models, which take CFG and a negative prompt."""
        return self.objective == "rectified_flow"

    @property
    def prompt_prefix(self) -> str:
        """The tag prefix the official prompting guide recommends for this model."""
        if "sfx" in self.name:
            return "TrackType: SFX, "
        return "TrackType: Music, VocalType: Instrumental, "


class PipelineLike(Protocol):
    """What the editor's model thread, the command line and the workflow need from a loaded
    pipeline (``sa3_studio.engine.pipeline.Pipeline`` is one; tests pass fakes)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def max_seconds(self) -> float: ...

    @property
    def is_base(self) -> bool: ...

    @property
    def default_steps(self) -> int: ...

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult: ...

    def encode(self, audio: Any, *, duration: float | None = None) -> Any: ...


PipelineFactory = Callable[..., PipelineLike]
"""``factory(path, device=..., dtype=...) -> pipeline`` (``load_pipeline`` has this shape)."""


class EngineTask(Protocol):
    """A unit of work for the model thread."""

    def run(self, pipeline: PipelineLike, on_step: StepCallback, cancel: CancelToken) -> object:
        """Do the work on the model thread; report steps; raise Cancelled when cancelled."""
        ...
