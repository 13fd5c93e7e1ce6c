"""Engine behaviour on a tiny 44.1 kHz model: errors, cancellation, seeds, takes, reuse, LoRA."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sa3_studio.engine.api import CancelToken, GenerationRequest
from sa3_studio.engine.noise import GeneratorNoise
from sa3_studio.engine.pipeline import (
    EncodedSource,
    Pipeline,
    load_pipeline,
)
from sa3_studio.engine.synthetic import TEXT_ENCODER_DIR, make_random_model
from sa3_studio.errors import Cancelled, ConfigError, GenerationError, WeightsError

SR = 44100


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Path:
    return make_random_model(
        tmp_path_factory.mktemp("tiny") / "tiny44k",
        preset="tiny44k",
        seed=11,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
    )


@pytest.fixture(scope="module")
def pipe(model_dir: Path) -> Pipeline:
    return load_pipeline(model_dir, device="cpu", dtype="float32")


@pytest.fixture
def copy_dir(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(model_dir, out)
    return out


def _source(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([tone, np.roll(tone, 7)]).astype(np.float32)


def _gen(pipe: Pipeline, **kwargs: object) -> np.ndarray:
    kwargs.setdefault("prompt", "soft piano")
    kwargs.setdefault("seed", 1)
    return pipe.generate(GenerationRequest(**kwargs)).audio  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Bad input gets a clear error
# --------------------------------------------------------------------------------------------


def test_duration_beyond_the_maximum_names_the_limit(pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match=r"longer than this model can make \(120\.0 s\)"):
        _gen(pipe, duration=200.0)


def test_text_to_audio_needs_a_duration(pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match="needs a duration"):
        _gen(pipe)


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (((3.0, 3.5),), "starts after the end of the audio"),
        (((1.5, 2.5),), "ends after the end of the audio"),
        (((0.2, 1.0), (0.8, 1.5)), "overlap"),
        (((1.0, 1.0),), "empty or negative"),
        (((-0.5, 0.5),), "empty or negative"),
    ],
)
def test_bad_regions_are_refused(
    pipe: Pipeline, regions: tuple[tuple[float, float], ...], message: str
) -> None:
    with pytest.raises(GenerationError, match=message):
        _gen(pipe, duration=2.0, inpaint_audio=_source(2.0), inpaint_regions=regions)


def test_regions_without_source_and_source_without_regions(pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match="without source audio"):
        _gen(pipe, duration=2.0, inpaint_regions=((0.5, 1.0),))
    with pytest.raises(GenerationError, match="at least one region"):
        _gen(pipe, inpaint_audio=_source(2.0))


def test_empty_prompt_is_unconditional_generation(pipe: Pipeline) -> None:
    audio = _gen(pipe, prompt="", duration=1.0)
    assert audio.shape == (1, 2, SR)
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() > 0
    assert not np.array_equal(audio, _gen(pipe, prompt="loud drums", duration=1.0))


def test_prompt_list_must_match_the_takes(pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match="2 prompts were given for 3 takes"):
        _gen(pipe, prompt=["a", "b"], batch_size=3, duration=1.0)
    with pytest.raises(GenerationError, match="empty list of prompts"):
        _gen(pipe, prompt=[], duration=1.0)
    with pytest.raises(GenerationError, match="2 durations were given for a batch of 3"):
        _gen(pipe, prompt=["a", "b", "c"], duration=[1.0, 2.0])
    audio = _gen(pipe, prompt=["a", "b"], duration=1.0)  # one take per prompt
    assert audio.shape == (2, 2, SR)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros((2, SR), dtype=np.int16), "must be a float array"),
        (np.zeros((1, 2, SR), dtype=np.float32), "must be a float array"),
        (np.zeros((SR, 2), dtype=np.float32), "looks transposed"),
        (np.full((2, SR), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.zeros((2, 0), dtype=np.float32), "must be a float array"),
    ],
)
def test_wrong_audio_arrays_are_refused(pipe: Pipeline, audio: np.ndarray, message: str) -> None:
    with pytest.raises(GenerationError, match=message):
        _gen(pipe, duration=1.0, inpaint_audio=audio, inpaint_regions=((0.2, 0.5),))
    with pytest.raises(GenerationError, match=message):
        pipe.encode(audio)


def test_other_bad_settings(pipe: Pipeline) -> None:
    with pytest.raises(GenerationError, match="steps must be at least 1"):
        _gen(pipe, duration=1.0, steps=0)
    with pytest.raises(GenerationError, match="takes must be at least 1"):
        _gen(pipe, duration=1.0, batch_size=0)
    with pytest.raises(GenerationError, match="init noise level"):
        _gen(pipe, duration=1.0, init_audio=_source(1.0), init_noise_level=1.5)
    with pytest.raises(GenerationError, match="Unknown sampler"):
        _gen(pipe, duration=1.0, sampler="heun")
    with pytest.raises(GenerationError, match="decode range"):
        _gen(pipe, duration=1.0, decode_range=(0.8, 0.2))


def test_truncated_weights_file_is_a_weights_error(copy_dir: Path) -> None:
    weights = copy_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_pipeline(copy_dir, device="cpu", dtype="float32")


def test_corrupt_weights_file_is_a_weights_error(copy_dir: Path) -> None:
    weights = copy_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"\xff" * 32  # the JSON header becomes garbage
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_pipeline(copy_dir, device="cpu", dtype="float32")


def test_missing_extra_and_misshaped_keys_are_listed(copy_dir: Path) -> None:
    weights = copy_dir / "model.safetensors"
    tensors = load_file(str(weights))
    del tensors["model.model.transformer.layers.1.ff_norm.gamma"]
    tensors["model.model.transformer.layers.9.ff_norm.gamma"] = torch.ones(128)
    tensors["model.model.transformer.project_out.weight"] = torch.zeros(3, 128)
    save_file(tensors, str(weights))
    with pytest.raises(WeightsError) as info:
        load_pipeline(copy_dir, device="cpu", dtype="float32")
    message = str(info.value)
    assert "1 missing: transformer.layers.1.ff_norm.gamma" in message
    assert "1 unexpected: transformer.layers.9.ff_norm.gamma" in message
    assert "transformer.project_out.weight (file [3, 128]" in message
    assert "download the model again" in message


def test_tensors_outside_the_model_are_refused(copy_dir: Path) -> None:
    weights = copy_dir / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["ema.model.something"] = torch.zeros(2)
    save_file(tensors, str(weights))
    with pytest.raises(
        WeightsError, match=r"belong to no part of the model.*ema\.model\.something"
    ):
        load_pipeline(copy_dir, device="cpu", dtype="float32")


def test_unknown_attention_option_is_a_config_error(copy_dir: Path) -> None:
    path = copy_dir / "model_config.json"
    data = json.loads(path.read_text())
    data["model"]["diffusion"]["config"]["attn_kwargs"]["use_magic"] = True
    path.write_text(json.dumps(data))
    with pytest.raises(
        ConfigError, match=r"unknown field `model\.diffusion\.config\.attn_kwargs\.use_magic`"
    ):
        load_pipeline(copy_dir, device="cpu", dtype="float32")


def test_missing_text_encoder_folder_is_a_weights_error(copy_dir: Path) -> None:
    shutil.rmtree(copy_dir / TEXT_ENCODER_DIR)
    with pytest.raises(WeightsError, match="text encoder"):
        load_pipeline(copy_dir, device="cpu", dtype="float32")


def test_reused_latents_of_another_length_are_refused(pipe: Pipeline) -> None:
    latents = pipe.encode(_source(2.0))
    with pytest.raises(GenerationError, match="made for another length"):
        _gen(pipe, duration=20.0, source_latents=latents, inpaint_regions=((0.5, 1.0),))


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------


@pytest.fixture
def dit_calls(pipe: Pipeline) -> Iterator[list[int]]:
    calls: list[int] = []
    # project_out runs once per DiT evaluation, whatever path evaluates the DiT.
    handle = pipe.dit.transformer.project_out.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def test_cancel_from_step_three_stops_before_step_four(
    pipe: Pipeline, dit_calls: list[int]
) -> None:
    token = CancelToken()
    seen: list[int] = []

    def on_step(done: int, total: int) -> None:
        seen.append(done)
        assert total == 8
        if done == 3:
            token.cancel()

    request = GenerationRequest(prompt="x", duration=2.0, seed=3)
    with pytest.raises(Cancelled):
        pipe.generate(request, on_step=on_step, cancel=token)
    assert seen == [1, 2, 3]
    assert len(dit_calls) == 3


def test_same_seed_same_audio_and_other_seeds_differ(pipe: Pipeline) -> None:
    a = _gen(pipe, duration=2.0, seed=42)
    b = _gen(pipe, duration=2.0, seed=42)
    c = _gen(pipe, duration=2.0, seed=43)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_random_seed_is_reported(pipe: Pipeline) -> None:
    result = pipe.generate(GenerationRequest(prompt="x", duration=1.0, seed=None))
    assert 0 <= result.seed < 2**31
    again = pipe.generate(GenerationRequest(prompt="x", duration=1.0, seed=result.seed))
    np.testing.assert_array_equal(result.audio, again.audio)


def test_batch_inpainting_makes_different_takes(pipe: Pipeline) -> None:
    source = _source(8.0)
    regions = ((1.0, 2.5), (5.0, 6.0))
    result = pipe.generate(
        GenerationRequest(
            prompt="strings",
            inpaint_audio=source,
            inpaint_regions=regions,
            batch_size=3,
            seed=7,
        )
    )
    audio = result.audio
    assert audio.shape == (3, 2, 8 * SR)
    assert np.isfinite(audio).all()
    inside = audio[..., SR : int(2.5 * SR)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(inside[i] - inside[j]).mean() > 1e-3


def test_encoded_source_reused_equals_encoding_inside(pipe: Pipeline) -> None:
    source = _source(7.0, seed=2)
    regions = ((2.0, 4.0),)
    inside = _gen(pipe, inpaint_audio=source, inpaint_regions=regions, seed=9)
    latents = pipe.encode(source)
    assert isinstance(latents, EncodedSource)
    reused = _gen(pipe, source_latents=latents, inpaint_regions=regions, seed=9)
    again = _gen(pipe, source_latents=latents, inpaint_regions=regions, seed=9)
    np.testing.assert_allclose(reused, inside, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(reused, again)


def test_decode_range_matches_the_full_decode(pipe: Pipeline) -> None:
    # 14 s: 196 latents, so the official decode runs two overlapping 128-frame chunks.
    source = _source(14.0, seed=4)
    regions = ((6.0, 9.0),)
    full = pipe.generate(
        GenerationRequest(prompt="bass", inpaint_audio=source, inpaint_regions=regions, seed=5)
    )
    part = pipe.generate(
        GenerationRequest(
            prompt="bass",
            inpaint_audio=source,
            inpaint_regions=regions,
            seed=5,
            decode_range=(6.0, 9.0),
        )
    )
    start = part.start_frame
    assert 0 < start <= 6 * SR
    assert start + part.audio.shape[-1] >= 9 * SR
    assert part.audio.shape[-1] < full.audio.shape[-1] // 2
    overlap = full.audio[..., start : start + part.audio.shape[-1]]
    np.testing.assert_allclose(part.audio, overlap, rtol=0, atol=1e-5)


def test_decoding_equals_the_official_chunked_decode(pipe: Pipeline) -> None:
    ae = pipe.autoencoder
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, ae.latent_dim, 300, generator=gen)  # chunks at 0, 96, 172
    with torch.inference_mode():
        official = ae.decode_audio(
            z, noise=GeneratorNoise(8), chunked=True, chunk_size=128, overlap=32
        )
        ours, start = pipe._decode(z, GeneratorNoise(8), None)
        ranged, r_start = pipe._decode(z, GeneratorNoise(8), (5.0, 9.0))
    assert start == 0
    np.testing.assert_allclose(ours.numpy(), official.numpy(), rtol=0, atol=1e-5)
    seg = official[..., r_start : r_start + ranged.shape[-1]]
    np.testing.assert_allclose(ranged.numpy(), seg.numpy(), rtol=0, atol=1e-5)


def test_encoding_equals_the_official_chunked_encode(pipe: Pipeline) -> None:
    ae = pipe.autoencoder
    audio = torch.from_numpy(_source(300 * 4096 / SR, seed=6))
    with torch.inference_mode():
        official = ae.encode_audio(audio[None], chunked=True, chunk_size=128, overlap=32)
        ours = pipe._encode(audio, audio.shape[-1])
    # Latents reach |5| here: compare at float32 rounding of that size.
    np.testing.assert_allclose(ours.numpy(), official.numpy(), rtol=1e-5, atol=1e-5)


def test_traced_and_plain_runs_give_the_same_audio(pipe: Pipeline) -> None:
    # A trace decodes every latent frame; a plain run only those before the truncation.
    request = GenerationRequest(prompt="x", duration=9.0, seed=12)
    plain = pipe.generate(request).audio
    traced = pipe.generate(request, trace=lambda *_: None).audio
    np.testing.assert_allclose(plain, traced, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def base_pipe(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Pipeline:
    folder = make_random_model(
        tmp_path_factory.mktemp("base") / "tiny44k-base",
        preset="tiny44k",
        seed=12,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
        objective="rectified_flow",
    )
    return load_pipeline(folder, device="cpu", dtype="float32")


def test_step_cache_changes_no_bit(pipe: Pipeline, base_pipe: Pipeline) -> None:
    source = _source(4.0, seed=8)
    requests = [
        (pipe, GenerationRequest(prompt="a", inpaint_audio=source, inpaint_regions=((1, 2),))),
        # -base: Euler with CFG on a [cond; uncond] batch and a negative prompt.
        (
            base_pipe,
            GenerationRequest(
                prompt="a", negative_prompt="noise", duration=2.0, steps=4, batch_size=2
            ),
        ),
    ]
    for model, request in requests:
        request = dataclasses.replace(request, seed=3)
        model.step_cache = False
        plain = model.generate(request).audio
        model.step_cache = True
        cached = model.generate(request).audio
        np.testing.assert_array_equal(cached, plain)
        # The stand-ins are gone afterwards.
        assert isinstance(model.dit.to_cond_embed, torch.nn.Sequential)
        assert isinstance(model.dit.transformer.layers[0].cross_attn.to_kv, torch.nn.Linear)


def test_base_models_take_every_official_sampler(base_pipe: Pipeline) -> None:
    calls: list[int] = []
    hook = base_pipe.dit.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        # From t = 1 the first two DPM-Solver++ steps and the one ending at 0 are first order
        # (the same update as Euler): five steps give it two second-order ones.
        request = GenerationRequest(prompt="a", duration=1.0, steps=5, seed=4, cfg_scale=3.0)
        outs = {}
        for sampler, per_step in (("euler", 1), ("dpmpp", 1), ("rk4", 4)):
            calls.clear()
            progress: list[tuple[int, int]] = []
            result = base_pipe.generate(
                dataclasses.replace(request, sampler=sampler),
                on_step=lambda done, total, p=progress: p.append((done, total)),
            )
            assert len(calls) == 5 * per_step  # one guided [cond; uncond] pass per evaluation
            assert progress == [(i, 5) for i in range(1, 6)]
            assert np.isfinite(result.audio).all()
            outs[sampler] = result.audio
            again = base_pipe.generate(dataclasses.replace(request, sampler=sampler)).audio
            np.testing.assert_array_equal(again, result.audio)
    finally:
        hook.remove()
    assert np.abs(outs["dpmpp"] - outs["euler"]).max() > 1e-4
    assert np.abs(outs["rk4"] - outs["euler"]).max() > 1e-4


def test_guidance_interval_and_rescale(base_pipe: Pipeline) -> None:
    request = GenerationRequest(prompt="a", duration=1.0, steps=4, seed=6, cfg_scale=4.0)
    guided = base_pipe.generate(request).audio
    unguided = base_pipe.generate(dataclasses.replace(request, cfg_scale=1.0)).audio
    # Guidance never runs when no step's time lies in the interval (the DiT never sees t = 0).
    never = base_pipe.generate(dataclasses.replace(request, cfg_interval=(0.0, 0.0))).audio
    np.testing.assert_array_equal(never, unguided)
    early = base_pipe.generate(dataclasses.replace(request, cfg_interval=(0.95, 1.0))).audio
    assert np.abs(early - guided).max() > 1e-4
    assert np.abs(early - unguided).max() > 1e-4
    rescaled = base_pipe.generate(dataclasses.replace(request, cfg_rescale=0.7)).audio
    assert np.isfinite(rescaled).all()
    assert np.abs(rescaled - guided).max() > 1e-4
    with pytest.raises(GenerationError, match="guidance interval"):
        base_pipe.generate(dataclasses.replace(request, cfg_interval=(0.8, 0.1)))
    with pytest.raises(GenerationError, match="CFG rescale"):
        base_pipe.generate(dataclasses.replace(request, cfg_rescale=1.5))


def test_takes_of_a_variation_reuse_the_encoded_source(pipe: Pipeline) -> None:
    source = _source(3.0, seed=9)
    request = GenerationRequest(prompt="v", init_audio=source, init_noise_level=0.6, seed=2)
    first = pipe.generate(request)
    second = pipe.generate(request)
    np.testing.assert_array_equal(first.audio, second.audio)
    assert second.timings["encode"] < first.timings["encode"]
    other = pipe.generate(dataclasses.replace(request, init_audio=source[:, ::-1].copy()))
    assert not np.array_equal(other.audio, first.audio)


def test_exact_and_official_cpu_attention_agree_without_padding(model_dir: Path) -> None:
    exact = load_pipeline(model_dir, device="cpu", dtype="float32", attention="exact")
    official = load_pipeline(model_dir, device="cpu", dtype="float32", attention="official-cpu")
    # A duration whose latent length leaves no padding frame (valid = E + 64 = L).
    duration = next(
        d / 100
        for d in range(150, 400)
        if exact.plan([d / 100]).valid_latents[0] == exact.plan([d / 100]).latent_len
    )
    a = _gen(exact, duration=duration, seed=4)
    b = _gen(official, duration=duration, seed=4)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # With padding the two semantics differ (so the check above could fail).
    padded = 2.0
    assert exact.plan([padded]).valid_latents[0] < exact.plan([padded]).latent_len
    assert np.abs(_gen(exact, duration=padded) - _gen(official, duration=padded)).max() > 1e-4


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2", "fma"}, torch.float32), ({"avx512f", "amx_tile", "amx_bf16"}, torch.bfloat16)],
)
def test_auto_dtype_on_cpu_follows_bfloat16_units_and_applies_to_the_dit_only(
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: set[str],
    expected: torch.dtype,
) -> None:
    from sa3_studio.engine import devices

    # float32 where the CPU has no bfloat16 matrix units (the official CPU numerics, so a seed
    # gives the official audio); a bfloat16 DiT where it has them (several times faster).
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
    auto = load_pipeline(model_dir, device="cpu", dtype="auto")
    assert auto.dtype == expected
    assert next(auto.autoencoder.parameters()).dtype == torch.float32
    bf16 = load_pipeline(model_dir, device="cpu", dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    assert next(bf16.autoencoder.parameters()).dtype == torch.float32
    rope = bf16.dit.transformer.rotary_pos_emb.inv_freq
    assert rope.dtype == torch.float32  # RoPE frequencies are never rounded
    audio = _gen(bf16, duration=1.0)
    assert np.isfinite(audio).all()
    assert audio.dtype == np.float32


def _write_lora(pipe: Pipeline, path: Path, *, conditioner: bool = True) -> Path:
    """An official-format LoRA (fp16 tensors, lora_config metadata) for the tiny DiT."""
    layers = pipe.dit.transformer.layers
    targets = {
        "model.transformer.layers.0.self_attn.to_qkv": layers[0].self_attn.to_qkv,
        "model.transformer.layers.0.cross_attn.to_kv": layers[0].cross_attn.to_kv,
        "model.transformer.layers.1.ff.ff.2": layers[1].ff.ff[2],
        "model.to_cond_embed.0": pipe.dit.to_cond_embed[0],
        "model.preprocess_conv": pipe.dit.preprocess_conv,
    }
    if conditioner:
        seconds = pipe.conditioner.conditioners["seconds_total"]
        targets["conditioners.seconds_total.embedder.embedding.1"] = seconds.embedder.embedding[1]
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    rank = 4
    for name, module in targets.items():
        weight = module.weight
        fan_out, fan_in = weight.shape[0], weight[0].numel()
        base = f"{name}.parametrizations.weight.0."
        tensors[base + "lora_A"] = (torch.randn(rank, fan_in, generator=gen) * 0.1).half()
        tensors[base + "lora_B"] = (torch.randn(fan_out, rank, generator=gen) * 0.1).half()
    config = {
        "rank": rank,
        "alpha": 8.0,
        "adapter_type": "lora",
        "dropout": 0.0,
        "include": None,
        "exclude": None,
    }
    save_file(tensors, str(path), metadata={"lora_config": json.dumps(config)})
    return path


def test_lora_strength_zero_is_exactly_the_base_model(model_dir: Path, tmp_path: Path) -> None:
    pipe = load_pipeline(model_dir, device="cpu", dtype="float32")
    lora_file = _write_lora(pipe, tmp_path / "style.safetensors")
    base = _gen(pipe, duration=2.0, seed=21)
    handle = pipe.add_lora(lora_file, strength=0.0)
    assert len(pipe.loras) == 1
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), base)
    pipe.set_lora_strength(handle, 1.0)
    styled = _gen(pipe, duration=2.0, seed=21)
    assert np.abs(styled - base).mean() > 1e-4
    pipe.remove_lora(handle)
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), base)


def test_a_lora_limited_to_part_of_the_sampling(model_dir: Path, tmp_path: Path) -> None:
    pipe = load_pipeline(model_dir, device="cpu", dtype="float32")
    lora_file = _write_lora(pipe, tmp_path / "late.safetensors", conditioner=False)
    base = _gen(pipe, duration=2.0, seed=21)
    handle = pipe.add_lora(lora_file)
    full = _gen(pipe, duration=2.0, seed=21)
    pipe.set_lora_schedule(handle, interval=(0.0, 1.0))
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), full)
    pipe.set_lora_schedule(handle, interval=(0.0, 0.0))  # the DiT never runs at t = 0
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), base)
    # Only the late steps: something between, and the same with or without the step cache
    # (the cached context and cross-attention projections are dropped when the LoRA switches).
    pipe.set_lora_schedule(handle, interval=(0.0, 0.5))
    late = _gen(pipe, duration=2.0, seed=21)
    assert np.abs(late - base).max() > 1e-4
    assert np.abs(late - full).max() > 1e-4
    pipe.step_cache = False
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), late)
    pipe.step_cache = True
    assert pipe.loras[0].interval == (0.0, 0.5)
    # A layer filter switches the named DiT layers off: all of them gives the base model.
    pipe.set_lora_schedule(
        handle, layer_filter="transformer.layers.[0-1]., TO_COND_EMBED, preprocess_conv"
    )
    np.testing.assert_array_equal(_gen(pipe, duration=2.0, seed=21), base)
    pipe.set_lora_schedule(handle, layer_filter="layers.1.ff")
    partial = _gen(pipe, duration=2.0, seed=21)
    assert np.abs(partial - full).max() > 1e-4
    assert np.abs(partial - base).max() > 1e-4
    with pytest.raises(ValueError, match="0 <= start <= end <= 1"):
        pipe.set_lora_schedule(handle, interval=(0.7, 0.2))


def test_a_lora_for_another_model_is_refused(pipe: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    base = "model.transformer.layers.0.self_attn.to_qkv.parametrizations.weight.0."
    tensors = {base + "lora_A": torch.zeros(2, 999).half(), base + "lora_B": torch.zeros(3, 2)}
    config = {"rank": 2, "alpha": 2, "adapter_type": "lora"}
    save_file(tensors, str(path), metadata={"lora_config": json.dumps(config)})
    with pytest.raises(WeightsError):
        pipe.add_lora(path)
    assert pipe.loras == ()


def test_weights_header_length_is_checked(copy_dir: Path) -> None:
    weights = copy_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[:8] = struct.pack("<Q", 10**12)
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="safetensors"):
        load_pipeline(copy_dir, device="cpu", dtype="float32")
