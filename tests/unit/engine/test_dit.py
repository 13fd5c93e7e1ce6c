"""Diffusion transformer and guidance: parity with the official vectors, padding semantics, keys."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from vector_cases import FULL_MODELS, parity_tolerance

from sa3_studio.engine.guidance import (
    apg_project,
    denoised_from_velocity,
    guided_denoised,
    guided_velocity,
    limit_guidance_norm,
    rescale_guided,
    uncond_cross_tokens,
    velocity_from_denoised,
)
from sa3_studio.engine.models.dit import DiffusionTransformer
from sa3_studio.engine.models.transformer import ExpoFourierFeatures, merge_repeated_tokens
from sa3_studio.errors import ConfigError

DIT_VECTORS = ("dit_tiny", "dit_diff_tiny")
CASES = (
    "basic",
    "local_add",
    "padding_mask",
    "cfg_apg_negative",
    "cfg_vanilla_null",
    "cfg_apg_blend",
)
PREFIX = "model.model."


def _diffusion_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())["model"]["diffusion"]["config"]
    return config


class _Vector:
    """One dit vector folder: the loaded model, shared inputs, outputs and meta."""

    def __init__(self, folder: Path) -> None:
        self.config = _diffusion_config(folder / "model_config.json")
        self.model = DiffusionTransformer.from_config_dict(self.config).eval()
        weights = load_file(folder / "model.safetensors")
        self.model.load_state_dict(
            {k.removeprefix(PREFIX): v for k, v in weights.items()}, strict=True
        )
        self.inputs = load_file(folder / "inputs.safetensors")
        self.outputs = load_file(folder / "outputs.safetensors")
        self.meta = json.loads((folder / "meta.json").read_text())


@pytest.fixture(scope="module")
def vectors(vectors_dir: Path) -> dict[str, _Vector]:
    return {name: _Vector(vectors_dir / name) for name in DIT_VECTORS}


@contextmanager
def _taps(model: DiffusionTransformer) -> Iterator[dict[str, torch.Tensor]]:
    """Record the intermediates named like the vectors' ``tap/*`` tensors with forward hooks."""
    taps: dict[str, torch.Tensor] = {}
    handles = []

    def output_of(name: str, module: nn.Module) -> None:
        def hook(_m: nn.Module, _args: tuple[Any, ...], out: torch.Tensor) -> None:
            taps[name] = out.detach().clone()

        handles.append(module.register_forward_hook(hook))

    def input_of(name: str, module: nn.Module) -> None:
        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            taps[name] = args[0].detach().clone()

        handles.append(module.register_forward_pre_hook(hook))

    output_of("to_cond_embed", model.to_cond_embed)
    output_of("to_global_embed", model.to_global_embed)
    input_of("timestep_features.in", model.timestep_features)
    output_of("timestep_features", model.timestep_features)
    output_of("to_timestep_embed", model.to_timestep_embed)
    output_of("global_cond_embedder", model.transformer.global_cond_embedder)
    for i, layer in enumerate(model.transformer.layers):
        output_of(f"layer{i}_out", layer)
    input_of("transformer_out.in", model.transformer)
    output_of("transformer_out", model.transformer)
    try:
        yield taps
    finally:
        for h in handles:
            h.remove()


def _case_call(vector: _Vector, case: str) -> dict[str, Any]:
    """Translate the recorded official kwargs into :func:`guided_velocity` arguments."""
    used: dict[str, Any] = vector.meta["cases"][case]["kwargs_used"]
    resolved: dict[str, Any] = {}
    for key, value in used.items():
        if isinstance(value, str) and value.startswith("inputs['"):
            resolved[key] = vector.inputs[value[len("inputs['") : -2]]
        else:
            resolved[key] = value
    # The official DiT discards cross_attn_mask, and negative_global_cond is accepted but unused
    # (vectors README fact 7); the global condition is shared by both CFG branches.
    resolved.pop("cross_attn_mask", None)
    negative_global = resolved.pop("negative_global_cond", None)
    if negative_global is not None:
        assert torch.equal(negative_global, resolved["global_cond"])
    return resolved


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", DIT_VECTORS)
def test_official_cpu_parity(vectors: dict[str, _Vector], name: str, case: str) -> None:
    vector = vectors[name]
    kwargs = _case_call(vector, case)
    checks = vector.meta["cases"][case]["checks"]
    with torch.no_grad(), _taps(vector.model) as taps:
        out = guided_velocity(
            vector.model,
            vector.inputs["x"],
            vector.inputs["t"],
            attention_mode="official-cpu",
            **kwargs,
        )
    expected = {
        k.removeprefix(f"{case}/"): v for k, v in vector.outputs.items() if k.startswith(f"{case}/")
    }
    assert set(expected) == {"out"} | {f"tap/{k}" for k in taps}
    for key, ref in expected.items():
        got = out if key == "out" else taps[key.removeprefix("tap/")]
        assert got.shape == ref.shape, key
        err = (got - ref).abs().max().item()
        tol = parity_tolerance(checks, key)
        assert err <= tol, f"{name}/{case}/{key}: max|diff| {err:.3g} > {tol:.3g}"


