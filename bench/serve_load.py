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
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sa3_studio.engine.api import GenerationRequest
from sa3_studio.remote.client import RemoteError
from sa3_studio.remote.pipeline import RemotePipeline
from sa3_studio.server.process import free_port, start_serve, stop_serve

START_TIMEOUT_S = 300.0


@dataclass
class RunResult:
    replicas: int
    completed: int
    lost: int
    latencies: list[float]
    wall_s: float
    errors: list[str]


def _start(
    models: Path, replicas: int, cpus: float, root: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    token_file = root / f"token-{replicas}"
    args = [
        "--models", str(models), "--replicas", str(replicas), "--cpus-per-replica", str(cpus),
        "--host", "127.0.0.1", "--port", str(free_port()), "--token-file", str(token_file),
        "--device", "cpu", "--dtype", "float32", "--object-store-mb", "200",
    ]  # fmt: skip
    try:
        served = start_serve(args, root / f"serve-{replicas}.log", timeout_s=START_TIMEOUT_S)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    return served.proc, served.url, token_file.read_text().strip()


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
                stop_serve(proc)
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
