"""The one place that picks the compute device and dtype and touches ``torch.backends``.

``resolve_device("auto")`` prefers CUDA, then Apple MPS, then the CPU. ``resolve_dtype("auto",
device)`` is the DiT's precision: bfloat16 on CUDA GPUs that support it (float16 on older
ones), bfloat16 on CPUs with native bfloat16 matrix units (AMX or AVX512-BF16, read from the
CPU flags; several times faster there) and float32 on other CPUs and on MPS. The official
implementation runs everything in float16 on CUDA and float32 elsewhere (reference §1.5); ask
for ``"float16"`` on CUDA or ``"float32"`` on a CPU to match its numbers from a seed.

The SAME autoencoder is never bfloat16 unless asked for (:func:`resolve_autoencoder_dtype`):
its differential attention subtracts two softmax averages, and in bfloat16 a decode loses
about 18 dB of SNR on the tiny vectors (43 dB against 61 dB in float16) and turns music into
broadband noise on MPS. It runs in float16 on CUDA (the official dtype) and float32 on CPU
and MPS. Positions (RoPE frequencies) and timestep features stay float32 in every dtype.

flash-attn is one gate (:func:`flash_attn`): used only on CUDA devices of compute capability
8.0 or newer, imported on first use there and never on a CPU, and any exception from
importing it or from its first call makes it "not available" for the process, with a
one-line notice, instead of a crash.

:func:`configure_numerics` applies the backend switches the official model sets when it is
constructed: no TF32 in matmuls or cuDNN, no reduced-precision fp16 reductions, no cuDNN
autotuning. It is explicit (never run at import) because these are process-wide settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from sa3_studio.errors import Sa3Error

log = logging.getLogger(__name__)

__all__ = [
    "DTYPE_NAMES",
    "DeviceChoice",
    "choose",
    "configure_numerics",
    "cpu_flags",
    "cpu_has_native_bfloat16",
    "cpu_model",
    "flash_attn",
    "flash_attn_failed",
    "flash_attn_status",
    "resolve_autoencoder_dtype",
    "resolve_device",
    "resolve_dtype",
]

DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
"""Accepted dtype names (besides ``"auto"``)."""

_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """Where and in which precision the engine runs.

    Attributes:
        device: the torch device.
        dtype: the floating-point dtype of the diffusion transformer.
        flash_attn: whether the flash-attn kernels can be used on this device.
        flash_attn_reason: why not, when ``flash_attn`` is false ("" otherwise).
        autoencoder_dtype: the SAME autoencoder's dtype (``None``: the same as ``dtype``).
    """

    device: torch.device
    dtype: torch.dtype
    flash_attn: bool = False
    flash_attn_reason: str = ""
    autoencoder_dtype: torch.dtype | None = None

    @property
    def ae_dtype(self) -> torch.dtype:
        """The SAME autoencoder's dtype."""
        return self.dtype if self.autoencoder_dtype is None else self.autoencoder_dtype

    @property
    def description(self) -> str:
        """Human-readable summary, e.g. ``"cuda:0 (NVIDIA H100), DiT bfloat16, SAME float16"``
        (one dtype when both parts run in it)."""
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        dit = _dtype_name(self.dtype)
        if self.ae_dtype == self.dtype:
            return f"{name}, {dit}"
        return f"{name}, DiT {dit}, SAME {_dtype_name(self.ae_dtype)}"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
