"""The model thread: loading, the queue, progress with ETA, cancel, stale results and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QThread, QTimer
from test_generate_fakes import FakeFactory, FakePipeline, StepGate, pad_bool_refcounts

from sa3_studio.app.engine_client import EngineClient, JobKind, JobState
from sa3_studio.app.engine_worker import LoadedModel, describe_error
from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import AudioFileError, GenerationError, Sa3Error, WeightsError

WAIT_MS = 10_000


class OutOfMemoryError(RuntimeError):
    """Named like torch's CUDA out-of-memory error, which the worker recognises by name."""


class Task:
    """A minimal engine task: one generate call with ``steps`` steps."""

    def __init__(self, steps: int = 4, seed: int = 7) -> None:
        self.steps = steps
        self.seed = seed
        self.ran_on: QThread | None = None

    def run(self, pipeline: FakePipeline, on_step: object, cancel: CancelToken) -> object:
        from sa3_studio.engine.api import GenerationRequest

        self.ran_on = QThread.currentThread()
        request = GenerationRequest(prompt="x", duration=0.01, steps=self.steps, seed=self.seed)
        return pipeline.generate(request, on_step=on_step, cancel=cancel)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory(FakePipeline())


@pytest.fixture
def client(factory: FakeFactory) -> Iterator[EngineClient]:
    c = EngineClient(factory, device="cpu", dtype="float32")
    yield c
    assert c.shutdown()
    assert not c.model_thread.isRunning()


def submit(client: EngineClient, task: Task, path: str = "/m/a", tag: object = None) -> int:
    return client.submit(task, "Generate", model_path=path, model_name="a", tag=tag)


def test_load_runs_on_the_model_thread_and_reports_the_model(qtbot, client, factory):
    with qtbot.waitSignal(client.model_loaded, timeout=WAIT_MS) as loaded:
        job = client.load_model("/m/a", "model-a")
    model = loaded.args[0]
    assert isinstance(model, LoadedModel)
    assert (model.name, model.path, model.sample_rate, model.is_base) == (
        "model-a",
        "/m/a",
        44100,
        False,
    )
    assert model.device == "cpu"
    assert model.max_seconds == 120.0
    assert factory.calls == [("/m/a", "cpu", "float32")]
    assert client.loaded_model == model
    assert job >= 1
    assert client.jobs() == []


def test_loading_does_not_block_the_window(qtbot, factory):
    """While the factory is busy on the model thread, the GUI thread keeps running timers."""
    gate = threading.Event()
    factory.gate = gate
    client = EngineClient(factory)
    try:
        ticks: list[int] = []
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(1))
        with qtbot.waitSignal(client.model_loading, timeout=WAIT_MS):
            client.load_model("/m/a", "model-a")
        assert client.loading_name == "model-a"
        assert client.jobs()[0].kind is JobKind.LOAD
        timer.start()
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=WAIT_MS)
        assert client.loaded_model is None  # still loading while the window ran
        with qtbot.waitSignal(client.model_loaded, timeout=WAIT_MS):
            gate.set()
        timer.stop()
        assert client.loading_name is None
    finally:
        gate.set()
        assert client.shutdown()


def test_jobs_run_one_at_a_time_in_order_with_a_visible_queue(qtbot, client, factory):
    gate = StepGate(1)
    factory.pipeline.gate = gate
    tasks = [Task(seed=s) for s in (1, 2, 3)]
    ids = [submit(client, t) for t in tasks]
    jobs = client.jobs()
    # A load was queued first, visible like any job.
    assert [j.kind for j in jobs] == [
        JobKind.LOAD,
        JobKind.GENERATE,
        JobKind.GENERATE,
        JobKind.GENERATE,
    ]
    assert jobs[0].state is JobState.RUNNING
    assert all(j.state is JobState.QUEUED for j in jobs[1:])
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    running = client.jobs()
    assert running[0].id == ids[0]
    assert running[0].state is JobState.RUNNING
    assert [j.id for j in running[1:]] == ids[1:]
    finished: list[int] = []
    client.job_finished.connect(lambda jid, _r: finished.append(jid))
    gate.open()
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=WAIT_MS)
    assert finished == ids
    assert client.jobs() == []
    assert factory.calls == [("/m/a", "cpu", "float32")]  # loaded once, stays resident
    assert all(t.ran_on is client.model_thread for t in tasks)


