"""Device and dtype choice, backend numerics switches, flash-attn detection.

Where a test needs a machine this one is not (a CUDA GPU of some generation, or none at all),
it replaces the torch availability queries with monkeypatch: that changes what the machine
reports, not any computation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


NO_BF16 = frozenset({"fpu", "sse2", "avx2", "fma", "avx512f"})
AMX = frozenset({"avx512f", "amx_tile", "amx_bf16", "amx_int8"})
AVX512_BF16 = frozenset({"avx512f", "avx512_bf16"})


def test_dtype_auto_off_cuda_is_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_BF16)
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("auto", torch.device("mps")) is torch.float32


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(NO_BF16, torch.float32), (AMX, torch.bfloat16), (AVX512_BF16, torch.bfloat16)],
)
def test_dtype_auto_on_cpu_follows_the_bfloat16_units(
    monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], expected: torch.dtype
) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: flags)
    assert devices.cpu_has_native_bfloat16() is (expected is torch.bfloat16)
    choice = choose("cpu", "auto")
    assert choice.dtype is expected
    assert choice.ae_dtype is torch.float32  # SAME stays float32 on every CPU
    assert choose("cpu", "float32").dtype is torch.float32  # one setting away


def test_cpu_flags_and_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n\nprocessor\t: 1\n"
    )
    assert devices.cpu_flags(info) == {"fpu", "sse2", "avx512f", "amx_bf16", "amx_tile"}
    assert devices.cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"
    assert devices.cpu_has_native_bfloat16(devices.cpu_flags(info))
    assert devices.cpu_flags(tmp_path / "missing") == frozenset()
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd bf16 i8mm\n")
    assert devices.cpu_flags(arm) == {"fp", "asimd", "bf16", "i8mm"}
    assert not devices.cpu_has_native_bfloat16(devices.cpu_flags(arm))


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")


@pytest.mark.usefixtures("_fresh_flash_gate")
@pytest.mark.parametrize(
    ("capability", "dtype", "dit", "same"),
    [
        ((9, 0), "auto", torch.bfloat16, torch.float16),
        ((8, 6), "auto", torch.bfloat16, torch.float16),
        ((7, 5), "auto", torch.float16, torch.float16),
        ((9, 0), "float16", torch.float16, torch.float16),
        ((9, 0), "bfloat16", torch.bfloat16, torch.float16),
        ((9, 0), "float32", torch.float32, torch.float32),
    ],
)
def test_cuda_never_runs_same_in_bfloat16_by_default(
    monkeypatch: pytest.MonkeyPatch,
    capability: tuple[int, int],
    dtype: str,
    dit: torch.dtype,
    same: torch.dtype,
) -> None:
    _fake_cuda(monkeypatch, capability)
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: None)
    choice = choose("cuda", dtype)
    assert choice.device == torch.device("cuda", 0)
    assert (choice.dtype, choice.ae_dtype) == (dit, same)
    if dit != same:
        assert choice.description.endswith(f"DiT {str(dit)[6:]}, SAME {str(same)[6:]}")
    # bfloat16 for SAME only when asked for by name (and where the GPU has it).
    if capability >= (8, 0):
        assert choose("cuda", dtype, "bfloat16").ae_dtype is torch.bfloat16
    else:
        with pytest.raises(Sa3Error, match="cannot compute in bfloat16"):
            choose("cuda", dtype, "bfloat16")


@pytest.mark.parametrize(
    ("dtype", "dit", "same"),
    [
        ("auto", torch.float32, torch.float32),
        ("float16", torch.float16, torch.float16),
        ("bfloat16", torch.bfloat16, torch.float32),
    ],
)
def test_mps_runs_same_in_float32_or_float16(
    monkeypatch: pytest.MonkeyPatch, dtype: str, dit: torch.dtype, same: torch.dtype
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(devices.importlib, "import_module", _no_flash_import)
    choice = choose("auto", dtype)
    assert choice.device == torch.device("mps")
    assert (choice.dtype, choice.ae_dtype) == (dit, same)
    assert choice.flash_attn is False


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


@pytest.mark.parametrize(("flags", "warned"), [({"avx2"}, True), ({"avx2", "avx512_bf16"}, False)])
def test_bfloat16_on_a_cpu_without_bfloat16_units_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, flags: set[str], warned: bool
) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda cpuinfo=None: frozenset(flags))
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    assert ("bfloat16 on this CPU is emulated" in caplog.text) is warned


def test_float16_on_cpu_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_dtype("float16", torch.device("cpu")) is torch.float16
    assert "float16 on the CPU is slow" in caplog.text


@pytest.mark.parametrize("spec", ["float64", "int8", "double", torch.float64])
def test_unknown_dtype(spec: str | torch.dtype) -> None:
    with pytest.raises(Sa3Error, match="float32, bfloat16 or float16"):
        resolve_dtype(spec, torch.device("cpu"))


def _no_flash_import(name: str, *args: object) -> object:
    raise AssertionError(f"{name} must not be imported here")


@pytest.fixture
def _fresh_flash_gate() -> Iterator[None]:
    devices._FLASH.reset()
    yield
    devices._FLASH.reset()


@pytest.mark.usefixtures("_fresh_flash_gate")
def test_flash_attn_off_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices.importlib, "import_module", _no_flash_import)
    monkeypatch.setattr(devices.importlib.util, "find_spec", _no_flash_import)
    usable, reason = flash_attn_status(torch.device("cpu"))
    assert usable is False
    assert "CUDA GPU" in reason
    assert devices.flash_attn(torch.device("cpu")) is None
    assert devices.call_flash(torch.device("cpu"), _no_flash_import) is None


@pytest.mark.usefixtures("_fresh_flash_gate")
def test_flash_attn_on_old_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(devices.importlib, "import_module", _no_flash_import)
    usable, reason = flash_attn_status(torch.device("cuda", 0))
    assert usable is False
    assert "8.0 or newer" in reason
    assert devices.flash_attn(torch.device("cuda", 0)) is None


class _Spec:
    """Stands for an installed package's import spec."""


