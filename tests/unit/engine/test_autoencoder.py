"""SAME autoencoders against the official vectors (same_s_tiny, same_l_tiny) and key inventories."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from vector_cases import parity_tolerance

from sa3_studio.engine.models.autoencoder import (
    AudioAutoencoder,
    TransformerResamplingBlock,
    pad_audio_batch,
)
from sa3_studio.engine.models.same_blocks import band_attention
from sa3_studio.engine.noise import GeneratorNoise, TapeNoise
from sa3_studio.errors import ConfigError, GenerationError

VECTORS = ("same_s_tiny", "same_l_tiny")
# (input tensor names, chunked) per case; chunk parameters are the README's (checked below).
ENCODE_CASES = {
    "encode": (("audio",), False),
    "encode_chunked": (("audio",), True),
    "encode_list": (("audio0", "audio1_mono"), False),
}
DECODE_CASES = {"decode": False, "decode_chunked": True, "decode_batch": False}
CHUNKING = {"chunk_size": 6, "overlap": 2}


class Vector:
    """One vector folder: config, strictly loaded model, inputs, outputs and meta."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = json.loads((folder / "model_config.json").read_text())
        self.meta = json.loads((folder / "meta.json").read_text())
        self.inputs = load_file(folder / "inputs.safetensors")
        self.outputs = load_file(folder / "outputs.safetensors")

    def build(self) -> AudioAutoencoder:
        model = AudioAutoencoder.from_config_dict(
            self.config["model"], sample_rate=self.config["sample_rate"]
        )
        model.load_state_dict(load_file(self.folder / "model.safetensors"), strict=True)
        return model.eval().requires_grad_(False)

    def tape(self, case: str) -> list[torch.Tensor]:
        names = sorted(k for k in self.inputs if k.startswith(f"{case}/rng/"))
        assert len(names) == len(self.meta["cases"][case]["rng_draws"])
        return [self.inputs[k] for k in names]

    def tolerance(self, case: str, name: str) -> float:
        """The vectors' acceptance bound for this tensor of ``case``."""
        return parity_tolerance(self.meta["cases"][case]["checks"], name)


@pytest.fixture(scope="module")
def vectors(vectors_dir: Path) -> dict[str, Vector]:
    return {name: Vector(vectors_dir / name) for name in VECTORS}


