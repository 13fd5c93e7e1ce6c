"""Finding, checking and downloading Stable Audio 3 models on disk.

A model folder holds ``model_config.json`` and ``model.safetensors``; a full SA3 model also holds
its text encoder folder (``t5gemma-b-b-ul2/`` with ``config.json``, ``model.safetensors``,
``tokenizer.json`` and ``tokenizer_config.json``, or the folder its config's ``model_path``
names). Standalone SAME autoencoders need only the first two files.

Models are searched, in this order, in:

1. the folder from the settings (``settings_dir``);
2. every folder in ``SA3_STUDIO_MODELS`` (an ``os.pathsep``-separated list);
3. the per-user data folder, ``$XDG_DATA_HOME/sa3-studio/models`` (see :func:`user_models_dir`);
4. the ``models`` folder beside the program (a packaged app's folder, or the source checkout),
   when it exists or the app is packaged;
5. ``./models`` of the current directory, only when it exists;
6. the Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``), laid out as ``models--ORG--NAME/snapshots/REV/...``.

The editor and the command line both search exactly these places (:func:`search_locations`).

A search folder may itself be a model folder, or hold model folders one level down.

Nothing here touches the network except :func:`download`, which runs only when called. This
module does not import torch (the GUI lists models without loading the engine); it also holds
the torch-free safetensors header check that :mod:`sa3_studio.engine.weights` builds on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import sys
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sa3_studio.engine.api import ModelInfo
from sa3_studio.engine.config import (
    CONFIG_FILE,
    AutoencoderModelConfig,
    ModelConfig,
    load_model_config,
)
from sa3_studio.errors import ConfigError, Sa3Error, WeightsError

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "OFFICIAL_MODELS",
    "TEXT_ENCODER_DIR",
    "TEXT_ENCODER_FILES",
    "WEIGHTS_FILE",
    "OfficialModel",
    "ProgressCallback",
    "SafetensorsHeader",
    "SearchLocation",
    "TensorEntry",
    "discover",
    "download",
    "guess_model_name",
    "hf_cache_dir",
    "inspect_folder",
    "read_safetensors_header",
    "resolve",
    "resolve_info",
    "search_locations",
    "verify",
]

WEIGHTS_FILE = "model.safetensors"
TEXT_ENCODER_DIR = "t5gemma-b-b-ul2"
TEXT_ENCODER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

ProgressCallback = Callable[[int, int], None]
"""Download progress: (bytes done, bytes expected); called from download threads."""

# --------------------------------------------------------------------------------------------
# The official models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfficialModel:
    """One released model (reference §1.1).

    Attributes:
        name: the official id ("small-music", "same-l", ...).
        repo_id: its Hugging Face repository.
        kind: "sa3" (text-to-audio model) or "same" (standalone autoencoder).
        family: "small" or "medium".
        objective: "rf_denoiser", "rectified_flow" or "autoencoder".
        gated: the repository asks users to accept a licence before downloading.
        max_seconds: longest audio it generates (0 for autoencoders).
    """

    name: str
    repo_id: str
    kind: Literal["sa3", "same"]
    family: str
    objective: str
    gated: bool
    max_seconds: float

    @property
    def files(self) -> tuple[str, ...]:
        """Files (relative to the model folder) that inference needs."""
        if self.kind == "same":
            return (CONFIG_FILE, WEIGHTS_FILE)
        return (
            CONFIG_FILE,
            WEIGHTS_FILE,
            *(f"{TEXT_ENCODER_DIR}/{f}" for f in TEXT_ENCODER_FILES),
        )

    @property
    def url(self) -> str:
        """The model's page on the Hugging Face hub."""
        return f"https://huggingface.co/{self.repo_id}"


_SMALL_SECONDS = 5292032 / 44100
_MEDIUM_SECONDS = 16777216 / 44100

