"""How much precision the SAME decoder loses in bfloat16, in whole or in part.

Decodes the same random latents, with the same float32 noise, through the small synthetic
model's autoencoder in float64 (the reference), float32, float32 with the feed-forward layers
in bfloat16, float32 with the feed-forward and attention output projections in bfloat16, and
all bfloat16; prints each one's time and its SNR against float64. Used to decide which
precision the CPU decode runs in (docs/performance.md, Engine)::

    python bench/codec_precision.py [--seconds 10] [--models DIR]

The synthetic model is the one ``bench/engine.py`` writes (made on first use).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import DEFAULT_MODELS, _ensure_model

from sa3_studio.engine.models import same_blocks
from sa3_studio.engine.noise import GeneratorNoise
from sa3_studio.engine.pipeline import Pipeline, load_pipeline


class _Float32Noise:
    """The generator's float32 draws, cast: every variant decodes with the same noise."""

    def __init__(self) -> None:
        self._noise = GeneratorNoise(0, "cpu")

    def randn(
        self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        return self._noise.randn(shape, dtype=torch.float32, device=device).to(dtype)


class _InBfloat16(nn.Module):
    """Runs ``inner`` in bfloat16 and hands back the caller's dtype."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x.to(torch.bfloat16))
        return out.to(x.dtype)


def _partly_bfloat16(ae: nn.Module, *, out_proj: bool) -> nn.Module:
    ae = copy.deepcopy(ae)
    for module in list(ae.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, same_blocks.FeedForward):
                setattr(module, name, _InBfloat16(child))
            elif out_proj and isinstance(child, same_blocks.SelfAttention):
                child.to_out = _InBfloat16(child.to_out)
    return ae


def _decode(
    pipe: Pipeline, ae: nn.Module, latents: torch.Tensor, samples: int
) -> tuple[torch.Tensor, float]:
    pipe.autoencoder = ae  # type: ignore[assignment]
    with torch.inference_mode():
        t0 = time.perf_counter()
        audio, _ = pipe._decode(latents, _Float32Noise(), None, samples)
        return audio.double(), time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    opts = parser.parse_args(argv)
    folder = _ensure_model(opts.models, "small")
    pipe = load_pipeline(folder, device="cpu", dtype="float32")
    base = pipe.autoencoder
    samples = int(opts.seconds * pipe.sample_rate)
    torch.manual_seed(0)
    latents = torch.randn(1, pipe.config.model.io_channels, pipe.plan([opts.seconds]).latent_len)
    reference, _ = _decode(pipe, copy.deepcopy(base).double(), latents.double(), samples)
    variants = {
        "float32": (base, latents),
        "float32, feed-forward bfloat16": (_partly_bfloat16(base, out_proj=False), latents),
        "float32, feed-forward + out-proj bfloat16": (
            _partly_bfloat16(base, out_proj=True),
            latents,
        ),
        "bfloat16": (copy.deepcopy(base).to(torch.bfloat16), latents.to(torch.bfloat16)),
    }
    print(f"# SAME-S decode of {opts.seconds:g} s, SNR against a float64 decode")
    for name, (ae, z) in variants.items():
        audio, seconds = _decode(pipe, ae, z, samples)
        snr = 10 * torch.log10(reference.pow(2).sum() / (audio - reference).pow(2).sum())
        print(f"  {name:44s} {seconds:6.2f} s   SNR {snr.item():6.1f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
