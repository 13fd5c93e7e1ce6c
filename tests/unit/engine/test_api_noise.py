"""The torch-free API types and the noise sources."""

from __future__ import annotations

import pytest
import torch

from sa3_studio.engine.api import CancelToken, ModelInfo
from sa3_studio.engine.noise import GeneratorNoise, TapeNoise
from sa3_studio.errors import Cancelled


def test_cancel_token_raises_only_after_cancel() -> None:
    token = CancelToken()
    token.raise_if_cancelled()
    assert not token.cancelled
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_generator_noise_equals_the_global_generator_after_manual_seed() -> None:
    # Seeds are portable: the official code calls torch.manual_seed(seed) then draws from the
    # global CPU generator; our per-call generator must give the same numbers in the same order.
    noise = GeneratorNoise(1234)
    a = noise.randn((1, 8, 144), dtype=torch.float32, device=torch.device("cpu"))
    b = noise.randn((2, 3), dtype=torch.float32, device=torch.device("cpu"))
    torch.manual_seed(1234)
    assert torch.equal(a, torch.randn(1, 8, 144))
    assert torch.equal(b, torch.randn(2, 3))


def test_generator_noise_casts_half_precision_after_a_float32_draw() -> None:
    noise = GeneratorNoise(7)
    h = noise.randn((4,), dtype=torch.bfloat16, device=torch.device("cpu"))
    torch.manual_seed(7)
    assert torch.equal(h, torch.randn(4).to(torch.bfloat16))


def test_tape_noise_replays_in_order_and_checks_shapes() -> None:
    tape = TapeNoise([torch.zeros(2), torch.ones(3)])
    assert torch.equal(
        tape.randn((2,), dtype=torch.float32, device=torch.device("cpu")), torch.zeros(2)
    )
    with pytest.raises(AssertionError, match="expected shape"):
        tape.randn((4,), dtype=torch.float32, device=torch.device("cpu"))
    assert tape.remaining == 1


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("small-sfx", "TrackType: SFX, "),
        ("small-music", "TrackType: Music, VocalType: Instrumental, "),
        ("medium-base", "TrackType: Music, VocalType: Instrumental, "),
    ],
)
def test_model_info_prompt_prefix(name: str, prefix: str) -> None:
    info = ModelInfo(
        name=name,
        path="/x",
        family="small",
        objective="rf_denoiser",
        sample_rate=44100,
        max_seconds=120.0,
        complete=True,
    )
    assert info.prompt_prefix == prefix
    assert not info.is_base