OFFICIAL_MODELS: Mapping[str, OfficialModel] = types.MappingProxyType(
    {
        m.name: m
        for m in (
            OfficialModel(
                "small-music",
                "stabilityai/stable-audio-3-small-music",
                "sa3",
                "small",
                "rf_denoiser",
                True,
                _SMALL_SECONDS,
            ),
            OfficialModel(
                "small-music-base",
                "stabilityai/stable-audio-3-small-music-base",
                "sa3",
                "small",
                "rectified_flow",
                False,
                _SMALL_SECONDS,
            ),
            OfficialModel(
                "small-sfx",
                "stabilityai/stable-audio-3-small-sfx",
                "sa3",
                "small",
                "rf_denoiser",
                True,
                _SMALL_SECONDS,
            ),
            OfficialModel(
                "small-sfx-base",
                "stabilityai/stable-audio-3-small-sfx-base",
                "sa3",
                "small",
                "rectified_flow",
                False,
                _SMALL_SECONDS,
            ),
            OfficialModel(
                "medium",
                "stabilityai/stable-audio-3-medium",
                "sa3",
                "medium",
                "rf_denoiser",
                True,
                _MEDIUM_SECONDS,
            ),
            OfficialModel(
                "medium-base",
                "stabilityai/stable-audio-3-medium-base",
                "sa3",
                "medium",
                "rectified_flow",
                False,
                _MEDIUM_SECONDS,
            ),
            OfficialModel(
                "same-s", "stabilityai/SAME-S", "same", "small", "autoencoder", False, 0.0
            ),
            OfficialModel(
                "same-l", "stabilityai/SAME-L", "same", "medium", "autoencoder", False, 0.0
            ),
        )
    }
)
"""The released models by official id (read-only)."""


def _official_by_repo(repo_id: str) -> OfficialModel | None:
    for m in OFFICIAL_MODELS.values():
        if m.repo_id.lower() == repo_id.lower():
            return m
    return None


def _normalize_name(name: str) -> str:
    """Official id for a name, repo id or alias ("small_music", "SAME-S"); else the name."""
    text = name.strip()
    official = _official_by_repo(text)
    if official is not None:
        return official.name
    key = text.lower().replace("_", "-")
    key = key.removeprefix("stable-audio-3-")
    return key if key in OFFICIAL_MODELS else text


# --------------------------------------------------------------------------------------------
# safetensors header (torch-free)
# --------------------------------------------------------------------------------------------

