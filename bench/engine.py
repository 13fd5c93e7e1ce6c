"""Engine speed with small-music- and medium-sized random weights (synthetic model folders).

Prints, per preset, device and dtype: seconds per DiT step, end-to-end seconds of
text-to-audio for several durations, a 5 s inpaint inside 30 s (first take, then a repeated
take that reuses the encoded source and decodes only the frames the splice needs), SAME
encode and decode of 30 s, load time and peak RAM (ru_maxrss of a fresh process per
configuration). Random weights cost exactly what real ones cost.

The full run is slow on a small CPU; run it in parts::

    python bench/engine.py --only dit-step
    python bench/engine.py --only t2a --durations 10,30 --dtype bfloat16
    python bench/engine.py --only inpaint,codec --preset small --repeat 3
    python bench/engine.py --preset medium --only dit-step --dtype bfloat16
    python bench/engine.py --preset medium --only long-decode --dtype bfloat16 --repeat 1

Synthetic models are written once into ``--models`` (default ``~/.cache/sa3-studio/bench``):
small needs 2.3 GB of disk, medium 9.2 GB. The text encoder is a random T5Gemma encoder with
the real encoder's sizes, so prompt encoding costs what it does with the real one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PARTS = ("load", "dit-step", "t2a", "inpaint", "codec", "long-decode")
DEFAULT_MODELS = Path("~/.cache/sa3-studio/bench").expanduser()


# --------------------------------------------------------------------------------------------
# Worker: one preset, device and dtype in a fresh process
# --------------------------------------------------------------------------------------------


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs and that run's value; its process CPU seconds go to
    ``_best.cpu`` (on a shared machine, CPU time is the steadier figure)."""
    best, value, cpu = float("inf"), None, 0.0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        got = fn()
        wall, used = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, cpu, value = wall, used, got
    _best.cpu = cpu  # type: ignore[attr-defined]
    return best, value


def _rss_now() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def dit_step_inputs(pipe: Any) -> tuple[Any, ...]:
    """The DiT's inputs at the length of a 30 s generation (L = 388 latents), batch 1:
    ``(x, t, cross, global, local, padding mask)`` for ``pipe.dit(*inputs)``."""
    import torch

    plan = pipe.plan([30.0])
    cfg = pipe.config
    x = torch.randn(1, cfg.model.io_channels, plan.latent_len).to(pipe.device, pipe.dtype)
    t = torch.full((1,), 0.7, device=pipe.device)
    cross = torch.randn(1, 257, 768, device=pipe.device)
    # As a prompt gives it: 16 real tokens, the padding embedding repeated to 256 tokens, then
    # the seconds token.
    cross[:, 16:256] = cross[:, 16:17]
    glob = torch.randn(1, 768, device=pipe.device)
    local = torch.zeros(1, cfg.model.io_channels + 1, plan.latent_len).to(x)
    return x, t, cross, glob, local, plan.padding_mask(pipe.device)


