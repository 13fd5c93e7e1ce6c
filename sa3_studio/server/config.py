"""What a server serves and how (plain records; no Ray).

The ``serve`` command builds a :class:`ServerSettings` and hands it to the deployments. The
token itself never leaves the process that read it: the ingress gets only its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sa3_studio.remote.wire import ServerModel

LORA_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What an upload may be; anything beyond is answered with a 4xx before it is decoded.

    Attributes:
        max_bytes: largest body accepted.
        max_seconds: longest audio accepted.
        max_channels: most channels accepted.
        min_rate: lowest sample rate accepted.
        max_rate: highest sample rate accepted.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_seconds: float = 400.0
    max_channels: int = 2
    min_rate: int = 8000
    max_rate: int = 192000


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One model the server deploys.

    Attributes:
        info: what clients are told about it.
        path: its folder on the server (never sent to clients).
        loras: LoRA name -> file on the server (never sent to clients).
    """

    info: ServerModel
    path: str
    loras: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the ingress and the engine replicas need.

    Attributes:
        models: the models served, by name.
        token_sha256: hex SHA-256 of the bearer token ("" = no token, loopback only).
        limits: upload limits.
        device: "auto", "cpu", "cuda", ...: where replicas load their model.
        dtype: "auto", "float32", "bfloat16" or "float16".
        source_store_mb: memory the ingress keeps uploaded clips in.
        source_store_count: most clips the ingress keeps.
        latent_cache_count: encoded sources each replica keeps.
        scrub_roots: server folders whose paths never appear in error messages.
    """

    models: Mapping[str, ServedModel]
    token_sha256: str = ""
    limits: UploadLimits = field(default_factory=UploadLimits)
    device: str = "auto"
    dtype: str = "auto"
    source_store_mb: int = 1024
    source_store_count: int = 64
    latent_cache_count: int = 16
    scrub_roots: tuple[str, ...] = ()

    def token_ok(self, presented: str) -> bool:
        """Constant-time check of a presented bearer token."""
        if not self.token_sha256:
            return True
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()
        return hmac.compare_digest(digest.encode(), self.token_sha256.encode())


def token_digest(token: str) -> str:
    """The hex SHA-256 the ingress compares presented tokens against."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_loras(folder: str | Path | None, model_name: str) -> dict[str, str]:
    """LoRA files offered for ``model_name``: files in ``folder`` (for every model) and in
    ``folder/model_name`` (for that model only; they win on a name clash)."""
    found: dict[str, str] = {}
    if folder is None:
        return found
    root = Path(folder).expanduser()
    for where in (root, root / model_name):
        if not where.is_dir():
            continue
        for p in sorted(where.iterdir()):
            if p.is_file() and p.suffix.lower() in LORA_SUFFIXES:
                found[p.stem] = str(p.resolve())
    return found
