"""The one place that picks the compute device and dtype and touches ``torch.backends``.

``resolve_device("auto")`` prefers CUDA, then Apple MPS, then the CPU. ``resolve_dtype("auto",
device)`` gives bfloat16 on CUDA GPUs that support it (float16 on older ones) and float32 on
CPU and MPS. The official implementation runs everything in float16 on CUDA and float32
elsewhere (reference §1.5); ask for ``"float16"`` explicitly to match its numbers on CUDA.
bfloat16 is the default because its range cannot overflow in long attention sums.

:func:`configure_numerics` applies the backend switches the official model sets when it is
constructed: no TF32 in matmuls or cuDNN, no reduced-precision fp16 reductions, no cuDNN
autotuning. It is explicit (never run at import) because these are process-wide settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass

import torch

from sa3_studio.errors import Sa3Error

log = logging.getLogger(__name__)

__all__ = [
    "DTYPE_NAMES",
    "DeviceChoice",
    "choose",
    "configure_numerics",
    "flash_attn_status",
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
        dtype: the floating-point dtype of model weights and activations.
        flash_attn: whether the flash-attn kernels can be used on this device.
        flash_attn_reason: why not, when ``flash_attn`` is false ("" otherwise).
    """

    device: torch.device
    dtype: torch.dtype
    flash_attn: bool = False
    flash_attn_reason: str = ""

    @property
    def description(self) -> str:
        """Human-readable summary, e.g. ``"cuda:0 (NVIDIA H100), bfloat16"``."""
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        dtype = str(self.dtype).removeprefix("torch.")
        return f"{name}, {dtype}"


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
        ``"auto"``: bfloat16 on CUDA GPUs that support it, else float16 on CUDA; float32 on
        CPU and MPS (as the official code, which forces float32 off CUDA).

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
            return torch.float32
        if text not in DTYPE_NAMES:
            raise Sa3Error(f"Unknown dtype {spec!r}: use auto, float32, bfloat16 or float16.")
        dtype = DTYPE_NAMES[text]
    if dtype is torch.bfloat16 and device.type == "cuda" and not _cuda_bf16(device):
        raise Sa3Error(
            f"This GPU ({torch.cuda.get_device_name(device)}) cannot compute in bfloat16; "
            "choose float16 or auto."
        )
    if dtype is torch.float16 and device.type == "cpu":
        # Allowed, but many CPU kernels are slow or missing in float16.
        log.warning("float16 on the CPU is slow; float32 (or bfloat16) is the better choice")
    return dtype


def _cuda_bf16(device: torch.device) -> bool:
    # Native bfloat16 arithmetic starts with compute capability 8.0 (Ampere); older GPUs only
    # emulate it, slowly.
    return torch.cuda.get_device_capability(device) >= (8, 0)


def flash_attn_status(device: torch.device) -> tuple[bool, str]:
    """Whether the ``flash_attn`` kernels can be used on ``device``, and if not, why.

    Imports ``flash_attn`` only when a CUDA device is asked about (the import is slow and can
    fail on a mismatched build, which is reported, not raised).
    """
    if device.type != "cuda":
        return False, f"flash-attn needs a CUDA GPU (the device is {device.type})"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return (
            False,
            f"flash-attn needs compute capability 8.0 or newer (this GPU: {major}.{minor})",
        )
    if importlib.util.find_spec("flash_attn") is None:
        return False, "flash-attn is not installed (pip install sa3-studio[gpu])"
    try:
        module = importlib.import_module("flash_attn")
    except Exception as exc:  # a broken binary build raises anything (ImportError, OSError...)
        return False, f"flash-attn is installed but cannot be imported ({exc})"
    if not hasattr(module, "flash_attn_func"):
        return False, "the installed flash-attn has no flash_attn_func"
    return True, ""


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


def choose(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> DeviceChoice:
    """Resolve device and dtype settings together and report flash-attn availability.

    Args:
        device: see :func:`resolve_device`.
        dtype: see :func:`resolve_dtype`.

    Raises:
        Sa3Error: the device is unavailable or the dtype cannot run on it.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    flash, reason = flash_attn_status(dev)
    choice = DeviceChoice(device=dev, dtype=dt, flash_attn=flash, flash_attn_reason=reason)
    log.info("engine device: %s (flash-attn: %s)", choice.description, "yes" if flash else reason)
    return choice
