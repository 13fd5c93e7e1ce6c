"""Device and dtype choice, backend numerics switches, flash-attn detection.

Where a test needs a machine this one is not (a CUDA GPU of some generation, or none at all),
it replaces the torch availability queries with monkeypatch: that changes what the machine
reports, not any computation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from sa3_studio.engine import devices
from sa3_studio.engine.devices import (
    choose,
    configure_numerics,
    flash_attn_status,
    resolve_device,
    resolve_dtype,
)
from sa3_studio.errors import Sa3Error


def _expected_auto() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def test_auto_device_follows_availability() -> None:
    assert resolve_device("auto").type == _expected_auto()
    assert resolve_device(" AUTO ").type == _expected_auto()


def test_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_prefers_cpu_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_requested_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(Sa3Error, match="CUDA was requested but no CUDA GPU is available"):
        resolve_device("cuda")
    with pytest.raises(Sa3Error, match="CUDA was requested"):
        resolve_device("cuda:1")


def test_cuda_index_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(Sa3Error, match="CUDA device 3 was requested but this machine has 1"):
        resolve_device("cuda:3")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_mps_requested_without_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(Sa3Error, match="MPS was requested but it is not available"):
        resolve_device("mps")


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_device(spec: str) -> None:
    with pytest.raises(Sa3Error, match="use auto, cpu, cuda, cuda:N or mps"):
        resolve_device(spec)


def test_dtype_auto_off_cuda_is_float32() -> None:
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("auto", torch.device("mps")) is torch.float32


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16), ((7, 5), torch.float16)],
)
def test_dtype_auto_on_cuda(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: torch.dtype
) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_dtype("auto", torch.device("cuda", 0)) is expected


def test_bfloat16_on_old_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Old GPU")
    with pytest.raises(Sa3Error, match=r"Old GPU.*cannot compute in bfloat16"):
        resolve_dtype("bfloat16", torch.device("cuda", 0))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("float32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("fp32", torch.float32),
        ("bf16", torch.bfloat16),
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_explicit_dtypes(spec: str | torch.dtype, expected: torch.dtype) -> None:
    assert resolve_dtype(spec, torch.device("cpu")) is expected


def test_float16_on_cpu_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_dtype("float16", torch.device("cpu")) is torch.float16
    assert "float16 on the CPU is slow" in caplog.text


@pytest.mark.parametrize("spec", ["float64", "int8", "double", torch.float64])
def test_unknown_dtype(spec: str | torch.dtype) -> None:
    with pytest.raises(Sa3Error, match="float32, bfloat16 or float16"):
        resolve_dtype(spec, torch.device("cpu"))


def test_flash_attn_off_cuda() -> None:
    usable, reason = flash_attn_status(torch.device("cpu"))
    assert usable is False
    assert "CUDA GPU" in reason


def test_flash_attn_on_old_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    usable, reason = flash_attn_status(torch.device("cuda", 0))
    assert usable is False
    assert "8.0 or newer" in reason


def test_flash_attn_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: None)
    usable, reason = flash_attn_status(torch.device("cuda", 0))
    assert usable is False
    assert "not installed" in reason


def test_choose_on_cpu() -> None:
    choice = choose("cpu", "auto")
    assert choice.device == torch.device("cpu")
    assert choice.dtype is torch.float32
    assert choice.flash_attn is False
    assert choice.description == "cpu, float32"
    assert choose("cpu", "bfloat16").dtype is torch.bfloat16


@pytest.fixture
def _restore_backends() -> Iterator[None]:
    matmul = torch.backends.cuda.matmul
    saved = (
        matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        matmul.allow_fp16_reduced_precision_reduction,
        torch.backends.cudnn.benchmark,
    )
    yield
    matmul.allow_tf32 = saved[0]
    torch.backends.cudnn.allow_tf32 = saved[1]
    matmul.allow_fp16_reduced_precision_reduction = saved[2]
    torch.backends.cudnn.benchmark = saved[3]


@pytest.mark.usefixtures("_restore_backends")
def test_configure_numerics_turns_off_tf32_and_autotuning() -> None:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    configure_numerics()
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction is False
    assert torch.backends.cudnn.benchmark is False