_DTYPE_SIZES: Mapping[str, int] = types.MappingProxyType(
    {
        "F64": 8,
        "F32": 4,
        "F16": 2,
        "BF16": 2,
        "I64": 8,
        "I32": 4,
        "I16": 2,
        "I8": 1,
        "U64": 8,
        "U32": 4,
        "U16": 2,
        "U8": 1,
        "BOOL": 1,
        "F8_E4M3": 1,
        "F8_E5M2": 1,
    }
)
_MAX_HEADER = 100_000_000  # the safetensors format's own limit


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor in a safetensors file: dtype name, shape and byte range in the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.begin


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A validated safetensors header.

    Attributes:
        path: the file.
        file_size: its size in bytes.
        data_offset: where the data section starts (8 + header length).
        tensors: name -> entry, in file order.
        metadata: the ``__metadata__`` strings (empty if none).
        fingerprint: short hash of the header and file size; identifies the weights without
            reading them (used for provenance in takes).
    """

    path: Path
    file_size: int
    data_offset: int
    tensors: Mapping[str, TensorEntry]
    metadata: Mapping[str, str]
    fingerprint: str

    def keys(self, prefix: str = "") -> list[str]:
        """Tensor names that start with ``prefix``, in file order."""
        return [k for k in self.tensors if k.startswith(prefix)]


def _redownload_advice(path: Path, model_name: str | None) -> str:
    name = model_name or guess_model_name(path)
    if name in OFFICIAL_MODELS:
        return f"download it again with `sa3-studio models download {name}`"
    return "download it again"


def read_safetensors_header(
    path: str | Path, *, model_name: str | None = None
) -> SafetensorsHeader:
    """Read and validate a safetensors file's header without reading its tensors.

    Checks the header length, that the header is a JSON table of known dtypes with shapes that
    match their byte ranges, that the ranges tile the data section without gaps or overlaps,
    and that the file holds exactly that much data.

    Args:
        path: the ``.safetensors`` file.
        model_name: official id used in the "download again" advice (guessed from the path if
            not given).

    Raises:
        WeightsError: the file is missing, unreadable, truncated, too long, or not a valid
            safetensors file; the message says how to fix it.
    """
    p = Path(path)
    advice = _redownload_advice(p, model_name)
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise WeightsError(
                    f"{p} is truncated ({size} bytes, too short to be a safetensors file): "
                    f"{advice}."
                )
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len == 0 or header_len > _MAX_HEADER:
                raise WeightsError(
                    f"{p} is not a valid safetensors file (its header length is {header_len}): "
                    f"the file is damaged or not model weights; {advice}."
                )
            if 8 + header_len > size:
                raise WeightsError(
                    f"{p} is truncated ({size} of at least {8 + header_len} bytes): {advice}."
                )
            header_bytes = fh.read(header_len)
    except FileNotFoundError:
        raise WeightsError(f"{p} is missing: {advice}.") from None
    except IsADirectoryError:
        raise WeightsError(f"{p} is a folder, not a weights file: {advice}.") from None
    except OSError as exc:
        raise WeightsError(f"{p} cannot be read ({exc.strerror}).") from None

    def damaged(why: str) -> WeightsError:
        return WeightsError(f"{p} is not a valid safetensors file ({why}): {advice}.")

    try:
        table = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise damaged("its header is not readable JSON") from None
    if not isinstance(table, dict):
        raise damaged("its header is not a table")
    raw_meta = table.pop("__metadata__", None) or {}
    if not isinstance(raw_meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_meta.items()
    ):
        raise damaged("its metadata is not a table of strings")
    tensors: dict[str, TensorEntry] = {}
    for name, info in table.items():
        entry = _tensor_entry(info)
        if entry is None:
            raise damaged(f"the entry for tensor {name!r} is malformed")
        tensors[name] = entry
    # Data ranges must tile [0, total) exactly, as the format requires.
    total = 0
    for entry in sorted(tensors.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != total:
            raise damaged("its tensors overlap or leave gaps")
        total = entry.end
    expected = 8 + header_len + total
    if size < expected:
        raise WeightsError(f"{p} is truncated ({size} of {expected} bytes): {advice}.")
    if size > expected:
        raise damaged(f"it has {size - expected} unexpected bytes after the tensors")
    digest = hashlib.sha256()
    digest.update(prefix)
    digest.update(header_bytes)
    digest.update(str(size).encode())
    return SafetensorsHeader(
        path=p,
        file_size=size,
        data_offset=8 + header_len,
        tensors=types.MappingProxyType(tensors),
        metadata=types.MappingProxyType(dict(raw_meta)),
        fingerprint=digest.hexdigest()[:16],
    )


def _tensor_entry(info: Any) -> TensorEntry | None:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        return None
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in _DTYPE_SIZES or not isinstance(shape, list) or not isinstance(offsets, list):
        return None
    if not all(type(d) is int and d >= 0 for d in shape):
        return None
    if len(offsets) != 2 or not all(type(o) is int for o in offsets):
        return None
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != math.prod(shape) * _DTYPE_SIZES[dtype]:
        return None
    return TensorEntry(dtype=dtype, shape=tuple(shape), begin=begin, end=end)


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchLocation:
    """A place where models are looked for.

    Attributes:
        path: the folder.
        source: how it was configured: "settings", "SA3_STUDIO_MODELS", "user folder",
            "app folder", "./models", "hf-cache".
    """

    path: Path
    source: str

    @property
    def is_hf_cache(self) -> bool:
        return self.source == "hf-cache"


def hf_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it.

    ``HF_HUB_CACHE`` (or the older ``HUGGINGFACE_HUB_CACHE``), else ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
    """
    env = os.environ if env is None else env
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache.expanduser() / "huggingface" / "hub"


def user_models_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user models folder: ``$XDG_DATA_HOME/sa3-studio/models``.

    Without ``XDG_DATA_HOME``: ``%LOCALAPPDATA%`` on Windows, ``~/Library/Application Support``
    on macOS, else ``~/.local/share``.
    """
    env = os.environ if env is None else env
    if env.get("XDG_DATA_HOME"):
        base = Path(env["XDG_DATA_HOME"]).expanduser()
    elif sys.platform == "win32" and env.get("LOCALAPPDATA"):
        base = Path(env["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path.home() / ".local" / "share"
    return base / "sa3-studio" / "models"


def app_models_dir() -> Path:
    """The ``models`` folder beside the program: the packaged app's folder, or the source
    checkout's ``models/`` (next to the ``sa3_studio`` package)."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).parent / "models"
    return Path(__file__).resolve().parents[2] / "models"


