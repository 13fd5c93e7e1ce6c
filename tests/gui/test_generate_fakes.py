"""A fake pipeline and the objects the generation GUI tests share (imported by those tests).

The fake behaves like ``Pipeline`` where the GUI can see it (steps, cancel checks, seeds,
lengths, rates, decode ranges, errors) and makes a sine whose pitch comes from the seed, so
tests can tell takes apart and check where each take's audio came from. It runs on the model
thread exactly as the real engine does; a :class:`StepGate` holds it at a chosen step so tests
can cancel a running job deterministically (no sleeps).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings

from sa3_studio.app.document_controller import DocumentController
from sa3_studio.app.engine_client import EngineClient, ModelCatalog, OfficialModelEntry
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.session import Session
from sa3_studio.app.transport import Transport
from sa3_studio.audio.player import ManualBackend, Player
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.project import Project
from sa3_studio.engine.api import CancelToken, GenerationRequest, GenerationResult, ModelInfo

SR = 44100
GATE_TIMEOUT_S = 20.0


def pad_bool_refcounts() -> None:
    """Guard against PySide6 6.12.0 losing references to ``True``/``None`` (the project pins
    an earlier PySide6; this keeps the tests safe if that one is ever installed)."""
    guard_refcounts()


def seed_frequency(seed: int) -> float:
    """The pitch the fake gives a seed (tests recognise takes by it)."""
    return 110.0 + (seed % 97) * 7.0


class StepGate:
    """Holds the model thread at ``step`` (0-based) until :meth:`open` is called."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.reached = threading.Event()
        self._release = threading.Event()

    def at_step(self, index: int) -> None:
        if index == self.step:
            self.reached.set()
            self._release.wait(GATE_TIMEOUT_S)

    def open(self) -> None:
        self._release.set()