def test_progress_reports_steps_and_an_eta(qtbot, factory):
    clock = [100.0]

    def tick() -> None:
        clock[0] += 1.0  # each step "takes" a second of the fake clock

    factory.pipeline.tick = tick
    client = EngineClient(factory, clock=lambda: clock[0])
    try:
        reports: list[tuple[int, int, int, float]] = []
        client.progress.connect(lambda *a: reports.append(a))
        with qtbot.waitSignal(client.job_finished, timeout=WAIT_MS):
            jid = submit(client, Task(steps=4))
        assert [(r[1], r[2]) for r in reports] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert all(r[0] == jid for r in reports)
        etas = [r[3] for r in reports]
        # Seconds per step so far times the steps left: at least 1 s per step, at most 4 s in
        # all (the GUI may see a report late, after more steps ran).
        assert etas[-1] == 0.0
        for k, eta in enumerate(etas[:3], start=1):
            assert (4 - k) * 1.0 <= eta <= 4.0 / k * (4 - k)
    finally:
        assert client.shutdown()


def test_cancel_stops_a_running_job_within_one_step(qtbot, client, factory):
    gate = StepGate(2)
    factory.pipeline.gate = gate
    finished: list[int] = []
    client.job_finished.connect(lambda jid, _r: finished.append(jid))
    jid = submit(client, Task(steps=50))
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    steps_before = factory.pipeline.steps_run
    with qtbot.waitSignal(client.job_cancelled, timeout=WAIT_MS) as cancelled:
        assert client.cancel(jid)
        assert client.jobs()[0].state is JobState.CANCELLING
        gate.open()
    assert cancelled.args == [jid]
    # The engine checked the token before the next step: at most the held step finished.
    assert factory.pipeline.steps_run <= steps_before + 1
    assert finished == []
    assert client.jobs() == []


def test_cancelling_a_queued_job_removes_it_at_once(qtbot, client, factory):
    gate = StepGate(0)
    factory.pipeline.gate = gate
    first = submit(client, Task())
    second = submit(client, Task())
    third = submit(client, Task())
    cancelled: list[int] = []
    client.job_cancelled.connect(cancelled.append)
    assert client.cancel(second)
    assert cancelled == [second]
    assert [j.id for j in client.jobs() if j.kind is JobKind.GENERATE] == [first, third]
    finished: list[int] = []
    client.job_finished.connect(lambda jid, _r: finished.append(jid))
    gate.open()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT_MS)
    assert finished == [first, third]


def test_a_result_that_arrives_after_cancel_is_dropped(qtbot, client, factory):
    """Cancel after the last step: the job still returns a result, which must not be used."""
    late = StepGate(0)
    factory.pipeline.after_last_step = late
    finished: list[int] = []
    client.job_finished.connect(lambda jid, _r: finished.append(jid))
    jid = submit(client, Task(steps=2))
    qtbot.waitUntil(late.reached.is_set, timeout=WAIT_MS)
    with qtbot.waitSignal(client.job_cancelled, timeout=WAIT_MS):
        client.cancel(jid)
        late.open()
    assert finished == []


