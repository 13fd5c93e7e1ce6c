"""LoRAs on a loaded pipeline: make them exactly what a generation asks for (model thread)."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sa3_studio.engine.api import PipelineLike
from sa3_studio.errors import GenerationError


def apply_loras(pipeline: PipelineLike, wanted: Sequence[tuple[str, float]]) -> None:
    """Make the model's LoRAs exactly ``wanted`` (file, strength), in that order.

    Runs on the model thread before a generation. The same files in the same order only get
    their strengths set; otherwise every LoRA is taken off and the wanted ones are applied
    (order matters: LoRAs other than plain ones do not commute). If a file cannot be applied,
    none is left applied and the engine's error explains why.

    Raises:
        GenerationError: LoRAs are wanted but the model cannot apply them.
        WeightsError: a file is unusable or made for another model.
    """
    current = getattr(pipeline, "loras", None)
    if current is None:
        if wanted:
            raise GenerationError("This model cannot apply LoRAs; remove them to generate.")
        return
    loras: Any = pipeline
    have = [(str(entry.path), entry.handle) for entry in current]
    if [path for path, _ in have] == [str(Path(path)) for path, _ in wanted]:
        for (_, handle), (_, strength) in zip(have, wanted, strict=True):
            loras.set_lora_strength(handle, strength)
        return
    for _, handle in have:
        loras.remove_lora(handle)
    try:
        for path, strength in wanted:
            loras.add_lora(path, strength)
    except BaseException:
        for entry in getattr(pipeline, "loras", ()):
            loras.remove_lora(entry.handle)
        raise


def loras_text(loras: Sequence[tuple[str, float]]) -> str:
    """How a take's LoRAs are shown: ``"drums 0.8, keys 0.5"`` (file names without suffix)."""
    return ", ".join(f"{Path(path).stem} {strength:g}" for path, strength in loras)


def lora_file_hash(path: str) -> str:
    """A short hash of a LoRA file's bytes ("" when it cannot be read); cached per file version."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return _hash_file(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()[:12]