def _valid_lengths(mask: torch.Tensor) -> list[int]:
    lengths = [int(n) for n in mask.sum(dim=1)]
    for row, n in zip(mask, lengths, strict=True):
        assert bool(row[:n].all()), "mask must be a prefix"
        assert not bool(row[n:].any()), "mask must be a prefix"
    return lengths


@pytest.mark.parametrize("name", DIT_VECTORS)
def test_exact_mode_equals_each_item_trimmed(vectors: dict[str, _Vector], name: str) -> None:
    """Exact masking: a padded batch gives, on valid frames, what each item alone gives."""
    v = vectors[name]
    x, t, mask = v.inputs["x"], v.inputs["t"], v.inputs["padding_mask"]
    cross, glob, local = (
        v.inputs["cross_attn_cond"],
        v.inputs["global_cond"],
        v.inputs["local_add_cond"],
    )
    lengths = _valid_lengths(mask)
    assert min(lengths) < x.shape[-1], "the example must contain padding"
    with torch.no_grad():
        batched = v.model(x, t, cross, glob, local, mask, attention_mode="exact")
        cpu_semantics = v.model(x, t, cross, glob, local, mask, attention_mode="official-cpu")
        for b, n in enumerate(lengths):
            alone = v.model(
                x[b : b + 1, :, :n],
                t[b : b + 1],
                cross[b : b + 1],
                glob[b : b + 1],
                local[b : b + 1, :, :n],
                None,
                attention_mode="exact",
            )
            err = (batched[b : b + 1, :, :n] - alone).abs().max().item()
            assert err <= 2e-5, f"item {b}: max|diff| {err:.3g}"
    # The two semantics differ on the padded item (fact 6) and agree on the unpadded one.
    short = lengths.index(min(lengths))
    full = lengths.index(max(lengths))
    assert max(lengths) == x.shape[-1]
    assert (batched[short] - cpu_semantics[short]).abs().max().item() > 1e-3
    assert torch.equal(batched[full], cpu_semantics[full])
    # Without padding the modes are the same computation.
    with torch.no_grad():
        a = v.model(x, t, cross, glob, local, None, attention_mode="exact")
        c = v.model(x, t, cross, glob, local, None, attention_mode="official-cpu")
    assert torch.equal(a, c)


def test_merge_repeated_tokens_keeps_one_token_per_run_with_its_count() -> None:
    a, b, c = torch.randn(3, 4)
    tokens = torch.stack([torch.stack([a, b, b, b, c]), torch.stack([c, c, c, c, c])])
    merged, bias = merge_repeated_tokens(tokens)
    assert bias is not None
    assert merged.shape == (2, 3, 4)
    assert torch.equal(merged[0], torch.stack([a, b, c]))
    assert torch.equal(merged[1, 0], c)
    assert torch.equal(merged[1, 1:], torch.zeros(2, 4))
    assert torch.allclose(bias[0], torch.log(torch.tensor([1.0, 3.0, 1.0])))
    assert bias[1, 0].item() == pytest.approx(math.log(5))
    assert torch.isneginf(bias[1, 1:]).all()
    # Equal tokens that are not neighbours stay apart; no run at all leaves the input alone.
    distinct = torch.stack([torch.stack([a, b, a])])
    same, none = merge_repeated_tokens(distinct)
    assert same is distinct
    assert none is None


