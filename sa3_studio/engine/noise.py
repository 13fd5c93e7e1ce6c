"""Where the engine's randomness comes from.

All random draws go through a :class:`NoiseSource`, in the official order (see the vectors
README): initial latent noise, one draw per ping-pong step (the last one included), then per
decoded chunk the bottleneck noise followed by the decoder's new-token noise. On CPU a seeded
:class:`GeneratorNoise` reproduces the official implementation's draws, so seeds are portable.
Tests replay recorded draws with :class:`TapeNoise`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class NoiseSource(Protocol):
    """Gives standard-normal tensors, one call per official draw."""

    def randn(
        self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor: ...


class GeneratorNoise:
    """Draws from a torch.Generator seeded like ``torch.manual_seed(seed)`` would seed it.

    Draws are made in float32 on the generator's device and cast, as the official code does
    for the initial noise.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.seed = int(seed)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)

    def randn(
        self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        draw_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        out = torch.randn(
            tuple(shape), generator=self.generator, dtype=draw_dtype, device=self.device
        )
        return out.to(device=device, dtype=dtype)


class TapeNoise:
    """Replays a recorded list of draws in order; a shape mismatch is a test failure."""

    def __init__(self, tape: Sequence[torch.Tensor]) -> None:
        self._tape = list(tape)
        self._next = 0

    @property
    def remaining(self) -> int:
        return len(self._tape) - self._next

    def randn(
        self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        if self._next >= len(self._tape):
            raise AssertionError(f"noise tape exhausted: draw {self._next} of shape {list(shape)}")
        t = self._tape[self._next]
        if list(t.shape) != list(shape):
            raise AssertionError(
                f"noise draw {self._next}: expected shape {list(t.shape)}, asked for {list(shape)}"
            )
        self._next += 1
        return t.to(device=device, dtype=dtype)
