"""Where the CPU time goes, in arithmetic: the matrix products each side computes, the rate
this CPU reaches on exactly those shapes, and the fastest each call could possibly be.

For each call (our DiT step at the 30 s length, 30 s text-to-audio, a 5 s inpaint inside
30 s; the official code's text-to-audio and inpaint with ``--official-src``) it

1. runs the call once under a dispatch mode that logs every matrix product (``mm``,
   ``addmm``, ``bmm``: shape and dtype) and every SDPA call;
2. times every distinct product shape alone, in its dtype, on this CPU (best of
   ``--shape-repeat``): the *matrix-product floor* of the call is the sum over its products of
   their isolated times, and the *linear rate at the call's shapes* is its matrix FLOPs over
   that floor;
3. times the call itself (best of ``--repeat``, after the logged run warmed it up).

``floor / wall`` is the share of the call's time the matrix products alone would take at the
rate they reach in isolation: for the DiT step it is "the step's rate as a fraction of the
linear rate at the DiT's shapes". The floor is a practical lower bound (up to run-to-run
noise) on any implementation that computes the same products in the same dtype on this CPU,
so ``official wall / our floor`` bounds the speed-up we can reach without changing the
arithmetic (fewer FLOPs or a faster dtype), whatever else is made free.

Variants as in ``bench/official_compare.py`` (``ours-auto``, ``ours-fp32``,
``official-fp32``, ``official-bf16``, ``official-bf16-dit``); that script's loaders are used,
with the same synthetic small-music folder, prompt, seeds and region.

Example::

    python bench/arithmetic.py --official-src /tmp/sa3-official --variants ours-auto,official-fp32
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as engine_bench  # sibling scripts: the DiT step's inputs,
import official_compare  # and the two sides' loaders

# (kind, batch, M, K, N, dtype name)
Shape = tuple[str, int, int, int, int, str]


@dataclass
class CallLog:
    """What one call computed: matrix products by shape and attention FLOPs."""

    products: Counter[Shape] = field(default_factory=Counter)
    attention_flop: float = 0.0
    attention_calls: int = 0

    @property
    def matmul_flop(self) -> float:
        return float(sum(2 * b * m * k * n * c for (_, b, m, k, n, _), c in self.products.items()))


def _logging_mode(log: CallLog) -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    sdpa = {
        getattr(aten, name).default
        for name in (
            "scaled_dot_product_attention",
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention",
        )
        if hasattr(aten, name)
    }

    def dname(t: Any) -> str:
        return str(t.dtype).removeprefix("torch.")

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is aten.linear.default:
                a, w = args[0], args[1]
                bias = args[2] if len(args) > 2 else kwargs and kwargs.get("bias")
                rows = a.numel() // a.shape[-1]
                kind = "addmm" if bias is not None else "mm"
                log.products[(kind, 1, rows, a.shape[-1], w.shape[0], dname(a))] += 1
            elif func is aten.matmul.default:
                a, b = args[0], args[1]
                if b.dim() == 2:
                    rows = a.numel() // a.shape[-1]
                    log.products[("mm", 1, rows, a.shape[-1], b.shape[1], dname(a))] += 1
                else:
                    lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]).numel()
                    key = ("bmm", lead, a.shape[-2], a.shape[-1], b.shape[-1], dname(a))
                    log.products[key] += 1
            elif func is aten.mm.default:
                a, b = args[0], args[1]
                log.products[("mm", 1, a.shape[0], a.shape[1], b.shape[1], dname(a))] += 1
            elif func is aten.addmm.default:
                a, b = args[1], args[2]
                log.products[("addmm", 1, a.shape[0], a.shape[1], b.shape[1], dname(a))] += 1
            elif func is aten.bmm.default:
                a, b = args[0], args[1]
                key = ("bmm", a.shape[0], a.shape[1], a.shape[2], b.shape[2], dname(a))
                log.products[key] += 1
            elif func in sdpa:
                q, k = args[0], args[1]
                lead = 1
                for d in q.shape[:-2]:
                    lead *= int(d)
                log.attention_flop += 4.0 * lead * q.shape[-2] * k.shape[-2] * q.shape[-1]
                log.attention_calls += 1
            return func(*args, **(kwargs or {}))

    return _Mode()


def _shape_time(shape: Shape, repeat: int, cache: dict[Shape, float]) -> float:
    """Best time of one product of ``shape`` alone (weights laid out as ``nn.Linear`` keeps
    them: the right factor is a transposed contiguous matrix)."""
    import torch

    if shape in cache:
        return cache[shape]
    kind, b, m, k, n, dtype_name = shape
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    if kind == "bmm":
        a = torch.randn(b, m, k, generator=gen).to(dtype)
        w = torch.randn(b, n, k, generator=gen).to(dtype).transpose(1, 2)

        def run() -> Any:
            return torch.bmm(a, w)

    else:
        a = torch.randn(m, k, generator=gen).to(dtype)
        w = torch.randn(n, k, generator=gen).to(dtype).t()
        bias = torch.randn(n, generator=gen).to(dtype)

        def run() -> Any:
            return torch.addmm(bias, a, w) if kind == "addmm" else torch.mm(a, w)

    run()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    cache[shape] = best
    return best


@dataclass
class Row:
    side: str
    call: str
    dtypes: str
    wall_s: float
    log: CallLog
    floor_s: float

    @property
    def rate(self) -> float:
        return self.log.matmul_flop / self.floor_s / 1e9 if self.floor_s else 0.0


def _our_step(variant: str, folder: Path) -> tuple[Callable[[], Any], str]:
    from sa3_studio.engine.pipeline import StepCache, load_pipeline

    pipe = load_pipeline(
        folder, device="cpu", dtype="auto" if variant == "ours-auto" else "float32"
    )
    x, t, cross, glob, local, pad = engine_bench.dit_step_inputs(pipe)
    cache = StepCache(pipe.dit)
    cache.__enter__()  # warm from the second step of a generation on, as in bench/engine.py
    pipe.dit(x, t, cross, glob, local, pad)
    dtypes = f"DiT {str(pipe.dtype).removeprefix('torch.')}"
    return (lambda: pipe.dit(x, t, cross, glob, local, pad)), dtypes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", type=Path, help="folder holding stable_audio_3")
    parser.add_argument("--model", type=Path, default=official_compare.DEFAULT_MODEL)
    parser.add_argument("--variants", default="ours-auto,official-fp32")
    parser.add_argument("--calls", default="step,t2a,inpaint", help="step, t2a, inpaint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each call")
    parser.add_argument("--shape-repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from sa3_studio.engine import devices

    torch.set_num_threads(args.threads)
    folder = args.model.expanduser()
    if not (folder / "model.safetensors").is_file():
        print(f"no model at {folder}: run bench/official_compare.py or bench/engine.py first")
        return 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    calls = [c.strip() for c in args.calls.split(",") if c.strip()]
    if any(v.startswith("official") for v in variants):
        src = args.official_src.expanduser() if args.official_src else None
        if src is None or not (src / "stable_audio_3" / "__init__.py").is_file():
            parser.error("official variants need --official-src with a stable_audio_3 package")
        official_compare._install_torchaudio_standin()
        sys.path.insert(0, str(src))

    flags = sorted(devices.cpu_flags() & {"amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma"})
    print(f"# CPU: {devices.cpu_model()}; flags: {' '.join(flags)}")
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}")
    print(f"# command: python {' '.join(sys.argv)}", flush=True)

    sr = official_compare.json.loads((folder / "model_config.json").read_text("utf-8"))[
        "sample_rate"
    ]
    source = (0.1 * np.random.default_rng(0).standard_normal((2, 30 * sr))).astype(np.float32)
    shape_times: dict[Shape, float] = {}
    rows: list[Row] = []
    with torch.inference_mode():
        for variant in variants:
            official = variant.startswith("official")
            loader = official_compare._load_official if official else official_compare._load_ours
            side = loader(variant, folder, source)
            jobs: list[tuple[str, Callable[[], Any], str]] = []
            if "step" in calls and not official:
                step, step_dtypes = _our_step(variant, folder)
                jobs.append(("DiT step (30 s)", step, step_dtypes))
            if "t2a" in calls:
                jobs.append(("30 s text-to-audio", side.t2a, side.dtypes))
            if "inpaint" in calls and side.inpaint is not None:
                what = "5 s inpaint" + ("" if official else " (repeated take)")
                jobs.append((what, side.inpaint, side.dtypes))
            for name, fn, dtypes in jobs:
                log = CallLog()
                with _logging_mode(log):
                    fn()
                wall = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    fn()
                    wall = min(wall, time.perf_counter() - t0)
                floor = sum(
                    c * _shape_time(s, args.shape_repeat, shape_times)
                    for s, c in log.products.items()
                )
                row = Row(variant, name, dtypes, wall, log, floor)
                rows.append(row)
                print(
                    f"{variant:16s} {name:30s} wall {wall:7.2f} s  matmul "
                    f"{log.matmul_flop / 1e9:7.0f} GFLOP  floor {floor:6.2f} s "
                    f"({row.rate:5.0f} GFLOP/s)  floor/wall {floor / wall:5.1%}",
                    flush=True,
                )
            del side

    print()
    print(
        "| side | call | dtypes | wall s | matmul GFLOP | attention GFLOP | linear rate at these "
        "shapes, GFLOP/s | matmul floor s | floor / wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.side} | {r.call} | {r.dtypes} | {r.wall_s:.2f} | {r.log.matmul_flop / 1e9:.0f} "
            f"| {r.log.attention_flop / 1e9:.1f} | {r.rate:.0f} | {r.floor_s:.2f} "
            f"| {r.floor_s / r.wall_s:.0%} |"
        )
    ours = [r for r in rows if not r.side.startswith("official")]
    theirs = [r for r in rows if r.side.startswith("official")]
    if ours and theirs:
        print()
        for prefix, target in (("30 s text-to-audio", 1.5), ("5 s inpaint", 3.0)):
            mine = [r for r in ours if r.call.startswith(prefix)]
            other = [r for r in theirs if r.call.startswith(prefix)]
            if not mine or not other:
                continue
            a = mine[0]
            b = min(other, key=lambda r: r.wall_s)
            print(
                f"{prefix}: {b.side} {b.wall_s:.2f} s / {a.side} {a.wall_s:.2f} s = "
                f"{b.wall_s / a.wall_s:.2f}x now (target {target}x); at most "
                f"{b.wall_s / a.floor_s:.2f}x if everything but ours' matrix products were free; "
                f"{b.floor_s / a.floor_s:.2f}x at equal efficiency "
                f"(matmul {b.log.matmul_flop / 1e9:.0f} vs {a.log.matmul_flop / 1e9:.0f} GFLOP)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