def test_superseded_jobs_are_dropped_by_tag(qtbot, client, factory):
    gate = StepGate(1)
    factory.pipeline.gate = gate
    old_running = submit(client, Task(), tag="doc-1")
    old_queued = submit(client, Task(), tag="doc-1")
    new = submit(client, Task(), tag="doc-2")
    qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
    cancelled: list[int] = []
    finished: list[int] = []
    client.job_cancelled.connect(cancelled.append)
    client.job_finished.connect(lambda jid, _r: finished.append(jid))
    client.cancel_tagged("doc-1")
    gate.open()
    qtbot.waitUntil(lambda: finished == [new], timeout=WAIT_MS)
    assert sorted(cancelled) == sorted([old_running, old_queued])


@pytest.mark.parametrize(
    ("error", "title", "words"),
    [
        (
            OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
            "Out of memory",
            "fewer takes",
        ),
        (MemoryError(), "Out of memory", "shorter context"),
        (
            GenerationError("The source audio contains NaN or infinite samples."),
            "Cannot generate",
            "NaN",
        ),
        (AudioFileError("The audio could not be read."), "Audio problem", "could not be read"),
        (ZeroDivisionError("boom"), "Unexpected error", "log"),
    ],
)
def test_errors_come_back_as_sentences_and_the_thread_survives(
    qtbot, client, factory, error, title, words
):
    factory.pipeline.fail = error
    with qtbot.waitSignal(client.job_failed, timeout=WAIT_MS) as failed:
        jid = submit(client, Task())
    assert failed.args[0] == jid
    assert failed.args[1] == title
    assert words in failed.args[2]
    assert failed.args[2].endswith(".")
    # The same thread runs the next job.
    factory.pipeline.fail = None
    with qtbot.waitSignal(client.job_finished, timeout=WAIT_MS):
        submit(client, Task())
    assert client.model_thread.isRunning()


def test_missing_weights_fail_the_load_with_advice_and_drop_waiting_jobs(qtbot, client, factory):
    factory.error = WeightsError(
        "/m/a/model.safetensors is missing: download it again with "
        "`sa3-studio models download small-music`."
    )
    cancelled: list[int] = []
    client.job_cancelled.connect(cancelled.append)
    with qtbot.waitSignal(client.load_failed, timeout=WAIT_MS) as failed:
        jid = submit(client, Task())
    assert failed.args[0] == "Model weights problem"
    assert "download it again" in failed.args[1]
    assert cancelled == [jid]
    assert client.jobs() == []
    assert client.loaded_model is None
    # A later job (the weights are back) loads the model and runs.
    factory.error = None
    with qtbot.waitSignal(client.job_finished, timeout=WAIT_MS):
        submit(client, Task())
    assert client.loaded_model is not None


def test_a_job_for_another_model_loads_that_model_first(qtbot, client, factory):
    with qtbot.waitSignal(client.job_finished, timeout=WAIT_MS):
        submit(client, Task(), path="/m/a")
    with qtbot.waitSignal(client.job_finished, timeout=WAIT_MS):
        submit(client, Task(), path="/m/b")
    assert [c[0] for c in factory.calls] == ["/m/a", "/m/b"]
    assert client.loaded_model is not None
    assert client.loaded_model.path == "/m/b"


def test_a_cancelled_load_is_redone_for_the_job_that_needs_it(qtbot, client, factory):
    gate = threading.Event()
    factory.gate = gate
    jid = submit(client, Task())
    load = client.jobs()[0]
    assert load.kind is JobKind.LOAD
    client.cancel(load.id)
    finished: list[int] = []
    client.job_finished.connect(lambda j, _r: finished.append(j))
    gate.set()
    qtbot.waitUntil(lambda: finished == [jid], timeout=WAIT_MS)


def test_describe_error_names_files_that_are_missing():
    title, message = describe_error(
        FileNotFoundError(2, "No such file", "/m/a/t5/config.json"), loading=True
    )
    assert title == "Missing model file"
    assert "/m/a/t5/config.json" in message
    assert "Get Models" in message
    title, message = describe_error(Sa3Error("Model 'x' was not found."), loading=True)
    assert (title, message) == ("Model problem", "Model 'x' was not found.")
