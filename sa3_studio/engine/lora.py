"""LoRA / DoRA adapters in the official Stable Audio 3 file format (reference §6).

A LoRA file is a ``.safetensors`` file whose ``lora_config`` metadata (JSON) gives ``rank``,
``alpha``, ``adapter_type``, ``dropout``, ``include`` and ``exclude``. Tensor names are module
paths relative to two roots, followed by ``.parametrizations.weight.N.`` and the parameter::

    model.transformer.layers.7.self_attn.to_qkv.parametrizations.weight.0.lora_A   (DiT wrapper)
    conditioners.seconds_total.embedder.embedding.1.parametrizations.weight.0.lora_B  (conditioner)

``model.`` names are relative to the official DiT wrapper, whose ``model`` child is the DiT that
SA3 Studio loads from the ``model.model.`` checkpoint prefix; ``conditioners.`` names are relative
to the module holding the per-id conditioners (loaded from ``conditioner.conditioners.``). So
the pipeline applies LoRAs with::

    drums = apply_lora_file("drums.safetensors", dit=dit, conditioner=conditioner, strength=0.8)
    drums.set_strength(0.5)             # any time, e.g. from a slider
    drums.remove()                      # the base weights are untouched throughout

or, managing several together, ``LoraStack({"model.": dit, "conditioners.": per_id_module})``.

Effective weight of a targeted ``nn.Linear``/``nn.Conv1d`` weight ``W`` (conv weights are viewed
as ``(out, in*k)``), with ``s = alpha / rank`` and ``k`` the LoRA's strength:

* ``lora``: ``W + s*k*(B @ A)``;
* ``dora-rows``: ``V = W + s*k*(B @ A)``, ``W' = V / (||V||_row + 1e-12) * magnitude`` (norm over
  each output row); ``dora-cols``: the same per input column. At ``k = 0`` DoRA returns ``W``.
* ``bora``: ``V`` as for DoRA; normalise its rows and scale them by ``magnitude_r``, then
  normalise the columns of that and scale them by ``magnitude_c``.
* ``-xs`` variants (``lora-xs``, ``dora-rows-xs``, ``dora-cols-xs``, ``bora-xs``): the update
  is ``U @ M_xs @ V^T`` instead of ``B @ A``, where ``U`` ``(fan_out, r)`` and ``V``
  ``(fan_in, r)`` are the top-r singular vectors of the base weight. They are not in the file:
  they are computed from the base weight when the LoRA is applied (float32 SVD on the CPU,
  signs fixed so that each column of ``U`` has its largest-magnitude entry positive), as the
  official loader does, and remembered per layer for later LoRAs of the same rank.

Several LoRAs apply in the order they were added, each to the previous one's output (additive
only for plain LoRA), as the official parametrization list does. A LoRA at strength 0 is skipped,
so strength 0 gives exactly the base weights.

Design: the effective weight is computed on the fly in the adapted layers' forward, never written
into the model. Nothing is merged, so removing a LoRA or changing a strength needs no restore and
costs nothing, strength 0 is bit-exact, and no second copy of the weights is kept (a merged
approach with exact restore would hold a copy of every adapted weight: the whole DiT for a
typical LoRA). The price is one small ``B @ A`` product and one weight-sized add per adapted layer
and forward, the same work as the official ``torch.nn.utils.parametrize`` implementation. Unlike
``parametrize``, the model's state-dict keys never change, so strict loading keeps working.
Contract with model code: adapted layers must be *called* (``layer(x)``); code that reads
``layer.weight`` directly sees the base weight.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sa3_studio.engine.weights import Checkpoint
from sa3_studio.errors import WeightsError

log = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_ADAPTERS",
    "AppliedLora",
    "LoraConfig",
    "LoraEntry",
    "LoraFile",
    "LoraLayer",
    "LoraStack",
    "apply_lora_file",
    "read_lora",
]

SUPPORTED_ADAPTERS = (
    "lora",
    "dora-rows",
    "dora-cols",
    "bora",
    "lora-xs",
    "dora-rows-xs",
    "dora-cols-xs",
    "bora-xs",
)
"""Adapter types SA3 Studio applies: every official one (legacy "dora" means dora-rows)."""

_PARAMS = {
    "lora": ("lora_A", "lora_B"),
    "dora-rows": ("lora_A", "lora_B", "magnitude"),
    "dora-cols": ("lora_A", "lora_B", "magnitude"),
    "bora": ("lora_A", "lora_B", "magnitude_r", "magnitude_c"),
    "lora-xs": ("M_xs",),
    "dora-rows-xs": ("M_xs", "magnitude"),
    "dora-cols-xs": ("M_xs", "magnitude"),
    "bora-xs": ("M_xs", "magnitude_r", "magnitude_c"),
}
_MAGNITUDES = ("magnitude", "magnitude_r", "magnitude_c")
_KEY = re.compile(r"^(?P<target>.+)\.parametrizations\.weight\.(?P<index>\d+)\.(?P<param>\w+)$")
_LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class LoraConfig:
    """The ``lora_config`` metadata of a LoRA file.

    Attributes:
        rank: r, the inner size of ``B @ A``.
        alpha: scaling numerator; the update is scaled by ``alpha / rank``.
        adapter_type: one of :data:`SUPPORTED_ADAPTERS`.
        dropout: training-time dropout (unused at inference).
        include: module-name substrings the LoRA was restricted to (``None``: all).
        exclude: module-name substrings it was kept off.
    """

    rank: int
    alpha: float
    adapter_type: str = "lora"
    dropout: float = 0.0
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    @property
    def scale(self) -> float:
        """``alpha / rank``."""
        return self.alpha / self.rank

    @property
    def family(self) -> str:
        """How the update is applied: "lora", "dora-rows", "dora-cols" or "bora"."""
        return self.adapter_type.removesuffix("-xs")

    @property
    def is_xs(self) -> bool:
        """Whether the update is ``U @ M_xs @ V^T`` on the base weight's singular vectors."""
        return self.adapter_type.endswith("-xs")


