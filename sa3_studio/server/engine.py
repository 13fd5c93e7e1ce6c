"""One engine replica: a loaded pipeline that runs one job at a time (no Ray imports).

``sa3-studio serve`` deploys :class:`EngineReplica` as a Ray Serve deployment per model
(:mod:`sa3_studio.server.deploy`); each replica loads its model once. A job is a
:class:`JobSpec`; :meth:`EngineReplica.run` is an async generator of plain dict events
(``started``, ``step``, then ``result`` or ``error``) that the ingress streams to the client.

* The pipeline runs on a worker thread; its per-step callback feeds the event queue.
* Cancelling the generator (the client went away, or cancelled) sets the job's cancel token,
  which the engine checks before every sampler step; a lock keeps the next job off the
  pipeline until the cancelled one has let go of it.
* Source latents are kept per replica by content id (bounded), so a repeated take of the same
  window neither needs the audio again nor encodes it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import CancelToken, GenerationRequest
from sa3_studio.errors import Cancelled, Sa3Error
from sa3_studio.server.config import ServedModel, ServerSettings
from sa3_studio.server.errors import scrub
from sa3_studio.server.store import LruStore
from sa3_studio.workflow.loras import apply_loras

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """An uploaded clip as the replica receives it.

    Attributes:
        id: its content id.
        sample_rate: its rate (the replica converts to the model's rate if it differs).
        frames: its length.
        data: the audio, or a Ray object reference to it (fetched only when needed).
    """

    id: str
    sample_rate: int
    frames: int
    data: Any


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A checked job for one replica.

    Attributes:
        job_id: the id the client was told.
        request: the engine request, without audio (it comes through ``inpaint``/``init``).
        loras: (server-side name, strength), in order.
        inpaint: the source clip to regenerate regions of.
        init: the clip for audio-to-audio.
    """

    job_id: str
    request: GenerationRequest
    loras: tuple[tuple[str, float], ...] = ()
    inpaint: SourceRef | None = None
    init: SourceRef | None = None
    submitted_at: float = field(default_factory=time.time)


class EngineReplica:
    """Holds one loaded model and runs jobs on it.

    Args:
        model: what to load (its folder and LoRAs stay on the server).
        settings: device, precision, cache sizes.
        loader: ``load_pipeline``-shaped callable (tests may pass another).
    """

    def __init__(
        self,
        model: ServedModel,
        settings: ServerSettings,
        loader: Callable[..., Any] | None = None,
    ) -> None:
        if loader is None:
            from sa3_studio.engine.pipeline import load_pipeline

            loader = load_pipeline
        t0 = time.perf_counter()
        self.model = model
        self.settings = settings
        self.pipeline = loader(
            model.path, device=settings.device, dtype=settings.dtype, model_id=model.name
        )
        self._lock = threading.Lock()
        self._latents: LruStore[Any] = LruStore(settings.latent_cache_count, 8 * 1024**3)
        self._roots = (*settings.scrub_roots, model.path, *model.loras.values())
        self.jobs_done = 0
        self.jobs_cancelled = 0
        self.last_cancel_steps = 0
        """Sampler steps the last cancelled job ran after its cancel was asked for."""
        self._steps_after_cancel = 0
        log.info("replica of %s ready in %.1f s", model.name, time.perf_counter() - t0)

    # -- the job -------------------------------------------------------------------------------

    async def run(self, spec: JobSpec) -> AsyncIterator[dict[str, Any]]:
        """Run one job; yields its events. Cancelling the iteration cancels the job."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        token = CancelToken()

        def emit(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        finished = False
        try:
            inpaint_audio = await self._fetch(spec.inpaint, spec)
            init_audio = await self._fetch(spec.init, spec)
            work = loop.run_in_executor(
                None, self._work, spec, inpaint_audio, init_audio, token, emit
            )
            while True:
                event = await events.get()
                yield event
                if event["type"] in ("result", "error"):
                    finished = True
                    break
            await work
        finally:
            if not finished:
                token.cancel()  # the engine stops before its next step and frees the lock
                log.info("job %s cancelled", spec.job_id)

    async def _fetch(self, ref: SourceRef | None, spec: JobSpec) -> npt.NDArray[np.float32] | None:
        """The clip's audio, or ``None`` when it is not needed (its latents are cached)."""
        if ref is None:
            return None
        if ref is spec.inpaint and self._latent_key(spec) in self._latents:
            return None
        data = ref.data
        if inspect.isawaitable(data) or type(data).__name__ == "ObjectRef":
            data = await data
        return np.asarray(data, dtype=np.float32)

    def _durations(self, spec: JobSpec) -> list[float]:
        d = spec.request.duration
        if d is None:
            ref = spec.inpaint or spec.init
            return [ref.frames / ref.sample_rate] if ref is not None else [0.0]
        if isinstance(d, int | float):
            return [float(d)]
        return [float(x) for x in d]

    def _latent_key(self, spec: JobSpec) -> tuple[str, int] | None:
        if spec.inpaint is None:
            return None
        durations = self._durations(spec)
        batch = spec.request.batch_size
        if len(durations) == 1 and batch > 1:
            durations = durations * batch
        try:
            samples = self.pipeline.plan(durations).audio_samples
        except Sa3Error:
            return None
        return (spec.inpaint.id, int(samples))

    def _to_model_rate(self, audio: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
        if rate == self.pipeline.sample_rate:
            return audio
        from sa3_studio.audio.resample import resample

        return resample(audio, rate, self.pipeline.sample_rate)

    def _work(
        self,
        spec: JobSpec,
        inpaint_audio: npt.NDArray[np.float32] | None,
        init_audio: npt.NDArray[np.float32] | None,
        token: CancelToken,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        """On a worker thread: wait for the pipeline, then run the job; always emits an end."""
        try:
            with self._lock:
                token.raise_if_cancelled()
                emit(
                    {
                        "type": "started",
                        "queued_s": max(0.0, time.time() - spec.submitted_at),
                        "replica": self.replica_name(),
                        "jobs_done": self.jobs_done,
                        "jobs_cancelled": self.jobs_cancelled,
                        "last_cancel_steps": self.last_cancel_steps,
                    }
                )
                emit(self._generate(spec, inpaint_audio, init_audio, token, emit))
                self.jobs_done += 1
        except Cancelled:
            self.jobs_cancelled += 1
            self.last_cancel_steps = self._steps_after_cancel
            emit({"type": "error", "code": "cancelled", "message": "The job was cancelled."})
        except MemoryError:
            emit(
                self._failure(
                    "The server ran out of memory for this job; ask for fewer takes "
                    "or a shorter window."
                )
            )
        except Sa3Error as exc:
            emit(self._failure(scrub(str(exc), self._roots)))
        except Exception as exc:
            text = str(exc)
            if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text:
                emit(
                    self._failure(
                        "The server's GPU ran out of memory for this job; ask for "
                        "fewer takes or a shorter window."
                    )
                )
                return
            log.error("job %s failed:\n%s", spec.job_id, traceback.format_exc())
            emit(
                {
                    "type": "error",
                    "code": "internal",
                    "message": "The server failed this job unexpectedly; its log has the details.",
                }
            )

    @staticmethod
    def _failure(message: str) -> dict[str, Any]:
        return {"type": "error", "code": "generation_failed", "message": message}

    def _generate(
        self,
        spec: JobSpec,
        inpaint_audio: npt.NDArray[np.float32] | None,
        init_audio: npt.NDArray[np.float32] | None,
        token: CancelToken,
        emit: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        self._apply_loras(spec.loras)
        request = spec.request
        encode_s = 0.0
        if spec.inpaint is not None:
            key = self._latent_key(spec)
            latents = self._latents.get(key) if key is not None else None
            if latents is None:
                if inpaint_audio is None:  # evicted between the check and now
                    raise Sa3Error("The source audio is no longer held; send the job again.")
                audio = self._to_model_rate(inpaint_audio, spec.inpaint.sample_rate)
                t1 = time.perf_counter()
                latents = self.pipeline.encode(audio, duration=max(self._durations(spec)))
                encode_s = time.perf_counter() - t1
                if key is not None and getattr(latents, "audio_samples", None) == key[1]:
                    size = int(getattr(getattr(latents, "latents", None), "nbytes", 0)) or 1
                    self._latents.put(key, latents, size)
            request = dataclasses.replace(request, source_latents=latents, inpaint_audio=None)
        if spec.init is not None and init_audio is not None:
            audio = self._to_model_rate(init_audio, spec.init.sample_rate)
            request = dataclasses.replace(request, init_audio=audio)

        self._steps_after_cancel = 0

        def on_step(done: int, total: int) -> None:
            if token.cancelled:
                self._steps_after_cancel += 1
            emit({"type": "step", "done": int(done), "total": int(total)})

        result = self.pipeline.generate(request, on_step=on_step, cancel=token)
        timings = {k: float(v) for k, v in result.timings.items()}
        timings["source_encode"] = encode_s
        timings["replica_total"] = time.perf_counter() - t0
        return {
            "type": "result",
            "audio": np.ascontiguousarray(result.audio, dtype=np.float32),
            "sample_rate": int(result.sample_rate),
            "seed": int(result.seed),
            "start_frame": int(result.start_frame),
            "timings": timings,
            "model": self.model.name,
            "weights_hash": str(result.weights_hash or self.model.info.weights_hash),
            "latent_cache_hit": encode_s == 0.0 and spec.inpaint is not None,
        }

    def _apply_loras(self, wanted: Sequence[tuple[str, float]]) -> None:
        """Make the pipeline's LoRAs exactly ``wanted`` (server-side names), in order."""
        apply_loras(self.pipeline, [(self.model.loras[n], float(s)) for n, s in wanted])

    def replica_name(self) -> str:
        """A name for this replica in events ("" outside Ray)."""
        return ""

    def describe(self) -> Mapping[str, Any]:
        """Where this replica runs (device and precision as loaded)."""
        return {
            "device": str(getattr(self.pipeline, "device", "cpu")),
            "dtype": str(getattr(self.pipeline, "dtype", "")).removeprefix("torch."),
        }