def search_locations(
    settings_dir: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    app_dir: str | Path | None = None,
) -> list[SearchLocation]:
    """The folders searched for models, in priority order (duplicates removed).

    Args:
        settings_dir: the models folder chosen in the settings, if any.
        env: environment variables (default ``os.environ``).
        cwd: the folder ``./models`` is relative to (default the current directory); it is
            searched only when it exists, so where the program was started matters little.
        app_dir: the models folder beside the program (default :func:`app_models_dir`); listed
            when it exists or the app is packaged.
    """
    env = os.environ if env is None else env
    base = Path.cwd() if cwd is None else Path(cwd)
    found: list[SearchLocation] = []
    if settings_dir:
        found.append(SearchLocation(Path(settings_dir).expanduser(), "settings"))
    for part in env.get("SA3_STUDIO_MODELS", "").split(os.pathsep):
        if part.strip():
            found.append(SearchLocation(Path(part.strip()).expanduser(), "SA3_STUDIO_MODELS"))
    found.append(SearchLocation(user_models_dir(env), "user folder"))
    beside = app_models_dir() if app_dir is None else Path(app_dir)
    if getattr(sys, "frozen", False) or beside.is_dir():
        found.append(SearchLocation(beside, "app folder"))
    if (base / "models").is_dir():
        found.append(SearchLocation(base / "models", "./models"))
    found.append(SearchLocation(hf_cache_dir(env), "hf-cache"))
    unique: list[SearchLocation] = []
    seen: set[Path] = set()
    for loc in found:
        key = _real(loc.path)
        if key not in seen:
            seen.add(key)
            unique.append(loc)
    return unique


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _file_ok(path: Path) -> bool:
    # is_file() follows symlinks, so a hub-cache link whose blob is gone counts as missing.
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _required_files(
    folder: Path, config: ModelConfig | AutoencoderModelConfig | None, name: str
) -> list[Path]:
    """Absolute paths of the files a model folder needs."""
    if config is None:
        official = OFFICIAL_MODELS.get(name)
        rel = official.files if official else (CONFIG_FILE, WEIGHTS_FILE)
        return [folder / r for r in rel]
    files = [folder / CONFIG_FILE, folder / WEIGHTS_FILE]
    if isinstance(config, ModelConfig):
        files += _text_encoder_files(config.text_encoder_dir(folder))
    return files


WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


def _text_encoder_files(encoder_dir: Path) -> list[Path]:
    """The files a text-encoder folder needs: its config, tokenizer files and weights, one
    ``model.safetensors`` or, when the weights are sharded, the index and every shard it names.
    """
    weights = [encoder_dir / WEIGHTS_FILE]
    index = encoder_dir / WEIGHTS_INDEX_FILE
    if _file_ok(index):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            shards = sorted({str(v) for v in weight_map.values()})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            shards = []
        if shards:  # an index that names nothing leaves model.safetensors needed
            weights = [index, *(encoder_dir / Path(s).name for s in shards)]
    out: list[Path] = []
    for f in TEXT_ENCODER_FILES:
        out += weights if f == WEIGHTS_FILE else [encoder_dir / f]
    return out


