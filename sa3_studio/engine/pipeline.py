"""The Stable Audio 3 pipeline: load a model folder, then generate.

``load_pipeline(path)`` builds the DiT, the SAME autoencoder and the conditioners on the meta
device, assigns the checkpoint's tensors (read per prefix, so peak RAM stays near the weights'
size) and loads the T5Gemma text encoder from the model folder. ``Pipeline.generate`` follows the
official ``generate`` step by step (reference §5, §7): initial noise first, then conditioning,
source encoding, sampling with a draw per ping-pong step, chunked decoding with its noise,
padding zeroing, clamping and truncation. Every random draw comes from one
:class:`~sa3_studio.engine.noise.NoiseSource`, so on CPU a seed gives the official audio.

Beyond the official code: batch inpainting (N takes of the same regions in one pass), reuse of
a source's latents across takes (:meth:`Pipeline.encode`), decoding only a range of frames,
cancellation within one step, LoRA stacks with live strengths, and exact padding semantics by
default.

Speed without changing the numbers beyond float rounding:

* the autoencoder decodes each official chunk only over the frames the official decode keeps
  (plus the few frames that reach them), with that chunk's noise, so a full decode costs about
  a quarter less and a range decodes to the same samples as a full decode; the encoder runs in
  one pass (it draws no noise and sees only a few frames each side);
* :class:`StepCache` computes the DiT's step-invariant projections once per generation;
* prompt encodings and encoded sources are remembered for later takes;
* on a CPU with native bfloat16 matrix units (AMX, AVX512-BF16) ``dtype="auto"`` runs the DiT
  in bfloat16 (about 1.7-2x faster there); ``dtype="float32"`` keeps the official CPU numerics,
  so a seed gives the official audio. The SAME autoencoder is never bfloat16 unless asked for
  (``engine.devices``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from sa3_studio.engine import devices
from sa3_studio.engine.api import (
    BASE_DEFAULT_CFG,
    BASE_DEFAULT_STEPS,
    DEFAULT_STEPS,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    StepCallback,
)
from sa3_studio.engine.config import ModelConfig, load_model_config
from sa3_studio.engine.guidance import guided_velocity
from sa3_studio.engine.lengths import LengthPlan, inpaint_mask, plan_lengths, validate_regions
from sa3_studio.engine.models.autoencoder import (
    AudioAutoencoder,
    PatchedPretransform,
    SAMEDecoder,
    SAMEEncoder,
    SoftNormBottleneck,
    TransformerResamplingBlock,
)
from sa3_studio.engine.models.conditioners import (
    MultiConditioner,
    T5GemmaConditioner,
    assemble_conditioning,
)
from sa3_studio.engine.models.dit import DiffusionTransformer
from sa3_studio.engine.models.same_blocks import WNConv1d
from sa3_studio.engine.models.transformer import ATTENTION_MODES, AttentionMode
from sa3_studio.engine.noise import GeneratorNoise, NoiseSource, TapeNoise
from sa3_studio.engine.registry import WEIGHTS_FILE, guess_model_name
from sa3_studio.engine.sampling import get_sampler
from sa3_studio.engine.schedules import build_schedule
from sa3_studio.engine.weights import Checkpoint, load_module
from sa3_studio.errors import GenerationError, WeightsError

log = logging.getLogger(__name__)

Trace = Callable[[str, torch.Tensor], None]
"""Diagnostic hook: called with a name and an intermediate tensor (tests localise mismatches)."""

DIT_PREFIX = "model.model."
AE_PREFIX = "pretransform.model."
COND_PREFIX = "conditioner."
PROMPT_CACHE_SIZE = 8
"""Prompt encodings kept for later takes (a few MB each at most)."""
LATENT_CACHE_SIZE = 2
"""Encoded sources kept for later takes (latents are small: 1 MB for 30 s)."""
ENCODE_CHUNK = 128
ENCODE_OVERLAP = 32


@dataclass(frozen=True, slots=True)
class EncodedSource:
    """Latents of a source clip, reusable across takes of the same length plan.

    Attributes:
        latents: ``(1, C, L)`` on the pipeline's device.
        audio_samples: the length (samples) the source was padded or cropped to before encoding.
        seconds: the generation duration the latents were made for.
    """

    latents: torch.Tensor
    audio_samples: int
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Job:
    """A checked request with every default settled (:meth:`Pipeline.check_inputs`)."""

    prompts: tuple[str, ...]
    batch: int
    durations: tuple[float, ...]
    plan: LengthPlan
    steps: int
    cfg_scale: float
    cfg_interval: tuple[float, float]
    sampler: str
    regions: tuple[tuple[float, float], ...]
    has_inpaint: bool
    seed: int
    dtype: torch.dtype
    """Of the sampler's state and times (float32 when the DiT runs in bfloat16)."""
    sigma_max: float
    """Starting noise level: 1, or the init noise level for audio-to-audio."""
    clamp_output: bool = True
    """Clamp the audio to [-1, 1] as the official code does."""


@dataclass(frozen=True, slots=True)
class _Conditioning:
    """Encoded conditioning of one job (:meth:`Pipeline.encode_conditioning`)."""

    cross: torch.Tensor  # (B, tokens, D)
    global_cond: torch.Tensor  # (B, D)
    negative_cross: torch.Tensor | None = None
    negative_mask: torch.Tensor | None = None


TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_TAPS_PER_PHASE = 12
TRUE_PEAK_FLOOR_DB = -200.0


def _true_peak_filter() -> torch.Tensor:
    """The 4x interpolation filter of the true-peak meter: a Kaiser-windowed sinc of 48 taps
    (12 per phase) cutting off at the original Nyquist frequency, each phase summing to 1.
    ``sa3_studio.audio.true_peak`` designs the same filter in numpy for the editor."""
    n = TRUE_PEAK_OVERSAMPLING * TRUE_PEAK_TAPS_PER_PHASE
    # Centred on tap 24, so phase 0 passes the samples unchanged (tap 0 is sinc(-6) = 0).
    k = torch.arange(n, dtype=torch.float64) - n // 2
    taps = torch.sinc(k / TRUE_PEAK_OVERSAMPLING) * torch.kaiser_window(
        n, periodic=False, beta=8.0, dtype=torch.float64
    )
    phases = taps.view(TRUE_PEAK_TAPS_PER_PHASE, TRUE_PEAK_OVERSAMPLING).T  # (4, 12)
    return phases / phases.sum(dim=1, keepdim=True)


