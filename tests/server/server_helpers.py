"""Helpers of the server tests: start and stop ``sa3-studio serve`` (CPU, the tiny 44.1 kHz
model, two replicas) in its own process, and kill one of its replicas.

The server runs in its own process, exactly as a user starts it, so this test process never
imports Ray (no Ray threads to leak here) and all traffic goes to 127.0.0.1. Ray is kept small:
two CPUs, a 100 MB object store, half a CPU per replica.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """Poll the server's output (bounded) until it says it is ready; returns (url, ray)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    url = ray_address = ""
    while time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            pass
        else:
            raise RuntimeError(f"sa3-studio serve exited with {proc.returncode}:\n{_tail(log)}")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Ray cluster at "):
                ray_address = line.removeprefix("Ray cluster at ").strip()
            if line.startswith("SA3 Studio server ready at "):
                url = line.split()[5]
        if url and ray_address:
            return url, ray_address
    raise RuntimeError(f"sa3-studio serve did not start in {START_TIMEOUT_S} s:\n{_tail(log)}")


def _tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def start_server(
    root: Path, model_dir: Path, extra: tuple[str, ...] = (), port: int | None = None
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    """Start ``sa3-studio serve`` on the models next to ``model_dir``; wait until ready."""
    token_file = root / "config" / "server-token"
    port = port or free_port()
    log = root / "serve.log"
    env = dict(os.environ)
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"})
    cmd = [
        sys.executable, "-m", "sa3_studio", "serve",
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
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url, ray_address = _wait_ready(proc, log)
    except BaseException:
        stop_server(proc)
        raise
    token = token_file.read_text().strip()
    return proc, LiveServer(url, "127.0.0.1", port, token_file, token, ray_address, model_dir, log)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl+C the server (it shuts Serve and its Ray down); bounded, then killed."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


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