@contextmanager
def record_taps(model: AudioAutoencoder) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Pass-through wrappers recording the vectors' tap points (one entry per chunk)."""
    taps: dict[str, list[torch.Tensor]] = defaultdict(list)

    def wrap(owner: torch.nn.Module, method: str, out_name: str, in_name: str | None) -> None:
        original: Callable[..., torch.Tensor] = getattr(owner, method)

        def recorded(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if in_name is not None:
                taps[in_name].append(x.clone())
            y = original(x, *args, **kwargs)
            taps[out_name].append(y.clone())
            return y

        object.__setattr__(owner, method, recorded)

    def hook(name: str) -> Callable[..., None]:
        def record(_module: torch.nn.Module, _args: Any, output: torch.Tensor) -> None:
            taps[name].append(output.clone())

        return record

    wrap(model.pretransform, "encode", "patched", None)
    wrap(model.pretransform, "decode", "unpatched", None)
    wrap(model.bottleneck, "encode", "bottleneck_encode_out", None)
    wrap(model.bottleneck, "decode", "bottleneck_decode_out", "bottleneck_decode_out.in")
    handles = [
        model.encoder.register_forward_hook(hook("encoder_out")),
        model.decoder.register_forward_hook(hook("decoder_out")),
    ]
    try:
        yield taps
    finally:
        for handle in handles:
            handle.remove()
        for owner, method in (
            (model.pretransform, "encode"),
            (model.pretransform, "decode"),
            (model.bottleneck, "encode"),
            (model.bottleneck, "decode"),
        ):
            del owner.__dict__[method]


def compare_case(
    vector: Vector,
    case: str,
    produced: dict[str, torch.Tensor],
    taps: dict[str, list[torch.Tensor]],
) -> None:
    """Compare every tensor the vectors hold for ``case`` at its tolerance."""
    expected = {
        k[len(case) + 1 :]: v for k, v in vector.outputs.items() if k.startswith(case + "/")
    }
    assert expected, f"no outputs for {case}"
    used: dict[str, int] = defaultdict(int)
    for name, want in sorted(expected.items()):
        if name in produced:
            got = produced[name]
        else:
            match = re.fullmatch(r"tap/(.+?)(?:\.(\d+))?", name)
            assert match is not None, name
            base, index = match.group(1), match.group(2)
            assert base in taps, f"{case}: tap {base} was not recorded"
            got = taps[base][int(index) if index is not None else 0]
            used[base] += 1
        assert got.shape == want.shape, f"{case}/{name}: shape {tuple(got.shape)}"
        diff = (got.to(torch.float64) - want.to(torch.float64)).abs().max().item()
        tol = vector.tolerance(case, name)
        assert diff <= tol, f"{case}/{name}: max|diff| {diff:.3e} > {tol:.3e}"
    # One recorded tap per chunk: no extra passes happened.
    for base, count in used.items():
        assert len(taps[base]) == count, f"{case}: {base} ran {len(taps[base])} times"


def run_case(vector: Vector, model: AudioAutoencoder, case: str) -> None:
    call = vector.meta["cases"][case]["call"]
    if case in ENCODE_CASES:
        names, chunked = ENCODE_CASES[case]
        kwargs: dict[str, Any] = dict(CHUNKING) if chunked else {}
        if chunked:
            assert "chunk_size=6, overlap=2" in call
        clips = [vector.inputs[f"{case}/{n}"] for n in names]
        audio = pad_audio_batch(clips, channels=model.io_channels, multiple=16)
        with record_taps(model) as taps, torch.inference_mode():
            latents = model.encode_audio(audio, chunked=chunked, **kwargs)
        produced = {"out": latents, "tap/encode_audio": latents, "tap/encode_audio.in": audio}
    else:
        chunked = DECODE_CASES[case]
        kwargs = dict(CHUNKING) if chunked else {}
        if chunked:
            assert "chunk_size=6, overlap=2" in call
        noise = TapeNoise(vector.tape(case))
        with record_taps(model) as taps, torch.inference_mode():
            audio = model.decode_audio(
                vector.inputs[f"{case}/latents"], noise=noise, chunked=chunked, **kwargs
            )
        assert noise.remaining == 0, f"{case}: {noise.remaining} recorded draws were not used"
        produced = {"out": audio}
    compare_case(vector, case, produced, taps)


@pytest.mark.parametrize("case", [*ENCODE_CASES, *DECODE_CASES])
@pytest.mark.parametrize("name", VECTORS)
def test_matches_official_vectors(vectors: dict[str, Vector], name: str, case: str) -> None:
    vector = vectors[name]
    run_case(vector, vector.build(), case)


@pytest.mark.parametrize("case", ["encode_list", "decode", "decode_chunked"])
@pytest.mark.parametrize("name", VECTORS)
def test_tiled_attention_matches_vectors(vectors: dict[str, Vector], name: str, case: str) -> None:
    """Small activation tiles (chunk slices for SAME-S, haloed query tiles for SAME-L)."""
    vector = vectors[name]
    model = vector.build()
    for module in model.modules():
        if isinstance(module, TransformerResamplingBlock):
            module.max_tokens = 7
    run_case(vector, model, case)


def test_encoders_draw_no_noise_and_decoders_do(vectors: dict[str, Vector]) -> None:
    for vector in vectors.values():
        model = vector.build()
        assert not model.encoder.needs_noise
        assert model.decode_needs_noise
        latents = vector.inputs["decode/latents"]
        with pytest.raises(GenerationError, match="noise"):
            model.decode(latents, noise=None)


@pytest.mark.parametrize(
    "window",
    [(5, 5), (17, 17), (3, 9), (0, 4), (2, 0)],
)
@pytest.mark.parametrize("n", [1, 7, 35, 64, 150])
@pytest.mark.parametrize("block", [1, 7, 64])
def test_band_attention_equals_dense_band_mask(window: tuple[int, int], n: int, block: int) -> None:
    gen = torch.Generator().manual_seed(n * 100 + window[0] * 10 + window[1])
    q, k, v = (torch.randn(2, 3, n, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    idx = torch.arange(n)
    delta = idx[None, :] - idx[:, None]
    dense_mask = (delta >= -window[0]) & (delta <= window[1])  # (N, N)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=dense_mask)
    got = band_attention(q, k, v, window, block=block)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-12


@pytest.mark.parametrize("name", ["same_s", "same_l"])
def test_released_configs_build_exact_key_inventory(vectors_dir: Path, name: str) -> None:
    config = json.loads((vectors_dir / "keys" / f"{name}.model_config.json").read_text())
    inventory = json.loads((vectors_dir / "keys" / f"{name}.keys.json").read_text())["keys"]
    with torch.device("meta"):
        model = AudioAutoencoder.from_config_dict(
            config["model"], sample_rate=config["sample_rate"]
        )
    ours = {
        key: (list(t.shape), str(t.dtype).removeprefix("torch."))
        for key, t in model.state_dict().items()
    }
    want = {e["key"]: (list(e["shape"]), e["dtype"]) for e in inventory}
    assert sorted(set(ours) - set(want)) == []
    assert sorted(set(want) - set(ours)) == []
    mismatched = {k: (ours[k], want[k]) for k in want if ours[k] != want[k]}
    assert mismatched == {}


def test_same_l_sinusoidal_gates_on_decoder_blocks_5_to_11(vectors_dir: Path) -> None:
    config = json.loads((vectors_dir / "keys" / "same_l.model_config.json").read_text())
    with torch.device("meta"):
        model = AudioAutoencoder.from_config_dict(config["model"])
    dec = model.decoder.layers[3]
    enc = model.encoder.layers[0]
    assert isinstance(dec, TransformerResamplingBlock)
    assert isinstance(enc, TransformerResamplingBlock)
    gated = [i for i, b in enumerate(dec.transformers) if b.ff.ff[0].sinusoidal]
    assert gated == list(range(5, 12))
    assert not any(b.ff.ff[0].sinusoidal for b in enc.transformers)
    assert dec.window == (17, 17)


def test_full_sa3_config_builds_and_loads_embedded_weights(vectors_dir: Path) -> None:
    folder = vectors_dir / "pipeline_tiny"
    config = json.loads((folder / "model_config.json").read_text())
    prefix = "pretransform.model."
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = [k for k in f.keys() if k.startswith(prefix)]  # noqa: SIM118 (not a dict)
        state = {k[len(prefix) :]: f.get_tensor(k) for k in names}
    for model_dict in (config["model"], config["model"]["pretransform"]["config"]):
        model = AudioAutoencoder.from_config_dict(model_dict)
        model.load_state_dict(state, strict=True)
        assert model.downsampling_ratio == 16
        assert model.latent_multiple == 2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", VECTORS)
def test_half_precision_round_trip_is_close_to_float32(
    vectors: dict[str, Vector], name: str, dtype: torch.dtype
) -> None:
    vector = vectors[name]
    model = vector.build().to(dtype)
    audio = pad_audio_batch([vector.inputs["encode/audio"]], channels=2, multiple=16)
    noise = TapeNoise(vector.tape("decode"))
    with torch.inference_mode():
        latents = model.encode_audio(audio.to(dtype), chunked=False)
        decoded = model.decode_audio(
            vector.inputs["decode/latents"].to(dtype), noise=noise, chunked=False
        )
    assert latents.dtype == dtype
    assert decoded.dtype == dtype
    want_latents = vector.outputs["encode/out"]
    want_audio = vector.outputs["decode/out"]
    # Relative bound of 10 x the dtype's epsilon (bf16 ~0.039, fp16 ~0.0049): rounding stays
    # well inside it, a wrong code path is off by O(1).
    bound = 10 * torch.finfo(dtype).eps
    scale = want_latents.abs().max().item()
    assert (latents.float() - want_latents).abs().max().item() < bound * scale
    scale = want_audio.abs().max().item()
    assert (decoded.float() - want_audio).abs().max().item() < bound * scale


def test_generator_noise_decode_is_reproducible(vectors: dict[str, Vector]) -> None:
    vector = vectors["same_s_tiny"]
    model = vector.build()
    latents = vector.inputs["decode_chunked/latents"]
    with torch.inference_mode():
        a = model.decode_audio(latents, noise=GeneratorNoise(7), chunked=True, **CHUNKING)
        b = model.decode_audio(latents, noise=GeneratorNoise(7), chunked=True, **CHUNKING)
        c = model.decode_audio(latents, noise=GeneratorNoise(8), chunked=True, **CHUNKING)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_config_errors_are_config_errors(vectors: dict[str, Vector]) -> None:
    model_dict = json.loads(json.dumps(vectors["same_s_tiny"].config["model"]))
    model_dict["encoder"]["config"]["not_a_field"] = 1
    with pytest.raises(ConfigError, match="not_a_field"):
        AudioAutoencoder.from_config_dict(model_dict)
    model_dict = json.loads(json.dumps(vectors["same_s_tiny"].config["model"]))
    model_dict["bottleneck"]["type"] = "vae"
    with pytest.raises(ConfigError, match="softnorm"):
        AudioAutoencoder.from_config_dict(model_dict)
    with pytest.raises(ConfigError, match="encoder"):
        AudioAutoencoder.from_config_dict({"latent_dim": 8})


def test_bad_inputs_are_generation_errors(vectors: dict[str, Vector]) -> None:
    vector = vectors["same_l_tiny"]
    model = vector.build()
    with pytest.raises(GenerationError, match="latents shaped"):
        model.decode(torch.zeros(1, 3, 4), noise=GeneratorNoise(0))
    with pytest.raises(GenerationError, match="audio shaped"):
        model.encode_audio(torch.zeros(1, 1, 64), chunked=False)
    with pytest.raises(GenerationError, match="overlap"):
        model.decode_audio(
            torch.zeros(1, 8, 12), noise=GeneratorNoise(0), chunked=True, chunk_size=4, overlap=4
        )
