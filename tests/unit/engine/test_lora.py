"""LoRA files in the official format applied to small real Linear/Conv1d trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from sa3_studio.engine.lora import (
    LoraFile,
    LoraLayer,
    LoraStack,
    apply_lora_file,
    read_lora,
    svd_bases,
)
from sa3_studio.errors import WeightsError

QKV = "model.transformer.layers.0.self_attn.to_qkv"
FF = "model.transformer.layers.0.ff.ff.0.proj"
CONV = "model.to_local_embed.0"
SECONDS = "conditioners.seconds_total.embedder.embedding.1"


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.to_qkv = nn.Linear(8, 24, bias=False)


class FFProj(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class FFBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ff = nn.Sequential(FFProj(), nn.SiLU(), nn.Linear(32, 8))


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn = Attn()
        self.ff = FFBlock()
        self.norm = nn.LayerNorm(8)


class Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Layer()])


class TinyDiT(nn.Module):
    """Names follow the DiT key tree: the LoRA root ``model.`` maps onto this module."""

    def __init__(self) -> None:
        super().__init__()
        self.to_local_embed = nn.Sequential(nn.Conv1d(9, 8, 3, padding=1), nn.SiLU())
        self.transformer = Transformer()

    def forward(self, x: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        h = x + self.to_local_embed(local).transpose(1, 2)  # (B, T, 8)
        layer = self.transformer.layers[0]
        q = layer.self_attn.to_qkv(layer.norm(h))[..., :8]
        return h + q + layer.ff.ff(h)


class Embedder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Sequential(nn.Identity(), nn.Linear(16, 8))


class Seconds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedder = Embedder()


class Conditioner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seconds_total = Seconds()


@pytest.fixture
def model() -> tuple[TinyDiT, Conditioner]:
    torch.manual_seed(0)
    return TinyDiT().eval(), Conditioner().eval()


def _stack(model: tuple[TinyDiT, Conditioner]) -> LoraStack:
    dit, cond = model
    return LoraStack({"model.": dit, "conditioners.": cond})


def _module(model: tuple[TinyDiT, Conditioner], target: str) -> nn.Module:
    dit, cond = model
    if target.startswith("model."):
        return dit.get_submodule(target.removeprefix("model."))
    return cond.get_submodule(target.removeprefix("conditioners."))


def _fan(module: nn.Module) -> tuple[int, int]:
    return module.weight.shape[0], module.weight[0].numel()


def write_lora(
    path: Path,
    model: tuple[TinyDiT, Conditioner],
    targets: list[str],
    *,
    rank: int = 2,
    alpha: float = 4.0,
    adapter_type: str = "lora",
    seed: int = 1,
    config: dict[str, Any] | None = None,
    index: int = 0,
) -> Path:
    """Write a LoRA as the official trainer saves it: fp16 tensors + lora_config metadata."""
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for target in targets:
        fan_out, fan_in = _fan(_module(model, target))
        base = f"{target}.parametrizations.weight.{index}."
        family = adapter_type.removesuffix("-xs")
        if adapter_type.endswith("-xs"):
            tensors[base + "M_xs"] = torch.randn(rank, rank, generator=gen).half()
        else:
            tensors[base + "lora_A"] = torch.randn(rank, fan_in, generator=gen).half()
            tensors[base + "lora_B"] = torch.randn(fan_out, rank, generator=gen).half()
        if family == "dora-rows":
            tensors[base + "magnitude"] = (torch.rand(fan_out, generator=gen) + 0.5).half()
        elif family == "dora-cols":
            tensors[base + "magnitude"] = (torch.rand(fan_in, generator=gen) + 0.5).half()
        elif family == "bora":
            tensors[base + "magnitude_r"] = (torch.rand(fan_out, generator=gen) + 0.5).half()
            tensors[base + "magnitude_c"] = (torch.rand(fan_in, generator=gen) + 0.5).half()
    meta = {
        "rank": rank,
        "alpha": alpha,
        "adapter_type": adapter_type,
        "dropout": 0.0,
        "include": None,
        "exclude": None,
    }
    meta.update(config or {})
    save_file(tensors, str(path), metadata={"lora_config": json.dumps(meta)})
    return path


def _lora_delta(path: Path, target: str, shape: torch.Size) -> torch.Tensor:
    lora = read_lora(path)
    layer = lora.layers[target]
    assert layer.lora_A is not None
    assert layer.lora_B is not None
    return (lora.config.scale * (layer.lora_B @ layer.lora_A)).view(shape)


def _expected(family: str, w: torch.Tensor, update: torch.Tensor, layer: LoraLayer) -> torch.Tensor:
    """What reference §6.2 gives for base weight ``w`` and the 2-D ``update = W + s·k·delta``."""
    if family == "lora":
        out = update
    elif family == "bora":
        assert layer.magnitude_r is not None
        assert layer.magnitude_c is not None
        rows = update / update.norm(dim=1, keepdim=True) * layer.magnitude_r[:, None]
        out = rows / rows.norm(dim=0, keepdim=True) * layer.magnitude_c[None, :]
    else:
        dim = 1 if family == "dora-rows" else 0
        assert layer.magnitude is not None
        out = update / update.norm(dim=dim, keepdim=True) * layer.magnitude.unsqueeze(dim)
    return out.view(w.shape)


def _ab_update(lora: LoraFile, target: str, w: torch.Tensor, strength: float) -> torch.Tensor:
    """``W + s·k·(B @ A)`` as a 2-D matrix."""
    layer = lora.layers[target]
    assert layer.lora_A is not None
    assert layer.lora_B is not None
    delta = layer.lora_B @ layer.lora_A
    return w.reshape(w.shape[0], -1) + lora.config.scale * strength * delta


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return torch.randn(2, 6, 8, generator=gen), torch.randn(2, 9, 6, generator=gen)


ALL = [QKV, FF, CONV, SECONDS]


def test_read_official_format(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    path = write_lora(tmp_path / "a.safetensors", model, ALL, rank=2, alpha=4.0)
    lora = read_lora(path)
    assert lora.name == "a"
    assert lora.config.rank == 2
    assert lora.config.scale == 2.0
    assert lora.config.adapter_type == "lora"
    assert set(lora.layers) == set(ALL)
    assert lora.layers[CONV].lora_A.shape == (2, 9 * 3)  # conv fan_in = in * k
    assert lora.layers[QKV].lora_A.dtype == torch.float32


def test_strength_zero_is_exactly_the_base(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    dit, cond = model
    x, local = _inputs()
    secs = torch.randn(3, 16)
    base_out = dit(x, local)
    base_secs = cond.seconds_total.embedder.embedding(secs)
    stack = _stack(model)
    stack.add(write_lora(tmp_path / "a.safetensors", model, ALL), strength=0.0)
    stack.add(
        write_lora(tmp_path / "b.safetensors", model, ALL, adapter_type="dora-rows", seed=2),
        strength=0.0,
    )
    assert torch.equal(dit(x, local), base_out)
    assert torch.equal(cond.seconds_total.embedder.embedding(secs), base_secs)
    for target in ALL:
        module = _module(model, target)
        assert stack.effective_weight(module) is module.weight


def test_strength_one_adds_scaled_product(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    dit, _ = model
    path = write_lora(tmp_path / "a.safetensors", model, ALL, rank=2, alpha=4.0)
    base = {t: _module(model, t).weight.detach().clone() for t in ALL}
    x, local = _inputs()
    stack = _stack(model)
    stack.add(path)
    for target in ALL:
        module = _module(model, target)
        want = base[target] + _lora_delta(path, target, base[target].shape)
        torch.testing.assert_close(stack.effective_weight(module), want, rtol=0, atol=0)
        assert torch.equal(module.weight, base[target])  # the model's weights are untouched
    # The forward uses the adapted weights: compare with a copy that has them merged.
    merged = TinyDiT()
    merged.load_state_dict(dit.state_dict())
    for target in (QKV, FF, CONV):
        sub = merged.get_submodule(target.removeprefix("model."))
        sub.weight.data += _lora_delta(path, target, sub.weight.shape)
    torch.testing.assert_close(dit(x, local), merged(x, local))
    conv = _module(model, CONV)
    assert isinstance(conv, nn.Conv1d)
    w = base[CONV] + _lora_delta(path, CONV, base[CONV].shape)
    torch.testing.assert_close(conv(local), F.conv1d(local, w, conv.bias, padding=1))


def test_strength_scales_and_changes_at_runtime(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    path = write_lora(tmp_path / "a.safetensors", model, [QKV])
    module = _module(model, QKV)
    base = module.weight.detach().clone()
    delta = _lora_delta(path, QKV, base.shape)
    stack = _stack(model)
    handle = stack.add(path, strength=0.5)
    torch.testing.assert_close(stack.effective_weight(module), base + 0.5 * delta)
    stack.set_strength(handle, -1.0)
    torch.testing.assert_close(stack.effective_weight(module), base - delta)
    stack.set_strength(None, 0.0)
    assert torch.equal(stack.effective_weight(module), base)
    assert stack.entries[0].strength == 0.0
    with pytest.raises(ValueError, match="finite"):
        stack.set_strength(handle, float("nan"))
    with pytest.raises(KeyError):
        stack.set_strength(99, 1.0)


@pytest.mark.parametrize("adapter_type", ["dora-rows", "dora-cols"])
def test_dora(tmp_path: Path, model: tuple[TinyDiT, Conditioner], adapter_type: str) -> None:
    path = write_lora(tmp_path / "d.safetensors", model, [FF, CONV], adapter_type=adapter_type)
    lora = read_lora(path)
    stack = _stack(model)
    handle = stack.add(lora, strength=0.7)
    dim = 1 if adapter_type == "dora-rows" else 0
    for target in (FF, CONV):
        module = _module(model, target)
        w = module.weight.detach()
        layer = lora.layers[target]
        want = _expected(adapter_type, w, _ab_update(lora, target, w, 0.7), layer)
        torch.testing.assert_close(stack.effective_weight(module), want)
        norms = stack.effective_weight(module).reshape(w.shape[0], -1).norm(dim=dim)
        torch.testing.assert_close(norms, layer.magnitude)
    stack.set_strength(handle, 0.0)
    for target in (FF, CONV):
        module = _module(model, target)
        assert torch.equal(stack.effective_weight(module), module.weight)


def test_schedule_gates_by_time_and_filters_dit_layers(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    first = write_lora(tmp_path / "a.safetensors", model, ALL, seed=1)
    second = write_lora(tmp_path / "b.safetensors", model, [FF], seed=2)
    stack = _stack(model)
    late, always = stack.add(first), stack.add(second)
    adapted = {t: stack.effective_weight(_module(model, t)).clone() for t in ALL}
    stack.set_schedule(late, interval=(0.1, 0.5), layer_filter=" Layers.[0-0].self_attn, seconds")
    entry = stack.entries[0]
    assert entry.interval == (0.1, 0.5)
    assert entry.layer_filter == "Layers.[0-0].self_attn, seconds"
    assert stack.has_schedules
    # Inside the interval: the filtered DiT layer is off; the conditioner's never is.
    assert not stack.at_time(0.3)
    qkv = _module(model, QKV)
    assert torch.equal(stack.effective_weight(qkv), qkv.weight)
    for target in (CONV, SECONDS):
        assert torch.equal(stack.effective_weight(_module(model, target)), adapted[target])
    # Outside it the LoRA is off everywhere, the unscheduled one still on.
    assert stack.at_time(0.9)
    for target in (QKV, CONV, SECONDS):
        module = _module(model, target)
        assert torch.equal(stack.effective_weight(module), module.weight)
    ff = _module(model, FF)
    only_second = ff.weight + _lora_delta(second, FF, ff.weight.shape)
    torch.testing.assert_close(stack.effective_weight(ff), only_second)
    assert not stack.at_time(0.95)  # nothing changed
    assert stack.at_time(None)  # outside sampling every LoRA acts
    assert torch.equal(stack.effective_weight(_module(model, CONV)), adapted[CONV])
    stack.set_schedule(late)  # back to every step and every layer
    assert not stack.has_schedules
    assert torch.equal(stack.effective_weight(qkv), adapted[QKV])
    assert stack.entries[1].interval is None
    for bad in [(0.5, 0.1), (-0.1, 0.5), (0.0, float("nan"))]:
        with pytest.raises(ValueError, match="0 <= start <= end <= 1"):
            stack.set_schedule(always, interval=bad)


def test_two_stacked_apply_in_order(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    first = write_lora(tmp_path / "one.safetensors", model, [QKV, FF], seed=1)
    second = write_lora(tmp_path / "two.safetensors", model, [QKV], rank=3, alpha=1.5, seed=2)
    qkv = _module(model, QKV)
    base = qkv.weight.detach().clone()
    stack = _stack(model)
    h1 = stack.add(first, strength=1.0)
    h2 = stack.add(second, strength=0.5)
    assert [e.name for e in stack.entries] == ["one", "two"]
    assert [e.layers for e in stack.entries] == [2, 1]
    want = base + _lora_delta(first, QKV, base.shape) + 0.5 * _lora_delta(second, QKV, base.shape)
    torch.testing.assert_close(stack.effective_weight(qkv), want)
    # Removing the first keeps the second.
    stack.remove(h1)
    torch.testing.assert_close(
        stack.effective_weight(qkv), base + 0.5 * _lora_delta(second, QKV, base.shape)
    )
    ff = _module(model, FF)
    assert "forward" not in ff.__dict__  # no LoRA left on it: plain module again
    stack.remove(h2)
    assert "forward" not in qkv.__dict__
    assert torch.equal(stack.effective_weight(qkv), base)
    assert stack.entries == ()


def test_dora_then_lora_is_sequential(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    dora = write_lora(tmp_path / "d.safetensors", model, [FF], adapter_type="dora-rows")
    lora = write_lora(tmp_path / "l.safetensors", model, [FF], seed=3)
    ff = _module(model, FF)
    stack = _stack(model)
    stack.add(dora)
    after_dora = stack.effective_weight(ff).detach().clone()
    stack.add(lora)
    want = after_dora + _lora_delta(lora, FF, after_dora.shape)
    torch.testing.assert_close(stack.effective_weight(ff), want)


def test_clear_restores_base_forward(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    dit, _ = model
    x, local = _inputs()
    base_out = dit(x, local)
    stack = _stack(model)
    stack.add(write_lora(tmp_path / "a.safetensors", model, ALL))
    assert not torch.equal(dit(x, local), base_out)
    stack.clear()
    assert torch.equal(dit(x, local), base_out)
    assert all("forward" not in m.__dict__ for m in dit.modules())


def test_state_dict_keys_do_not_change(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    dit, _ = model
    keys = list(dit.state_dict())
    stack = _stack(model)
    stack.add(write_lora(tmp_path / "a.safetensors", model, ALL))
    assert list(dit.state_dict()) == keys


def test_mismatched_shapes_and_keys_are_listed(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    path = tmp_path / "bad.safetensors"
    tensors = {
        f"{QKV}.parametrizations.weight.0.lora_A": torch.zeros(2, 8).half(),
        f"{QKV}.parametrizations.weight.0.lora_B": torch.zeros(48, 2).half(),  # layer is 24
        "model.transformer.layers.5.attn.parametrizations.weight.0.lora_A": torch.zeros(2, 8),
        "model.transformer.layers.5.attn.parametrizations.weight.0.lora_B": torch.zeros(8, 2),
        "model.transformer.layers.0.norm.parametrizations.weight.0.lora_A": torch.zeros(2, 8),
        "model.transformer.layers.0.norm.parametrizations.weight.0.lora_B": torch.zeros(8, 2),
        "text.proj.parametrizations.weight.0.lora_A": torch.zeros(2, 8),
        "text.proj.parametrizations.weight.0.lora_B": torch.zeros(8, 2),
    }
    save_file(tensors, str(path), metadata={"lora_config": json.dumps({"rank": 2, "alpha": 2})})
    dit, _ = model
    stack = _stack(model)
    with pytest.raises(WeightsError) as info:
        stack.add(path)
    msg = str(info.value)
    assert "does not fit this model (4 problems)" in msg
    assert f"{QKV}: lora_B [48, 2] (the layer needs [24, 2])" in msg
    assert "model.transformer.layers.5.attn is not a layer of this model" in msg
    assert "layers.0.norm is a LayerNorm, not a Linear or Conv1d" in msg
    assert "text.proj is under none of the model parts (conditioners., model.)" in msg
    assert stack.entries == ()
    assert all("forward" not in m.__dict__ for m in dit.modules())


def test_rank_mismatch_and_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    save_file(
        {
            f"{QKV}.parametrizations.weight.0.lora_A": torch.zeros(4, 8),
            f"{QKV}.parametrizations.weight.0.lora_B": torch.zeros(24, 4),
            f"{FF}.parametrizations.weight.0.lora_A": torch.zeros(2, 8),
            f"{CONV}.weight": torch.zeros(8, 9, 3),
            f"{SECONDS}.parametrizations.weight.0.magnitude": torch.zeros(8),
        },
        str(path),
        metadata={"lora_config": json.dumps({"rank": 2, "alpha": 2, "adapter_type": "lora"})},
    )
    with pytest.raises(WeightsError) as info:
        read_lora(path)
    msg = str(info.value)
    assert f"{CONV}.weight is not a LoRA parameter name" in msg
    assert "magnitude is not a lora parameter" in msg
    assert f"{FF} lacks lora_B" in msg
    assert "do not have rank 2" in msg


def test_unknown_adapter_type_names_the_supported_ones(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    path = write_lora(tmp_path / "x.safetensors", model, [QKV], adapter_type="magic")
    with pytest.raises(WeightsError, match="'magic', which is unknown") as info:
        read_lora(path)
    assert "lora, dora-rows, dora-cols, bora, lora-xs" in str(info.value)


def test_bora_normalises_rows_then_columns(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    path = write_lora(tmp_path / "b.safetensors", model, [FF, CONV], adapter_type="bora")
    lora = read_lora(path)
    stack = _stack(model)
    handle = stack.add(lora, strength=0.6)
    for target in (FF, CONV):
        module = _module(model, target)
        w = module.weight.detach()
        layer = lora.layers[target]
        got = stack.effective_weight(module)
        torch.testing.assert_close(
            got, _expected("bora", w, _ab_update(lora, target, w, 0.6), layer)
        )
        # The column step comes last, so the columns carry magnitude_c exactly.
        torch.testing.assert_close(got.reshape(w.shape[0], -1).norm(dim=0), layer.magnitude_c)
    stack.set_strength(handle, 0.0)
    assert torch.equal(stack.effective_weight(_module(model, FF)), _module(model, FF).weight)


def test_xs_bases_are_the_top_singular_vectors_with_fixed_signs() -> None:
    torch.manual_seed(3)
    weight = torch.randn(12, 5, 3)  # a Conv1d weight, viewed as (12, 15)
    u, v = svd_bases(weight, 4)
    w2 = weight.reshape(12, -1)
    assert u.shape == (12, 4)
    assert v.shape == (15, 4)
    torch.testing.assert_close(u.T @ u, torch.eye(4))
    torch.testing.assert_close(v.T @ v, torch.eye(4))
    # U^T W V is the diagonal of the four largest singular values, all positive.
    core = u.T @ w2 @ v
    top = torch.linalg.svdvals(w2)[:4]
    torch.testing.assert_close(core, torch.diag(top), atol=1e-5, rtol=1e-5)
    # Sign convention: each U column's largest-magnitude entry is positive.
    assert (u[u.abs().argmax(dim=0), torch.arange(4)] > 0).all()
    # Flipping the weight's sign flips V, not U: the bases are tied to the convention.
    u2, v2 = svd_bases(-weight, 4)
    torch.testing.assert_close(u2, u)
    torch.testing.assert_close(v2, -v)


@pytest.mark.parametrize("adapter_type", ["lora-xs", "dora-rows-xs", "dora-cols-xs", "bora-xs"])
def test_xs_adapters_use_the_base_weights_svd(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner], adapter_type: str
) -> None:
    path = write_lora(
        tmp_path / "xs.safetensors", model, [QKV, FF, CONV, SECONDS], adapter_type=adapter_type
    )
    lora = read_lora(path)
    assert lora.config.is_xs
    stack = _stack(model)
    handle = stack.add(lora, strength=0.8)
    for target in (QKV, FF, CONV, SECONDS):
        module = _module(model, target)
        w = module.weight.detach()
        layer = lora.layers[target]
        assert layer.M_xs is not None
        assert layer.lora_A is None
        u, v = svd_bases(w, lora.config.rank)
        update = w.reshape(w.shape[0], -1) + lora.config.scale * 0.8 * (u @ layer.M_xs @ v.T)
        want = _expected(lora.config.family, w, update, layer)
        torch.testing.assert_close(stack.effective_weight(module), want)
    x, local = _inputs()
    dit = model[0]
    with torch.no_grad():
        adapted = dit(x, local)
        stack.set_strength(handle, 0.0)
        base = dit(x, local)
        stack.clear()
        assert torch.equal(dit(x, local), base)
    assert not torch.allclose(adapted, base)


def test_xs_rank_is_inferred_and_checked(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    path = tmp_path / "xs.safetensors"
    base = f"{QKV}.parametrizations.weight.0."
    meta = {"lora_config": json.dumps({"adapter_type": "lora-xs"})}  # no rank: from M_xs
    save_file({base + "M_xs": torch.randn(3, 3)}, str(path), metadata=meta)
    lora = read_lora(path)
    assert lora.config.rank == 3
    assert lora.config.alpha == 3
    bad = tmp_path / "bad.safetensors"
    meta = {"lora_config": json.dumps({"rank": 3, "alpha": 3, "adapter_type": "lora-xs"})}
    save_file({base + "M_xs": torch.randn(3, 2)}, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match=r"M_xs has shape \[3, 2\], not rank x rank"):
        read_lora(bad)
    big = tmp_path / "big.safetensors"
    meta = {"lora_config": json.dumps({"rank": 9, "alpha": 9, "adapter_type": "lora-xs"})}
    save_file({base + "M_xs": torch.randn(9, 9)}, str(big), metadata=meta)
    with pytest.raises(WeightsError, match=r"rank 9 is more than the 24 x 8 weight"):
        _stack(model).add(big)


def test_legacy_dora_name(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    path = tmp_path / "legacy.safetensors"
    base = f"{FF}.parametrizations.weight.0."
    meta = {"lora_config": json.dumps({"rank": 2, "alpha": 2, "adapter_type": "dora"})}
    tensors = {base + "lora_A": torch.zeros(2, 8), base + "lora_B": torch.zeros(32, 2)}
    save_file({**tensors, base + "magnitude": torch.ones(32, 1)}, str(path), metadata=meta)
    rows = read_lora(path)
    assert rows.config.adapter_type == "dora-rows"
    assert rows.layers[FF].magnitude is not None
    assert rows.layers[FF].magnitude.shape == (32,)
    save_file({**tensors, base + "magnitude": torch.ones(1, 8)}, str(path), metadata=meta)
    cols = read_lora(path)
    assert cols.config.adapter_type == "dora-cols"
    stack = _stack(model)
    stack.add(cols)
    assert stack.entries[0].adapter_type == "dora-cols"


def test_missing_metadata_infers_rank(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    path = tmp_path / "plain.safetensors"
    base = f"{QKV}.parametrizations.weight.0."
    save_file({base + "lora_A": torch.ones(3, 8), base + "lora_B": torch.ones(24, 3)}, str(path))
    lora = read_lora(path)
    assert (lora.config.rank, lora.config.alpha, lora.config.adapter_type) == (3, 3.0, "lora")


def test_include_exclude_filters(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    path = write_lora(
        tmp_path / "f.safetensors",
        model,
        [QKV, FF, SECONDS],
        config={"include": ["layers.[0-3].", "seconds_total"], "exclude": [".ff."]},
    )
    stack = _stack(model)
    stack.add(path)
    assert stack.entries[0].layers == 2
    assert "forward" in _module(model, QKV).__dict__
    assert "forward" in _module(model, SECONDS).__dict__
    assert "forward" not in _module(model, FF).__dict__


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this must never run",))


def test_legacy_ckpt_is_read_without_running_code(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner], capsys: pytest.CaptureFixture[str]
) -> None:
    st = write_lora(tmp_path / "new.safetensors", model, [QKV, FF], adapter_type="dora-rows")
    new = read_lora(st)
    state = {
        f"{t}.parametrizations.weight.0.{n}": getattr(layer, n)
        for t, layer in new.layers.items()
        for n in ("lora_A", "lora_B", "magnitude")
    }
    state["model.transformer.layers.0.norm.weight"] = torch.ones(8)  # base weights are ignored
    config = {"rank": 2, "alpha": 4.0, "adapter_type": "dora-rows"}
    legacy = tmp_path / "old.ckpt"
    torch.save({"state_dict": state, "lora_config": config, "epoch": 3}, legacy)
    old = read_lora(legacy)
    assert old.config == new.config
    assert old.layers.keys() == new.layers.keys()
    for target, layer in old.layers.items():
        assert layer.lora_A is not None
        assert torch.equal(layer.lora_A, new.layers[target].lora_A)
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": state, "lora_config": config, "hook": _Evil()}, evil)
    with pytest.raises(WeightsError, match="holds Python objects besides tensors"):
        read_lora(evil)
    assert "must never run" not in capsys.readouterr().out
    no_state = tmp_path / "nostate.ckpt"
    torch.save({"lora_config": config}, no_state)
    with pytest.raises(WeightsError, match="without a state_dict"):
        read_lora(no_state)


def test_legacy_pickle_and_damaged_files(tmp_path: Path) -> None:
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="cannot be read as a plain legacy checkpoint"):
        read_lora(ckpt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x01" * 100)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        read_lora(junk)
    empty = tmp_path / "empty.safetensors"
    save_file({}, str(empty), metadata={"lora_config": json.dumps({"rank": 2})})
    with pytest.raises(WeightsError, match="holds no LoRA tensors"):
        read_lora(empty)
    bad_meta = tmp_path / "meta.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad_meta), metadata={"lora_config": "{rank: 2"})
    with pytest.raises(WeightsError, match="unreadable lora_config"):
        read_lora(bad_meta)


class MultiConditionerLike(nn.Module):
    """Keys ``conditioners.<id>.*`` like the engine's conditioner (``conditioner.`` prefix)."""

    def __init__(self, inner: Conditioner) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict({"seconds_total": inner.seconds_total})


