"""A pipeline stand-in for workflow tests: it keeps the engine's length and decode rules
(``int(duration * rate)`` frames, decode ranges widened to whole latent frames) and returns
seeded noise, so that the tests can check where every result lands."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sa3_studio.engine.api import CancelToken, GenerationRequest, GenerationResult, StepCallback


@dataclass
class FakePipeline:
    sample_rate: int = 44100
    max_seconds: float = 1.0
    latent: int = 2048
    is_base: bool = False
    default_steps: int = 2
    weights_hash: str = "fakehash"
    requests: list[GenerationRequest] = field(default_factory=list)

    def encode(self, audio: object, *, duration: float | None = None) -> object:
        return ("latents", duration)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_step: StepCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        self.requests.append(request)
        assert isinstance(request.duration, float)
        frames = int(request.duration * self.sample_rate)
        assert frames <= round(self.max_seconds * self.sample_rate)
        steps = request.steps or self.default_steps
        for i in range(steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if on_step is not None:
                on_step(i + 1, steps)
        start, end = 0, frames
        if request.decode_range is not None:
            lo, hi = request.decode_range
            start = math.floor(lo * self.sample_rate / self.latent) * self.latent
            end = min(frames, math.ceil(hi * self.sample_rate / self.latent) * self.latent)
        rng = np.random.default_rng(request.seed)
        audio = rng.uniform(-0.5, 0.5, (request.batch_size, 2, end - start)).astype(np.float32)
        return GenerationResult(audio, self.sample_rate, int(request.seed or 0), start_frame=start)