def _worker(opts: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from sa3_studio.engine.api import GenerationRequest
    from sa3_studio.engine.noise import GeneratorNoise
    from sa3_studio.engine.pipeline import StepCache, load_pipeline

    if opts.threads:
        torch.set_num_threads(opts.threads)
    parts = set(opts.only)
    out: dict[str, Any] = {"threads": torch.get_num_threads()}
    folder = Path(opts.folder)
    base_rss = _rss_now()
    t0 = time.perf_counter()
    pipe = load_pipeline(folder, device=opts.device, dtype=opts.dtype)
    out["load_s"] = time.perf_counter() - t0
    out["codec_dtype"] = str(next(pipe.autoencoder.parameters()).dtype).removeprefix("torch.")
    out["dit_dtype"] = str(pipe.dtype).removeprefix("torch.")
    out["weights_bytes"] = (folder / "model.safetensors").stat().st_size
    out["rss_before_load"] = base_rss
    out["rss_after_load"] = _rss_now()
    on_cuda = pipe.device.type == "cuda"

    def sync() -> None:
        if on_cuda:
            torch.cuda.synchronize()

    sr = pipe.sample_rate
    steps = opts.steps

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        def run() -> Any:
            value = fn()
            sync()
            return value

        return _best(run, opts.repeat)

    with torch.inference_mode():
        if "dit-step" in parts:
            # One DiT evaluation at the length of a 30 s generation (L = 388 latents), batch 1,
            # with the step cache warm as it is from the second step of a generation on.
            x, t, cross, glob, local, pad = dit_step_inputs(pipe)
            with StepCache(pipe.dit):
                pipe.dit(x, t, cross, glob, local, pad)
                out["dit_step_s"], _ = timed(lambda: pipe.dit(x, t, cross, glob, local, pad))
                out["dit_step_cpu_s"] = _best.cpu  # type: ignore[attr-defined]
            out["dit_step_nocache_s"], _ = timed(lambda: pipe.dit(x, t, cross, glob, local, pad))

        if "t2a" in parts:
            out["t2a"] = {}
            for seconds in opts.durations:
                request = GenerationRequest(
                    prompt="Warm analog synth pad with soft piano chords 90 BPM",
                    duration=seconds,
                    steps=steps,
                    seed=1,
                )

                def fresh(request: GenerationRequest = request) -> Any:
                    pipe.clear_caches()  # a first take: the prompt is encoded too
                    return pipe.generate(request)

                best, result = timed(fresh)
                out["t2a"][str(seconds)] = {
                    "total_s": best,
                    "cpu_s": _best.cpu,  # type: ignore[attr-defined]
                    "phases": result.timings,
                }

        if "inpaint" in parts:
            rng = np.random.default_rng(0)
            source = (0.1 * rng.standard_normal((2, 30 * sr))).astype(np.float32)
            regions = ((12.0, 17.0),)
            prompt = "Bright brass stabs"

            window = (regions[0][0] - 0.05, regions[0][1] + 0.05)  # what the splice needs

            def first() -> Any:
                # As the editor and the CLI do: encode the source, then generate and decode
                # only the frames the splice needs.
                pipe.clear_caches()
                return pipe.generate(
                    GenerationRequest(
                        prompt=prompt,
                        inpaint_audio=source,
                        inpaint_regions=regions,
                        decode_range=window,
                        steps=steps,
                        seed=2,
                    )
                )

            best, result = timed(first)
            out["inpaint_first"] = {
                "total_s": best,
                "cpu_s": _best.cpu,  # type: ignore[attr-defined]
                "phases": result.timings,
            }
            latents = pipe.encode(source)
            take = GenerationRequest(
                prompt=prompt,
                source_latents=latents,
                inpaint_regions=regions,
                decode_range=window,
                steps=steps,
                seed=3,
            )
            pipe.generate(take)
            best, result = timed(lambda: pipe.generate(take))
            out["inpaint_repeat"] = {
                "total_s": best,
                "cpu_s": _best.cpu,  # type: ignore[attr-defined]
                "phases": result.timings,
            }

        if "codec" in parts:
            rng = np.random.default_rng(1)
            audio = torch.from_numpy((0.1 * rng.standard_normal((2, 30 * sr))).astype(np.float32))
            plan = pipe.plan([30.0])
            out["encode_30s_s"], latents = timed(lambda: pipe._encode(audio, plan.audio_samples))
            out["encode_30s_cpu_s"] = _best.cpu  # type: ignore[attr-defined]
            out["decode_30s_s"], _ = timed(
                lambda: pipe._decode(latents, GeneratorNoise(0, pipe.device), None, 30 * sr)
            )
            out["decode_30s_cpu_s"] = _best.cpu  # type: ignore[attr-defined]

        if "long-decode" in parts:
            # The longest decode the model allows (380 s for medium): time and memory, once.
            seconds = min(opts.long_seconds, pipe.max_seconds)
            plan = pipe.plan([seconds])
            gen = torch.Generator().manual_seed(0)
            latents = torch.randn(1, pipe.config.model.io_channels, plan.latent_len, generator=gen)
            rss_before = _rss_now()
            t0 = time.perf_counter()
            pipe._decode(latents, GeneratorNoise(0, pipe.device), None, int(seconds * sr))
            sync()
            out["long_decode"] = {
                "seconds": seconds,
                "s": time.perf_counter() - t0,
                "rss_before": rss_before,
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _ensure_model(models: Path, preset: str) -> Path:
    from sa3_studio.engine.synthetic import make_random_model, write_random_text_encoder

    folder = models / preset
    if (folder / "model.safetensors").is_file() and (folder / "model_config.json").is_file():
        return folder
    encoder = models / "t5gemma-b-encoder"
    if not (encoder / "model.safetensors").is_file():
        print(f"writing a full-size random T5Gemma encoder to {encoder} ...", flush=True)
        write_random_text_encoder(encoder)
    print(f"writing the synthetic {preset} model to {folder} ...", flush=True)
    return make_random_model(folder, preset=preset, seed=0, text_encoder_src=encoder)  # type: ignore[arg-type]


def _devices(requested: str) -> list[str]:
    if requested != "auto":
        return requested.split(",")
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    name = fields.get("Model name", platform.processor()).strip()
    return f"{name}, {os.cpu_count()} logical CPUs"


def _cpu_precision() -> str:
    """The CPU flags that decide the CPU precision, and what dtype="auto" picks from them."""
    import torch

    from sa3_studio.engine import devices

    flags = devices.cpu_flags()
    shown = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma", "avx_vnni")))
    auto = str(devices.resolve_dtype("auto", torch.device("cpu"))).removeprefix("torch.")
    return (
        f"CPU model: {devices.cpu_model()}; flags: {' '.join(shown) or '(none read)'}; "
        f'dtype="auto" on this CPU: DiT {auto}, SAME float32'
    )


def _resolved_dtype(spec: str, device: str) -> str:
    """The DiT dtype ``spec`` gives on ``device`` (``auto`` resolved as the engine does)."""
    import torch

    from sa3_studio.engine import devices
    from sa3_studio.errors import Sa3Error

    try:
        dtype = devices.resolve_dtype(spec, devices.resolve_device(device))
    except Sa3Error:  # the worker reports it
        return spec
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else spec


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _report(preset: str, device: str, dtype: str, r: dict[str, Any]) -> list[str]:
    gb = 1e9
    lines = [
        f"## {preset} / {device} / DiT {r.get('dit_dtype', dtype)}"
        f"{' (auto)' if dtype == 'auto' else ''}, codec {r.get('codec_dtype')}  "
        f"(threads {r.get('threads')})"
    ]
    lines.append(
        f"  load {r['load_s']:.1f} s; weights {r['weights_bytes'] / gb:.2f} GB; RSS before load "
        f"{r['rss_before_load'] / gb:.2f} GB, after {r['rss_after_load'] / gb:.2f} GB, peak "
        f"{r['peak_rss'] / gb:.2f} GB ({r['peak_rss'] / r['weights_bytes']:.2f}x weights)"
    )
    if "dit_step_s" in r:
        lines.append(
            f"  DiT step at 30 s (388 latents): {_fmt(r['dit_step_s'])} s "
            f"[cpu {_fmt(r['dit_step_cpu_s'])} s] (without the step cache "
            f"{_fmt(r['dit_step_nocache_s'])} s)"
        )
    for seconds, v in r.get("t2a", {}).items():
        ph = v["phases"]
        lines.append(
            f"  text-to-audio {float(seconds):g} s: {v['total_s']:.2f} s [cpu {v['cpu_s']:.2f} s]"
            f"  (conditioning "
            f"{ph['conditioning']:.2f}, sampling {ph['sampling']:.2f}, decode {ph['decode']:.2f})"
        )
    for key, label in (("inpaint_first", "first take"), ("inpaint_repeat", "repeated take")):
        if key in r:
            ph = r[key]["phases"]
            lines.append(
                f"  5 s inpaint inside 30 s, {label}: {r[key]['total_s']:.2f} s "
                f"[cpu {r[key]['cpu_s']:.2f} s]  (conditioning "
                f"{ph['conditioning']:.2f}, encode {ph['encode']:.2f}, sampling "
                f"{ph['sampling']:.2f}, decode {ph['decode']:.2f})"
            )
    if "encode_30s_s" in r:
        lines.append(
            f"  SAME encode 30 s: {r['encode_30s_s']:.2f} s [cpu {r['encode_30s_cpu_s']:.2f} s]; "
            f"decode 30 s: {r['decode_30s_s']:.2f} s [cpu {r['decode_30s_cpu_s']:.2f} s]"
        )
    if "long_decode" in r:
        v = r["long_decode"]
        lines.append(
            f"  SAME decode of {v['seconds']:g} s: {v['s']:.1f} s; RSS before it "
            f"{v['rss_before'] / gb:.2f} GB, process peak {v['peak_rss'] / gb:.2f} GB"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", help="small, medium or both (comma-separated)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cpu and cuda if present)")
    p.add_argument(
        "--dtype",
        default="auto,float32",
        help="comma-separated dtypes (auto allowed); one that resolves to the same DiT dtype "
        "as an earlier one on a device is measured once",
    )
    p.add_argument("--only", default=",".join(PARTS), help=f"parts: {', '.join(PARTS)}")
    p.add_argument("--durations", default="10,30,120", help="text-to-audio seconds")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument(
        "--long-seconds", type=float, default=380.0, help="long-decode length (capped at max)"
    )
    p.add_argument("--repeat", type=int, default=2, help="runs per figure (the best is kept)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--models", default=str(DEFAULT_MODELS), help="where synthetic models live")
    p.add_argument("--json", default=None, help="also write the raw figures to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    opts.only = [s.strip() for s in opts.only.split(",") if s.strip()]
    unknown = set(opts.only) - set(PARTS)
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    opts.durations = [float(s) for s in opts.durations.split(",") if s.strip()]

    if opts.worker:
        json.dump(_worker(opts), sys.stdout)
        return 0

    models = Path(opts.models).expanduser()
    models.mkdir(parents=True, exist_ok=True)
    print(f"# SA3 Studio engine benchmark, {datetime.date.today().isoformat()}")
    print(f"# machine: {_cpu_name()}; python {platform.python_version()}")
    print(f"# {_cpu_precision()}")
    print(f"# load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# command: python bench/engine.py {' '.join(argv or sys.argv[1:])}")
    results: dict[str, Any] = {}
    for preset in opts.preset.split(","):
        folder = _ensure_model(models, preset)
        for device in _devices(opts.device):
            measured: set[str] = set()
            for dtype in opts.dtype.split(","):
                resolved = _resolved_dtype(dtype, device)
                if resolved in measured:
                    print(
                        f"## {preset} / {device} / {dtype}: the DiT runs {resolved}, measured above"
                    )
                    continue
                measured.add(resolved)
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--folder",
                    str(folder),
                    "--device",
                    device,
                    "--dtype",
                    dtype,
                    "--only",
                    ",".join(opts.only),
                    "--durations",
                    ",".join(f"{d:g}" for d in opts.durations),
                    "--steps",
                    str(opts.steps),
                    "--long-seconds",
                    str(opts.long_seconds),
                    "--repeat",
                    str(opts.repeat),
                    "--threads",
                    str(opts.threads),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"## {preset} / {device} / {dtype}: failed\n{proc.stderr[-3000:]}")
                    continue
                r = json.loads(proc.stdout)
                results[f"{preset}/{device}/{dtype}"] = r
                print("\n".join(_report(preset, device, dtype, r)), flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