"""Linux ``/proc/cpuinfo`` flags of native bfloat16 matrix arithmetic (AMX tiles, AVX512-BF16)."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (``/proc/cpuinfo``, else the platform's processor string)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_has_native_bfloat16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes bfloat16 matrix products natively (AMX or AVX512-BF16).

    Read from the CPU flags (``flags``, default :func:`cpu_flags`); where none can be read
    (not Linux) torch's own probes decide.
    """
    found = cpu_flags() if flags is None else flags
    if found:
        return bool(found & _BF16_FLAGS)
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, probe, None)
        if check is not None and bool(check()):
            return True
    return False


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device setting into a usable torch device.

    Args:
        spec: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (or a torch.device).

    Returns:
        The device; ``"auto"`` picks CUDA, then MPS, then CPU. ``"cuda"`` means the current
        CUDA device, made explicit (``cuda:0``).

    Raises:
        Sa3Error: the device is unknown or not available on this machine.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise Sa3Error(f"Unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise Sa3Error(
                "CUDA was requested but no CUDA GPU is available (or this PyTorch build has no "
                "CUDA support); choose device auto or cpu."
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise Sa3Error(
                f"CUDA device {index} was requested but this machine has {count} CUDA "
                f"GPU{'s' if count != 1 else ''} (numbered from 0); choose another device."
            )
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise Sa3Error(
                "Apple MPS was requested but it is not available on this machine; "
                "choose device auto or cpu."
            )
        return torch.device("mps")
    raise Sa3Error(f"Device {spec!r} is not supported: use auto, cpu, cuda, cuda:N or mps.")


def resolve_dtype(spec: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Turn a dtype setting into a torch dtype for ``device``.

    Args:
        spec: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"`` (or a torch dtype;
            ``fp32``/``bf16``/``fp16`` are accepted too).
        device: the device chosen by :func:`resolve_device`.

    Returns:
        ``"auto"``: bfloat16 on CUDA GPUs that support it, else float16 on CUDA; bfloat16 on
        CPUs with native bfloat16 units (:func:`cpu_has_native_bfloat16`), float32 on other
        CPUs and on MPS (as the official code, which forces float32 off CUDA).

    Raises:
        Sa3Error: unknown name, or a dtype the device cannot run.
    """
    if isinstance(spec, torch.dtype):
        if spec not in DTYPE_NAMES.values():
            raise Sa3Error(f"dtype {spec} is not supported: use float32, bfloat16 or float16.")
        dtype = spec
    else:
        text = spec.strip().lower()
        text = _DTYPE_ALIASES.get(text, text)
        if text == "auto":
            if device.type == "cuda":
                return torch.bfloat16 if _cuda_bf16(device) else torch.float16
            if device.type == "cpu" and cpu_has_native_bfloat16():
                return torch.bfloat16
            return torch.float32
        if text not in DTYPE_NAMES:
            raise Sa3Error(f"Unknown dtype {spec!r}: use auto, float32, bfloat16 or float16.")
        dtype = DTYPE_NAMES[text]
    if dtype is torch.bfloat16 and device.type == "cuda" and not _cuda_bf16(device):
        raise Sa3Error(
            f"This GPU ({torch.cuda.get_device_name(device)}) cannot compute in bfloat16; "
            "choose float16 or auto."
        )
    if dtype is torch.bfloat16 and device.type == "cpu" and not cpu_has_native_bfloat16():
        # Allowed, but without AMX or AVX512-BF16 every bfloat16 product is emulated: a DiT
        # step measured 4.3x slower than float32 on an AVX2-only AMD EPYC (docs/performance.md).
        log.warning(
            "bfloat16 on this CPU is emulated (it has no AMX or AVX512-BF16 units) and several "
            "times slower than float32; choose auto or float32"
        )
    if dtype is torch.float16 and device.type == "cpu":
        # Allowed, but many CPU kernels are slow or missing in float16.
        log.warning("float16 on the CPU is slow; float32 (or bfloat16) is the better choice")
    return dtype


def resolve_autoencoder_dtype(
    spec: str | torch.dtype, device: torch.device, dit_dtype: torch.dtype
) -> torch.dtype:
    """The SAME autoencoder's dtype: never bfloat16 unless ``spec`` names it.

    Args:
        spec: ``"auto"`` or an explicit dtype (as :func:`resolve_dtype`).
        device: the chosen device.
        dit_dtype: the DiT's dtype.

    Returns:
        ``"auto"``: float16 on CUDA (the official dtype; float32 when the DiT runs in float32),
        float32 on CPU and MPS (float16 on MPS when the DiT runs in float16).
    """
    if spec != "auto":
        return resolve_dtype(spec, device)
    if device.type == "cuda":
        return torch.float32 if dit_dtype == torch.float32 else torch.float16
    if device.type == "mps" and dit_dtype == torch.float16:
        return torch.float16
    return torch.float32


def _cuda_bf16(device: torch.device) -> bool:
    # Native bfloat16 arithmetic starts with compute capability 8.0 (Ampere); older GPUs only
    # emulate it, slowly.
    return torch.cuda.get_device_capability(device) >= (8, 0)


class _FlashAttnGate:
    """Whether flash-attn works in this process: looked up once, and once broken (an import
    or a first call that raised) it stays off, with one notice. This is process state on
    purpose: a broken binary build does not mend itself between calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._looked = False
        self._reason = ""
        # Compute capability per device index, read once: status() runs on every attention
        # call of every sampler step, and a GPU's capability does not change in a process.
        self._capability: dict[int | None, tuple[int, int]] = {}

    def status(self, device: torch.device) -> tuple[ModuleType | None, str]:
        if device.type != "cuda":
            return None, f"flash-attn needs a CUDA GPU (the device is {device.type})"
        capability = self._capability.get(device.index)
        if capability is None:
            capability = self._capability[device.index] = torch.cuda.get_device_capability(device)
        major, minor = capability
        if major < 8:
            return (
                None,
                f"flash-attn needs compute capability 8.0 or newer (this GPU: {major}.{minor})",
            )
        with self._lock:
            if not self._looked:
                self._looked = True
                self._module, self._reason = _import_flash_attn()
            return self._module, self._reason

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._module is None and self._looked:
                return
            self._module, self._looked = None, True
            self._reason = f"flash-attn failed on its first call ({type(exc).__name__}: {exc})"
        log.warning("%s; using PyTorch attention instead", self._reason)

    def reset(self) -> None:
        """Look flash-attn up again on next use (tests)."""
        with self._lock:
            self._module, self._looked, self._reason = None, False, ""
            self._capability.clear()


def _import_flash_attn() -> tuple[ModuleType | None, str]:
    if importlib.util.find_spec("flash_attn") is None:
        return None, "flash-attn is not installed (pip install sa3-studio[gpu])"
    try:
        module = importlib.import_module("flash_attn")
    except Exception as exc:  # a broken binary build raises anything (ImportError, OSError...)
        reason = f"flash-attn is installed but cannot be imported ({type(exc).__name__}: {exc})"
        log.warning("%s; using PyTorch attention instead", reason)
        return None, reason
    for name in ("flash_attn_func", "flash_attn_varlen_func"):
        if not callable(getattr(module, name, None)):
            reason = f"the installed flash-attn has no {name}"
            log.warning("%s; using PyTorch attention instead", reason)
            return None, reason
    return module, ""


_FLASH = _FlashAttnGate()


def flash_attn(device: torch.device) -> ModuleType | None:
    """The ``flash_attn`` module when its kernels can run on ``device``, else None.

    Checks the device type and compute capability on every call; imports flash-attn only for
    a CUDA device that qualifies.
    """
    return _FLASH.status(device)[0]


def flash_attn_failed(exc: BaseException) -> None:
    """Report that a flash-attn call raised: it is off for the rest of the process (one
    notice); callers then run the PyTorch attention path."""
    _FLASH.fail(exc)


def call_flash(
    device: torch.device, call: Callable[[ModuleType], torch.Tensor]
) -> torch.Tensor | None:
    """Run ``call(flash_attn)`` if flash-attn works on ``device``; None when it is not
    available or raised (then it is off from now on and the caller falls back)."""
    module = flash_attn(device)
    if module is None:
        return None
    try:
        return call(module)
    except Exception as exc:  # a broken build fails on first use with anything
        flash_attn_failed(exc)
        return None


def flash_attn_status(device: torch.device) -> tuple[bool, str]:
    """Whether the ``flash_attn`` kernels can be used on ``device``, and if not, why.

    Imports ``flash_attn`` only when a qualifying CUDA device is asked about (the import is
    slow and can fail on a mismatched build, which is reported, not raised).
    """
    module, reason = _FLASH.status(device)
    return module is not None, reason


def configure_numerics() -> None:
    """Apply the official model's backend settings (call once before running a model).

    TF32 off for matmuls and cuDNN, fp16 reduced-precision reductions off, cuDNN autotuning
    off. These make CUDA results reproducible and close to float32 references.
    """
    matmul = torch.backends.cuda.matmul
    # The legacy switches, on purpose: torch >= 2.9 maps them onto its new fp32_precision API,
    # whereas setting the new per-operator flags makes any later read of the legacy flags
    # (by libraries that still use them) raise a RuntimeError about mixed APIs.
    matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cudnn.benchmark = False


def choose(
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    autoencoder_dtype: str | torch.dtype = "auto",
) -> DeviceChoice:
    """Resolve device and dtype settings together and report flash-attn availability.

    Args:
        device: see :func:`resolve_device`.
        dtype: the DiT's dtype, see :func:`resolve_dtype`.
        autoencoder_dtype: the SAME autoencoder's, see :func:`resolve_autoencoder_dtype`.

    Raises:
        Sa3Error: the device is unavailable or the dtype cannot run on it.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    ae = resolve_autoencoder_dtype(autoencoder_dtype, dev, dt)
    flash, reason = flash_attn_status(dev)
    choice = DeviceChoice(
        device=dev, dtype=dt, flash_attn=flash, flash_attn_reason=reason, autoencoder_dtype=ae
    )
    log.info("engine device: %s (flash-attn: %s)", choice.description, "yes" if flash else reason)
    return choice