@dataclass(frozen=True, slots=True)
class LoraLayer:
    """The tensors one LoRA holds for one layer (float32, on the CPU as read).

    Attributes:
        target: the layer's path as written in the file (root prefix included).
        lora_A: ``(rank, fan_in)``; None for the -xs adapters.
        lora_B: ``(fan_out, rank)``; None for the -xs adapters.
        magnitude: ``(fan_out,)`` for dora-rows(-xs), ``(fan_in,)`` for dora-cols(-xs).
        magnitude_r: ``(fan_out,)`` for bora(-xs).
        magnitude_c: ``(fan_in,)`` for bora(-xs).
        M_xs: ``(rank, rank)`` for the -xs adapters.
    """

    target: str
    lora_A: torch.Tensor | None = None  # noqa: N815 - the file format's name
    lora_B: torch.Tensor | None = None  # noqa: N815
    magnitude: torch.Tensor | None = None
    magnitude_r: torch.Tensor | None = None
    magnitude_c: torch.Tensor | None = None
    M_xs: torch.Tensor | None = None


@dataclass(frozen=True, slots=True)
class LoraFile:
    """A LoRA file read from disk.

    Attributes:
        path: the file.
        config: its ``lora_config``.
        layers: target path -> tensors.
    """

    path: Path
    config: LoraConfig
    layers: Mapping[str, LoraLayer]

    @property
    def name(self) -> str:
        """Display name: the file name without extension."""
        return self.path.stem