def true_peak_dbtp(audio: torch.Tensor) -> tuple[float, ...]:
    """True peak of each item of ``audio`` (B, C, N), in dBTP: the largest magnitude of the
    signal oversampled 4x (ITU-R BS.1770-4 Annex 2), over every channel. Silence gives -200."""
    batch, channels, frames = audio.shape
    if frames == 0:
        return (TRUE_PEAK_FLOOR_DB,) * batch
    flat = audio.reshape(batch * channels, 1, frames).to(torch.float32)
    peak = flat.abs().amax(dim=(1, 2))  # (B*C,)
    if frames >= TRUE_PEAK_TAPS_PER_PHASE:
        # Only points between real samples: zeros beyond the ends would add a step's ringing
        # that the take, spliced into its song, never has.
        phases = _true_peak_filter().to(device=audio.device, dtype=torch.float32)
        between = torch.nn.functional.conv1d(flat, phases.flip(-1)[:, None, :])  # (B*C, 4, n)
        peak = torch.maximum(peak, between.abs().amax(dim=(1, 2)))
    peak = peak.view(batch, channels).amax(dim=1)
    out = []
    for value in peak.tolist():
        out.append(20.0 * math.log10(value) if value > 0 else TRUE_PEAK_FLOOR_DB)
    return tuple(max(v, TRUE_PEAK_FLOOR_DB) for v in out)


