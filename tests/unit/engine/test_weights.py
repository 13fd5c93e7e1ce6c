"""Strict weight loading: header validation, prefix reads, key/shape checks, memory peak."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sa3_studio.engine.weights import (
    Checkpoint,
    build_on_meta,
    check_shapes,
    load_module,
    load_strict,
    open_checkpoint,
    weights_hash,
)
from sa3_studio.errors import WeightsError


class Tiny(nn.Module):
    """A small tree with the kinds of tensors SA3 checkpoints hold."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(4, width)
        self.conv = nn.Conv1d(width, 4, kernel_size=3, padding=1)
        self.blocks = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(2)])
        self.register_buffer("inv_freq", torch.arange(4, dtype=torch.float32), persistent=True)
        self.register_buffer("steps", torch.zeros(2, dtype=torch.int64), persistent=True)
        self.empty = nn.Parameter(torch.zeros(1, 0, 1))
        self.running_std = nn.Parameter(torch.ones(1), requires_grad=False)


def _state(seed: int = 0, width: int = 8) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    m = Tiny(width)
    for p in m.parameters():
        p.data.normal_()
    m.steps.copy_(torch.tensor([3, 7]))
    return {k: v.clone() for k, v in m.state_dict().items()}


def _write(path: Path, state: dict[str, torch.Tensor], prefix: str = "model.model.") -> Path:
    tensors = {prefix + k: v.contiguous() for k, v in state.items()}
    tensors["conditioner.conditioners.prompt.padding_embedding"] = torch.ones(3)
    save_file(tensors, str(path))
    return path


@pytest.fixture
def ckpt_path(tmp_path: Path) -> Path:
    return _write(tmp_path / "model.safetensors", _state())


def test_build_on_meta_allocates_nothing() -> None:
    m = build_on_meta(Tiny)
    assert all(p.is_meta for p in m.parameters())
    assert all(b.is_meta for b in m.buffers())


def test_load_module_matches_file_exactly(ckpt_path: Path) -> None:
    ckpt = open_checkpoint(ckpt_path)
    m = load_module(Tiny, ckpt, "model.model.", what="DiT")
    want = _state()
    got = m.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert torch.equal(got[k], v), k
        assert got[k].dtype == v.dtype
    assert not m.training
    assert not any(p.requires_grad for p in m.parameters())
    assert m.empty.shape == (1, 0, 1)


def test_dtype_cast_per_tensor(ckpt_path: Path) -> None:
    ckpt = open_checkpoint(ckpt_path)
    m = load_module(
        Tiny,
        ckpt,
        "model.model.",
        dtype=torch.float16,
        keep_dtype=lambda name: name == "running_std",
    )
    want = _state()
    assert m.proj.weight.dtype == torch.float16
    assert torch.equal(m.proj.weight, want["proj.weight"].half())
    assert torch.equal(m.inv_freq, want["inv_freq"].half())  # buffers too, as model.to(half)
    assert m.steps.dtype == torch.int64  # integers are never cast
    assert torch.equal(m.steps, torch.tensor([3, 7]))
    assert m.running_std.dtype == torch.float32
    bf = ckpt.read("model.model.", dtype=torch.bfloat16)
    assert torch.equal(bf["conv.weight"], want["conv.weight"].to(torch.bfloat16))


def test_reader_agrees_with_safetensors_on_real_vectors(vectors_dir: Path) -> None:
    for case in ("pipeline_tiny", "pipeline_medium_tiny", "same_l_tiny"):
        path = vectors_dir / case / "model.safetensors"
        ref = load_file(str(path))
        ckpt = Checkpoint(path)
        got = ckpt.read()
        assert list(got) == ckpt.keys()
        assert set(got) == set(ref)
        for k, v in ref.items():
            assert got[k].dtype == v.dtype, k
            assert got[k].shape == v.shape, k
            assert torch.equal(got[k], v), k
    ckpt = Checkpoint(vectors_dir / "pipeline_tiny" / "model.safetensors")
    cond = ckpt.read("conditioner.conditioners.")
    assert sorted(cond) == [
        "prompt.padding_embedding",
        "seconds_total.embedder.embedding.1.bias",
        "seconds_total.embedder.embedding.1.weight",
    ]
    full = ckpt.read("conditioner.conditioners.", strip_prefix=False)
    assert all(k.startswith("conditioner.conditioners.") for k in full)
    assert ckpt.shapes("pretransform.model.")["bottleneck.noise_scaling_factor"] == (1, 0, 1)