def _fmt(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return f"{shown}; and {more} more" if more > 0 else shown


def _bad_file(path: Path, problem: str) -> WeightsError:
    return WeightsError(f"The LoRA file {path} {problem}.")


def _parse_config(path: Path, text: str | None, tensors: Mapping[str, torch.Tensor]) -> LoraConfig:
    """Parse ``lora_config`` metadata; without it, infer as the official loader does."""
    raw: dict[str, Any] = {}
    if text is not None:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise _bad_file(path, "has unreadable lora_config metadata (not JSON)") from None
        if not isinstance(raw, dict):
            raise _bad_file(path, "has lora_config metadata that is not a JSON object")
    known = {"rank", "alpha", "adapter_type", "dropout", "include", "exclude"}
    extra = sorted(set(raw) - known)
    if extra:
        log.debug("LoRA %s: ignoring lora_config keys %s", path, extra)
    adapter_type = raw.get("adapter_type", "lora")
    if not isinstance(adapter_type, str):
        raise _bad_file(path, "has an adapter_type that is not a string")
    if adapter_type == "dora":  # legacy name: the variant shows in a 2-D magnitude's shape
        adapter_type = "dora-rows"
        mags = [t for k, t in tensors.items() if k.endswith(".magnitude")]
        if mags and mags[0].dim() == 2 and mags[0].shape[0] == 1 and mags[0].shape[1] != 1:
            adapter_type = "dora-cols"  # saved as (1, fan_in)
    if adapter_type not in SUPPORTED_ADAPTERS:
        raise _bad_file(
            path,
            f"uses adapter type {adapter_type!r}, which is unknown; SA3 Studio applies "
            f"{', '.join(SUPPORTED_ADAPTERS)}",
        )
    rank = raw.get("rank")
    if rank is None:  # infer it from the tensors, as the official loader does
        ranks = {
            t.shape[0]
            for k, t in tensors.items()
            if k.endswith((".lora_A", ".M_xs")) and t.dim() == 2
        }
        if len(ranks) != 1:
            raise _bad_file(path, "has no rank in its metadata and none can be inferred")
        rank = ranks.pop()
    if type(rank) is not int or rank <= 0:
        raise _bad_file(path, f"has an invalid rank {rank!r}")
    alpha = raw.get("alpha", rank)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise _bad_file(path, f"has an invalid alpha {alpha!r}")
    dropout = raw.get("dropout", 0.0) or 0.0
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise _bad_file(path, f"has an invalid dropout {dropout!r}")

    def names(key: str) -> tuple[str, ...] | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad_file(path, f"has a {key} list that is not a list of strings")
        return tuple(value)

    return LoraConfig(
        rank=rank,
        alpha=float(alpha),
        adapter_type=adapter_type,
        dropout=float(dropout),
        include=names("include"),
        exclude=names("exclude"),
    )


def _expand(pattern: str) -> list[str]:
    """``layers[0-2].x`` -> ``layers0.x``, ``layers1.x``, ``layers2.x`` (official filter syntax)."""
    pieces = re.split(r"\[(\d+)-(\d+)\]", pattern)
    literals, starts, ends = pieces[0::3], pieces[1::3], pieces[2::3]
    ranges = []
    for a, b in zip(starts, ends):
        lo, hi = int(a), int(b)
        step = 1 if hi >= lo else -1
        ranges.append([str(n) for n in range(lo, hi + step, step)])
    out = []
    for combo in product(*ranges):
        text = literals[0]
        for value, literal in zip(combo, literals[1:]):
            text += value + literal
        out.append(text)
    return out


def _matches_any(name: str, patterns: Sequence[str]) -> bool:
    return any(p in name for pattern in patterns for p in _expand(pattern.strip()))


_PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_LORA_PARAM_NAMES = ("lora_A", "lora_B", "M_xs", *_MAGNITUDES)


def _read_legacy_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The LoRA tensors and ``lora_config`` of a legacy ``.ckpt`` (``state_dict`` and
    ``lora_config`` entries), unpickled with torch's weights-only loader, which builds only
    tensors and plain containers and never runs code from the file."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise _bad_file(path, "does not exist") from None
    except Exception as exc:  # any unpickling failure means the same to the user
        raise _bad_file(
            path,
            "cannot be read as a plain legacy checkpoint (it is damaged, or holds Python "
            f"objects besides tensors: {str(exc).splitlines()[0][:200]}); convert it to "
            ".safetensors with the official LoRA tools",
        ) from None
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise _bad_file(path, "is a checkpoint without a state_dict entry")
    # A training checkpoint may carry other weights too; only LoRA parameters are read, as the
    # official loader's non-strict load would take only those that name LoRA parameters.
    tensors = {
        k: v.to(torch.float32)
        for k, v in state.items()
        if isinstance(k, str)
        and isinstance(v, torch.Tensor)
        and ".parametrizations." in k
        and k.rsplit(".", 1)[-1] in _LORA_PARAM_NAMES
    }
    config = blob.get("lora_config")
    if config is None or isinstance(config, str):
        return tensors, config
    if not isinstance(config, dict):
        raise _bad_file(path, "has a lora_config that is neither a mapping nor JSON text")
    return tensors, json.dumps(config)


def read_lora(path: str | Path) -> LoraFile:
    """Read and check a LoRA file: the official ``.safetensors`` format, or a legacy
    ``.ckpt`` holding ``state_dict`` and ``lora_config`` (read without running pickled code).

    Raises:
        WeightsError: not a valid safetensors file or plain checkpoint, an unknown adapter
            type (named), names that are not LoRA parameters, or tensors whose shapes disagree
            with each other or with the rank (all such problems listed at once).
    """
    p = Path(path)
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        tensors, config_text = _read_legacy_checkpoint(p)
    else:
        ckpt = Checkpoint(p)
        tensors = ckpt.read(dtype=torch.float32)
        config_text = ckpt.metadata.get("lora_config")
    config = _parse_config(p, config_text, tensors)
    allowed = _PARAMS[config.adapter_type]
    problems: list[str] = []
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    indices: set[str] = set()
    for key, t in tensors.items():
        m = _KEY.match(key)
        if m is None:
            problems.append(f"{key} is not a LoRA parameter name")
            continue
        if m["param"] not in allowed:
            problems.append(f"{key}: {m['param']} is not a {config.adapter_type} parameter")
            continue
        indices.add(m["index"])
        grouped.setdefault(m["target"], {})[m["param"]] = t
    if len(indices) > 1:
        problems.append(f"it holds several LoRAs (indices {', '.join(sorted(indices))})")
    layers: dict[str, LoraLayer] = {}
    for target, params in grouped.items():
        absent = [n for n in allowed if n not in params]
        if absent:
            problems.append(f"{target} lacks {', '.join(absent)}")
            continue
        a, b, m_xs = params.get("lora_A"), params.get("lora_B"), params.get("M_xs")
        mags: dict[str, torch.Tensor] = {}
        for name in _MAGNITUDES:
            mag = params.get(name)
            if mag is not None and mag.dim() == 2 and 1 in mag.shape:
                mag = mag.reshape(-1)  # saved 2-D by older versions; squeezed as they do
            if mag is not None:
                mags[name] = mag
        if (
            a is not None
            and b is not None
            and (
                a.dim() != 2
                or b.dim() != 2
                or a.shape[0] != config.rank
                or b.shape[1] != config.rank
            )
        ):
            problems.append(
                f"{target}: lora_A {list(a.shape)} and lora_B {list(b.shape)} do not have rank "
                f"{config.rank}"
            )
            continue
        if m_xs is not None and tuple(m_xs.shape) != (config.rank, config.rank):
            problems.append(
                f"{target}: M_xs has shape {list(m_xs.shape)}, not rank x rank "
                f"({config.rank} x {config.rank})"
            )
            continue
        flat = [f"{n} has shape {list(t.shape)}" for n, t in mags.items() if t.dim() != 1]
        if flat:
            problems.append(f"{target}: {', '.join(flat)}")
            continue
        layers[target] = LoraLayer(
            target,
            a.contiguous() if a is not None else None,
            b.contiguous() if b is not None else None,
            M_xs=m_xs.contiguous() if m_xs is not None else None,
            **mags,
        )
    if problems:
        raise _bad_file(p, f"is not usable: {_fmt(problems)}")
    if not layers:
        raise _bad_file(p, "holds no LoRA tensors")
    return LoraFile(path=p, config=config, layers=layers)


# --------------------------------------------------------------------------------------------
# Application
# --------------------------------------------------------------------------------------------


def svd_bases(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The -xs bases of a base weight: ``U`` ``(fan_out, rank)`` and ``V`` ``(fan_in, rank)``.

    The top ``rank`` singular vectors of the weight viewed as ``(fan_out, fan_in)``, from a
    float32 SVD on the CPU, with each ``U`` column (and its ``V`` column) sign-flipped so that
    the column's largest-magnitude entry is positive: the official convention, which makes the
    bases of a trained -xs LoRA reproducible.
    """
    w = weight.detach().reshape(weight.shape[0], -1).to("cpu", torch.float32)
    u, _, vh = torch.linalg.svd(w, full_matrices=False)
    columns = torch.arange(u.shape[1])
    signs = u[u.abs().argmax(dim=0), columns].sign()
    signs[signs == 0] = 1
    u = u * signs[None, :]
    vh = vh * signs[:, None]
    return u[:, :rank].contiguous(), vh[:rank, :].T.contiguous()


_SVD_CACHE = "_sa3_lora_svd"


def _layer_bases(
    module: nn.Linear | nn.Conv1d, rank: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`svd_bases` of the layer's base weight, remembered on the layer per rank."""
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = module.__dict__.setdefault(_SVD_CACHE, {})
    if rank not in cache:
        cache[rank] = svd_bases(module.weight, rank)
    u, v = cache[rank]
    return u.to(device), v.to(device)


class _Adapter:
    """One LoRA's tensors for one layer, kept on the layer's device (float32)."""

    __slots__ = ("entry", "filtered", "target", "tensors")

    def __init__(self, entry: _Entry, layer: LoraLayer, module: nn.Linear | nn.Conv1d) -> None:
        self.entry = entry
        self.target = layer.target
        self.filtered = False  # switched off by the entry's layer filter
        cfg = entry.lora.config
        names = ("lora_A", "lora_B", "M_xs", *_MAGNITUDES)
        tensors = {n: t for n in names if (t := getattr(layer, n)) is not None}
        device = module.weight.device
        if cfg.is_xs:
            tensors["U"], tensors["V"] = _layer_bases(module, cfg.rank, device)
        self.tensors = {n: t.to(device) for n, t in tensors.items()}

    def to(self, device: torch.device) -> None:
        if next(iter(self.tensors.values())).device != device:
            self.tensors = {n: t.to(device) for n, t in self.tensors.items()}

    def delta(self) -> torch.Tensor:
        """The low-rank update ``B @ A`` or ``U @ M_xs @ V^T``, ``(fan_out, fan_in)`` float32."""
        t = self.tensors
        if "M_xs" in t:
            return t["U"] @ t["M_xs"] @ t["V"].T
        return t["lora_B"] @ t["lora_A"]

    def apply(self, w: torch.Tensor) -> torch.Tensor:
        """This adapter's effective weight given the previous one ``w``."""
        k = self.entry.strength
        if k == 0.0 or not self.entry.active or self.filtered:
            return w
        w_dev = w.device
        self.to(w_dev)
        cfg = self.entry.lora.config
        delta = self.delta()
        family = cfg.family
        if family == "lora":
            return w + (cfg.scale * k * delta).view(w.shape).to(w.dtype)
        # DoRA and BoRA normalise the updated direction and scale it by learned magnitudes,
        # in the adapter's dtype (float32), as the official code does.
        v = w.reshape(w.shape[0], -1).to(torch.float32) + cfg.scale * k * delta
        t = self.tensors
        if family == "bora":
            rows = t["magnitude_r"][:, None] * (v / (v.norm(dim=1, keepdim=True) + 1e-12))
            out = rows / (rows.norm(dim=0, keepdim=True) + 1e-12) * t["magnitude_c"][None, :]
        else:
            dim = 1 if family == "dora-rows" else 0
            out = v / (v.norm(dim=dim, keepdim=True) + 1e-12) * t["magnitude"].unsqueeze(dim)
        return out.view(w.shape).to(w.dtype)


@dataclass(eq=False)
class _Entry:
    handle: int
    lora: LoraFile
    strength: float
    modules: list[nn.Linear | nn.Conv1d] = field(default_factory=list)
    adapters: list[_Adapter] = field(default_factory=list)
    interval: tuple[float, float] | None = None
    layer_filter: str = ""
    active: bool = True  # False while the sampler's time is outside ``interval``


@dataclass(frozen=True, slots=True)
class LoraEntry:
    """A LoRA currently applied (a snapshot for display).

    Attributes:
        handle: the id :meth:`LoraStack.add` returned.
        name: the file name without extension.
        path: the file.
        strength: its current strength.
        adapter_type: one of :data:`SUPPORTED_ADAPTERS`.
        layers: number of adapted layers.
        interval: the sampler times ``(lo, hi)`` it acts at; None = every step.
        layer_filter: comma-separated names of DiT layers it is kept off.
    """

    handle: int
    name: str
    path: Path
    strength: float
    adapter_type: str
    layers: int
    interval: tuple[float, float] | None = None
    layer_filter: str = ""


def _lora_forward(
    module: nn.Linear | nn.Conv1d, stack: list[_Adapter], x: torch.Tensor
) -> torch.Tensor:
    w: torch.Tensor = module.weight
    for adapter in stack:
        w = adapter.apply(w)
    if isinstance(module, nn.Conv1d):
        out: torch.Tensor = module._conv_forward(x, w, module.bias)
        return out
    return F.linear(x, w, module.bias)


class LoraStack:
    """LoRAs applied to a model, in order, with strengths that can change at any time.

    Args:
        roots: key prefix -> module; a LoRA tensor named ``PREFIX + path + ...`` adapts
            ``roots[PREFIX].get_submodule(path)``. For SA3: ``{"model.": dit,
            "conditioners.": conditioner}``.
    """

    def __init__(self, roots: Mapping[str, nn.Module]) -> None:
        # Longest prefix first, so nested prefixes resolve to the most specific root.
        self._roots = sorted(roots.items(), key=lambda kv: -len(kv[0]))
        self._entries: list[_Entry] = []
        self._next_handle = 0

    # ---------------------------------------------------------------- public

    @property
    def entries(self) -> tuple[LoraEntry, ...]:
        """The applied LoRAs in application order."""
        return tuple(
            LoraEntry(
                handle=e.handle,
                name=e.lora.name,
                path=e.lora.path,
                strength=e.strength,
                adapter_type=e.lora.config.adapter_type,
                layers=len(e.modules),
                interval=e.interval,
                layer_filter=e.layer_filter,
            )
            for e in self._entries
        )

    def add(self, lora: LoraFile | str | Path, strength: float = 1.0) -> int:
        """Apply a LoRA on top of those already applied.

        Args:
            lora: a file path or an already read :class:`LoraFile`.
            strength: multiplies the LoRA's update (0 = off, 1 = as trained).

        Returns:
            A handle for :meth:`set_strength` and :meth:`remove`.

        Raises:
            WeightsError: the file is unusable, or names layers the model does not have or
                whose shapes differ (all listed); the model is left unchanged.
        """
        lora_file = lora if isinstance(lora, LoraFile) else read_lora(lora)
        strength = self._check_strength(strength)
        targets = self._resolve(lora_file)
        entry = _Entry(self._next_handle, lora_file, strength)
        self._next_handle += 1
        if lora_file.config.is_xs:
            log.info("LoRA %s: computing the SVD bases of %d layers", lora_file.name, len(targets))
        adapters = [(module, _Adapter(entry, layer, module)) for module, layer in targets]
        for module, adapter in adapters:
            _attach(module).append(adapter)
            entry.adapters.append(adapter)
            entry.modules.append(module)
        self._entries.append(entry)
        log.info(
            "applied LoRA %s (%s, rank %d, %d layers) at strength %g",
            lora_file.name,
            lora_file.config.adapter_type,
            lora_file.config.rank,
            len(targets),
            strength,
        )
        return entry.handle

    def set_strength(self, handle: int | None, strength: float) -> None:
        """Set one LoRA's strength (``handle``), or every LoRA's (``None``)."""
        strength = self._check_strength(strength)
        for e in self._select(handle):
            e.strength = strength

    def set_schedule(
        self,
        handle: int,
        *,
        interval: tuple[float, float] | None = None,
        layer_filter: str = "",
    ) -> None:
        """Limit one LoRA to part of the sampling, as the official per-LoRA controls do.

        Args:
            handle: the LoRA.
            interval: ``(lo, hi)``: the LoRA acts on a DiT evaluation only when the flow time
                of the batch's first item lies in ``[lo, hi]`` (1 = pure noise, 0 = clean);
                None acts at every step. Takes effect through :meth:`at_time`, which the
                pipeline calls before each evaluation.
            layer_filter: comma-separated substrings (``[a-b]`` ranges expand, case is
                ignored) of DiT layer names such as ``transformer.layers.3.self_attn``; the
                LoRA's layers whose name contains one are switched off. Layers outside the
                DiT (the conditioner's) are never filtered, as in the official code.

        Raises:
            ValueError: an interval that is not two numbers with 0 <= lo <= hi <= 1.
        """
        (entry,) = self._select(handle)
        if interval is not None:
            lo, hi = (float(v) for v in interval)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi <= 1.0):
                raise ValueError(f"A LoRA interval needs 0 <= start <= end <= 1, not {interval!r}")
            interval = (lo, hi)
        patterns = [f.strip().lower() for f in layer_filter.split(",") if f.strip()]
        for adapter in entry.adapters:
            name = adapter.target
            dit = name.startswith(_DIT_ROOT)
            adapter.filtered = dit and _matches_any(name[len(_DIT_ROOT) :].lower(), patterns)
        entry.interval = interval
        entry.layer_filter = layer_filter.strip()
        entry.active = True

    @property
    def has_schedules(self) -> bool:
        """Whether any LoRA is limited to an interval of the sampling."""
        return any(e.interval is not None for e in self._entries)

    def at_time(self, t: float | None) -> bool:
        """Switch each scheduled LoRA on or off for an evaluation at flow time ``t`` (None:
        every LoRA on, as outside sampling). Returns whether anything changed, so callers
        that cache layer outputs across steps know to drop them."""
        changed = False
        for e in self._entries:
            active = t is None or e.interval is None or e.interval[0] <= t <= e.interval[1]
            changed |= active != e.active
            e.active = active
        return changed

    def remove(self, handle: int) -> None:
        """Take one LoRA off; the others keep their order."""
        (entry,) = self._select(handle)
        _take_off(entry)
        self._entries.remove(entry)

    def clear(self) -> None:
        """Take off every LoRA this stack applied (the model's base behaviour if it is the
        only stack on the model)."""
        for entry in self._entries:
            _take_off(entry)
        self._entries.clear()

    @staticmethod
    def effective_weight(module: nn.Module) -> torch.Tensor:
        """The weight ``module`` computes with now (its base weight if no LoRA targets it)."""
        w = module.weight
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"{type(module).__name__} has no weight tensor")
        for adapter in module.__dict__.get(_ADAPTERS, ()):
            w = adapter.apply(w)
        return w

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _check_strength(strength: float) -> float:
        value = float(strength)
        if not math.isfinite(value):
            raise ValueError(f"LoRA strength must be a finite number, not {strength!r}")
        return value

    def _select(self, handle: int | None) -> list[_Entry]:
        if handle is None:
            return list(self._entries)
        chosen = [e for e in self._entries if e.handle == handle]
        if not chosen:
            raise KeyError(f"no LoRA with handle {handle} is applied")
        return chosen

    def _resolve(self, lora: LoraFile) -> list[tuple[nn.Linear | nn.Conv1d, LoraLayer]]:
        cfg = lora.config
        out: list[tuple[nn.Linear | nn.Conv1d, LoraLayer]] = []
        problems: list[str] = []
        skipped = 0
        for target, layer in lora.layers.items():
            root = next(((p, m) for p, m in self._roots if target.startswith(p)), None)
            if root is None:
                prefixes = ", ".join(p for p, _ in self._roots)
                problems.append(f"{target} is under none of the model parts ({prefixes})")
                continue
            # The official loader skips layers its include/exclude filters leave out.
            if (cfg.include is not None and not _matches_any(target, cfg.include)) or (
                cfg.exclude and _matches_any(target, cfg.exclude)
            ):
                skipped += 1
                continue
            prefix, root_module = root
            try:
                module = root_module.get_submodule(target[len(prefix) :])
            except AttributeError:
                problems.append(f"{target} is not a layer of this model")
                continue
            if not isinstance(module, (nn.Linear, nn.Conv1d)):
                problems.append(f"{target} is a {type(module).__name__}, not a Linear or Conv1d")
                continue
            fan_out = module.weight.shape[0]
            fan_in = module.weight[0].numel()
            shapes = {
                "lora_A": (cfg.rank, fan_in),
                "lora_B": (fan_out, cfg.rank),
                "magnitude": (fan_out if cfg.family == "dora-rows" else fan_in,),
                "magnitude_r": (fan_out,),
                "magnitude_c": (fan_in,),
            }
            bad = [
                f"{name} {list(t.shape)} (the layer needs {list(shape)})"
                for name, shape in shapes.items()
                if (t := getattr(layer, name)) is not None and tuple(t.shape) != shape
            ]
            if cfg.is_xs and cfg.rank > min(fan_out, fan_in):
                bad.append(
                    f"rank {cfg.rank} is more than the {fan_out} x {fan_in} weight has "
                    "singular vectors"
                )
            if bad:
                problems.append(f"{target}: {', '.join(bad)}")
                continue
            out.append((module, layer))
        if problems:
            raise WeightsError(
                f"The LoRA {lora.path} does not fit this model ({len(problems)} "
                f"problem{'s' if len(problems) != 1 else ''}): {_fmt(problems)}. It was "
                "probably trained for another Stable Audio 3 model (small and medium differ)."
            )
        if skipped:
            log.info("LoRA %s: %d layers left out by its include/exclude", lora.name, skipped)
        if not out:
            raise WeightsError(
                f"The LoRA {lora.path} adapts no layer of this model (its include/exclude "
                "filters leave none)."
            )
        return out


