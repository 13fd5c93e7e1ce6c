"""Background jobs: results come back on the GUI thread, stale ones are dropped, cancel and
errors are reported, and no thread is left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QThread

from sa3_studio.app.jobs import Job, JobRunner
from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import AudioFileError


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    r = JobRunner()
    yield r
    r.shutdown()


def test_result_arrives_on_the_gui_thread_with_progress(qtbot: Any, runner: JobRunner) -> None:
    worker_threads: list[int] = []
    seen: list[tuple[str, object]] = []

    def work(progress: Any, token: CancelToken) -> int:
        worker_threads.append(threading.get_ident())
        progress(0.5, "half")
        return 42

    runner.progress.connect(lambda job, f, m: seen.append(("progress", (f, m))))
    runner.finished.connect(
        lambda job, result: seen.append(("finished", (result, QThread.currentThread())))
    )
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.submit("calc", work, "Calculating")
    assert worker_threads[0] != threading.get_ident()
    assert ("progress", (0.5, "half")) in seen
    result, thread = seen[-1][1]  # type: ignore[misc]
    assert result == 42
    assert thread is QThread.currentThread()  # delivered on the GUI thread


def test_a_newer_job_of_the_same_kind_makes_the_older_stale(qtbot: Any, runner: JobRunner) -> None:
    release = threading.Event()
    running = threading.Event()
    finished: list[object] = []
    discarded: list[object] = []
    runner.finished.connect(lambda job, result: finished.append(result))
    runner.discarded.connect(lambda job, result: discarded.append(result))

    def slow(progress: Any, token: CancelToken) -> str:
        running.set()
        release.wait(5.0)
        return "old"  # it ignores the cancel: its result must still be handed back

    def fast(progress: Any, token: CancelToken) -> str:
        return "new"

    first = runner.submit("open", slow)
    assert running.wait(5.0)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.submit("open", fast)
    assert first.token.cancelled  # asked to stop
    release.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    assert finished == ["new"]
    assert discarded == ["old"]  # so that what it holds can be released


def test_cancel_stops_the_job_at_its_next_progress_report(qtbot: Any, runner: JobRunner) -> None:
    started = threading.Event()
    steps: list[int] = []

    def loop(progress: Any, token: CancelToken) -> None:
        for i in range(10_000):
            started.set()
            steps.append(i)
            progress(i / 10_000)
            token_wait = threading.Event()
            token_wait.wait(0.001)

    cancelled: list[Job] = []
    runner.cancelled.connect(cancelled.append)
    job = runner.submit("export", loop, "Exporting")
    assert started.wait(5.0)
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.cancel("export")
    assert cancelled == [job]
    assert len(steps) < 10_000


def test_errors_become_sentences(qtbot: Any, runner: JobRunner) -> None:
    def bad_file(progress: Any, token: CancelToken) -> None:
        raise AudioFileError("Cannot open 'x.wav': it is not audio. Choose an audio file.")

    def bug(progress: Any, token: CancelToken) -> None:
        raise ZeroDivisionError("division by zero")

    messages: list[str] = []
    runner.failed.connect(lambda job, message, exc: messages.append(message))
    with qtbot.waitSignal(runner.failed, timeout=5000):
        runner.submit("a", bad_file, "Opening x.wav")
    with qtbot.waitSignal(runner.failed, timeout=5000):
        runner.submit("b", bug, "Exporting")
    assert messages[0] == "Cannot open 'x.wav': it is not audio. Choose an audio file."
    assert messages[1].startswith("Exporting failed because of an internal error")
    assert "try again" in messages[1]


def test_worker_threads_do_not_linger_in_python(qtbot: Any, runner: JobRunner) -> None:
    import logging

    def noisy(progress: Any, token: CancelToken) -> None:
        # Logging from a pool thread makes Python register it; the runner forgets it again.
        logging.getLogger("sa3_studio.test").warning("from a worker")

    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.submit("log", noisy)
    runner.wait()
    assert all(not t.name.startswith("Dummy") for t in threading.enumerate())