def test_missing_extra_and_misshaped_keys_in_one_error(tmp_path: Path) -> None:
    state = _state()
    del state["blocks.0.weight"]
    state["blocks.9.weight"] = torch.zeros(8, 8)
    state["conv.weight"] = torch.zeros(4, 8, 5)
    ckpt = open_checkpoint(_write(tmp_path / "model.safetensors", state))
    with pytest.raises(WeightsError) as info:
        load_module(Tiny, ckpt, "model.model.", what="DiT")
    msg = str(info.value)
    assert "fit the DiT" in msg
    assert "1 missing: blocks.0.weight" in msg
    assert "1 unexpected: blocks.9.weight" in msg
    assert "1 with the wrong shape: conv.weight (file [4, 8, 5], model [4, 8, 3])" in msg
    assert str(tmp_path / "model.safetensors") in msg
    assert "download the model again" in msg


@pytest.mark.parametrize("kind", ["missing", "unexpected", "shape"])
def test_each_mismatch_alone(kind: str) -> None:
    state = _state()
    if kind == "missing":
        del state["proj.bias"]
    elif kind == "unexpected":
        state["ema.weight"] = torch.zeros(1)
    else:
        state["proj.weight"] = torch.zeros(8, 5)
    m = build_on_meta(Tiny)
    with pytest.raises(
        WeightsError,
        match={
            "missing": "1 missing: proj.bias",
            "unexpected": "1 unexpected: ema.weight",
            "shape": r"proj.weight \(file \[8, 5\]",
        }[kind],
    ):
        load_strict(m, state, what="autoencoder")


def test_long_lists_are_cut_with_counts() -> None:
    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(30)])

    m = build_on_meta(Wide)
    with pytest.raises(WeightsError) as info:
        check_shapes(m, {})
    msg = str(info.value)
    assert "60 missing:" in msg
    assert "and 40 more" in msg
    assert "layers.9.bias" in msg
    assert "layers.29.bias" not in msg


def test_prefix_without_tensors(ckpt_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"has no tensors under `pretransform\.model\.`"):
        load_module(Tiny, open_checkpoint(ckpt_path), "pretransform.model.", what="autoencoder")


def test_non_persistent_buffer_left_on_meta(ckpt_path: Path) -> None:
    class WithCache(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("cache", torch.zeros(3), persistent=False)

    with pytest.raises(WeightsError, match="uninitialised tensors after loading: cache"):
        load_module(WithCache, open_checkpoint(ckpt_path), "model.model.")


def test_truncated_file(tmp_path: Path) -> None:
    folder = tmp_path / "medium-base"
    folder.mkdir()
    path = _write(folder / "model.safetensors", _state())
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size - 10)
    with pytest.raises(WeightsError) as info:
        open_checkpoint(path)
    assert f"model.safetensors is truncated ({size - 10} of {size} bytes)" in str(info.value)
    assert "`sa3-studio models download medium-base`" in str(info.value)


def test_random_bytes_renamed(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        open_checkpoint(path)


def test_file_shrinking_after_open(ckpt_path: Path) -> None:
    ckpt = open_checkpoint(ckpt_path)
    size = ckpt_path.stat().st_size
    with ckpt_path.open("r+b") as fh:
        fh.truncate(size - 40)
    with pytest.raises(WeightsError, match="ended early"):
        ckpt.read("model.model.")


def test_weights_hash(ckpt_path: Path, tmp_path: Path) -> None:
    h = weights_hash(ckpt_path)
    assert h == open_checkpoint(ckpt_path).weights_hash
    assert len(h) == 16
    assert int(h, 16) >= 0
    other = _write(tmp_path / "other.safetensors", _state(width=16))
    assert weights_hash(other) != h


def test_metadata_is_exposed(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"lora_config": "{}"})
    assert open_checkpoint(path).metadata == {"lora_config": "{}"}


PEAK_SCRIPT = textwrap.dedent(
    """
    import os, resource, sys, torch
    from torch import nn
    from sa3_studio.engine.weights import open_checkpoint, load_module

    def peak_mib():
        # Linux: VmHWM, reset below, so the peak is this process's own. (ru_maxrss would also
        # count the parent's memory, which Linux carries across fork + exec.)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(1024, 1024, bias=False) for _ in range(24)])

    dtype = {"float32": torch.float32, "float16": torch.float16}[sys.argv[2]]
    ckpt = open_checkpoint(sys.argv[1])
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak-RSS counter to the current RSS
    before = peak_mib()
    m = load_module(Big, ckpt, "", dtype=dtype)
    after = peak_mib()
    weights = sum(p.numel() * p.element_size() for p in m.parameters()) / 2**20
    print(after - before, weights)
    """
)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_peak_memory_stays_near_the_weights(tmp_path: Path, dtype: str) -> None:
    """Loading 96 MiB of float32 weights costs at most 1.3x the loaded result in RAM."""
    path = tmp_path / "big.safetensors"
    gen = torch.Generator().manual_seed(0)
    save_file(
        {f"layers.{i}.weight": torch.randn(1024, 1024, generator=gen) for i in range(24)},
        str(path),
    )
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path), dtype],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    growth, weights = float(out[0]), float(out[1])
    assert weights == pytest.approx(96.0 if dtype == "float32" else 48.0)
    assert growth <= 1.3 * weights, (growth, weights)