_DIT_ROOT = "model."
"""Key prefix of the DiT's layers in a LoRA file; layer filters match the names after it."""

# The adapters on a layer live on the layer itself (not in a LoraStack), so several stacks, or
# LoRAs applied one by one with apply_lora_file, compose in the order they were added.
_ADAPTERS = "_sa3_lora_adapters"


def _attach(module: nn.Linear | nn.Conv1d) -> list[_Adapter]:
    adapters: list[_Adapter] | None = module.__dict__.get(_ADAPTERS)
    if adapters is None:
        adapters = []
        setattr(module, _ADAPTERS, adapters)
        layer_adapters = adapters

        def forward(x: torch.Tensor) -> torch.Tensor:
            return _lora_forward(module, layer_adapters, x)

        # An instance attribute shadows the class's forward; deleting it restores it.
        module.forward = forward  # type: ignore[method-assign,assignment]
    return adapters


def _take_off(entry: _Entry) -> None:
    for module in entry.modules:
        adapters: list[_Adapter] = module.__dict__.get(_ADAPTERS, [])
        adapters[:] = [a for a in adapters if a.entry is not entry]
        if not adapters:
            module.__dict__.pop(_ADAPTERS, None)
            module.__dict__.pop("forward", None)


class AppliedLora:
    """One LoRA applied with :func:`apply_lora_file`: change its strength or take it off."""

    def __init__(self, stack: LoraStack, handle: int) -> None:
        self._stack = stack
        self._handle = handle

    @property
    def entry(self) -> LoraEntry:
        """Name, path, strength, adapter type and layer count."""
        (entry,) = (e for e in self._stack.entries if e.handle == self._handle)
        return entry

    def set_strength(self, strength: float) -> None:
        """0 = off (exactly the base weights), 1 = as trained."""
        self._stack.set_strength(self._handle, strength)

    def remove(self) -> None:
        """Take this LoRA off; LoRAs applied before or after it keep working."""
        self._stack.remove(self._handle)


def apply_lora_file(
    path: str | Path | LoraFile,
    *,
    dit: nn.Module,
    conditioner: nn.Module | None = None,
    strength: float = 1.0,
) -> AppliedLora:
    """Apply one LoRA file to a loaded SA3 model, after any LoRAs already applied.

    Args:
        path: the LoRA file (or an already read :class:`LoraFile`).
        dit: the DiT, loaded from the ``model.model.`` checkpoint prefix (LoRA keys ``model.*``).
        conditioner: the conditioner loaded from ``conditioner.``, whose ``conditioners``
            child holds the per-id conditioners (LoRA keys ``conditioners.*``); a module whose
            own children are the conditioners works too.
        strength: initial strength.

    Raises:
        WeightsError: as :meth:`LoraStack.add`; the model is left unchanged.
    """
    roots: dict[str, nn.Module] = {"model.": dit}
    if conditioner is not None:
        inner = getattr(conditioner, "conditioners", None)
        roots["conditioners."] = inner if isinstance(inner, nn.Module) else conditioner
    stack = LoraStack(roots)
    return AppliedLora(stack, stack.add(path, strength))
