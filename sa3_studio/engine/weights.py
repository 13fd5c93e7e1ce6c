"""Strict, memory-frugal loading of safetensors weights into modules.

The pattern (architecture §5), which :func:`load_module` runs end to end::

    ckpt = open_checkpoint(folder / "model.safetensors")    # header validated, nothing read
    dit = build_on_meta(lambda: DiT(**cfg.dit.to_kwargs()))  # no memory for parameters
    check_shapes(dit, ckpt.shapes("model.model."))           # fail before reading gigabytes
    load_strict(dit, ckpt.read("model.model.", dtype=torch.float16, device=device))
    # or in one call:
    dit = load_module(lambda: DiT(...), ckpt, "model.model.", dtype=..., device=...)

Why peak memory stays near 1x the loaded weights: the module is built on the meta device (no
storage), tensors are read one at a time with plain file reads into a reused scratch buffer,
each cast to the target dtype and moved to the target device on its own, and
``load_state_dict(assign=True)`` adopts those tensors instead of copying them. The only extra
memory is the scratch buffer, as large as the largest tensor that needs a cast or a move.

The reader is our own rather than ``safetensors.safe_open``: ``safe_open`` memory-maps the file,
so every page read stays resident in the process while it is open. Casting float32 weights to
float16 through it peaks near 3x the result (measured: file pages + copies); plain reads peak
near 1x. The header is validated first by :func:`sa3_studio.engine.registry.read_safetensors_header`
(truncated or corrupt files give a :class:`~sa3_studio.errors.WeightsError` that says how to fix
them).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from sa3_studio.engine.registry import (
    SafetensorsHeader,
    TensorEntry,
    read_safetensors_header,
)
from sa3_studio.errors import WeightsError

log = logging.getLogger(__name__)

__all__ = [
    "Checkpoint",
    "build_on_meta",
    "check_shapes",
    "load_module",
    "load_strict",
    "open_checkpoint",
    "weights_hash",
]

M = TypeVar("M", bound=nn.Module)

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "U16": torch.uint16,
    "U32": torch.uint32,
    "U64": torch.uint64,
}

_LIST_LIMIT = 20  # keys listed per kind of mismatch in an error message


class Checkpoint:
    """A validated safetensors file whose tensors are read on demand, by prefix.

    Attributes:
        path: the file.
        header: the validated header (names, dtypes, shapes, metadata).
    """

    def __init__(self, path: str | Path, *, model_name: str | None = None) -> None:
        """Validate the file's header (reads nothing else).

        Args:
            path: the ``.safetensors`` file.
            model_name: official id, for the "download again" advice in errors.

        Raises:
            WeightsError: the file is missing, truncated or not a valid safetensors file.
        """
        if sys.byteorder != "little":  # pragma: no cover - no such platform ships torch today
            raise WeightsError("Loading weights needs a little-endian computer.")
        self.path = Path(path)
        self.model_name = model_name
        self.header: SafetensorsHeader = read_safetensors_header(self.path, model_name=model_name)

    @property
    def weights_hash(self) -> str:
        """Short hash identifying these weights (header + size; computed without reading)."""
        return self.header.fingerprint

    @property
    def metadata(self) -> Mapping[str, str]:
        """The file's ``__metadata__`` strings."""
        return self.header.metadata

    def keys(self, prefix: str = "") -> list[str]:
        """Tensor names starting with ``prefix`` (full names), in file order."""
        return self.header.keys(prefix)

    def shapes(self, prefix: str = "", *, strip_prefix: bool = True) -> dict[str, tuple[int, ...]]:
        """Name -> shape for the tensors under ``prefix`` (names without the prefix)."""
        cut = len(prefix) if strip_prefix else 0
        return {k[cut:]: self.header.tensors[k].shape for k in self.keys(prefix)}

    def iter_tensors(
        self,
        prefix: str = "",
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        strip_prefix: bool = True,
        keep_dtype: Callable[[str], bool] | None = None,
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """Read the tensors under ``prefix`` one by one.

        Args:
            prefix: only names starting with this (e.g. ``"model.model."``); ``""`` for all.
            dtype: floating-point tensors are cast to this (integer and bool ones never are);
                ``None`` keeps the file's dtypes.
            device: where the tensors end up.
            strip_prefix: yield names without ``prefix``.
            keep_dtype: names (as yielded) for which this returns True keep the file's dtype.

        Yields:
            (name, tensor) in file order.

        Raises:
            WeightsError: the file changed or was cut short since its header was checked.
        """
        names = self.keys(prefix)
        target = torch.device(device)
        cut = len(prefix) if strip_prefix else 0
        plans: list[tuple[str, TensorEntry, torch.dtype, torch.dtype]] = []
        scratch_bytes = 0
        for full in names:
            entry = self.header.tensors[full]
            file_dtype = _TORCH_DTYPES[entry.dtype]
            name = full[cut:]
            out_dtype = file_dtype
            casts = dtype is not None and file_dtype.is_floating_point
            if casts and (keep_dtype is None or not keep_dtype(name)):
                out_dtype = dtype  # type: ignore[assignment]
            if out_dtype != file_dtype or target.type != "cpu":
                scratch_bytes = max(scratch_bytes, entry.nbytes)
            plans.append((name, entry, file_dtype, out_dtype))
        # One reusable buffer for every tensor that is converted or moved: reading each into a
        # fresh temporary would leave the allocator's heap fragmented at ~2x the result.
        scratch = torch.empty(scratch_bytes, dtype=torch.uint8)
        with self.path.open("rb", buffering=0) as fh:
            for name, entry, file_dtype, out_dtype in plans:
                numel = _numel(entry.shape)
                if out_dtype == file_dtype and target.type == "cpu":
                    out = torch.empty(numel, dtype=file_dtype)
                    self._read_into(fh, entry, out.view(torch.uint8))
                    yield name, out.reshape(entry.shape)
                    continue
                raw = scratch[: entry.nbytes]
                self._read_into(fh, entry, raw)
                src = raw.view(file_dtype).reshape(entry.shape)
                yield name, src.to(device=target, dtype=out_dtype, copy=True)

    def read(
        self,
        prefix: str = "",
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        strip_prefix: bool = True,
        keep_dtype: Callable[[str], bool] | None = None,
    ) -> dict[str, torch.Tensor]:
        """All tensors under ``prefix`` as a dict; see :meth:`iter_tensors` for the arguments."""
        return dict(
            self.iter_tensors(
                prefix,
                dtype=dtype,
                device=device,
                strip_prefix=strip_prefix,
                keep_dtype=keep_dtype,
            )
        )

    def _read_into(self, fh: object, entry: TensorEntry, buf: torch.Tensor) -> None:
        if entry.nbytes == 0:
            return
        view = memoryview(buf.numpy()).cast("B")  # type: ignore[arg-type]
        fh.seek(self.header.data_offset + entry.begin)  # type: ignore[attr-defined]
        done = 0
        while done < entry.nbytes:
            # A single read returns at most ~2 GiB on Linux, so loop.
            n = fh.readinto(view[done:])  # type: ignore[attr-defined]
            if not n:
                raise WeightsError(
                    f"{self.path} ended early while reading it (it changed on disk during "
                    "loading?); download the model again."
                )
            done += n


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def open_checkpoint(path: str | Path, *, model_name: str | None = None) -> Checkpoint:
    """Open and validate a safetensors file (see :class:`Checkpoint`)."""
    return Checkpoint(path, model_name=model_name)


def weights_hash(path: str | Path) -> str:
    """Short provenance hash of a weights file: sha256 of its header and size.

    Cheap (reads only the header) and changes whenever the tensor table or the file size does.
    """
    return read_safetensors_header(path).fingerprint


def build_on_meta(factory: Callable[[], M]) -> M:
    """Construct a module on the meta device: full structure, no parameter storage.

    Tensors the constructor creates without an explicit device land on ``meta``; load real
    values with :func:`load_strict`. Buffers that are not saved in checkpoints
    (``persistent=False``) must be recomputed after loading: :func:`load_strict` refuses to
    leave any tensor on the meta device.
    """
    with torch.device("meta"):
        return factory()


def _fmt_list(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return f"{shown}, and {more} more" if more > 0 else shown


def _mismatch_report(
    expected: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]]
) -> list[str]:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{k} (file {list(given[k])}, model {list(expected[k])})"
        for k in expected
        if k in given and tuple(given[k]) != tuple(expected[k])
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing: {_fmt_list(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {_fmt_list(unexpected)}")
    if misshaped:
        parts.append(f"{len(misshaped)} with the wrong shape: {_fmt_list(misshaped)}")
    return parts


def _raise_mismatch(parts: list[str], what: str, source: str) -> None:
    raise WeightsError(
        f"The weights{source} do not fit the {what} described by model_config.json: "
        + "; ".join(parts)
        + ". The weights and the config are from different models, or the download is "
        "damaged: download the model again."
    )


def check_shapes(
    module: nn.Module,
    shapes: Mapping[str, Sequence[int]],
    *,
    what: str = "model",
    source: str = "",
) -> None:
    """Compare a module's state-dict keys and shapes with a checkpoint's, before reading it.

    Args:
        module: the module (typically built on meta).
        shapes: name -> shape, e.g. :meth:`Checkpoint.shapes`.
        what: the component's name for the message ("DiT", "autoencoder", ...).
        source: the file, for the message.

    Raises:
        WeightsError: one error listing missing, unexpected and mis-shaped keys (the first 20
            of each, with counts).
    """
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    given = {k: tuple(v) for k, v in shapes.items()}
    parts = _mismatch_report(expected, given)
    if parts:
        _raise_mismatch(parts, what, f" in {source}" if source else "")


def load_strict(
    module: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    *,
    what: str = "model",
    source: str = "",
) -> None:
    """Load tensors into a module, requiring an exact match of keys and shapes.

    Uses ``load_state_dict(strict=True, assign=True)``: the module adopts the given tensors
    (their dtype and device included), so a module built on meta costs no extra copy.

    Args:
        module: the module to fill.
        tensors: name -> tensor, names relative to ``module``.
        what: the component's name for error messages.
        source: the file, for error messages.

    Raises:
        WeightsError: missing, unexpected or mis-shaped keys (listed), or tensors still on the
            meta device after loading (non-persistent buffers the module never recomputed).
    """
    check_shapes(module, {k: tuple(v.shape) for k, v in tensors.items()}, what=what, source=source)
    module.load_state_dict(dict(tensors), strict=True, assign=True)
    left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left:
        raise WeightsError(
            f"The {what} still has uninitialised tensors after loading: {_fmt_list(left)}. "
            "They are not stored in checkpoints and must be computed after loading "
            "(this is a bug in SA3 Studio; please report it)."
        )


def load_module(
    factory: Callable[[], M],
    checkpoint: Checkpoint,
    prefix: str = "",
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    keep_dtype: Callable[[str], bool] | None = None,
    what: str = "model",
) -> M:
    """Build a module on meta, check it against the checkpoint, then load it strictly.

    Args:
        factory: builds the module, e.g. ``lambda: Autoencoder(**cfg.autoencoder.to_kwargs())``.
        checkpoint: the opened weights file.
        prefix: the module's key prefix in the file (``"model.model."``,
            ``"pretransform.model."``, ``"conditioner.conditioners."``; ``""`` for a standalone
            SAME file).
        dtype: floating-point weights are cast to this while reading (``None``: keep).
        device: where the weights go.
        keep_dtype: names (relative to the module) that keep the file's dtype.
        what: the component's name for error messages.

    Returns:
        The loaded module in eval mode with ``requires_grad`` off.

    Raises:
        WeightsError: the file does not match the module (nothing is read in that case), or
            it is damaged.
    """
    module = build_on_meta(factory)
    source = str(checkpoint.path)
    if not checkpoint.keys(prefix):
        raise WeightsError(
            f"{source} has no tensors under `{prefix}`, so it holds no {what}: it is not the "
            "weights file this model_config.json belongs to; download the model again."
        )
    check_shapes(module, checkpoint.shapes(prefix), what=what, source=source)
    tensors = checkpoint.read(prefix, dtype=dtype, device=device, keep_dtype=keep_dtype)
    load_strict(module, tensors, what=what, source=source)
    module.eval()
    module.requires_grad_(False)
    log.debug("loaded %s from %s[%s] (%d tensors)", what, source, prefix, len(tensors))
    return module