class _Memo(nn.Module):
    """Stands in for a submodule during sampling: returns the previous output when called again
    with an equal input (compared exactly; a few hundred thousand numbers at most)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._key: torch.Tensor | None = None
        self._out: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = self._key
        if (
            key is not None
            and self._out is not None
            and (
                x is key or (x.shape == key.shape and x.dtype == key.dtype and torch.equal(x, key))
            )
        ):
            return self._out
        out: torch.Tensor = self.inner(x)
        self._key, self._out = x, out
        return out

    def forget(self) -> None:
        """Compute afresh on the next call."""
        self._key = self._out = None


class StepCache:
    """Compute the DiT's step-invariant parts once per generation instead of once per step.

    Within one sampling loop the context tokens, the local (inpainting) conditioning and so
    their projections do not change: ``to_cond_embed`` of the context, every layer's
    cross-attention key/value projection of it, and every layer's local-conditioning MLP.
    Together they are about a tenth of a small-model step. While the context manager is
    active those submodules are replaced by :class:`_Memo` stand-ins that call the real
    module (LoRAs included) on a new input and hand back the same tensor on a repeated one,
    so results are bit-identical to running without the cache. Everything is restored on exit.

    Args:
        dit: the diffusion transformer.
        enabled: False makes the context manager do nothing.
    """

    def __init__(self, dit: DiffusionTransformer, *, enabled: bool = True) -> None:
        self.dit = dit
        self.enabled = enabled
        self._swapped: list[tuple[nn.Module, str, nn.Module]] = []

    def _targets(self) -> list[tuple[nn.Module, str]]:
        out: list[tuple[nn.Module, str]] = [(self.dit, "to_cond_embed")]
        for layer in self.dit.transformer.layers:
            cross = layer.get_submodule("cross_attn")
            out.append((cross, "to_kv"))
            if getattr(layer, "to_local_embed", None) is not None:
                out.append((layer, "to_local_embed"))
        return out

    def __enter__(self) -> StepCache:
        if self.enabled:
            for parent, name in self._targets():
                inner = getattr(parent, name)
                setattr(parent, name, _Memo(inner))
                self._swapped.append((parent, name, inner))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._swapped:
            parent, name, inner = self._swapped.pop()
            setattr(parent, name, inner)

    def invalidate(self) -> None:
        """Forget the remembered outputs: the layers compute differently from now on (a LoRA
        limited to part of the sampling was switched on or off)."""
        for parent, name, _ in self._swapped:
            memo = getattr(parent, name)
            if isinstance(memo, _Memo):
                memo.forget()


class Pipeline:
    """A loaded Stable Audio 3 model ready to generate (not thread-safe: one job at a time)."""

    def __init__(
        self,
        *,
        config: ModelConfig,
        dit: DiffusionTransformer,
        autoencoder: AudioAutoencoder,
        conditioner: MultiConditioner,
        choice: devices.DeviceChoice,
        attention: AttentionMode = "exact",
        model_id: str = "",
        weights_hash: str = "",
        folder: Path | None = None,
    ) -> None:
        if attention not in ATTENTION_MODES:
            raise GenerationError(
                f"Unknown attention mode {attention!r}; use 'exact' or 'official-cpu'."
            )
        self.config = config
        self.dit = dit
        self.autoencoder = autoencoder
        self.conditioner = conditioner
        self.choice = choice
        self.attention: AttentionMode = attention
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.folder = folder
        self._lora_stack: Any = None  # engine.lora.LoraStack, made on the first add_lora
        self.step_cache = True
        self._prompt_cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._latent_cache: dict[tuple[Any, ...], torch.Tensor] = {}
        """Reuse what stays the same across sampler steps (see :class:`StepCache`)."""

    # -- facts about the model ------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.choice.device

    @property
    def dtype(self) -> torch.dtype:
        return self.dit.dtype

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def max_seconds(self) -> float:
        """Longest audio one pass can make (the config's ``sample_size``)."""
        return self.config.max_seconds

    @property
    def is_base(self) -> bool:
        """-base (rectified-flow) models: Euler sampling with CFG and negative prompts."""
        return self.config.is_base

    @property
    def default_steps(self) -> int:
        return BASE_DEFAULT_STEPS if self.is_base else DEFAULT_STEPS

    @property
    def default_cfg_scale(self) -> float:
        return BASE_DEFAULT_CFG if self.is_base else 1.0

    def plan(self, durations: Sequence[float]) -> LengthPlan:
        """Length plan of a generation of ``durations`` seconds (one per batch item)."""
        ds = self.config.downsampling_ratio
        return plan_lengths(
            durations,
            sample_rate=self.sample_rate,
            downsampling=ds,
            align_latents=max(1, self.config.latent_alignment // ds),
            max_samples=self.config.sample_size,
        )

    def clear_caches(self) -> None:
        """Forget remembered prompt encodings and encoded sources (benchmarks, memory)."""
        self._prompt_cache.clear()
        self._latent_cache.clear()

    # -- encoding -------------------------------------------------------------------------------

    def _audio_tensor(self, audio: npt.NDArray[np.float32], what: str) -> torch.Tensor:
        arr = np.asarray(audio)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[-1] == 0 or not np.issubdtype(arr.dtype, np.floating):
            raise GenerationError(
                f"The {what} must be a float array shaped (channels, frames) at "
                f"{self.sample_rate} Hz, not {arr.dtype} {arr.shape}."
            )
        if arr.shape[0] > arr.shape[1]:
            raise GenerationError(
                f"The {what} looks transposed ({arr.shape}); pass (channels, frames)."
            )
        if not np.isfinite(arr).all():
            raise GenerationError(f"The {what} contains NaN or infinite samples.")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not arr.flags.writeable:  # torch wants writable memory; callers' buffers are shared
            arr = arr.copy()
        t = torch.from_numpy(arr)
        channels = self.autoencoder.io_channels
        if t.shape[0] == 1 and channels == 2:
            t = t.expand(2, -1)
        elif t.shape[0] > channels:
            t = t[:channels]
        return t

    def encode(
        self, audio: npt.NDArray[np.float32], *, duration: float | None = None
    ) -> EncodedSource:
        """Encode a source clip once, for many takes (``GenerationRequest.source_latents``).

        Args:
            audio: ``(channels, frames)`` float32 at the model's rate.
            duration: the generation duration the latents are for (default: the clip's length).
        """
        t = self._audio_tensor(audio, "source audio")
        seconds = duration if duration is not None else t.shape[-1] / self.sample_rate
        plan = self.plan([seconds])
        with torch.inference_mode():
            latents = self._encode(t, plan.audio_samples)
        return EncodedSource(
            latents=latents, audio_samples=plan.audio_samples, seconds=float(seconds)
        )

    def _encode_cached(self, audio: torch.Tensor, samples: int) -> torch.Tensor:
        """:meth:`_encode`, remembering the last few sources by content (takes of a variation
        pass the same audio again; hashing it costs milliseconds, encoding it seconds)."""
        digest = hashlib.blake2b(audio.numpy().tobytes(), digest_size=16).hexdigest()
        key = (digest, tuple(audio.shape), samples)
        latents = self._latent_cache.get(key)
        if latents is None:
            latents = self._encode(audio, samples)
            self._latent_cache[key] = latents
            while len(self._latent_cache) > LATENT_CACHE_SIZE:
                self._latent_cache.pop(next(iter(self._latent_cache)))
        return latents

    def _encode(self, audio: torch.Tensor, samples: int) -> torch.Tensor:
        """Crop or zero-pad ``(C, N)`` to ``samples``, then SAME-encode → ``(1, C_lat, L)``."""
        if audio.shape[-1] >= samples:
            audio = audio[:, :samples]
        else:
            audio = torch.nn.functional.pad(audio, (0, samples - audio.shape[-1]))
        ae = self.autoencoder
        ae_dtype = next(ae.parameters()).dtype
        x = audio[None].to(device=self.device, dtype=ae_dtype)  # (1, C, A)
        if _encoder_is_local(ae):
            # One pass equals the official overlapping chunks (to float rounding): the encoder
            # sees only a few frames each side, fewer than the 16 each chunk discards, and
            # draws no noise. It does about a quarter less work.
            return ae.encode(x)[..., : samples // ae.downsampling_ratio]
        return ae.encode_audio(
            x,
            chunked=self.config.model.pretransform.chunked,
            chunk_size=ENCODE_CHUNK,
            overlap=ENCODE_OVERLAP,
        )

    # -- generation -----------------------------------------------------------------------------

    def _durations(self, request: GenerationRequest, batch: int) -> list[float]:
        d = request.duration
        if d is None:
            source = request.inpaint_audio if request.inpaint_audio is not None else None
            source = source if source is not None else request.init_audio
            if source is not None:
                d = np.asarray(source).shape[-1] / self.sample_rate
            elif isinstance(request.source_latents, EncodedSource):
                d = request.source_latents.seconds
            else:
                raise GenerationError(
                    "Text-to-audio needs a duration: give the number of seconds to generate."
                )
        if isinstance(d, (int, float)):
            return [float(d)] * batch
        values = [float(x) for x in d]
        if len(values) != batch:
            raise GenerationError(
                f"{len(values)} durations were given for a batch of {batch}; give one per take."
            )
        return values

    def _prompts(self, request: GenerationRequest) -> tuple[list[str], int]:
        if request.batch_size < 1:
            raise GenerationError("The number of takes must be at least 1.")
        if isinstance(request.prompt, str):
            return [request.prompt] * request.batch_size, request.batch_size
        prompts = [str(p) for p in request.prompt]
        if not prompts:
            raise GenerationError(
                "An empty list of prompts was given; give one prompt (it may be empty for "
                "unconditional audio), or one per take."
            )
        if request.batch_size not in (1, len(prompts)):
            raise GenerationError(
                f"{len(prompts)} prompts were given for {request.batch_size} takes; "
                "give one prompt, or one per take."
            )
        return prompts, len(prompts)

    def _conditioning(
        self, prompts: Sequence[str], durations: Sequence[float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        values: dict[str, Sequence[Any]] = {"prompt": list(prompts), "seconds_total": durations}
        outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for cid, conditioner in self.conditioner.conditioners.items():
            if cid not in values:
                raise GenerationError(
                    f"This model is conditioned on {cid!r}, which SA3 Studio does not provide; "
                    "use an official Stable Audio 3 model."
                )
            if isinstance(conditioner, T5GemmaConditioner):
                # The text encoder is the costly part and takes takes of one prompt alike.
                key = (cid, tuple(prompts))
                cached = self._prompt_cache.get(key)
                if cached is None:
                    cached = conditioner(list(prompts), self.device)
                    self._prompt_cache[key] = cached
                    while len(self._prompt_cache) > PROMPT_CACHE_SIZE:
                        self._prompt_cache.pop(next(iter(self._prompt_cache)))
                outputs[cid] = cached
            else:
                outputs[cid] = conditioner(values[cid], self.device)
        diff = self.config.diffusion
        cond = assemble_conditioning(outputs, diff.cross_attention_cond_ids, diff.global_cond_ids)
        return cond.cross_attn_cond, cond.cross_attn_mask, cond.global_cond

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        cancel: CancelToken | None = None,
        noise: NoiseSource | None = None,
        trace: Trace | None = None,
    ) -> GenerationResult:
        """Run one request; see :class:`~sa3_studio.engine.api.GenerationRequest`.

        Args:
            request: what to make.
            on_step: called after every sampler step with (done, total).
            cancel: checked before every step; a cancel raises Cancelled within one step.
            noise: where the random draws come from (default: a generator seeded with the
                request's seed, which reproduces the official CPU audio).
            trace: diagnostic hook for intermediates.

        Raises:
            GenerationError: the request does not fit the model (message says why).
            Cancelled: ``cancel`` was set.
        """
        with torch.inference_mode():
            return self._generate(request, on_step, cancel, noise, trace)

    def _generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None,
        cancel: CancelToken | None,
        noise: NoiseSource | None,
        trace: Trace | None,
    ) -> GenerationResult:
        """The official ``generate`` as five steps (diffusers style): check the request, draw
        the initial noise (the first draw, official order), encode the conditioning, prepare
        the latents, sample, and finish (decode, zero padding, clamp, truncate, measure)."""
        t_start = time.perf_counter()
        job = self.check_inputs(request)
        if noise is None:
            noise = GeneratorNoise(job.seed, self.device)
        # 1. initial noise: the first draw, before conditioning and encoding (official order).
        eps0 = noise.randn(
            (job.batch, self.config.model.io_channels, job.plan.latent_len),
            dtype=job.dtype,
            device=self.device,
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cond = self.encode_conditioning(job, request.negative_prompt)
        timings["conditioning"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        x, local = self.prepare_latents(job, request, eps0)
        timings["encode"] = time.perf_counter() - t0
        if trace is not None:
            trace("x_init", x)
            trace("local_add_cond", local)
        t0 = time.perf_counter()
        latents = self.sample(job, request, x, local, cond, noise, on_step, cancel, trace)
        timings["sampling"] = time.perf_counter() - t0
        if trace is not None:
            trace("latents", latents)
        if cancel is not None:
            cancel.raise_if_cancelled()
        t0 = time.perf_counter()
        audio, start_frame, peaks = self.finish(job, latents, noise, request.decode_range, trace)
        timings["decode"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        return GenerationResult(
            audio=audio,
            sample_rate=self.sample_rate,
            seed=job.seed,
            start_frame=start_frame,
            timings=timings,
            model_id=self.model_id,
            weights_hash=self.weights_hash,
            true_peak_dbtp=peaks,
        )

    # -- the steps of generate ----------------------------------------------------------------

    def check_inputs(self, request: GenerationRequest) -> _Job:
        """Step 0: validate a request against the model and settle every default.

        Raises:
            GenerationError: with a sentence naming the value and what to do.
        """
        sr = self.sample_rate
        prompts, batch = self._prompts(request)
        durations = self._durations(request, batch)
        plan = self.plan(durations)
        steps = request.steps if request.steps is not None else self.default_steps
        if steps < 1:
            raise GenerationError("The number of steps must be at least 1.")
        cfg_scale = request.cfg_scale if request.cfg_scale is not None else self.default_cfg_scale
        sampler = request.sampler or ("euler" if self.is_base else "pingpong")
        get_sampler(sampler)  # an unknown name fails here, before any work
        has_inpaint = request.inpaint_audio is not None or request.source_latents is not None
        if request.inpaint_regions and not has_inpaint:
            raise GenerationError("Inpainting regions were given without source audio.")
        regions: tuple[tuple[float, float], ...] = ()
        if has_inpaint:
            if not request.inpaint_regions:
                raise GenerationError("Inpainting needs at least one region to regenerate.")
            regions = validate_regions(request.inpaint_regions, max(durations))
            end = max(durations)
            for r_start, r_end in regions:
                if r_end > end + 0.5 / sr:
                    raise GenerationError(
                        f"Region {r_start:.3f}-{r_end:.3f} s ends after the end of the audio "
                        f"({end:.3f} s); shorten the region or generate a longer duration."
                    )
        if not 0.0 < request.init_noise_level <= 1.0:
            raise GenerationError("The init noise level must be greater than 0 and at most 1.")
        lo, hi = (float(v) for v in request.cfg_interval)
        if not 0.0 <= lo <= hi <= 1.0:
            raise GenerationError(
                f"The guidance interval {request.cfg_interval} is not a span of flow times; "
                "use (start, end) with 0 <= start <= end <= 1."
            )
        if not 0.0 <= request.cfg_rescale <= 1.0:
            raise GenerationError("The CFG rescale must be between 0 (off) and 1.")
        seed = int(request.seed) if request.seed is not None else random.randrange(2**31)
        if seed < 0:
            seed = random.randrange(2**31)
        # The sampler's state and times run in the model dtype, as in the official code, except
        # with bfloat16 (not an official dtype): its 8-bit mantissa would round the latents and
        # the flow times between steps, so they stay float32 and only the DiT computes in it.
        dtype = torch.float32 if self.dtype == torch.bfloat16 else self.dtype
        return _Job(
            prompts=tuple(prompts),
            batch=batch,
            durations=tuple(durations),
            plan=plan,
            steps=steps,
            cfg_scale=cfg_scale,
            cfg_interval=(lo, hi),
            sampler=sampler,
            regions=regions,
            has_inpaint=has_inpaint,
            seed=seed,
            dtype=dtype,
            sigma_max=float(request.init_noise_level) if request.init_audio is not None else 1.0,
            clamp_output=bool(request.clamp_output),
        )

    def encode_conditioning(self, job: _Job, negative_prompt: str | None) -> _Conditioning:
        """Step 2: the prompt and duration conditioning, and the negative branch for CFG.

        As the official ``generate``, a negative prompt that is given, even an empty one, is
        encoded (an empty prompt's padding positions are zeroed, its seconds token is kept);
        only ``None`` means the all-zero unconditional context. The negative branch is skipped
        when CFG is off (``cfg_scale == 1``), where it is never used.
        """
        cross, _, global_cond = self._conditioning(job.prompts, job.durations)
        neg_cross = neg_mask = None
        if job.cfg_scale != 1.0 and negative_prompt is not None:
            neg_cross, neg_mask, _ = self._conditioning(
                [negative_prompt] * job.batch, job.durations
            )
        return _Conditioning(cross, global_cond, neg_cross, neg_mask)

    def prepare_latents(
        self, job: _Job, request: GenerationRequest, eps0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 3: the start state (noise, or init audio mixed with it for audio-to-audio) and
        the local conditioning (inpainting mask and masked source latents).

        Returns:
            ``(x (B, C, L), local (B, 1 + C, L))``.
        """
        plan, dtype, batch = job.plan, job.dtype, job.batch
        channels = self.config.model.io_channels
        local = torch.zeros(batch, 1 + channels, plan.latent_len, device=self.device, dtype=dtype)
        if job.has_inpaint:
            src = request.source_latents
            if src is not None:
                if not isinstance(src, EncodedSource) or src.audio_samples != plan.audio_samples:
                    raise GenerationError(
                        "The reused source latents were made for another length; encode the "
                        "source again for this duration."
                    )
                z_src = src.latents
            else:
                assert request.inpaint_audio is not None
                z_src = self._encode_cached(
                    self._audio_tensor(request.inpaint_audio, "source audio"), plan.audio_samples
                )
            mask = inpaint_mask(
                plan,
                job.regions,
                job.durations,
                sample_rate=self.sample_rate,
                downsampling=self.config.downsampling_ratio,
                device=self.device,
            ).to(dtype)
            z = z_src.to(dtype).expand(batch, -1, -1)
            local = torch.cat((mask, z * mask), dim=1)  # (B, 1 + C, L)
        x = eps0
        if request.init_audio is not None:
            sigma_max = job.sigma_max
            z_init = self._encode_cached(
                self._audio_tensor(request.init_audio, "init audio"), plan.audio_samples
            ).to(dtype)
            x = z_init.expand(batch, -1, -1) * (1 - sigma_max) + eps0 * sigma_max
        return x, local

    def schedule(self, job: _Job, sigma_max: float) -> torch.Tensor:
        """The sampler's flow times under the model's ``sampling_distribution_shift_options``,
        with each item's effective length (``use_effective_length_for_schedule``, forced on
        by the official ``generate``): ``(steps + 1,)`` or per item ``(B, steps + 1)``."""
        ds = self.config.downsampling_ratio
        lengths = [math.ceil(int(d * self.sample_rate) / ds) for d in job.durations]
        return build_schedule(
            job.steps,
            sigma_max,
            shift=self.config.diffusion.sampling_distribution_shift_options,
            lengths=lengths,
        ).to(self.device)

    def sample(
        self,
        job: _Job,
        request: GenerationRequest,
        x: torch.Tensor,
        local: torch.Tensor,
        cond: _Conditioning,
        noise: NoiseSource,
        on_step: StepCallback | None,
        cancel: CancelToken | None,
        trace: Trace | None,
    ) -> torch.Tensor:
        """Step 4: run the request's sampler with the guided DiT; returns latents (B, C, L)."""
        padding = job.plan.padding_mask(self.device)  # (B, L)
        sigmas = self.schedule(job, job.sigma_max)
        if job.sampler == "pingpong":
            sigmas = sigmas.to(job.dtype)  # the official ping-pong runs its times in the dtype
        step_cache = StepCache(self.dit, enabled=self.step_cache)
        loras = self._lora_stack
        scheduled = loras is not None and loras.has_schedules

        def velocity(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if scheduled and loras.at_time(float(t[0])):
                # LoRAs limited to part of the sampling (the official per-LoRA interval,
                # judged on the first item's time) changed, so cached projections are stale.
                step_cache.invalidate()
            # Padded frames are computed although the output is cut long before them: leaving
            # them out saves at most two frames and makes the token count odd, which slows the
            # bfloat16 matrix products by a third.
            return guided_velocity(
                self.dit,
                xt,
                t,
                cond.cross,
                cond.global_cond,
                local,
                padding,
                cfg_scale=job.cfg_scale,
                apg_scale=request.apg_scale,
                negative_cross_attn_cond=cond.negative_cross,
                negative_cross_attn_mask=cond.negative_mask,
                cfg_interval=job.cfg_interval,
                cfg_rescale=request.cfg_rescale,
                attention_mode=self.attention,
            )

        on_denoised = None
        if trace is not None:

            def on_denoised(i: int, d: torch.Tensor) -> None:
                trace(f"denoised.{i}", d)

        sampler = get_sampler(job.sampler)
        try:
            with step_cache:
                return sampler(
                    velocity,
                    x,
                    sigmas,
                    noise=noise,
                    on_step=on_step,
                    cancel=cancel,
                    on_denoised=on_denoised,
                )
        finally:
            if scheduled:
                loras.at_time(None)  # every LoRA acts again outside sampling

    def finish(
        self,
        job: _Job,
        latents: torch.Tensor,
        noise: NoiseSource,
        decode_range: tuple[float, float] | None,
        trace: Trace | None = None,
    ) -> tuple[npt.NDArray[np.float32], int, tuple[float, ...]]:
        """Step 5: decode (optionally only a range), zero the padding, measure each take's true
        peak, clamp to [-1, 1] (official; unless the request keeps float audio) and truncate.

        Returns:
            ``(audio (B, channels, frames) float32, start_frame, true peak per take in dBTP
            before the clamp)``.
        """
        plan = job.plan
        ds = self.config.downsampling_ratio
        # Only the samples that survive truncation are decoded, unless a trace wants the whole
        # decoder output to compare with the official intermediates.
        stop = None if trace is not None else max(plan.output_samples)
        audio, start_frame = self._decode(latents, noise, decode_range, stop)
        if trace is not None:
            trace("decoded", audio)
        padding = plan.padding_mask(self.device)  # (B, L)
        keep = padding.repeat_interleave(ds, dim=1)[:, None, :]  # (B, 1, A)
        audio = audio[..., : plan.audio_samples - start_frame]
        audio = audio * keep[..., start_frame : start_frame + audio.shape[-1]].to(audio.dtype)
        audio = audio.to(torch.float32)
        if plan.truncate:
            audio = audio[..., : max(0, plan.output_samples[0] - start_frame)]
        peaks = true_peak_dbtp(audio)
        if job.clamp_output:
            audio = audio.clamp(-1.0, 1.0)
        return audio.cpu().numpy(), start_frame, peaks

    def _decode(
        self,
        latents: torch.Tensor,
        noise: NoiseSource,
        decode_range: tuple[float, float] | None,
        stop_sample: int | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Decode ``latents`` (B, C, L), all of them or only the frames a span needs.

        Gives the official chunked decode's audio (to float rounding) while decoding only what
        is kept: the official decode runs overlapping chunks of 128 frames, each with its own
        noise, and keeps a part of each. Here every chunk's noise is drawn in the official
        order, but a chunk is decoded only over the frames it keeps (and that are wanted)
        plus the few frames each side that reach them (:func:`_decoder_reach`), with that
        chunk's noise. The decoder cannot tell the difference, so a range decodes to the same
        samples as a full decode, and a full decode does about a quarter less work.

        Args:
            latents: (B, C, L).
            noise: the generation's noise source (decoder draws come last).
            decode_range: (start, end) seconds to decode; None decodes everything needed.
            stop_sample: no audio is needed from this sample on (truncation, padding).

        Returns:
            (audio (B, channels, n), first sample of ``audio`` in request time).
        """
        ds = self.config.downsampling_ratio
        ae = self.autoencoder
        ae_dtype = next(ae.parameters()).dtype
        z = latents.to(ae_dtype)
        total = z.shape[-1]
        l0, l1 = 0, total
        if decode_range is not None:
            start, end = decode_range
            if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
                raise GenerationError(
                    f"The decode range {start}-{end} s is not a span of positive length; "
                    "give (start, end) seconds with 0 <= start < end."
                )
            l0 = min(total - 1, math.floor(start * self.sample_rate / ds))
            l1 = min(total, max(l0 + 1, math.ceil(end * self.sample_rate / ds)))
        if stop_sample is not None:
            l1 = max(l0 + 1, min(l1, math.ceil(stop_sample / ds)))
        chunked = self.config.model.pretransform.chunked
        trb = _single_decoder_trb(ae)
        if trb is None:  # not a one-stage SAME decoder: decode the slice the plain way
            audio = ae.decode_audio(
                z[..., l0:l1],
                noise=noise,
                chunked=chunked,
                chunk_size=ENCODE_CHUNK,
                overlap=ENCODE_OVERLAP,
            )
            return audio, l0 * ds
        mult = ae.latent_multiple
        reach = math.ceil(_decoder_reach(ae) / mult) * mult
        out: torch.Tensor | None = None
        for chunk_start, chunk_len, own0, own1 in _decode_chunks(
            total, chunked, ENCODE_CHUNK, ENCODE_OVERLAP
        ):
            # Draw this chunk's noise even when it is not decoded: the official order.
            bn, tok = _draw_decoder_noise(ae, trb, z, chunk_len, noise)
            a, b = max(own0, l0), min(own1, l1)
            if a >= b:
                continue
            w0 = max(chunk_start, a - reach)
            w0 -= (w0 - chunk_start) % mult  # the chunk's attention pairs stay aligned
            w1 = min(chunk_start + chunk_len, b + reach)
            r0, r1 = w0 - chunk_start, w1 - chunk_start
            padded = math.ceil((r1 - r0) / mult) * mult  # what the decoder pads the window to
            draws: list[torch.Tensor] = []
            if bn is not None:
                draws.append(bn[..., r0:r1])
            if tok is not None:
                part = tok[:, r0 : r0 + padded]  # (B, padded, stride, D)
                draws.append(part.reshape(-1, *part.shape[2:]))
            audio = ae.decode(z[..., w0:w1], noise=TapeNoise(draws))  # (B, ch, n)
            if out is None:
                out = audio.new_zeros(*audio.shape[:-1], (l1 - l0) * ds)
            out[..., (a - l0) * ds : (b - l0) * ds] = audio[..., (a - w0) * ds : (b - w0) * ds]
        assert out is not None
        return out, l0 * ds

    # -- LoRA -----------------------------------------------------------------------------------

    def _loras(self) -> Any:
        if self._lora_stack is None:
            from sa3_studio.engine.lora import LoraStack

            # LoRA keys are relative to the official DiT wrapper ("model." + DiT path) and to
            # the conditioner's module dict ("conditioners." + id path), reference §6.1.
            self._lora_stack = LoraStack(
                {"model.": self.dit, "conditioners.": self.conditioner.conditioners}
            )
        return self._lora_stack

    @property
    def loras(self) -> tuple[Any, ...]:
        """The applied LoRAs (``engine.lora.LoraEntry``) in application order."""
        return () if self._lora_stack is None else tuple(self._lora_stack.entries)

    def add_lora(self, path: str | Path, strength: float = 1.0) -> int:
        """Apply a LoRA file on top of those already applied.

        Args:
            path: an official-format LoRA ``.safetensors`` file.
            strength: 0 = off (exactly the base model), 1 = as trained.

        Returns:
            A handle for :meth:`set_lora_strength` and :meth:`remove_lora`.

        Raises:
            WeightsError: the file is unusable or does not fit this model (nothing changes).
        """
        handle: int = self._loras().add(path, strength)
        return handle

    def set_lora_strength(self, handle: int | None, strength: float) -> None:
        """Change one LoRA's strength (``handle``), or every LoRA's (``None``), at any time."""
        self._loras().set_strength(handle, strength)

    def set_lora_schedule(
        self,
        handle: int,
        *,
        interval: tuple[float, float] | None = None,
        layer_filter: str = "",
    ) -> None:
        """Limit one LoRA to part of the sampling (the official per-LoRA interval and layer
        filter): it acts only at flow times in ``interval`` (1 = noise, 0 = clean) and not on
        the DiT layers whose names contain one of the comma-separated ``layer_filter``
        substrings. See ``engine.lora.LoraStack.set_schedule``."""
        self._loras().set_schedule(handle, interval=interval, layer_filter=layer_filter)

    def remove_lora(self, handle: int) -> None:
        """Take one LoRA off; the base weights were never changed."""
        self._loras().remove(handle)


AttentionArg = Literal["exact", "official-cpu"]


cpu_has_native_bfloat16 = devices.cpu_has_native_bfloat16
"""Kept here for callers of the earlier location; see ``engine.devices``."""


def _keeps_float32(name: str) -> bool:
    """Tensors loaded in float32 whatever the model dtype (RoPE frequencies)."""
    return name.endswith("inv_freq")


def _single_decoder_trb(ae: AudioAutoencoder) -> TransformerResamplingBlock | None:
    """The decoder's resampling block when it is the only one and draws only the standard
    noise (every released SAME model); None otherwise."""
    blocks = [m for m in ae.decoder.layers if isinstance(m, TransformerResamplingBlock)]
    if len(blocks) != 1 or ae.bottleneck.noise_augment_dim > 0:
        return None
    return blocks[0]


def _encoder_is_local(ae: AudioAutoencoder) -> bool:
    """True when one encoder pass equals the official chunked encode: a single resampling
    stage without noise whose reach (like the decoder's) is under half the chunk overlap."""
    blocks = [m for m in ae.encoder.layers if isinstance(m, TransformerResamplingBlock)]
    if len(blocks) != 1 or blocks[0].needs_noise:
        return False
    block = blocks[0]
    depth = len(block.transformers)
    if block.window is not None:
        reach = depth * math.ceil(max(block.window) / (block.stride + 1))
    else:
        reach = 2 * (block.chunk_size // block.stride)
    return reach < ENCODE_OVERLAP // 2


def _decoder_reach(ae: AudioAutoencoder) -> int:
    """Latent frames each side that can change a decoded frame (attention reach plus one for
    the mapping convolution)."""
    reach = 0
    for block in ae.decoder.layers:
        if not isinstance(block, TransformerResamplingBlock):
            continue
        depth = len(block.transformers)
        if block.window is not None:
            # Each block sees its band: window / (stride + 1) frames each side.
            reach += depth * math.ceil(max(block.window) / (block.stride + 1))
        else:
            # Chunks of m = chunk_size/stride frames: the first half of the blocks sees its
            # chunk (m - 1 frames away at most), the second half the chunk moved by half.
            m = block.chunk_size // block.stride
            reach += (2 if block.chunk_midpoint_shift and depth > 1 else 1) * (m - 1)
        mapping = block.mapping
        if isinstance(mapping, WNConv1d) and mapping.kernel_size > 1:
            reach += 1  # the output convolution reads one patch of the next frame
    return max(reach, 1)


def _decode_chunks(
    total: int, chunked: bool, chunk: int, overlap: int
) -> list[tuple[int, int, int, int]]:
    """The official decode's chunks and the frames each one's output ends up owning.

    Returns:
        ``(start, length, own_start, own_end)`` per chunk, in decoding order; later chunks
        overwrite earlier ones, so own ranges are what is left after the overwrites.
    """
    if not chunked or total < chunk:
        return [(0, total, 0, total)]
    if not 0 <= overlap < chunk:
        raise GenerationError(f"Chunked decoding needs 0 <= overlap < chunk, got {overlap}.")
    starts = list(range(0, total - chunk + 1, chunk - overlap))
    if starts[-1] != total - chunk:
        starts.append(total - chunk)
    half = overlap // 2
    written = []
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        at = total - chunk if last else start
        written.append(
            (start, at + (0 if i == 0 else half), at + (chunk if last else chunk - half))
        )
    out = []
    for i, (start, w0, w1) in enumerate(written):
        end = min(w1, written[i + 1][1]) if i + 1 < len(written) else w1
        out.append((start, chunk, w0, max(w0, end)))
    return out


def _draw_decoder_noise(
    ae: AudioAutoencoder,
    trb: TransformerResamplingBlock,
    z: torch.Tensor,
    frames: int,
    noise: NoiseSource,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One decode call's draws, as the decoder makes them: bottleneck noise (B, C, frames), then
    new-token noise, returned as (B, frames padded to the latent multiple, stride, D)."""
    batch, channels, _ = z.shape
    bn = None
    if ae.bottleneck.noise_regularize:
        bn = noise.randn((batch, channels, frames), dtype=z.dtype, device=z.device)
    tok = None
    if trb.needs_noise:
        mult = ae.latent_multiple
        padded = math.ceil(frames / mult) * mult
        new = trb.new_tokens
        shape = (batch * padded, trb.stride, new.shape[-1])
        tok = noise.randn(shape, dtype=new.dtype, device=z.device).view(
            batch, padded, trb.stride, new.shape[-1]
        )
    return bn, tok


def _check_no_stray_tensors(checkpoint: Checkpoint) -> None:
    """A full SA3 file holds the three groups and nothing else (strict loading, architecture §5)."""
    prefixes = (DIT_PREFIX, AE_PREFIX, COND_PREFIX)
    stray = [k for k in checkpoint.header.tensors if not k.startswith(prefixes)]
    if stray:
        shown = ", ".join(stray[:20]) + (f", and {len(stray) - 20} more" if len(stray) > 20 else "")
        raise WeightsError(
            f"The weights in {checkpoint.path} hold {len(stray)} tensors that belong to no part "
            f"of the model ({shown}); the file does not match model_config.json. Download the "
            "model again."
        )


def _check_depth(config: ModelConfig, checkpoint: Checkpoint) -> None:
    """The config's DiT depth against the layers the file holds, from the header alone, so a
    config that asks for more layers fails at once instead of building them first."""
    head = DIT_PREFIX + "transformer.layers."
    layers = {
        k[len(head) :].split(".", 1)[0] for k in checkpoint.header.tensors if k.startswith(head)
    }
    depth = config.dit.depth
    if layers and depth > len(layers):  # fewer asked for: strict loading lists the keys
        raise WeightsError(
            f"model_config.json asks for a diffusion transformer of {depth} layers but "
            f"{checkpoint.path} holds {len(layers)}; the config does not belong to these "
            "weights. Download the model again."
        )


def build_autoencoder(config: ModelConfig) -> AudioAutoencoder:
    """The SAME autoencoder of a parsed SA3 config (parameters uninitialised on meta)."""
    ae = config.autoencoder
    return AudioAutoencoder(
        encoder=SAMEEncoder(**ae.encoder_kwargs()),
        decoder=SAMEDecoder(**ae.decoder_kwargs()),
        bottleneck=SoftNormBottleneck(**ae.bottleneck_kwargs()),
        pretransform=PatchedPretransform(**ae.patch_kwargs()),
        latent_dim=ae.latent_dim,
        downsampling_ratio=ae.downsampling_ratio,
        io_channels=ae.io_channels,
        sample_rate=config.sample_rate,
        soft_clip=bool(ae.to_kwargs().get("soft_clip", False)),
    )


def load_pipeline(
    path: str | Path,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    attention: AttentionArg = "exact",
    text_encoder_dtype: Literal["auto", "float32", "bfloat16"] = "auto",
    model_id: str | None = None,
    autoencoder_dtype: str | torch.dtype = "auto",
) -> Pipeline:
    """Load a Stable Audio 3 model folder (``model_config.json``, ``model.safetensors`` and the
    text-encoder folder), strictly: every key present, none extra, every shape right.

    Args:
        path: the model folder (or its ``model_config.json``).
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        dtype: the DiT's dtype: "auto", "float32", "bfloat16" or "float16". "auto" is
            bfloat16 on CUDA GPUs that support it, bfloat16 on CPUs with native bfloat16
            units (AMX, AVX512-BF16), float32 on other CPUs and on MPS (``engine.devices``);
            "float32" on a CPU gives the official audio from a seed. RoPE frequencies and
            timestep features stay float32 in every dtype.
        attention: padding semantics, "exact" (default) or "official-cpu".
        text_encoder_dtype: dtype of the T5Gemma encoder ("auto" keeps the stored dtype).
        model_id: name to report in results (default: the folder name).
        autoencoder_dtype: the SAME autoencoder's dtype; "auto" is float16 on CUDA and
            float32 on CPU and MPS, never bfloat16 unless named here.

    Raises:
        ConfigError, WeightsError, GenerationError: with a sentence that says what to do.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    config = load_model_config(folder)
    if not isinstance(config, ModelConfig):
        raise GenerationError(
            f"{folder} holds an autoencoder only (SAME), not a Stable Audio 3 model; choose a "
            "model folder such as stable-audio-3-small-music."
        )
    if config.ignored_fields:
        log.warning(
            "%s: ignoring field(s) this version does not read: %s",
            folder / "model_config.json",
            ", ".join(config.ignored_fields),
        )
    choice = devices.choose(device, dtype, autoencoder_dtype)
    log.info("%s: running on %s", model_id or folder.name, choice.description)
    devices.configure_numerics()
    checkpoint = Checkpoint(folder / WEIGHTS_FILE, model_name=guess_model_name(folder))
    _check_no_stray_tensors(checkpoint)  # before reading gigabytes
    _check_depth(config, checkpoint)  # before building anything
    # RoPE frequencies stay float32 whatever the dtype: rounding them costs whole radians of
    # phase at long positions, and they are only 16 numbers.
    # The autoencoder is never bfloat16 unless asked for (engine.devices): its differential
    # attention subtracts two softmax averages, and in bfloat16 a decode loses about 18 dB of
    # SNR on the tiny vectors and turns music into noise on MPS, while the DiT is fine.
    ae_dtype = choice.ae_dtype
    dit = load_module(
        lambda: DiffusionTransformer(**config.diffusion.dit_kwargs()),
        checkpoint,
        DIT_PREFIX,
        dtype=choice.dtype,
        device=choice.device,
        keep_dtype=_keeps_float32,
        what="diffusion transformer",
    )
    ae = load_module(
        lambda: build_autoencoder(config),
        checkpoint,
        AE_PREFIX,
        dtype=ae_dtype,
        device=choice.device,
        keep_dtype=_keeps_float32,
        what="autoencoder",
    )
    conditioner = load_module(
        lambda: MultiConditioner.from_config_dict(config.conditioning.to_kwargs()),
        checkpoint,
        COND_PREFIX,
        dtype=torch.float32,
        device=choice.device,
        what="conditioner",
    )
    encoder_dtype: torch.dtype | Literal["auto"] = (
        "auto" if text_encoder_dtype == "auto" else devices.DTYPE_NAMES[text_encoder_dtype]
    )
    conditioner.load_text_encoders(folder, dtype=encoder_dtype, device=choice.device)
    return Pipeline(
        config=config,
        dit=dit,
        autoencoder=ae,
        conditioner=conditioner,
        choice=choice,
        attention=attention,
        model_id=model_id or folder.name,
        weights_hash=checkpoint.weights_hash,
        folder=folder,
    )