def _display(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def inspect_folder(folder: str | Path, *, source: str = "", name: str | None = None) -> ModelInfo:
    """Describe one model folder: what it is and which needed files are missing.

    Never raises for a broken folder: an unreadable config or missing files make the result
    incomplete, with the problem listed in ``missing``.

    Args:
        folder: the model folder (holding ``model_config.json``).
        source: where it was found (copied into the result).
        name: the model's name; default: the official id if the folder is recognised, else the
            folder name.
    """
    return _inspect(Path(folder), source, name)[0]


def _inspect(folder: Path, source: str, name: str | None) -> tuple[ModelInfo, list[str], list[str]]:
    """(info, missing files, other problems) for a model folder."""
    name = name or guess_model_name(folder) or folder.name
    official = OFFICIAL_MODELS.get(name)
    config: ModelConfig | AutoencoderModelConfig | None = None
    problems: list[str] = []
    if _file_ok(folder / CONFIG_FILE):
        try:
            config = load_model_config(folder / CONFIG_FILE)
        except ConfigError as exc:
            problems.append(f"{CONFIG_FILE} is unusable: {exc}")
    try:
        required = _required_files(folder, config, name)
    except ConfigError as exc:  # a config that names no text encoder location
        required = [folder / CONFIG_FILE, folder / WEIGHTS_FILE]
        problems.append(str(exc))
    missing = [_display(p, folder) for p in required if not _file_ok(p)]
    size = sum(_size(p) for p in required if _file_ok(p))
    if config is not None:
        family, objective = config.family, config.objective
        sample_rate, max_seconds = config.sample_rate, config.max_seconds
    elif official is not None:
        family, objective = official.family, official.objective
        sample_rate, max_seconds = 44100, official.max_seconds
    else:
        family, objective, sample_rate, max_seconds = "", "", 0, 0.0
    info = ModelInfo(
        name=name,
        path=str(folder),
        family=family,
        objective=objective,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        complete=not missing and not problems,
        missing=tuple(missing + problems),
        size_bytes=size,
        source=source,
    )
    return info, missing, problems


def guess_model_name(path: str | Path) -> str | None:
    """The official id a path belongs to, if one of its folders names it.

    Recognises ``.../small-music/...`` and hub-cache folders
    ``.../models--stabilityai--stable-audio-3-small-music/...``.
    """
    for part in reversed(Path(path).parts):
        if part.startswith("models--"):
            official = _official_by_repo(part.removeprefix("models--").replace("--", "/", 1))
            if official is not None:
                return official.name
        elif part in OFFICIAL_MODELS:
            return part
    return None


def _hf_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot a hub-cache repo folder points at: ``refs/main``, else the newest."""
    snapshots = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    try:
        if ref.is_file():
            target = snapshots / ref.read_text(encoding="utf-8").strip()
            if target.is_dir():
                return target
        candidates = [p for p in snapshots.iterdir() if p.is_dir()]
    except OSError:
        return None
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)


def _models_in_hf_cache(loc: SearchLocation) -> Iterable[ModelInfo]:
    try:
        repos = sorted(p for p in loc.path.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo_dir in repos:
        repo_id = repo_dir.name.removeprefix("models--").replace("--", "/", 1)
        official = _official_by_repo(repo_id)
        snapshot = _hf_snapshot(repo_dir)
        if snapshot is None:
            if official is not None:  # a download that never finished its first file
                yield inspect_folder(repo_dir, source=loc.source, name=official.name)
            continue
        if official is None and not (snapshot / CONFIG_FILE).exists():
            continue  # some other model on the hub, not ours
        yield inspect_folder(
            snapshot, source=loc.source, name=official.name if official else repo_id
        )


def _models_in_folder(loc: SearchLocation) -> Iterable[ModelInfo]:
    root = loc.path
    if (root / CONFIG_FILE).exists():
        yield inspect_folder(root, source=loc.source)
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        if child.name in OFFICIAL_MODELS or _looks_like_model(child):
            yield inspect_folder(child, source=loc.source)


def _looks_like_model(folder: Path) -> bool:
    """Whether a folder inside a search folder is meant as a model: its ``model_config.json``
    is a JSON object naming a ``model_type`` (test vectors, text-encoder folders and other
    parts have configs of their own and are not listed as broken models)."""
    try:
        data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "model_type" in data


def discover(
    settings_dir: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> list[ModelInfo]:
    """Every model found in the search locations, in priority order.

    The same model may appear more than once (for example in ``./models`` and in the hub
    cache); the first complete one wins in :func:`resolve`.
    """
    found: list[ModelInfo] = []
    seen: set[Path] = set()
    for loc in search_locations(settings_dir, env=env, cwd=cwd):
        infos = _models_in_hf_cache(loc) if loc.is_hf_cache else _models_in_folder(loc)
        for info in infos:
            key = _real(Path(info.path))
            if key not in seen:
                seen.add(key)
                found.append(info)
    return found


def resolve_info(
    name_or_path: str | Path,
    settings_dir: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ModelInfo:
    """Find a complete model by official id, repo id, discovered name, or folder path.

    Raises:
        Sa3Error: nothing found (the message lists the folders searched and how to download),
            or the model found is incomplete (the message lists the missing files).
    """
    text = str(name_or_path).strip()
    if not text:
        raise Sa3Error("No model was given: name a model (e.g. small-music) or a model folder.")
    name = _normalize_name(text)
    path = Path(text).expanduser()
    if not path.is_absolute() and cwd is not None:
        path = Path(cwd) / path
    looks_like_path = name not in OFFICIAL_MODELS and (
        isinstance(name_or_path, Path) or os.sep in text or text.startswith(("~", "."))
    )
    if path.exists():
        folder = path.parent if path.is_file() else path
        if not (folder / CONFIG_FILE).exists():
            raise Sa3Error(
                f"{folder} is not a model folder (it has no {CONFIG_FILE}); choose the folder "
                "that holds model_config.json and model.safetensors."
            )
        info = inspect_folder(folder, source="path")
        _raise_if_incomplete(info)
        return info
    if looks_like_path:
        raise Sa3Error(f"There is no model folder at {path}; check the path.")

    locations = search_locations(settings_dir, env=env, cwd=cwd)
    candidates = [i for i in discover(settings_dir, env=env, cwd=cwd) if i.name == name]
    for info in candidates:
        if info.complete:
            return info
    if candidates:
        _raise_if_incomplete(candidates[0])
    searched = "; ".join(f"{loc.path} ({loc.source})" for loc in locations)
    if name in OFFICIAL_MODELS:
        hint = f"download it with `sa3-studio models download {name}`"
    else:
        hint = "official models: " + ", ".join(OFFICIAL_MODELS)
    raise Sa3Error(f"Model {text!r} was not found. Searched: {searched}. To get it, {hint}.")


def resolve(
    name_or_path: str | Path,
    settings_dir: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Path:
    """Like :func:`resolve_info`, but returns only the model folder."""
    return Path(resolve_info(name_or_path, settings_dir, env=env, cwd=cwd).path)


def _raise_if_incomplete(info: ModelInfo) -> None:
    if info.complete:
        return
    fix = (
        f"download it again with `sa3-studio models download {info.name}`"
        if info.name in OFFICIAL_MODELS
        else "copy the missing files into the folder"
    )
    raise Sa3Error(
        f"Model {info.name!r} in {info.path} is incomplete; missing: "
        f"{', '.join(info.missing)}. To fix it, {fix}."
    )


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

_SA3_PREFIXES = ("model.model.", "pretransform.model.", "conditioner.conditioners.")
_SAME_PREFIXES = ("encoder.", "decoder.", "bottleneck.")


def verify(model: ModelInfo | str | Path) -> tuple[str, ...]:
    """Check a model folder thoroughly without loading its weights.

    Checks that every needed file is present, that the config parses strictly, that every
    safetensors header is valid and its file complete, that the checkpoint holds the expected
    groups of tensors and nothing else, and that the text-encoder files are JSON.

    Args:
        model: a :class:`ModelInfo` or a model folder.

    Returns:
        Problems as sentences; empty when the model is fine.
    """
    folder = Path(model.path if isinstance(model, ModelInfo) else model)
    name = model.name if isinstance(model, ModelInfo) else None
    info, missing, problems = _inspect(folder, "", name)
    problems = [f"{m} is missing" for m in missing] + problems
    try:
        config = load_model_config(folder)
    except ConfigError:
        return tuple(problems)  # already listed by inspect_folder
    weights = folder / WEIGHTS_FILE
    if _file_ok(weights):
        try:
            header = read_safetensors_header(weights, model_name=info.name)
        except WeightsError as exc:
            problems.append(str(exc))
        else:
            problems += _check_groups(header, config)
    if isinstance(config, ModelConfig):
        encoder_dir = config.text_encoder_dir(folder)
        enc_weights = encoder_dir / WEIGHTS_FILE
        if _file_ok(enc_weights):
            try:
                enc = read_safetensors_header(enc_weights, model_name=info.name)
            except WeightsError as exc:
                problems.append(str(exc))
            else:
                if not any("encoder." in k for k in enc.tensors):
                    problems.append(f"{enc_weights} does not hold a T5Gemma encoder")
        for fname in ("config.json", "tokenizer_config.json", "tokenizer.json"):
            p = encoder_dir / fname
            if _file_ok(p) and not _looks_like_json_object(p):
                problems.append(f"{p} is not a JSON file; download the model again")
    return tuple(problems)


def ignored_config_fields(model: ModelInfo | str | Path) -> tuple[str, ...]:
    """Fields of a model's ``model_config.json`` that this version does not read and ignores
    (dotted paths); empty when there are none or the config is unusable (``verify`` says why).
    """
    folder = Path(model.path if isinstance(model, ModelInfo) else model)
    try:
        return load_model_config(folder).ignored_fields
    except ConfigError:
        return ()


def _check_groups(
    header: SafetensorsHeader, config: ModelConfig | AutoencoderModelConfig
) -> list[str]:
    prefixes = _SA3_PREFIXES if isinstance(config, ModelConfig) else _SAME_PREFIXES
    out = []
    for prefix in prefixes:
        if not header.keys(prefix):
            out.append(f"{header.path} has no `{prefix}*` tensors; it does not match its config")
    stray = [k for k in header.tensors if not k.startswith(prefixes)]
    if stray:
        out.append(
            f"{header.path} has {len(stray)} tensors outside the expected groups "
            f"(e.g. {', '.join(stray[:5])})"
        )
    return out


def _looks_like_json_object(path: Path) -> bool:
    # tokenizer.json can be tens of MB: look at its first byte, parse only the small files.
    try:
        if path.stat().st_size > 1_000_000:
            with path.open("rb") as fh:
                return fh.read(64).lstrip().startswith(b"{")
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


# --------------------------------------------------------------------------------------------
# Download (explicit, network)
# --------------------------------------------------------------------------------------------

Downloader = Callable[..., Any]
"""Signature of ``huggingface_hub.snapshot_download`` (injected in tests)."""

Lister = Callable[..., Sequence[str]]
"""Signature of ``huggingface_hub.list_repo_files`` (injected in tests)."""

_FOREIGN_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".tflite")
"""Weight formats the engine never reads (it loads safetensors only)."""


def needed_repo_files(official: OfficialModel, repo_files: Sequence[str]) -> tuple[str, ...]:
    """The files of an official repository that inference needs, from its file listing.

    The model's config and weights, and every file directly in the text-encoder folder
    (sharded weights with their index, every tokenizer file) except weights in formats the
    engine does not read.

    Raises:
        Sa3Error: the listing lacks a file the model cannot run without (the repository
            changed).
    """
    if official.kind == "same":
        return (CONFIG_FILE, WEIGHTS_FILE)
    prefix = TEXT_ENCODER_DIR + "/"
    encoder = sorted(
        f
        for f in repo_files
        if f.startswith(prefix)
        and "/" not in f[len(prefix) :]
        and not f.lower().endswith(_FOREIGN_WEIGHTS)
    )
    names = {f[len(prefix) :] for f in encoder}
    lacking = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if f not in repo_files]
    if "config.json" not in names:
        lacking.append(prefix + "config.json")
    if WEIGHTS_FILE not in names and WEIGHTS_INDEX_FILE not in names:
        lacking.append(prefix + WEIGHTS_FILE)
    if not names & {"tokenizer.json", "tokenizer.model", "spiece.model"}:
        lacking.append(prefix + "tokenizer.json")
    if lacking:
        raise Sa3Error(
            f"The repository {official.url} does not hold {', '.join(lacking)}, which "
            f"{official.name} needs; it may have changed. Update SA3 Studio, or download the "
            "files by hand into a model folder (models/README.md)."
        )
    return (CONFIG_FILE, WEIGHTS_FILE, *encoder)


def download(
    name: str,
    dest_dir: str | Path | None = None,
    *,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    downloader: Downloader | None = None,
    lister: Lister | None = None,
) -> ModelInfo:
    """Download an official model's needed files from the Hugging Face hub.

    Only the files inference needs are fetched (``allow_patterns``), as listed from the
    repository (:func:`needed_repo_files`: sharded text-encoder weights and every tokenizer
    file included). huggingface_hub keeps partial files, so running it again after an
    interruption resumes.

    Args:
        name: official id ("small-music", ...) or its repo id.
        dest_dir: download into ``dest_dir/NAME``; ``None`` uses the Hugging Face cache
            (where :func:`discover` finds it too).
        progress: called with (bytes done, bytes expected) from download threads.
        token: a Hugging Face token; ``None`` uses ``HF_TOKEN`` or the stored login.
        downloader: replaces ``huggingface_hub.snapshot_download`` (tests).
        lister: replaces ``huggingface_hub.list_repo_files`` (tests).

    Returns:
        The downloaded model, complete.

    Raises:
        Sa3Error: unknown name, gated model without access, network or disk problem, or the
            download finished without all needed files. The message says what to do.
    """
    key = _normalize_name(name)
    official = OFFICIAL_MODELS.get(key)
    if official is None:
        raise Sa3Error(
            f"{name!r} is not an official Stable Audio 3 model; choose one of: "
            f"{', '.join(OFFICIAL_MODELS)}."
        )
    if downloader is None:
        from huggingface_hub import snapshot_download

        downloader = snapshot_download
    files: Sequence[str] = official.files
    if official.kind == "sa3":
        if lister is None:
            from huggingface_hub import list_repo_files

            lister = list_repo_files
        try:
            listing = list(lister(repo_id=official.repo_id, token=token))
        except Exception as exc:
            mapped = _map_download_error(exc, official)
            if mapped is None:
                raise
            raise mapped from exc
        files = needed_repo_files(official, listing)
    kwargs: dict[str, Any] = {
        "repo_id": official.repo_id,
        "allow_patterns": list(files),
        "token": token,
    }
    if dest_dir is not None:
        kwargs["local_dir"] = str(Path(dest_dir).expanduser() / official.name)
    if progress is not None:
        kwargs["tqdm_class"] = _progress_bar_class(progress)
    log.info("downloading %s from %s", official.name, official.url)
    try:
        folder = downloader(**kwargs)
    except Exception as exc:
        mapped = _map_download_error(exc, official)
        if mapped is None:
            raise
        raise mapped from exc
    info = inspect_folder(Path(folder), source="download", name=official.name)
    if not info.complete:
        raise Sa3Error(
            f"The download of {official.name} finished but these files are missing: "
            f"{', '.join(info.missing)}. Run the download again; if it keeps happening, the "
            f"repository {official.url} may have changed."
        )
    return info


def _gated_message(official: OfficialModel) -> str:
    return (
        f"The model {official.name} is gated: accept its licence at {official.url} and log in "
        "with `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN, then download again."
    )


def _map_download_error(exc: BaseException, official: OfficialModel) -> Sa3Error | None:
    """A user-facing error for a failed download, or None to let a bug propagate."""
    from huggingface_hub import errors as hf_errors

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf_errors.GatedRepoError) or status in (401, 403):
        return Sa3Error(_gated_message(official))
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        # The hub answers 401 "not found" to anonymous requests for gated repositories.
        if official.gated:
            return Sa3Error(_gated_message(official))
        return Sa3Error(
            f"The repository {official.repo_id} was not found on the Hugging Face hub; "
            "check your connection and that the model still exists."
        )
    if isinstance(exc, hf_errors.OfflineModeIsEnabled) or (
        isinstance(exc, hf_errors.LocalEntryNotFoundError) and _offline_env()
    ):
        return Sa3Error(
            f"Cannot download {official.name}: downloads are disabled because HF_HUB_OFFLINE "
            "is set. Unset it and try again."
        )
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        return Sa3Error(
            f"Cannot reach huggingface.co to download {official.name}; check your internet "
            "connection and try again (the download resumes where it stopped)."
        )
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return Sa3Error(
            f"The download of {official.name} failed ({exc}); try again later "
            "(it resumes where it stopped)."
        )
    if isinstance(exc, OSError):
        if getattr(exc, "errno", None) == 28:  # ENOSPC
            return Sa3Error(
                f"The disk is full while downloading {official.name}; free some space and "
                "try again (the download resumes where it stopped)."
            )
        return Sa3Error(
            f"The download of {official.name} failed ({exc}); check the connection and the "
            "destination folder, then try again (it resumes where it stopped)."
        )
    return None


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _progress_bar_class(progress: ProgressCallback) -> type:
    """A silent tqdm class that reports huggingface_hub's byte counts to ``progress``.

    huggingface_hub creates several bars from this class: one counting files, and byte bars
    that aggregate every file ("Downloading bytes" for network transfer, a second one for bytes
    written). The callback follows the bytes-written bar (or the only byte bar there is).
    """
    from tqdm.std import tqdm

    lock = threading.Lock()

    class _Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0  # no tqdm monitor thread: nothing is displayed anyway

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._sa3_unit = kwargs.get("unit", "it")
            self._sa3_desc = str(kwargs.get("desc") or "")
            self._sa3_done = int(kwargs.get("initial") or 0)
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def _sa3_reports(self) -> bool:
            return self._sa3_unit == "B" and not self._sa3_desc.startswith("Downloading bytes")

        def update(self, n: float | None = 1) -> bool | None:
            if self._sa3_reports():
                with lock:
                    self._sa3_done += int(n or 0)
                    done, total = self._sa3_done, int(self.total or 0)
                progress(done, max(total, done))
            result: bool | None = super().update(n)
            return result

    return _Bar
