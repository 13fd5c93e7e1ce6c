"""Load on an SA3 Studio server: N concurrent clients times M jobs each, on localhost.

Starts ``sa3-studio serve`` (a local Ray Serve) with 1 and then 2 replicas of a model, runs the
same load against each, and prints per run: jobs completed and lost (must be 0), p50 and p95
latency (submit to result, as a client sees it) and throughput. Every loop is bounded: each job
has the client's timeout, the whole run a deadline. Traffic goes to 127.0.0.1 only::

    python bench/serve_load.py [--clients 4] [--jobs 5] [--seconds 2] [--steps 8]
                               [--replicas 1 2] [--models DIR]

Without ``--models`` it makes the tiny 44.1 kHz synthetic model (seconds per job, so the figures
show the server's overhead and scaling, not the model's speed).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sa3_studio.engine.api import GenerationRequest
from sa3_studio.remote.client import RemoteError
from sa3_studio.remote.pipeline import RemotePipeline

START_TIMEOUT_S = 300.0


@dataclass
class RunResult:
    replicas: int
    completed: int
    lost: int
    latencies: list[float]
    wall_s: float
    errors: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    models: Path, replicas: int, cpus: float, root: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    token_file = root / f"token-{replicas}"
    log = root / f"serve-{replicas}.log"
    cmd = [
        sys.executable, "-m", "sa3_studio", "serve", "--models", str(models),
        "--replicas", str(replicas), "--cpus-per-replica", str(cpus), "--host", "127.0.0.1",
        "--port", str(port), "--token-file", str(token_file), "--device", "cpu",
        "--dtype", "float32", "--object-store-mb", "200",
    ]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        else:
            raise SystemExit(f"serve exited:\n{log.read_text()[-3000:]}")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("SA3 Studio server ready at "):
                return proc, line.split()[5], token_file.read_text().strip()
    _stop(proc)
    raise SystemExit(f"serve did not start in {START_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _load(url: str, token: str, args: argparse.Namespace, replicas: int) -> RunResult:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        pipe = RemotePipeline.connect(url, token, timeout=60)
        for j in range(args.jobs):
            request = GenerationRequest(
                prompt="load test", duration=args.seconds, steps=args.steps, seed=1000 * i + j
            )
            t0 = time.perf_counter()
            try:
                pipe.generate(request)
            except RemoteError as exc:
                with lock:
                    errors.append(f"{exc.code}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    # One job first so that both sides are warm (prompt encoder, connections).
    RemotePipeline.connect(url, token).generate(
        GenerationRequest(prompt="warm", duration=args.seconds, steps=args.steps, seed=1)
    )
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.deadline)
    wall = time.perf_counter() - t0
    total = args.clients * args.jobs
    return RunResult(replicas, len(latencies), total - len(latencies), latencies, wall, errors)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q) - 1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=5, help="jobs per client")
    parser.add_argument("--seconds", type=float, default=2.0, help="audio seconds per job")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus-per-replica", type=float, default=1.0)
    parser.add_argument("--models", type=Path, default=None, help="folder of model folders")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds per run at most")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sa3-serve-load-") as tmp:
        root = Path(tmp)
        models = args.models
        if models is None:
            from sa3_studio.engine.synthetic import make_random_model

            models = root / "models"
            make_random_model(models / "tiny44k", preset="tiny44k")
        print(f"machine: {_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print(
            f"load: {args.clients} clients x {args.jobs} jobs, {args.seconds:g} s of audio, "
            f"{args.steps} steps each; {args.cpus_per_replica:g} CPU per replica"
        )
        for replicas in args.replicas:
            proc, url, token = _start(models, replicas, args.cpus_per_replica, root)
            try:
                r = _load(url, token, args, replicas)
            finally:
                _stop(proc)
            print(
                f"replicas={r.replicas}: completed {r.completed}, lost {r.lost}, "
                f"p50 {_pct(r.latencies, 50):.3f} s, p95 {_pct(r.latencies, 95):.3f} s, "
                f"throughput {r.completed / r.wall_s:.2f} jobs/s ({r.wall_s:.1f} s wall)"
            )
            for e in r.errors[:5]:
                print(f"  error: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
