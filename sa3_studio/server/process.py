"""``sa3-studio serve`` as a child process, for scripts, benchmarks and tests: start it, wait
until it says it is ready, stop it. Imports no Ray (the child does)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READY_PREFIX = "SA3 Studio server ready at "
"""The line ``serve`` prints once every deployment is up, followed by its address."""

RAY_PREFIX = "Ray cluster at "
"""The line ``serve`` prints with the address of the Ray cluster it runs on."""


@dataclass(frozen=True)
class ServeProcess:
    """A running ``sa3-studio serve``: the process, its address, its Ray cluster and its log."""

    proc: subprocess.Popen[bytes]
    url: str
    ray_address: str
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(log: Path, n: int = 60) -> str:
    """The last ``n`` lines of a server log."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def start_serve(args: Sequence[str], log: Path, *, timeout_s: float) -> ServeProcess:
    """Run ``sa3-studio serve ARGS`` in its own process session, its output going to ``log``,
    and wait (polling, at most ``timeout_s``) until it prints that it is ready.

    Raises:
        RuntimeError: the server exited or did not get ready in time (with its log's end);
            it is stopped first.
    """
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "sa3_studio", "serve", *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url, ray_address = _wait_ready(proc, log, timeout_s)
    except BaseException:
        stop_serve(proc)
        raise
    return ServeProcess(proc, url, ray_address, log)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout_s
    url = ray_address = ""
    while time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            pass
        else:
            raise RuntimeError(f"sa3-studio serve exited with {proc.returncode}:\n{log_tail(log)}")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(RAY_PREFIX):
                ray_address = line.removeprefix(RAY_PREFIX).strip()
            if line.startswith(READY_PREFIX):
                url = line.removeprefix(READY_PREFIX).split()[0]
        if url and ray_address:
            return url, ray_address
    raise RuntimeError(f"sa3-studio serve did not start in {timeout_s:g} s:\n{log_tail(log)}")


def stop_serve(proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    """Ctrl+C the server (it shuts Serve and its Ray down); bounded, then its whole process
    group is killed."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
