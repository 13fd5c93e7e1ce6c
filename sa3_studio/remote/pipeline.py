"""A pipeline that runs on an SA3 Studio server: the same interface as the local engine.

:class:`RemotePipeline` has what the model thread, the generation jobs and the CLI use of
``engine.pipeline.Pipeline`` (``generate(request, on_step=, cancel=)``, ``encode``, the model's
facts, LoRAs by handle), so the queue, progress, cancel, takes and provenance work unchanged
when the engine is a server.

* Source audio goes up once: :meth:`RemotePipeline.encode` only names the clip by its content
  id; the first job that needs it asks the server, which answers ``unknown_source`` when it
  does not hold it, and only then is the clip uploaded (float WAV, lossless). The server keeps
  the encoded latents per replica, so a repeated take neither uploads nor encodes again.
* Progress arrives per sampler step; cancel closes the connection (the server cancels the job
  on its replica within one step). The server speaks at least every half second, so a cancel
  is noticed within that, and a dead server within the client's timeout.
* A job whose replica dies is sent again once; a second failure is an error that says so.
* LoRAs are chosen by the server's names: a LoRA given as a file path is matched by its file
  name without suffix.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import (
    CancelToken,
    GenerationRequest,
    GenerationResult,
    PipelineLike,
    StepCallback,
)
from sa3_studio.errors import Cancelled, GenerationError
from sa3_studio.remote.client import RemoteClient, RemoteError
from sa3_studio.remote.wire import (
    LoraChoice,
    ServerModel,
    audio_from_b64,
    encode_wav,
    request_to_json,
    source_id,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
"""A job is tried at most this often (one automatic retry after a replica died)."""


@dataclass(frozen=True, slots=True)
class RemoteSource:
    """A source clip named by its content id (what ``encode`` returns for a server).

    Attributes:
        id: :func:`~sa3_studio.remote.wire.source_id` of the clip.
        audio: the clip, ``(channels, frames)`` float32 at the model's rate.
        seconds: the generation duration it is meant for.
    """

    id: str
    audio: npt.NDArray[np.float32]
    seconds: float


@dataclass(frozen=True, slots=True)
class RemoteLora:
    """An applied LoRA (the shape ``app.generation.apply_loras`` reads)."""

    handle: int
    path: str
    name: str
    strength: float


class RemotePipeline:
    """One model on an SA3 Studio server, used like a loaded local pipeline.

    Args:
        client: the connection settings.
        model: the server's description of the model.
    """

    def __init__(self, client: RemoteClient, model: ServerModel) -> None:
        self.client = client
        self.model = model
        self._loras: list[RemoteLora] = []
        self._next_handle = 1
        self._known: set[str] = set()
        self.uploads = 0
        """Clips uploaded so far (tests and the panel's status read it)."""
        self.attempts = 0
        """Jobs sent so far, retries included."""
        self.last_started: dict[str, Any] = {}
        """The ``started`` event of the last job (which replica ran it, its counters)."""

    @classmethod
    def connect(
        cls, url: str, token: str, model: str | None = None, *, timeout: float = 30.0
    ) -> RemotePipeline:
        """Ask the server for ``model`` (default: its first) and return a pipeline for it.

        Raises:
            RemoteError: unreachable, refused, or no such model (the message lists those
                offered).
        """
        client = RemoteClient(url, token, timeout=timeout)
        offered = client.models()
        if not offered:
            raise RemoteError(f"The server at {client.url} offers no model.", code="unknown_model")
        if model is None:
            return cls(client, offered[0])
        for m in offered:
            if m.name == model:
                return cls(client, m)
        names = ", ".join(m.name for m in offered)
        raise RemoteError(
            f"The server at {client.url} offers no model named {model!r}; it offers {names}.",
            code="unknown_model",
        )

    # -- facts (PipelineLike) ------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def max_seconds(self) -> float:
        return self.model.max_seconds

    @property
    def is_base(self) -> bool:
        return self.model.is_base

    @property
    def default_steps(self) -> int:
        return self.model.default_steps

    @property
    def weights_hash(self) -> str:
        return self.model.weights_hash

    @property
    def device(self) -> str:
        return f"{self.model.device} on {self.client.address.host}"

    @property
    def dtype(self) -> str:
        return self.model.dtype

    # -- LoRAs (by server-side name) -----------------------------------------------------------

    @property
    def loras(self) -> tuple[RemoteLora, ...]:
        return tuple(self._loras)

    def add_lora(self, path: str | Path, strength: float = 1.0) -> int:
        """Use the server's LoRA named like ``path`` (its file name without suffix).

        Raises:
            GenerationError: the server offers no LoRA by that name for this model.
        """
        text = str(path)
        name = text if text in self.model.loras else Path(text).stem
        if name not in self.model.loras:
            offered = ", ".join(self.model.loras) or "none"
            raise GenerationError(
                f"The server offers no LoRA named {name!r} for {self.model.name} (it offers: "
                f"{offered}); LoRAs run on the server, chosen by its names."
            )
        handle = self._next_handle
        self._next_handle += 1
        self._loras.append(RemoteLora(handle, str(path), name, float(strength)))
        return handle

    def set_lora_strength(self, handle: int | None, strength: float) -> None:
        self._loras = [
            RemoteLora(e.handle, e.path, e.name, float(strength))
            if handle is None or e.handle == handle
            else e
            for e in self._loras
        ]

    def remove_lora(self, handle: int) -> None:
        self._loras = [e for e in self._loras if e.handle != handle]

    # -- work ----------------------------------------------------------------------------------

    def encode(self, audio: Any, *, duration: float | None = None) -> RemoteSource:
        """Name a source clip for later requests (nothing is sent yet)."""
        arr = _as_audio(audio, "source audio")
        seconds = duration if duration is not None else arr.shape[-1] / self.sample_rate
        return RemoteSource(source_id(arr, self.sample_rate), arr, float(seconds))

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        """Run ``request`` on the server; see ``engine.pipeline.Pipeline.generate``.

        Raises:
            Cancelled: ``cancel`` was set (the server stops the job too).
            GenerationError: the server's engine refused the request.
            RemoteError: the server is unreachable, refused the token, or failed twice.
        """
        token = cancel or CancelToken()
        clips: dict[str, npt.NDArray[np.float32]] = {}
        inpaint_id = init_id = None
        duration = request.duration
        src = request.source_latents
        if isinstance(src, RemoteSource):
            inpaint_id = src.id
            clips[src.id] = src.audio
            if duration is None:
                duration = src.seconds
        elif src is not None:
            raise GenerationError(
                "These source latents were made by a local engine; encode the source with the "
                "server's pipeline."
            )
        elif request.inpaint_audio is not None:
            arr = _as_audio(request.inpaint_audio, "source audio")
            inpaint_id = source_id(arr, self.sample_rate)
            clips[inpaint_id] = arr
        if request.init_audio is not None:
            arr = _as_audio(request.init_audio, "init audio")
            init_id = source_id(arr, self.sample_rate)
            clips.setdefault(init_id, arr)
        if duration is not request.duration:
            from dataclasses import replace

            request = replace(request, duration=duration)
        body = request_to_json(
            self.model.name,
            request,
            inpaint_source=inpaint_id,
            init_source=init_id,
            loras=[LoraChoice(e.name, e.strength) for e in self._loras],
        )
        last: RemoteError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            token.raise_if_cancelled()
            try:
                return self._run(body, clips, on_step, token)
            except RemoteError as exc:
                if not exc.retryable or attempt == MAX_ATTEMPTS:
                    if last is not None:
                        raise RemoteError(
                            f"{exc} (tried twice; the first try failed too: {last})",
                            code=exc.code,
                            status=exc.status,
                        ) from None
                    raise
                log.warning("job failed (%s); sending it again", exc.code)
                last = exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(
        self,
        body: dict[str, Any],
        clips: dict[str, npt.NDArray[np.float32]],
        on_step: StepCallback | None,
        token: CancelToken,
    ) -> GenerationResult:
        for _ in range(len(clips) + 1):
            try:
                return self._stream(body, on_step, token)
            except RemoteError as exc:
                if exc.code != "unknown_source":
                    raise
                missing = [cid for cid in clips if cid not in self._known]
                if not missing:  # the server forgot a clip it had: send them all again
                    self._known.clear()
                    missing = list(clips)
                for cid in missing:
                    token.raise_if_cancelled()
                    info = self.client.upload(encode_wav(clips[cid], self.sample_rate))
                    self.uploads += 1
                    if info["id"] != cid:
                        raise RemoteError(
                            "The server read the uploaded audio differently than it was sent "
                            "(its content id differs); is the server the same version?",
                            code="protocol",
                        ) from None
                    self._known.add(cid)
        raise RemoteError(
            "The server keeps forgetting the uploaded source audio; its source store may be "
            "too small for this many jobs at once.",
            code="unknown_source",
        )

    def _stream(
        self, body: dict[str, Any], on_step: StepCallback | None, token: CancelToken
    ) -> GenerationResult:
        t0 = time.perf_counter()
        self.attempts += 1
        stream = self.client.submit(body)
        try:
            for event in stream.events():
                if token.cancelled:
                    break  # closing the connection cancels the job on the server
                kind, data = event.kind, event.data
                if kind == "step" and on_step is not None:
                    on_step(int(data["done"]), int(data["total"]))
                elif kind == "started":
                    self.last_started = dict(data)
                elif kind == "result":
                    for cid in (body.get("inpaint_source"), body.get("init_source")):
                        if cid:
                            self._known.add(cid)
                    return _result(data, time.perf_counter() - t0)
                elif kind == "error":
                    code = str(data.get("code", "internal"))
                    message = str(data.get("message", "The server failed the job."))
                    if code == "cancelled":
                        raise Cancelled("Generation was cancelled on the server.")
                    if code == "generation_failed":
                        raise GenerationError(message)
                    raise RemoteError(message, code=code)
        finally:
            stream.close()
        token.raise_if_cancelled()
        raise RemoteError("The server ended the job without a result.", code="protocol")


def _as_audio(audio: Any, what: str) -> npt.NDArray[np.float32]:
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[-1] == 0 or not np.issubdtype(arr.dtype, np.floating):
        raise GenerationError(
            f"The {what} must be a float array shaped (channels, frames), not "
            f"{arr.dtype} {arr.shape}."
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _result(data: Any, elapsed: float) -> GenerationResult:
    try:
        takes = [audio_from_b64(text) for text in data["audio"]]
        rate = int(data["sample_rate"])
        audio = np.stack([a for a, _ in takes]).astype(np.float32, copy=False)  # (B, C, N)
        timings = {str(k): float(v) for k, v in dict(data.get("timings", {})).items()}
        timings["round_trip"] = elapsed
        return GenerationResult(
            audio=audio,
            sample_rate=rate,
            seed=int(data["seed"]),
            start_frame=int(data.get("start_frame", 0)),
            timings=timings,
            model_id=str(data.get("model", "")),
            weights_hash=str(data.get("weights_hash", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RemoteError(
            f"The server's result could not be read ({exc}).", code="protocol"
        ) from None


def server_pipeline_factory(url: str, token: str, *, timeout: float = 30.0) -> Any:
    """A pipeline factory for the model thread: ``factory(path, device=, dtype=)`` where
    ``path`` is the server-side model name (``server:NAME`` also works)."""

    def factory(path: str, device: str = "auto", dtype: str = "auto") -> RemotePipeline:
        name = str(path).removeprefix("server:")
        return RemotePipeline.connect(url, token, name or None, timeout=timeout)

    return factory


if TYPE_CHECKING:  # mypy proves that the model thread can use it like a local pipeline

    def _is_a_pipeline(p: RemotePipeline) -> PipelineLike:
        return p