def test_apply_lora_file_one_by_one(tmp_path: Path, model: tuple[TinyDiT, Conditioner]) -> None:
    dit, cond = model
    multi = MultiConditionerLike(cond)
    first = write_lora(tmp_path / "one.safetensors", model, [QKV, SECONDS], seed=1)
    second = write_lora(tmp_path / "two.safetensors", model, [QKV], seed=2)
    qkv, secs = _module(model, QKV), _module(model, SECONDS)
    base_qkv, base_secs = qkv.weight.detach().clone(), secs.weight.detach().clone()
    a = apply_lora_file(first, dit=dit, conditioner=multi, strength=1.0)
    b = apply_lora_file(second, dit=dit, conditioner=multi, strength=0.25)
    assert a.entry.name == "one"
    assert a.entry.layers == 2
    d1, d2 = _lora_delta(first, QKV, base_qkv.shape), _lora_delta(second, QKV, base_qkv.shape)
    torch.testing.assert_close(LoraStack.effective_weight(qkv), base_qkv + d1 + 0.25 * d2)
    torch.testing.assert_close(
        LoraStack.effective_weight(secs), base_secs + _lora_delta(first, SECONDS, secs.weight.shape)
    )
    a.set_strength(0.0)
    torch.testing.assert_close(LoraStack.effective_weight(qkv), base_qkv + 0.25 * d2)
    assert torch.equal(LoraStack.effective_weight(secs), base_secs)
    a.remove()
    assert "forward" not in secs.__dict__
    torch.testing.assert_close(LoraStack.effective_weight(qkv), base_qkv + 0.25 * d2)
    b.remove()
    assert all("forward" not in m.__dict__ for m in dit.modules())
    assert torch.equal(LoraStack.effective_weight(qkv), base_qkv)


