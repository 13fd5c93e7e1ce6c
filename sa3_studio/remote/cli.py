"""The command line's ``--server URL``: connecting, LoRA names and the server's model list.

``sa3_studio.cli`` registers ``--server`` and ``--token-file`` itself (its ``--help`` loads
nothing heavy); ``sa3_studio.commands`` calls these when they are given.

``generate``, ``inpaint``, ``continue``, ``vary`` and ``loop`` take ``--server URL`` (token from
``--token-file`` or ``$SA3_STUDIO_TOKEN``) and then run on that server through a
:class:`~sa3_studio.remote.pipeline.RemotePipeline`; ``models list --server URL`` lists the
server's models. Audio files are read and written here; only what the model needs travels.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sa3_studio.engine.api import ModelInfo
from sa3_studio.errors import Sa3Error
from sa3_studio.remote.client import TOKEN_ENV, RemoteClient, read_token
from sa3_studio.remote.pipeline import RemotePipeline

JOB_TIMEOUT_S = 60.0


def _token(args: argparse.Namespace) -> str:
    token = read_token(getattr(args, "token_file", None))
    if not token:
        raise Sa3Error(
            f"--server needs the server's token: pass --token-file FILE (the file "
            f"`sa3-studio serve` printed) or set {TOKEN_ENV}."
        )
    return token


def connect(args: argparse.Namespace) -> RemotePipeline:
    """A pipeline for ``--model`` (default: the server's first model) on ``--server``."""
    model = getattr(args, "model", None)
    return RemotePipeline.connect(args.server, _token(args), model, timeout=JOB_TIMEOUT_S)


def model_info(pipe: RemotePipeline) -> ModelInfo:
    """The served model as the commands describe models."""
    m = pipe.model
    return ModelInfo(
        name=m.name,
        path=f"{pipe.client.url} ({m.name})",
        family=m.family,
        objective="rectified_flow" if m.is_base else "rf_denoiser",
        sample_rate=m.sample_rate,
        max_seconds=m.max_seconds,
        complete=True,
        source="server",
    )


def lora_choices(specs: list[str]) -> list[tuple[Path, float]]:
    """``NAME[:STRENGTH]`` of the server's LoRAs (names, not files on this machine)."""
    out: list[tuple[Path, float]] = []
    for spec in specs:
        name, strength = spec, 1.0
        head, sep, tail = spec.rpartition(":")
        if sep and head:
            try:
                strength = float(tail)
            except ValueError:
                pass
            else:
                name = head
        if not math.isfinite(strength):
            raise Sa3Error(f"The LoRA strength in {spec!r} is not a number; use NAME:0.8.")
        out.append((Path(name), strength))
    return out


def model_lines(args: argparse.Namespace) -> list[str]:
    """``models list --server``: one line per model the server offers."""
    client = RemoteClient(args.server, _token(args), timeout=JOB_TIMEOUT_S)
    models = client.models()
    lines = [f"Server: {client.url}"]
    if not models:
        lines.append("The server offers no model.")
    for m in models:
        loras = f", LoRAs: {', '.join(m.loras)}" if m.loras else ""
        lines.append(
            f"{m.name:<20} {m.kind}, {m.family or '?'}, up to {m.max_seconds:.0f} s, "
            f"{m.device}, {m.replicas} replica(s), weights {m.weights_hash}{loras}"
        )
    return lines
