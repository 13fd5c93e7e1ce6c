"""Background jobs for slow file work (decode, peaks, export, save) with progress and cancel.

A job is a plain function ``fn(progress, cancel) -> result`` that runs on a thread of the
runner's own QThreadPool. Its progress, result or error come back to the GUI thread as queued
signals. Jobs have a *kind* ("open", "export", "spectrogram" ...): starting a new job of a kind
cancels the one before, and whatever that older job still delivers is dropped as stale, so the
window only ever shows the result the user asked for last.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import Cancelled, Sa3Error

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0 / 30.0
"""Progress reports closer together than this are not sent (the GUI repaints at most this often)."""


class ProgressFn(Protocol):
    """What a job calls to report progress; raises Cancelled when the user cancelled."""

    def __call__(self, fraction: float, message: str = "") -> None: ...


JobFn = Callable[[ProgressFn, CancelToken], Any]


@dataclass(eq=False)
class Job:
    """A submitted job.

    Attributes:
        id: unique, increasing.
        kind: jobs of the same kind replace each other.
        label: what the user sees ("Opening song.wav").
        token: set by :meth:`cancel`; the job checks it at each progress report.
        done: set on the worker thread when the function has returned or raised.
    """

    id: int
    kind: str
    label: str
    token: CancelToken = field(default_factory=CancelToken)
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self.token.cancel()


class _Bridge(QObject):
    """Lives in the GUI thread; its signals, emitted from a worker, arrive there queued."""

    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str, object)
    cancelled = Signal(int)


def _forget_foreign_thread() -> None:
    """Drop the record Python keeps of a Qt-owned pool thread.

    When Python code on a thread that Python did not start asks for the current thread (logging
    does, for example), the threading module registers a "dummy" thread object that stays
    "alive" forever. The pool thread is Qt's and outlives the job; forgetting the record keeps
    ``threading.enumerate()`` honest about the threads that Python code is actually running.
    """
    active: dict[int, threading.Thread] | None = getattr(threading, "_active", None)
    dummy_type = getattr(threading, "_DummyThread", None)
    if active is None or dummy_type is None:
        return
    ident = threading.get_ident()
    thread = active.get(ident)
    if isinstance(thread, dummy_type):
        active.pop(ident, None)


class _Runnable(QRunnable):
    def __init__(self, job: Job, fn: JobFn, bridge: _Bridge) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._job = job
        self._fn = fn
        self._bridge = bridge
        self._last = 0.0

    def _progress(self, fraction: float, message: str = "") -> None:
        self._job.token.raise_if_cancelled()
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            self._last = now
            self._bridge.progress.emit(self._job.id, float(min(max(fraction, 0.0), 1.0)), message)

    def run(self) -> None:
        job = self._job
        try:
            if job.token.cancelled:
                raise Cancelled("The job was cancelled.")
            # A result that comes back after a cancel is still delivered: the runner passes it
            # on as discarded, so that whatever it holds (an open file) can be released.
            result = self._fn(self._progress, job.token)
        except Cancelled:
            self._bridge.cancelled.emit(job.id)
        except Sa3Error as exc:
            self._bridge.failed.emit(job.id, str(exc), exc)
        except Exception as exc:
            log.error("job %r failed:\n%s", job.label, traceback.format_exc())
            message = (
                f"{job.label} failed because of an internal error ({type(exc).__name__}: {exc}). "
                "Please try again; if it keeps happening, report it with the log."
            )
            self._bridge.failed.emit(job.id, message, exc)
        else:
            self._bridge.finished.emit(job.id, result)
        finally:
            job.done.set()
            _forget_foreign_thread()


class JobRunner(QObject):
    """Runs jobs on its own thread pool; signals arrive in the GUI thread.

    Signals:
        started(job): a job was submitted.
        progress(job, fraction, message): 0..1, at most about 30 times a second.
        finished(job, result): the job returned (never sent for a stale job).
        failed(job, message, exception): the job raised; ``message`` is for the user.
        cancelled(job): the job stopped because it was cancelled.
        discarded(job, result): a result that came too late (a newer job of its kind was
            started, or it was cancelled); its owner may need to release what it holds.
        idle(): no job is running any more.

    Args:
        max_threads: size of the pool (file work is I/O and numpy; two is plenty).
    """

    started = Signal(object)
    progress = Signal(object, float, str)
    finished = Signal(object, object)
    failed = Signal(object, str, object)
    cancelled = Signal(object)
    discarded = Signal(object, object)
    idle = Signal()

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._bridge = _Bridge(self)
        self._bridge.progress.connect(self._on_progress)
        self._bridge.finished.connect(self._on_finished)
        self._bridge.failed.connect(self._on_failed)
        self._bridge.cancelled.connect(self._on_cancelled)
        self._next_id = 1
        self._jobs: dict[int, Job] = {}
        self._current: dict[str, int] = {}

    def submit(self, kind: str, fn: JobFn, label: str = "") -> Job:
        """Run ``fn(progress, cancel)`` in the background.

        A running job of the same ``kind`` is cancelled and its results are dropped.

        Args:
            kind: jobs of one kind replace each other ("open", "export" ...).
            fn: the work; call ``progress(fraction, message)`` now and then (it raises
                :class:`~sa3_studio.errors.Cancelled` once the job was cancelled).
            label: what the job does, in words, for progress displays and error messages.

        Returns:
            The job (keep it to cancel it or to match signals).
        """
        old = self._current.get(kind)
        if old is not None and old in self._jobs:
            self._jobs[old].cancel()
        job = Job(self._next_id, kind, label or kind)
        self._next_id += 1
        self._jobs[job.id] = job
        self._current[kind] = job.id
        self.started.emit(job)
        self._pool.start(_Runnable(job, fn, self._bridge))
        return job

    def cancel(self, kind: str) -> None:
        """Cancel the current job of ``kind`` (if any)."""
        jid = self._current.get(kind)
        if jid is not None and jid in self._jobs:
            self._jobs[jid].cancel()

    def cancel_all(self) -> None:
        """Cancel every job."""
        for job in self._jobs.values():
            job.cancel()

    def is_busy(self, kind: str | None = None) -> bool:
        """True while a job (of ``kind``) has not reported back."""
        if kind is None:
            return bool(self._jobs)
        jid = self._current.get(kind)
        return jid is not None and jid in self._jobs

    def current(self, kind: str) -> Job | None:
        """The live job of ``kind``, if any."""
        jid = self._current.get(kind)
        return self._jobs.get(jid) if jid is not None else None

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until every worker thread is idle; True if they are."""
        return bool(self._pool.waitForDone(timeout_ms))

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel everything and wait for the pool's threads to finish (call before exit)."""
        self.cancel_all()
        self._pool.waitForDone(timeout_ms)
        self._pool.clear()

    def _is_current(self, jid: int) -> Job | None:
        job = self._jobs.get(jid)
        if job is None or self._current.get(job.kind) != jid:
            return None
        return job

    def _retire(self, jid: int) -> None:
        job = self._jobs.pop(jid, None)
        if job is not None and self._current.get(job.kind) == jid:
            del self._current[job.kind]
        if not self._jobs:
            self.idle.emit()

    @Slot(int, float, str)
    def _on_progress(self, jid: int, fraction: float, message: str) -> None:
        job = self._is_current(jid)
        if job is not None and not job.token.cancelled:
            self.progress.emit(job, fraction, message)

    @Slot(int, object)
    def _on_finished(self, jid: int, result: object) -> None:
        job = self._jobs.get(jid)
        current = self._is_current(jid)
        self._retire(jid)
        if job is None:
            return
        if current is not None and not job.token.cancelled:
            self.finished.emit(job, result)
            return
        log.debug("dropped the stale result of job %d", jid)
        self.discarded.emit(job, result)
        if current is not None:
            self.cancelled.emit(job)

    @Slot(int, str, object)
    def _on_failed(self, jid: int, message: str, exc: object) -> None:
        job = self._is_current(jid)
        self._retire(jid)
        if job is not None:
            self.failed.emit(job, message, exc)

    @Slot(int)
    def _on_cancelled(self, jid: int) -> None:
        job = self._jobs.get(jid)
        current = self._is_current(jid)
        self._retire(jid)
        if job is not None and current is not None:
            self.cancelled.emit(job)