@pytest.mark.usefixtures("_fresh_flash_gate")
@pytest.mark.parametrize("error", [ImportError("undefined symbol"), OSError("libcudart.so.11")])
def test_a_broken_flash_attn_build_is_not_available(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: _Spec())

    def broken(name: str, *args: object) -> object:
        raise error

    monkeypatch.setattr(devices.importlib, "import_module", broken)
    usable, reason = flash_attn_status(torch.device("cuda", 0))
    assert usable is False
    assert "cannot be imported" in reason
    assert str(error) in reason
    assert devices.flash_attn(torch.device("cuda", 0)) is None
    notices = [r for r in caplog.records if "flash-attn" in r.getMessage()]
    assert len(notices) == 1  # one line, once


class _FailingFlash:
    """A flash-attn build that imports but raises on its first call."""

    calls = 0

    def flash_attn_func(self, *args: object, **kwargs: object) -> torch.Tensor:
        type(self).calls += 1
        raise RuntimeError("no kernel image is available for execution on the device")

    flash_attn_varlen_func = flash_attn_func


@pytest.mark.usefixtures("_fresh_flash_gate")
def test_flash_attn_failing_on_first_call_falls_back_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sa3_studio.engine.models import transformer

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: _Spec())
    monkeypatch.setattr(devices.importlib, "import_module", lambda name: _FailingFlash())
    cuda = torch.device("cuda", 0)
    assert devices.flash_attn(cuda) is not None
    # The attention itself runs on the CPU here; the gate is asked about a CUDA device.
    monkeypatch.setattr(devices, "flash_attn", lambda device: devices._FLASH.status(cuda)[0])
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 8, generator=gen) for _ in range(3))
    plan = transformer.AttentionPlan("exact", None, True)
    out = transformer._attend(q, k, v, plan)
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert _FailingFlash.calls == 1
    assert devices._FLASH.status(cuda)[0] is None  # off for the rest of the process
    transformer._attend(q, k, v, plan)
    assert _FailingFlash.calls == 1
    notices = [r for r in caplog.records if "first call" in r.getMessage()]
    assert len(notices) == 1


@pytest.mark.usefixtures("_fresh_flash_gate")
def test_flash_attn_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: None)
    usable, reason = flash_attn_status(torch.device("cuda", 0))
    assert usable is False
    assert "not installed" in reason


def test_choose_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_BF16)
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