@dataclass
class FakePipeline:
    """A pipeline without a model: steps, cancel checks and seed-pitched sines."""

    sample_rate: int = SR
    max_seconds: float = 120.0
    is_base: bool = False
    default_steps: int = 8
    device: str = "cpu"
    dtype: str = "float32"
    weights_hash: str = "fake1234"
    fail: BaseException | None = None
    gate: StepGate | None = None
    after_last_step: StepGate | None = None
    tick: Any = None
    requests: list[GenerationRequest] = field(default_factory=list)
    encoded: list[tuple[tuple[int, ...], float | None]] = field(default_factory=list)
    steps_run: int = 0

    def encode(self, audio: Any, *, duration: float | None = None) -> Any:
        arr = np.asarray(audio)
        self.encoded.append((arr.shape, duration))
        return ("latents", arr.shape, duration)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: Any = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        self.requests.append(request)
        steps = request.steps or self.default_steps
        for i in range(steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if self.gate is not None:
                self.gate.at_step(i)
            if self.tick is not None:
                self.tick()
            self.steps_run += 1
            if on_step is not None:
                on_step(i + 1, steps)
        if self.after_last_step is not None:
            self.after_last_step.at_step(0)
        if self.fail is not None:
            raise self.fail
        seed = int(request.seed if request.seed is not None else 0)
        duration = request.duration
        assert isinstance(duration, float | int)
        n = round(float(duration) * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        wave = (0.3 * np.sin(2 * math.pi * seed_frequency(seed) * t)).astype(np.float32)
        audio = np.stack([wave, wave])[None]  # (1, 2, n)
        start = 0
        if request.decode_range is not None:
            start = max(0, math.floor(request.decode_range[0] * self.sample_rate) - 64)
            audio = audio[..., start:]
        return GenerationResult(
            audio=np.ascontiguousarray(audio),
            sample_rate=self.sample_rate,
            seed=seed,
            start_frame=start,
            timings={"total": 0.01},
            model_id="fake",
            weights_hash=self.weights_hash,
        )


@dataclass
class FakeFactory:
    """A pipeline factory: returns the fake, raises ``error``, or waits for ``gate``."""

    pipeline: FakePipeline = field(default_factory=FakePipeline)
    error: BaseException | None = None
    gate: threading.Event | None = None
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, path: str, *, device: str = "auto", dtype: str = "auto") -> FakePipeline:
        self.calls.append((str(path), device, dtype))
        if self.gate is not None:
            self.gate.wait(GATE_TIMEOUT_S)
        if self.error is not None:
            raise self.error
        return self.pipeline


def model_info(
    name: str = "small-music",
    path: str = "/models/small-music",
    *,
    max_seconds: float = 120.0,
    objective: str = "rf_denoiser",
    complete: bool = True,
    sample_rate: int = SR,
    source: str = "./models",
) -> ModelInfo:
    """A model as discovery reports it."""
    return ModelInfo(
        name=name,
        path=path,
        family="small",
        objective=objective,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        complete=complete,
        missing=() if complete else ("model.safetensors",),
        size_bytes=1234,
        source=source,
    )


OFFICIAL = (
    OfficialModelEntry(
        "small-music",
        "stabilityai/stable-audio-3-small-music",
        "https://huggingface.co/stabilityai/stable-audio-3-small-music",
        True,
        120.0,
    ),
    OfficialModelEntry(
        "small-music-base",
        "stabilityai/stable-audio-3-small-music-base",
        "https://huggingface.co/stabilityai/stable-audio-3-small-music-base",
        False,
        120.0,
        objective="rectified_flow",
    ),
)


def catalog(models: list[ModelInfo], download: Any = None) -> ModelCatalog:
    """A catalog whose discovery returns ``models`` (the list may be changed later)."""
    return ModelCatalog(
        discover=lambda: list(models),
        download=download,
        official=OFFICIAL,
        search_places=lambda: ("/models (settings)", "./models", "~/.cache/huggingface/hub"),
    )


def song(seconds: float = 20.0, seed: int = 1) -> AudioData:
    """Stereo test audio: a chord with a little noise (one second, repeated)."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    base = 0.2 * np.sin(2 * math.pi * 220 * t) + 0.1 * np.sin(2 * math.pi * 330 * t)
    second = (np.stack([base, base]) + 0.01 * rng.standard_normal((2, SR))).astype(np.float32)
    n = round(seconds * SR)
    audio = np.tile(second, (1, -(-n // SR)))[:, :n]
    return AudioData.from_array(audio, copy=False)


def project(seconds: float = 20.0) -> Project:
    """A one-track project holding :func:`song`."""
    return Project.from_audio(song(seconds))


@dataclass(eq=False)
class Env:
    """Every object of the generation workflow, wired as the application wires them."""

    document: DocumentController
    session: Session
    engine: EngineClient
    controller: GenerationController
    transport: Transport
    backend: ManualBackend
    factory: Any
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pipeline(self) -> FakePipeline:
        return self.factory.pipeline

    def close(self) -> None:
        self.engine.shutdown()
        self.transport.shutdown()


def make_env(
    factory: Any = None,
    song_project: Project | None = None,
    *,
    model: ModelInfo | None = None,
) -> Env:
    """Build the workflow around a fake pipeline and a one-track song."""
    from sa3_studio.app.generation import ModelChoice

    factory = factory or FakeFactory()
    document = DocumentController(song_project if song_project is not None else project())
    session = Session()
    session.set_timeline(SR, document.project.frames, fit=True)
    engine = EngineClient(factory, device="cpu", dtype="float32")
    backend = ManualBackend()
    transport = Transport(Player(backend), session)
    transport.set_audio_provider(lambda: (render_mix(document.project), SR))
    document.project_changed.connect(lambda p: session.set_timeline(SR, p.frames))
    document.project_changed.connect(lambda _p: transport.invalidate())
    controller = GenerationController(document, session, engine, transport)
    env = Env(document, session, engine, controller, transport, backend, factory)
    controller.error.connect(lambda t, m: env.errors.append((t, m)))
    if model is not None:
        controller.set_model(ModelChoice.from_info(model), load=False)
    return env


@contextmanager
def temp_settings(tmp_path: Any) -> Iterator[QSettings]:
    """A QSettings backed by an INI file in ``tmp_path``."""
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    yield store
    store.sync()
