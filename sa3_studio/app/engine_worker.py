"""The model thread: one QObject on one dedicated QThread that owns the loaded pipeline.

The worker never imports the engine: a *pipeline factory* is injected (the composition root
passes ``sa3_studio.engine.pipeline.load_pipeline``; tests pass a fake), so this module depends
only on ``sa3_studio.engine.api``. The GUI talks to it through queued signals (see
:mod:`sa3_studio.app.engine_client`), and it answers the same way. Jobs run one at a time; a
job is any object with ``run(pipeline, on_step, cancel)`` (see :class:`EngineTask`), so the
worker knows nothing of projects, regions or takes.

Exceptions never escape a slot: they are caught here, logged with their traceback and turned
into a title and a sentence that says what to do (:func:`describe_error`). The thread survives
every error, out of memory included.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from sa3_studio.engine.api import CancelToken, PipelineFactory, PipelineLike
from sa3_studio.errors import (
    AudioFileError,
    Cancelled,
    ConfigError,
    EditError,
    GenerationError,
    Sa3Error,
    WeightsError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadModelTask:
    """Load a model folder (the worker handles this task itself).

    Attributes:
        path: the model folder.
        name: the model's name, for messages and results.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        dtype: "auto", "float32", "bfloat16" or "float16".
    """

    path: str
    name: str
    device: str = "auto"
    dtype: str = "auto"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """Facts about the model now resident on the model thread.

    Attributes:
        name: its name ("small-music", ...).
        path: its folder.
        sample_rate: its audio rate.
        max_seconds: the longest audio one pass can make.
        is_base: a -base model (takes CFG and a negative prompt).
        default_steps: sampler steps it uses by default.
        device: where it runs ("cpu", "cuda:0", ...).
        dtype: its compute precision ("float32", ...).
        weights_hash: short id of its weights.
        load_s: seconds loading took.
    """

    name: str
    path: str
    sample_rate: int
    max_seconds: float
    is_base: bool
    default_steps: int
    device: str = "cpu"
    dtype: str = "float32"
    weights_hash: str = ""
    load_s: float = 0.0


def _forget_thread_record() -> None:
    """Drop the record Python keeps of this Qt-owned thread.

    Python code on a thread Python did not start (logging asks for the current thread) makes
    the threading module register a "dummy" thread that never dies; forgetting it keeps
    ``threading.enumerate()`` honest once the QThread has finished.
    """
    active: dict[int, threading.Thread] | None = getattr(threading, "_active", None)
    dummy_type = getattr(threading, "_DummyThread", None)
    if active is None or dummy_type is None:
        return
    thread = active.get(threading.get_ident())
    if isinstance(thread, dummy_type):
        active.pop(threading.get_ident(), None)


def _device_text(pipeline: object) -> str:
    device = getattr(pipeline, "device", None)
    return str(device) if device is not None else "cpu"


def _dtype_text(pipeline: object) -> str:
    dtype = getattr(pipeline, "dtype", None)
    text = str(dtype).removeprefix("torch.") if dtype is not None else "float32"
    # The autoencoder may run in another precision than the DiT (engine.devices): say both.
    ae = getattr(getattr(pipeline, "choice", None), "ae_dtype", None)
    ae_text = str(ae).removeprefix("torch.") if ae is not None else text
    return text if ae_text == text else f"DiT {text}, SAME {ae_text}"


def describe_error(exc: BaseException, *, loading: bool = False) -> tuple[str, str]:
    """A dialog title and a sentence saying what happened and what to do.

    Args:
        exc: what the engine raised.
        loading: the error came while loading a model (not while generating).
    """
    name = type(exc).__name__
    text = str(exc).strip()
    if isinstance(exc, MemoryError) or name == "OutOfMemoryError" or "out of memory" in text:
        where = "loading the model" if loading else "generating"
        return (
            "Out of memory",
            f"The computer ran out of memory while {where}. Make fewer takes at once, "
            "choose a shorter context length, pick bfloat16 or float16 precision in Settings, "
            "or close other programs, then try again.",
        )
    if isinstance(exc, WeightsError):
        return ("Model weights problem", text or "The model's weights could not be read.")
    if isinstance(exc, ConfigError):
        return ("Model folder problem", text or "The model's configuration is unusable.")
    if isinstance(exc, AudioFileError):
        return ("Audio problem", text)
    if isinstance(exc, GenerationError | EditError):
        return ("Cannot generate", text)
    if isinstance(exc, Sa3Error):
        return ("Model problem" if loading else "Generation failed", text)
    if isinstance(exc, FileNotFoundError):
        missing = exc.filename or text
        return (
            "Missing model file",
            f"A file the model needs is missing ({missing}). Open Get Models to download "
            "the model again, or choose another models folder in Settings.",
        )
    what = "Loading the model" if loading else "Generation"
    return (
        "Unexpected error",
        f"{what} failed because of an unexpected error ({name}: {text}). The details are in "
        "the log; try again, and if it keeps happening, report it with the log.",
    )


class EngineWorker(QObject):
    """Lives on the model thread; holds the pipeline and runs one job at a time.

    Args:
        factory: builds a pipeline from a model folder (``factory(path, device=, dtype=)``).

    Signals:
        model_loaded(job_id, LoadedModel): a load finished.
        load_failed(job_id, title, message): a load failed; the previous model is gone.
        progress(job_id, done, total): after each sampler step.
        finished(job_id, result): a job returned.
        failed(job_id, title, message): a job raised; the message is for the user.
        cancelled(job_id): a job stopped because it was cancelled.
    """

    model_loaded = Signal(int, object)
    load_failed = Signal(int, str, str)
    progress = Signal(int, int, int)
    finished = Signal(int, object)
    failed = Signal(int, str, str)
    cancelled = Signal(int)

    def __init__(self, factory: PipelineFactory) -> None:
        super().__init__()
        self._factory = factory
        self._pipeline: PipelineLike | None = None
        self._loaded: LoadedModel | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        """The resident model (read on the model thread only)."""
        return self._loaded

    @Slot(int, object, object)
    def run(self, job_id: int, task: object, token: CancelToken) -> None:
        """Run one job; every outcome comes back as a signal."""
        try:
            if isinstance(task, LoadModelTask):
                self._load(job_id, task, token)
            else:
                self._generate(job_id, task, token)
        finally:
            _forget_thread_record()

    @Slot()
    def unload(self) -> None:
        """Drop the resident model (frees its memory once nothing else holds it)."""
        self._pipeline = None
        self._loaded = None
        _forget_thread_record()

    def _load(self, job_id: int, task: LoadModelTask, token: CancelToken) -> None:
        if token.cancelled:
            self.cancelled.emit(job_id)
            return
        # Drop the old model first, so two models never sit in memory together.
        self._pipeline = None
        self._loaded = None
        t0 = time.perf_counter()
        try:
            pipeline = self._factory(task.path, device=task.device, dtype=task.dtype)
        except Exception as exc:
            log.error("loading %s failed:\n%s", task.path, traceback.format_exc())
            title, message = describe_error(exc, loading=True)
            self.load_failed.emit(job_id, title, message)
            return
        self._pipeline = pipeline
        self._loaded = LoadedModel(
            name=task.name,
            path=task.path,
            sample_rate=int(pipeline.sample_rate),
            max_seconds=float(pipeline.max_seconds),
            is_base=bool(pipeline.is_base),
            default_steps=int(pipeline.default_steps),
            device=_device_text(pipeline),
            dtype=_dtype_text(pipeline),
            weights_hash=str(getattr(pipeline, "weights_hash", "")),
            load_s=time.perf_counter() - t0,
        )
        log.info("model %s loaded in %.1f s", task.name, self._loaded.load_s)
        self.model_loaded.emit(job_id, self._loaded)

    def _generate(self, job_id: int, task: object, token: CancelToken) -> None:
        pipeline = self._pipeline
        if pipeline is None:
            self.failed.emit(
                job_id,
                "No model loaded",
                "No model is loaded, so nothing can be generated; choose a model in the "
                "Generate panel (or get one with Get Models) and try again.",
            )
            return

        def on_step(done: int, total: int) -> None:
            self.progress.emit(job_id, int(done), int(total))

        try:
            token.raise_if_cancelled()
            run = getattr(task, "run", None)
            if run is None:
                raise TypeError(f"{type(task).__name__} is not an engine task")
            result = run(pipeline, on_step, token)
            token.raise_if_cancelled()
        except Cancelled:
            self.cancelled.emit(job_id)
        except Exception as exc:
            log.error("generation job %d failed:\n%s", job_id, traceback.format_exc())
            title, message = describe_error(exc)
            self.failed.emit(job_id, title, message)
        else:
            self.finished.emit(job_id, result)