def test_bad_lora_leaves_earlier_ones_working(
    tmp_path: Path, model: tuple[TinyDiT, Conditioner]
) -> None:
    dit, cond = model
    good = write_lora(tmp_path / "good.safetensors", model, [QKV])
    qkv = _module(model, QKV)
    base = qkv.weight.detach().clone()
    apply_lora_file(good, dit=dit, conditioner=cond)
    bad = tmp_path / "bad.safetensors"
    base_key = f"{QKV}.parametrizations.weight.0."
    save_file(
        {base_key + "lora_A": torch.zeros(2, 9), base_key + "lora_B": torch.zeros(24, 2)},
        str(bad),
        metadata={"lora_config": json.dumps({"rank": 2, "alpha": 2})},
    )
    with pytest.raises(WeightsError, match=r"lora_A \[2, 9\] \(the layer needs \[2, 8\]\)"):
        apply_lora_file(bad, dit=dit, conditioner=cond)
    torch.testing.assert_close(
        LoraStack.effective_weight(qkv), base + _lora_delta(good, QKV, base.shape)
    )


def test_every_layer_of_the_real_dit(tmp_path: Path, vectors_dir: Path) -> None:
    """A LoRA on every Linear/Conv1d of the engine's DiT acts as if merged into its weights.

    This holds only if the DiT calls its layers (the contract of the on-the-fly design).
    """
    from sa3_studio.engine.config import load_fragment_config
    from sa3_studio.engine.models.dit import DiffusionTransformer
    from sa3_studio.engine.weights import load_module, open_checkpoint

    diffusion = load_fragment_config(vectors_dir / "dit_tiny").diffusion
    assert diffusion is not None
    ckpt = open_checkpoint(vectors_dir / "dit_tiny" / "model.safetensors")

    def build() -> DiffusionTransformer:
        return load_module(
            lambda: DiffusionTransformer(**diffusion.dit_kwargs()), ckpt, "model.model."
        )

    dit, merged = build(), build()
    gen = torch.Generator().manual_seed(3)
    rank, alpha = 2, 3.0
    tensors: dict[str, torch.Tensor] = {}
    for name, module in dit.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            fan_out, fan_in = _fan(module)
            base = f"model.{name}.parametrizations.weight.0."
            a = torch.randn(rank, fan_in, generator=gen).half() * 0.1
            b = torch.randn(fan_out, rank, generator=gen).half() * 0.1
            tensors[base + "lora_A"], tensors[base + "lora_B"] = a, b
            target = merged.get_submodule(name)
            target.weight.data += (alpha / rank * (b.float() @ a.float())).view(target.weight.shape)
    assert len(tensors) > 20
    path = tmp_path / "all.safetensors"
    meta = {"rank": rank, "alpha": alpha, "adapter_type": "lora"}
    save_file(tensors, str(path), metadata={"lora_config": json.dumps(meta)})
    cfg = diffusion.config
    x = torch.randn(1, cfg.io_channels, 12, generator=gen)
    t = torch.tensor([0.6])
    cross = torch.randn(1, 5, cfg.cond_token_dim, generator=gen)
    glob = torch.randn(1, cfg.global_cond_dim, generator=gen)
    local = torch.randn(1, cfg.local_add_cond_dim, 12, generator=gen)
    with torch.no_grad():
        base_out = dit(x, t, cross, glob, local)
        applied = apply_lora_file(path, dit=dit)
        assert applied.entry.layers == len(tensors) // 2
        torch.testing.assert_close(dit(x, t, cross, glob, local), merged(x, t, cross, glob, local))
        applied.set_strength(0.0)
        assert torch.equal(dit(x, t, cross, glob, local), base_out)