@pytest.mark.parametrize("name", DIT_VECTORS)
def test_merged_context_attends_like_the_full_context(
    vectors: dict[str, _Vector], name: str
) -> None:
    """A prompt's repeated padding tokens are merged in exact mode; the result is unchanged."""
    v = vectors[name]
    x, t = v.inputs["x"], v.inputs["t"]
    glob, local = v.inputs["global_cond"], v.inputs["local_add_cond"]
    cross = v.inputs["cross_attn_cond"].clone()  # (B, N, C)
    n = cross.shape[1]
    for item, real in enumerate((2, n // 2)):  # different prompt lengths per item
        cross[item, real:-1] = cross[item, real]  # one padding token repeated, then the last
    seen: list[int] = []
    hook = v.model.to_cond_embed.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].shape[1])
    )
    try:
        with torch.no_grad():
            merged = v.model(x, t, cross, glob, local, None, attention_mode="exact")
            full = v.model(x, t, cross, glob, local, None, attention_mode="official-cpu")
    finally:
        hook.remove()
    assert seen == [n // 2 + 2, n], "exact mode projects only the merged tokens"
    err = (merged - full).abs().max().item()
    assert 0 < err <= 1e-5 * max(1.0, full.abs().max().item())


def test_padded_frames_do_not_influence_valid_frames_in_exact_mode(
    vectors: dict[str, _Vector],
) -> None:
    v = vectors["dit_diff_tiny"]
    x, t, mask = v.inputs["x"], v.inputs["t"], v.inputs["padding_mask"]
    args = (v.inputs["cross_attn_cond"], v.inputs["global_cond"], v.inputs["local_add_cond"], mask)
    noisy = x.clone()
    noisy[~mask[:, None, :].expand_as(x)] = 1e3  # garbage in the padded frames
    with torch.no_grad():
        ref = v.model(x, t, *args, attention_mode="exact")
        got = v.model(noisy, t, *args, attention_mode="exact")
        cpu_ref = v.model(x, t, *args, attention_mode="official-cpu")
        cpu_got = v.model(noisy, t, *args, attention_mode="official-cpu")
    valid = mask[:, None, :].expand_as(x)
    assert (ref - got)[valid].abs().max().item() <= 1e-5
    # The official fallback lets padded keys dilute attention, so garbage leaks into valid frames.
    assert (cpu_ref - cpu_got)[valid].abs().max().item() > 1e-3


@pytest.mark.parametrize(
    ("dtype", "bound", "rounds_t"), [(torch.bfloat16, 2e-2, False), (torch.float16, 2e-3, True)]
)
def test_half_precision_runs_close_to_float32(
    vectors: dict[str, _Vector], dtype: torch.dtype, bound: float, rounds_t: bool
) -> None:
    v = vectors["dit_tiny"]
    half = DiffusionTransformer.from_config_dict(v.config)
    half.load_state_dict(v.model.state_dict())
    half = half.to(dtype).eval()
    x, t = v.inputs["x"], v.inputs["t"]
    args = (
        v.inputs["cross_attn_cond"],
        v.inputs["global_cond"],
        v.inputs["local_add_cond"],
        v.inputs["padding_mask"],
    )
    with torch.no_grad(), _taps(half) as taps:
        out = half(x, t, *args)
        # In float16, t is rounded to the model dtype before its Fourier features, as the
        # official CUDA path does (reference §5.6); with frequencies up to 1e4 that rounding
        # alone moves the output, so the float32 reference gets the same rounded t. bfloat16
        # would round 8x coarser, so there the features come from the float32 t.
        ref = v.model(x, t.to(dtype).float() if rounds_t else t, *args)
    assert out.dtype == dtype
    assert taps["timestep_features.in"].dtype == (dtype if rounds_t else torch.float32)
    assert taps["timestep_features"].dtype == (dtype if rounds_t else torch.float32)
    assert torch.isfinite(out).all()
    rel = ((out.float() - ref).abs().max() / ref.abs().max()).item()
    assert rel < bound, rel


@pytest.mark.parametrize("name", FULL_MODELS)
def test_meta_build_has_the_official_keys(vectors_dir: Path, name: str) -> None:
    keys = vectors_dir / "keys"
    config = _diffusion_config(keys / f"{name}.model_config.json")
    with torch.device("meta"):
        model = DiffusionTransformer.from_config_dict(config)
    ours = {
        PREFIX + k: (list(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in model.state_dict().items()
    }
    listed = json.loads((keys / f"{name}.keys.json").read_text())["keys"]
    official = {e["key"]: (e["shape"], e["dtype"]) for e in listed if e["key"].startswith(PREFIX)}
    assert len(official) in (438, 522)
    assert sorted(set(ours) - set(official)) == []
    assert sorted(set(official) - set(ours)) == []
    mismatched = [k for k in official if ours[k] != official[k]]
    assert mismatched == []


def test_timestep_frequencies_are_log_spaced() -> None:
    freqs = ExpoFourierFeatures(256).frequencies().double()
    k = torch.arange(128, dtype=torch.float64)
    expected = 0.5 * 20000.0 ** (k / 127)
    assert torch.allclose(freqs, expected, rtol=5e-6, atol=0)
    feats = ExpoFourierFeatures(256)(torch.tensor([0.25]))
    args = 2 * math.pi * 0.25 * expected
    # cos first, then sin; only the lower half is compared, since float32 phases of the top
    # frequencies (2π·0.25·1e4) carry ~1e-2 rounding.
    assert torch.allclose(feats[0, :64].double(), torch.cos(args[:64]), atol=1e-4)
    assert torch.allclose(feats[0, 128:192].double(), torch.sin(args[:64]), atol=1e-4)


def test_config_errors_are_config_errors(vectors_dir: Path) -> None:
    config = _diffusion_config(vectors_dir / "dit_tiny" / "model_config.json")
    with pytest.raises(ConfigError, match="unknown fields"):
        DiffusionTransformer.from_config_dict({**config, "bogus": 1})
    missing = {k: v for k, v in config.items() if k != "depth"}
    with pytest.raises(ConfigError, match="depth"):
        DiffusionTransformer.from_config_dict(missing)
    with pytest.raises(ConfigError, match="global_cond_type"):
        DiffusionTransformer.from_config_dict({**config, "global_cond_type": "prepend"})
    with pytest.raises(ConfigError, match="num_heads"):
        DiffusionTransformer.from_config_dict({**config, "num_heads": 3})
    with pytest.raises(ConfigError, match="attn_kwargs"):
        DiffusionTransformer.from_config_dict({**config, "attn_kwargs": {"sliding": 4}})
    with pytest.raises(ConfigError, match="qk_norm"):
        DiffusionTransformer.from_config_dict({**config, "attn_kwargs": {"qk_norm": "l2"}})


def test_absent_qk_norm_builds_without_qk_norm_weights(vectors_dir: Path) -> None:
    config = _diffusion_config(vectors_dir / "dit_tiny" / "model_config.json")
    with_norm = DiffusionTransformer.from_config_dict(config).state_dict()
    for attn in ({"qk_norm": None, "differential": False}, {}):
        model = DiffusionTransformer.from_config_dict({**config, "attn_kwargs": attn})
        keys = set(model.state_dict())
        qk_gammas = {k for k in with_norm if k.endswith(("q_norm.gamma", "k_norm.gamma"))}
        assert len(qk_gammas) == 8  # 2 layers x 2 attentions x (q, k)
        assert set(with_norm) - keys == qk_gammas


# --- guidance math --------------------------------------------------------------------------


def test_apg_projection_splits_the_difference() -> None:
    gen = torch.Generator().manual_seed(0)
    diff = torch.randn(3, 4, 9, generator=gen)
    ref = torch.randn(3, 4, 9, generator=gen)
    par, orth = apg_project(diff, ref)
    assert torch.allclose(par + orth, diff, atol=1e-6)
    assert (orth * ref).sum(dim=(1, 2)).abs().max().item() < 1e-4
    cos = torch.nn.functional.cosine_similarity(par.flatten(1), ref.flatten(1)).abs()
    assert torch.allclose(cos, torch.ones(3), atol=1e-5)


def test_cfg_rescale_matches_the_conditional_spread() -> None:
    gen = torch.Generator().manual_seed(2)
    v = 3.0 * torch.randn(2, 8, 5, generator=gen)
    v_cond = torch.randn(2, 8, 5, generator=gen)
    assert torch.equal(rescale_guided(v, v_cond, 0.0), v)
    full = rescale_guided(v, v_cond, 1.0)
    torch.testing.assert_close(full.std(dim=1), v_cond.std(dim=1))
    # Direction per frame is kept; phi blends linearly.
    cos = torch.nn.functional.cosine_similarity(full, v, dim=1)
    torch.testing.assert_close(cos, torch.ones(2, 5))
    torch.testing.assert_close(rescale_guided(v, v_cond, 0.25), 0.25 * full + 0.75 * v)


def test_apg_projection_uses_valid_frames_only() -> None:
    gen = torch.Generator().manual_seed(1)
    diff = torch.randn(2, 4, 9, generator=gen)
    ref = torch.randn(2, 4, 9, generator=gen)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    _, orth = apg_project(diff, ref, mask)
    assert torch.equal(orth[1, :, 6:], torch.zeros(4, 3))
    # Item 1 equals the unmasked projection of its trimmed frames.
    _, trimmed = apg_project(diff[1:, :, :6], ref[1:, :, :6])
    assert torch.allclose(orth[1:, :, :6], trimmed, atol=1e-6)
    # Changing padded frames of the reference changes nothing.
    ref2 = ref.clone()
    ref2[1, :, 6:] = 100.0
    assert torch.allclose(apg_project(diff, ref2, mask)[1], orth, atol=1e-6)


def test_guided_denoised_scales() -> None:
    gen = torch.Generator().manual_seed(2)
    c, u = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 3, 5, generator=gen)
    assert torch.equal(guided_denoised(c, u, 1.0, 1.0), c)
    assert torch.allclose(guided_denoised(c, u, 3.0, 0.0), c + 2.0 * (c - u))
    full = guided_denoised(c, u, 3.0, 1.0)
    assert torch.allclose(full, c + 2.0 * apg_project(c - u, c)[1])
    blend = guided_denoised(c, u, 3.0, 0.25)
    assert torch.allclose(blend, 0.25 * full + 0.75 * guided_denoised(c, u, 3.0, 0.0), atol=1e-5)


def test_guidance_norm_threshold() -> None:
    diff = torch.zeros(2, 1, 4)
    diff[0, 0, 0] = 10.0
    diff[1, 0, 0] = 0.5
    out = limit_guidance_norm(diff, 2.0)
    assert out[0, 0, 0].item() == pytest.approx(2.0)
    assert out[1, 0, 0].item() == pytest.approx(0.5)
    assert torch.equal(limit_guidance_norm(diff, 0.0), diff)


def test_velocity_denoised_round_trip() -> None:
    gen = torch.Generator().manual_seed(3)
    x, v = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    t = torch.tensor([0.3, 0.9])
    assert torch.allclose(
        velocity_from_denoised(x, denoised_from_velocity(x, v, t), t), v, atol=1e-5
    )


def test_uncond_tokens() -> None:
    cond = torch.ones(2, 4, 3)
    assert torch.equal(uncond_cross_tokens(cond), torch.zeros(2, 4, 3))
    neg = torch.full((2, 4, 3), 5.0)
    mask = torch.tensor([[True, True, False, False], [True, False, False, True]])
    out = uncond_cross_tokens(cond, neg, mask)
    assert torch.equal(out, neg * mask[:, :, None])
    assert torch.equal(uncond_cross_tokens(cond, neg), neg)


def test_guided_velocity_single_pass_cases(vectors: dict[str, _Vector]) -> None:
    v = vectors["dit_tiny"]
    i = v.inputs
    args = (i["x"], i["t"], i["cross_attn_cond"], i["global_cond"], i["local_add_cond"])
    with torch.no_grad():
        plain = v.model(*args)
        assert torch.equal(guided_velocity(v.model, *args, cfg_scale=1.0), plain)
        # Outside the CFG interval (gated on item 0's t) guidance is skipped.
        t0 = float(i["t"][0])
        skipped = guided_velocity(v.model, *args, cfg_scale=4.0, cfg_interval=(0.0, t0 / 2))
        guided = guided_velocity(v.model, *args, cfg_scale=4.0, cfg_interval=(0.0, 1.0))
    assert torch.equal(skipped, plain)
    assert not torch.allclose(guided, plain)
