"""The GUI side of the model thread: a visible job queue, progress with an ETA, and cancel.

:class:`EngineClient` lives on the GUI thread. It owns one dedicated QThread with an
:class:`~sa3_studio.app.engine_worker.EngineWorker` on it, keeps the queue of jobs (loading a
model is a job like any other, shown in the queue), hands the worker one job at a time and
turns the worker's answers into its own signals.

Cancel is not a queued signal (the worker's loop is busy): the client sets the job's
:class:`~sa3_studio.engine.api.CancelToken` directly, and the engine stops within one sampler
step. A queued job that is cancelled simply leaves the queue. A result that arrives for a job
that was cancelled or superseded in the meantime is dropped.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sa3_studio.app.engine_worker import EngineWorker, LoadedModel, LoadModelTask
from sa3_studio.engine.api import CancelToken, EngineTask, ModelInfo, PipelineFactory

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 30_000
"""How long closing the window waits for the model thread to stop."""


class JobKind(enum.StrEnum):
    """What a queued job does."""

    LOAD = "load"
    GENERATE = "generate"


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"


@dataclass(eq=False)
class EngineJob:
    """One entry of the queue.

    Attributes:
        id: unique, increasing.
        kind: load or generate.
        label: what the user sees ("Regenerate 2 regions · 2 takes").
        task: what the worker runs.
        model_key: (path, device, dtype) of the model the job needs.
        model_name: that model's name.
        tag: lets callers cancel related jobs together (e.g. the document they belong to).
        state: queued, running or cancelling.
        done: sampler steps done.
        total: sampler steps in the whole job (0 until the first report).
        submitted_at: clock time when it was queued.
        started_at: clock time when it started running.
        eta_s: estimated seconds left (``None`` until there is a step to go by).
        token: the cancel flag the engine checks every step.
    """

    id: int
    kind: JobKind
    label: str
    task: object
    model_key: tuple[str, str, str]
    model_name: str = ""
    tag: object = None
    state: JobState = JobState.QUEUED
    done: int = 0
    total: int = 0
    submitted_at: float = 0.0
    started_at: float | None = None
    eta_s: float | None = None
    token: CancelToken = field(default_factory=CancelToken)

    @property
    def fraction(self) -> float:
        """Progress 0..1 (0 while nothing is known)."""
        return self.done / self.total if self.total > 0 else 0.0


class EngineClient(QObject):
    """Queue, dispatch and progress of the model thread, on the GUI thread.

    Args:
        factory: the pipeline factory handed to the worker (``load_pipeline`` in the app).
        parent: Qt parent.
        device: compute device for loads ("auto", "cpu", "cuda", ...).
        dtype: precision for loads ("auto", "float32", ...).
        clock: monotonic seconds (tests may pass a fake).

    Signals:
        queue_changed(): a job was added, started, finished or removed.
        job_started(job_id): a job began running on the model thread.
        progress(job_id, done, total, eta_s): after each sampler step (eta -1 when unknown).
        job_finished(job_id, result): a generate job's result (never for a stale job).
        job_failed(job_id, title, message): a generate job failed; show the message.
        job_cancelled(job_id): a job was cancelled (queued or running) or superseded.
        model_loading(name): a model load started.
        model_loaded(LoadedModel): a model is resident and ready.
        load_failed(title, message): a model could not be loaded.
        busy_changed(busy): whether any job is queued or running.
    """

    queue_changed = Signal()
    job_started = Signal(int)
    progress = Signal(int, int, int, float)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str, str)
    job_cancelled = Signal(int)
    model_loading = Signal(str)
    model_loaded = Signal(object)
    load_failed = Signal(str, str)
    busy_changed = Signal(bool)

    _dispatch = Signal(int, object, object)
    _unload = Signal()

    def __init__(
        self,
        factory: PipelineFactory,
        parent: QObject | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._device = device
        self._dtype = dtype
        self._clock = clock
        self._next_id = 1
        self._queue: list[EngineJob] = []
        self._running: EngineJob | None = None
        self._loaded: LoadedModel | None = None
        self._loaded_key: tuple[str, str, str] | None = None
        # The model the queue will have loaded once every queued load has run.
        self._target_key: tuple[str, str, str] | None = None
        self._loading_name: str | None = None
        self._busy = False
        self._closed = False
        self._thread = QThread()
        self._thread.setObjectName("sa3-model-thread")
        self._worker = EngineWorker(factory)
        self._worker.moveToThread(self._thread)
        self._dispatch.connect(self._worker.run)
        self._unload.connect(self._worker.unload)
        self._worker.model_loaded.connect(self._on_loaded)
        self._worker.load_failed.connect(self._on_load_failed)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        # The worker dies with its thread (the documented QThread worker pattern).
        self._thread.finished.connect(self._worker.deleteLater)

    # -- state ---------------------------------------------------------------------------------

    @property
    def loaded_model(self) -> LoadedModel | None:
        """The resident model, or ``None``."""
        return self._loaded

    @property
    def loading_name(self) -> str | None:
        """The model being loaded right now, if any."""
        return self._loading_name

    @property
    def compute(self) -> tuple[str, str]:
        """(device, dtype) used for the next load."""
        return self._device, self._dtype

    def set_compute(self, device: str, dtype: str) -> None:
        """Device and precision for the next load (the resident model is reloaded on demand)."""
        self._device = device or "auto"
        self._dtype = dtype or "auto"

    def jobs(self) -> list[EngineJob]:
        """The running job (first) and the queued ones, in order."""
        running = [self._running] if self._running is not None else []
        return running + list(self._queue)

    def job(self, job_id: int) -> EngineJob | None:
        """A live job by id."""
        for j in self.jobs():
            if j.id == job_id:
                return j
        return None

    @property
    def is_busy(self) -> bool:
        """True while a job is queued or running."""
        return self._running is not None or bool(self._queue)

    @property
    def model_thread(self) -> QThread:
        """The model thread (for tests and diagnostics)."""
        return self._thread

    # -- commands ------------------------------------------------------------------------------

    def load_model(self, path: str, name: str) -> int:
        """Queue loading the model in ``path`` with the current device and precision.

        Returns:
            The load job's id.
        """
        key = (str(path), self._device, self._dtype)
        job = self._load_job(key, name)
        self._queue.append(job)
        self._target_key = key
        self.queue_changed.emit()
        self._pump()
        return job.id

    def submit(
        self,
        task: EngineTask,
        label: str,
        *,
        model_path: str,
        model_name: str,
        tag: object = None,
    ) -> int:
        """Queue a generation; a load of ``model_path`` is queued first when needed.

        Args:
            task: what the worker runs (``task.run(pipeline, on_step, cancel)``).
            label: what the queue shows.
            model_path: the model the task needs.
            model_name: its name (for the load job's label).
            tag: anything; :meth:`cancel_tagged` cancels every job with an equal tag.

        Returns:
            The job's id.
        """
        key = (str(model_path), self._device, self._dtype)
        if key != self._target_key:
            self.load_model(model_path, model_name)
        job = self._new_job(JobKind.GENERATE, label, task, key, model_name, tag)
        self._queue.append(job)
        self.queue_changed.emit()
        self._pump()
        return job.id

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; True when there was such a job.

        A queued job leaves the queue at once; a running one stops within one sampler step.
        """
        for j in self._queue:
            if j.id == job_id:
                self._drop_queued([j])
                return True
        if self._running is not None and self._running.id == job_id:
            self._cancel_running()
            return True
        return False

    def cancel_all(self) -> None:
        """Cancel the running job and empty the queue."""
        self._drop_queued(list(self._queue))
        if self._running is not None:
            self._cancel_running()

    def cancel_tagged(self, tag: object) -> None:
        """Supersede every job whose tag equals ``tag`` (its result, if any, is dropped)."""
        self._drop_queued([j for j in self._queue if j.tag == tag and j.tag is not None])
        if self._running is not None and self._running.tag == tag and tag is not None:
            self._cancel_running()

    def unload_model(self) -> None:
        """Free the resident model (the next job loads it again)."""
        self._loaded = None
        self._loaded_key = None
        if not any(j.kind is JobKind.LOAD for j in self.jobs()):
            self._target_key = None
        if self._thread.isRunning():
            self._unload.emit()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel everything, stop the model thread and wait for it (call before exit).

        Returns:
            True when the thread stopped in time.
        """
        self._closed = True
        self.cancel_all()
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        stopped = bool(self._thread.wait(timeout_ms))
        if not stopped:
            log.warning("the model thread did not stop within %d ms", timeout_ms)
        return stopped

    # -- internals -----------------------------------------------------------------------------

    def _new_job(
        self,
        kind: JobKind,
        label: str,
        task: object,
        key: tuple[str, str, str],
        model_name: str,
        tag: object,
    ) -> EngineJob:
        job = EngineJob(
            id=self._next_id,
            kind=kind,
            label=label,
            task=task,
            model_key=key,
            model_name=model_name,
            tag=tag,
            submitted_at=self._clock(),
        )
        self._next_id += 1
        return job

    def _load_job(self, key: tuple[str, str, str], name: str) -> EngineJob:
        task = LoadModelTask(key[0], name, key[1], key[2])
        return self._new_job(JobKind.LOAD, f"Load {name}", task, key, name, None)

    def _drop_queued(self, jobs: list[EngineJob]) -> None:
        if not jobs:
            return
        for j in jobs:
            j.token.cancel()
            self._queue.remove(j)
        self._retarget()
        for j in jobs:
            self.job_cancelled.emit(j.id)
        self.queue_changed.emit()
        self._update_busy()

    def _retarget(self) -> None:
        """Recompute the model the queue ends with after loads left it."""
        key = self._loaded_key
        for j in self.jobs():
            if j.kind is JobKind.LOAD and j.state is not JobState.CANCELLING:
                key = j.model_key
        self._target_key = key

    def _cancel_running(self) -> None:
        job = self._running
        if job is None or job.state is JobState.CANCELLING:
            return
        job.token.cancel()
        job.state = JobState.CANCELLING
        job.eta_s = None
        if job.kind is JobKind.LOAD:
            self._retarget()
        self.queue_changed.emit()

    def _pump(self) -> None:
        if self._running is not None or self._closed:
            self._update_busy()
            return
        while self._queue:
            job = self._queue[0]
            if job.token.cancelled:
                self._queue.pop(0)
                self.job_cancelled.emit(job.id)
                continue
            if job.kind is JobKind.GENERATE and job.model_key != self._loaded_key:
                # Its load was cancelled or failed earlier, or another model came in between:
                # load the model it needs first (visible in the queue like any load).
                job = self._load_job(job.model_key, job.model_name)
            else:
                self._queue.pop(0)
            self._running = job
            job.state = JobState.RUNNING
            job.started_at = self._clock()
            self._retarget()
            if job.kind is JobKind.LOAD:
                assert isinstance(job.task, LoadModelTask)
                self._loading_name = job.task.name
                self.model_loading.emit(job.task.name)
            if not self._thread.isRunning():
                self._thread.start()
            self.job_started.emit(job.id)
            self.queue_changed.emit()
            self._dispatch.emit(job.id, job.task, job.token)
            break
        self._update_busy()

    def _update_busy(self) -> None:
        busy = self.is_busy
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _take_running(self, job_id: int) -> EngineJob | None:
        """Finish the running job if ``job_id`` is it; None for an answer nobody waits for."""
        job = self._running
        if job is None or job.id != job_id:
            log.debug("dropped an answer for job %d, which is no longer running", job_id)
            return None
        self._running = None
        return job

    def _after(self) -> None:
        self.queue_changed.emit()
        self._pump()

    @Slot(int, object)
    def _on_loaded(self, job_id: int, model: LoadedModel) -> None:
        job = self._take_running(job_id)
        self._loading_name = None
        if job is None:
            return
        self._loaded = model
        self._loaded_key = job.model_key
        if job.token.cancelled:
            # The model is resident anyway; keep it, but tell the queue the load was cancelled.
            self._retarget()
            self.job_cancelled.emit(job.id)
        self.model_loaded.emit(model)
        self._after()

    @Slot(int, str, str)
    def _on_load_failed(self, job_id: int, title: str, message: str) -> None:
        job = self._take_running(job_id)
        self._loading_name = None
        if job is None:
            return
        self._loaded = None
        self._loaded_key = None
        # Jobs waiting for this model cannot run: take them out with it (one dialog, not many).
        waiting = [j for j in self._queue if j.model_key == job.model_key]
        for j in waiting:
            j.token.cancel()
            self._queue.remove(j)
        self._retarget()
        for j in waiting:
            self.job_cancelled.emit(j.id)
        if job.token.cancelled:
            self.job_cancelled.emit(job.id)
        else:
            self.load_failed.emit(title, message)
        self._after()

    @Slot(int, int, int)
    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        job = self._running
        if job is None or job.id != job_id or job.token.cancelled:
            return
        job.done, job.total = done, total
        if done > 0 and job.started_at is not None:
            elapsed = self._clock() - job.started_at
            job.eta_s = elapsed / done * max(total - done, 0)
        self.progress.emit(job_id, done, total, -1.0 if job.eta_s is None else job.eta_s)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        job = self._take_running(job_id)
        if job is None:
            return
        if job.token.cancelled:
            log.info("dropped the result of cancelled job %d", job_id)
            self.job_cancelled.emit(job_id)
        else:
            self.job_finished.emit(job_id, result)
        self._after()

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, title: str, message: str) -> None:
        job = self._take_running(job_id)
        if job is None:
            return
        if job.token.cancelled:
            self.job_cancelled.emit(job_id)
        else:
            self.job_failed.emit(job_id, title, message)
        self._after()

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        job = self._take_running(job_id)
        if job is None:
            return
        self.job_cancelled.emit(job_id)
        self._after()


@dataclass(frozen=True, slots=True)
class OfficialModelEntry:
    """A released model the Get Models dialog can download.

    Attributes:
        name: the official id ("small-music").
        repo_id: its Hugging Face repository.
        url: its page (where a gated model's licence is accepted).
        gated: the repository asks for a licence acceptance and a token.
        max_seconds: the longest audio it generates.
        family: "small" or "medium".
        objective: "rf_denoiser" (post-trained) or "rectified_flow" (base).
        size_hint: a rough download size for the user ("≈ 3 GB").
    """

    name: str
    repo_id: str
    url: str
    gated: bool
    max_seconds: float
    family: str = "small"
    objective: str = "rf_denoiser"
    size_hint: str = ""

    @property
    def is_base(self) -> bool:
        """A -base model (CFG and negative prompts, more steps)."""
        return self.objective == "rectified_flow"


Downloader = Callable[..., ModelInfo]
"""``download(name, dest_dir, *, progress=(done, total) -> None, token=str|None) -> ModelInfo``."""


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """Where the GUI finds models and how it downloads them (wired by the composition root).

    Attributes:
        discover: the models on disk, in search order (settings folder, SA3_STUDIO_MODELS,
            the per-user folder, the program's folder, ./models, the Hugging Face cache).
        download: fetches an official model (explicit user action only); ``None`` offline.
        official: the models that can be downloaded.
        search_places: the folders searched now, as text for the user.
    """

    discover: Callable[[], list[ModelInfo]]
    download: Downloader | None = None
    official: tuple[OfficialModelEntry, ...] = ()
    search_places: Callable[[], tuple[str, ...]] = tuple
