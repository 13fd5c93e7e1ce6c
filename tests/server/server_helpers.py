"""Helpers of the server tests: start and stop ``sa3-studio serve`` (CPU, the tiny 44.1 kHz
model, two replicas) in its own process, and kill one of its replicas.

The server runs in its own process, exactly as a user starts it, so this test process never
imports Ray (no Ray threads to leak here) and all traffic goes to 127.0.0.1. Ray is kept small:
two CPUs, a 100 MB object store, half a CPU per replica.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sa3_studio.server.process import free_port, start_serve, stop_serve

START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 90.0
MAX_UPLOAD_MB = 2.0


@dataclass(frozen=True)
class LiveServer:
    """A running server: where it listens, its token file and its Ray cluster."""

    url: str
    host: str
    port: int
    token_file: Path
    token: str
    ray_address: str
    model_dir: Path
    log: Path


def start_server(
    root: Path, model_dir: Path, extra: tuple[str, ...] = (), port: int | None = None
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    """Start ``sa3-studio serve`` on the models next to ``model_dir``; wait until ready."""
    token_file = root / "config" / "server-token"
    port = port or free_port()
    args = [
        "--models", str(model_dir.parent),
        "--replicas", "2",
        "--cpus-per-replica", "0.5",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--token-file", str(token_file),
        "--num-cpus", "2",
        "--object-store-mb", "100",
        "--max-upload-mb", str(MAX_UPLOAD_MB),
        "--device", "cpu",
        "--dtype", "float32",
        *extra,
    ]  # fmt: skip
    served = start_serve(args, root / "serve.log", timeout_s=START_TIMEOUT_S)
    token = token_file.read_text().strip()
    live = LiveServer(
        served.url, "127.0.0.1", port, token_file, token, served.ray_address, model_dir, served.log
    )
    return served.proc, live


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl+C the server (it shuts Serve and its Ray down); bounded, then killed."""
    stop_serve(proc, STOP_TIMEOUT_S)


class ReplicaKiller:
    """A helper process connected to the server's Ray cluster that ``ray.kill``s the replicas
    it is told (this test process never imports Ray). Connecting takes seconds, so it is
    started before the job whose replica it kills."""

    _CODE = (
        "import ray, sys\n"
        "ray.init(address=sys.argv[1], namespace='serve', log_to_driver=False)\n"
        "print('ready', flush=True)\n"
        "while (name := sys.stdin.readline().strip()):\n"
        "    ray.kill(ray.get_actor(name, namespace='serve'), no_restart=False)\n"
        "    print('killed', flush=True)\n"
        "ray.shutdown()\n"
    )

    def __init__(self, ray_address: str) -> None:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self._CODE, ray_address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the process exits if it cannot connect
        if line.strip() != "ready":
            self.close()
            raise RuntimeError("the replica killer could not connect to the Ray cluster")

    def kill(self, actor_name: str) -> None:
        """Ask for ``ray.kill`` of one replica (returns at once)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(actor_name + "\n")
        self.proc.stdin.flush()

    def close(self) -> list[str]:
        """Stop the helper; returns what it reported."""
        out, _ = self.proc.communicate(timeout=120)
        return out.split()


def json_lines(raw: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def write_style_lora(path: Path) -> Path:
    """A small LoRA in the official format for the tiny model (one feed-forward layer)."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    base = "model.transformer.layers.0.ff.ff.2.parametrizations.weight.0."
    tensors = {
        base + "lora_A": (torch.randn(2, 512, generator=gen) * 0.3).half(),
        base + "lora_B": (torch.randn(128, 2, generator=gen) * 0.3).half(),
    }
    save_file(tensors, str(path), metadata={"lora_config": json.dumps({"rank": 2, "alpha": 4})})
    return path
