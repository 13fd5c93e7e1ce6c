"""Side-by-side CPU speed of the official Stable Audio 3 code and ours, in one process.

Both sides load the same synthetic small-music model folder (random weights in the official
key layout; random weights cost exactly what real ones cost) and run, alternating A/B with the
order reversed every round, 30 s text-to-audio (8 steps) and, unless ``--skip-inpaint``, a
5 s inpaint inside 30 s: the official inpaint (it encodes the whole source every call)
against our repeated take (source latents reused, only the frames the splice needs decoded).

Variants (``--variants``):

* ``official-fp32``: ``load_diffusion_cond(..., model_half=False)``, as the official CPU path
  runs (``StableAudioModel.from_pretrained`` forces ``model_half=False`` without CUDA).
* ``official-bf16``: the same model moved whole to bfloat16 (DiT, SAME and the small
  conditioner layers; the T5Gemma encoder stays float32, as the official code keeps it).
* ``official-bf16-dit``: only the DiT in bfloat16, SAME float32.
* ``ours-auto``: ``load_pipeline(dtype="auto")``, our default.
* ``ours-fp32``: ``load_pipeline(dtype="float32")``.

The official ``model_half`` (float16) is not measured: its loader only honours it with CUDA.

The official code is not part of this project and is never copied into it: pass the folder
that holds its ``stable_audio_3`` package with ``--official-src``. It needs two packages this
project does not depend on; install them into the environment first::

    pip install einops einops-exts

torchaudio is not needed: a stand-in module is inserted that refuses resampling (every
clip here is at the model's rate, so the official code never resamples).

Example::

    python bench/official_compare.py --official-src /tmp/sa3-official --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_VARIANTS = ("official-fp32", "official-bf16", "official-bf16-dit", "ours-auto", "ours-fp32")
DEFAULT_MODEL = Path("~/.cache/sa3-studio/bench/small").expanduser()
PROMPT = "Warm analog synth pad with soft piano chords 90 BPM"
INPAINT_PROMPT = "Bright brass stabs"
REGION = (12.0, 17.0)


def _cpu_info() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = value.split()
                    break
    except OSError:
        pass
    wanted = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f", "avx2")
    return model, [f for f in wanted if f in flags]


def default_variants() -> list[str]:
    """Every variant; on a CPU without bfloat16 units, only the float32 ones (and ours-auto,
    which is float32 there too, so ours-fp32 would measure the same thing twice)."""
    from sa3_studio.engine import devices

    if devices.cpu_has_native_bfloat16():
        return list(DEFAULT_VARIANTS)
    print("# no bfloat16 units on this CPU: the bfloat16 variants are left out (--variants)")
    return ["official-fp32", "ours-auto"]


def _install_torchaudio_standin() -> None:
    """The official modules import torchaudio at module level; nothing here resamples."""
    if "torchaudio" in sys.modules:
        return
    # transformers looks torchaudio up by its spec when first imported: let it see none.
    import transformers  # noqa: F401

    class _Refused:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError(
                "the torchaudio stand-in of bench/official_compare.py cannot resample; "
                "every clip in this benchmark is at the model's rate"
            )

    def _refuse(*args: Any, **kwargs: Any) -> None:
        _Refused()

    ta = types.ModuleType("torchaudio")
    tr = types.ModuleType("torchaudio.transforms")
    tr.Resample = _Refused  # type: ignore[attr-defined]
    tr.Loudness = _Refused  # type: ignore[attr-defined]
    ta.transforms = tr  # type: ignore[attr-defined]
    ta.load = _refuse  # type: ignore[attr-defined]
    ta.save = _refuse  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = ta
    sys.modules["torchaudio.transforms"] = tr


def _dtype_name(module: Any) -> str:
    return str(next(module.parameters()).dtype).removeprefix("torch.")


class _Side:
    """One variant: a loaded model, its dtypes, and the calls to time."""

    def __init__(self, name: str, t2a: Callable[[], Any], inpaint: Callable[[], Any] | None):
        self.name = name
        self.t2a = t2a
        self.inpaint = inpaint
        self.dtypes = ""
        self.load_s = 0.0
        self.times: dict[str, list[float]] = {"t2a": [], "inpaint": []}
        self.phases: dict[str, Any] = {}  # ours only: the phase timings of the best run


def _load_official(name: str, folder: Path, source: Any) -> _Side:
    import torch
    from stable_audio_3.loading_utils import load_diffusion_cond
    from stable_audio_3.model import StableAudioModel

    config = json.loads((folder / "model_config.json").read_text(encoding="utf-8"))
    for cond in config["model"]["conditioning"]["configs"]:
        path = cond.get("config", {}).get("model_path")
        if path and not os.path.isabs(path):
            cond["config"]["model_path"] = str(folder / path)
    model = load_diffusion_cond(config, str(folder / "model.safetensors"), "cpu", False)
    if name == "official-bf16":
        model.to(torch.bfloat16)
    elif name == "official-bf16-dit":
        model.model.to(torch.bfloat16)
    model.use_lora = False
    model.lora_names = []
    sa3 = StableAudioModel(model, config, "cpu", False)
    sr = int(model.sample_rate)

    def t2a() -> Any:
        return sa3.generate(prompt=PROMPT, duration=30.0, steps=8, seed=1)

    def inpaint() -> Any:
        return sa3.generate(
            prompt=INPAINT_PROMPT,
            duration=30.0,
            steps=8,
            seed=3,
            inpaint_audio=(sr, torch.from_numpy(source)),
            inpaint_mask_start_seconds=REGION[0],
            inpaint_mask_end_seconds=REGION[1],
        )

    side = _Side(name, t2a, inpaint)
    text = sa3.model.conditioner.conditioners["prompt"].model
    side.dtypes = (
        f"DiT {_dtype_name(model.model)}, SAME {_dtype_name(model.pretransform)}, "
        f"text {_dtype_name(text)}"
    )
    return side


def _load_ours(name: str, folder: Path, source: Any) -> _Side:
    from sa3_studio.engine.api import GenerationRequest
    from sa3_studio.engine.pipeline import load_pipeline

    pipe = load_pipeline(folder, device="cpu", dtype="auto" if name == "ours-auto" else "float32")

    def t2a() -> Any:
        pipe.clear_caches()  # a first take: the prompt is encoded too, as the official does
        return pipe.generate(GenerationRequest(prompt=PROMPT, duration=30.0, steps=8, seed=1))

    latents = pipe.encode(source)
    take = GenerationRequest(
        prompt=INPAINT_PROMPT,
        source_latents=latents,
        inpaint_regions=(REGION,),
        decode_range=(REGION[0] - 0.05, REGION[1] + 0.05),
        steps=8,
        seed=3,
    )

    def inpaint() -> Any:
        return pipe.generate(take)  # a repeated take: source encoded once, before

    side = _Side(name, t2a, inpaint)
    text_dtype = getattr(pipe, "text_encoder_dtype", None)
    side.dtypes = f"DiT {str(pipe.dtype).removeprefix('torch.')}, SAME " + _dtype_name(
        pipe.autoencoder
    )
    if text_dtype is not None:
        side.dtypes += f", text {str(text_dtype).removeprefix('torch.')}"
    return side


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="small model folder")
    parser.add_argument(
        "--variants",
        default=None,
        help="comma-separated; default: all, less the bfloat16 ones on a CPU without "
        "bfloat16 units (emulated there: an official bfloat16 step took 28 s on an AVX2 CPU)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-inpaint", action="store_true")
    args = parser.parse_args(argv)

    src = args.official_src.expanduser()
    if not (src / "stable_audio_3" / "__init__.py").is_file():
        print(f"official code not found: {src}/stable_audio_3 does not exist; skipped")
        return 0
    variants = (
        [v.strip() for v in args.variants.split(",") if v.strip()]
        if args.variants
        else default_variants()
    )
    unknown = [v for v in variants if v not in DEFAULT_VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(DEFAULT_VARIANTS)}")

    folder = args.model.expanduser()
    if not (folder / "model.safetensors").is_file():
        from sa3_studio.engine.synthetic import make_random_model, write_random_text_encoder

        encoder = folder.parent / "t5gemma-b-encoder"
        if not (encoder / "model.safetensors").is_file():
            print(f"writing a full-size random T5Gemma encoder to {encoder} ...", flush=True)
            write_random_text_encoder(encoder)
        print(f"writing the synthetic small model to {folder} ...", flush=True)
        make_random_model(folder, preset="small", seed=0, text_encoder_src=encoder)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    _install_torchaudio_standin()
    sys.path.insert(0, str(src))

    cpu, flags = _cpu_info()
    print(f"# CPU: {cpu}; flags: {' '.join(flags) or 'none of amx/avx512_bf16'}")
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}")
    print(f"# command: python {' '.join(sys.argv)}", flush=True)

    sr = json.loads((folder / "model_config.json").read_text(encoding="utf-8"))["sample_rate"]
    rng = np.random.default_rng(0)
    source = (0.1 * rng.standard_normal((2, 30 * sr))).astype(np.float32)

    sides: list[_Side] = []
    with torch.inference_mode():
        for name in variants:
            t0 = time.perf_counter()
            loader = _load_official if name.startswith("official") else _load_ours
            side = loader(name, folder, source)
            side.load_s = time.perf_counter() - t0
            side.t2a()  # warm-up: first-call allocations and kernel selection
            print(f"loaded {name} ({side.dtypes}) in {side.load_s:.1f} s", flush=True)
            sides.append(side)
        parts = ["t2a"] if args.skip_inpaint else ["t2a", "inpaint"]
        for rnd in range(args.rounds):
            order = sides if rnd % 2 == 0 else sides[::-1]
            for part in parts:
                for side in order:
                    fn = side.t2a if part == "t2a" else side.inpaint
                    assert fn is not None
                    t0 = time.perf_counter()
                    got = fn()
                    took = time.perf_counter() - t0
                    if took <= min(side.times[part], default=took) and hasattr(got, "timings"):
                        side.phases[part] = got.timings
                    side.times[part].append(took)
                    print(f"round {rnd + 1} {part:7s} {side.name:18s} {took:7.2f} s", flush=True)

    print()
    print("| variant | dtypes | 30 s text-to-audio (best) | 5 s inpaint in 30 s (best) |")
    print("|---|---|---|---|")
    best: dict[str, dict[str, float]] = {}
    for side in sides:
        best[side.name] = {k: min(v) for k, v in side.times.items() if v}
        cells = [f"{best[side.name][k]:.2f} s" if k in best[side.name] else "-" for k in parts]
        if len(cells) == 1:
            cells.append("-")
        print(f"| {side.name} | {side.dtypes} | {cells[0]} | {cells[1]} |")
    for side in sides:
        for part, phases in side.phases.items():
            print(f"phases of {side.name} {part} (best run): {phases}")
    officials = [n for n in best if n.startswith("official")]
    ours = "ours-auto" if "ours-auto" in best else None
    if officials and ours:
        print()
        for part, target in (("t2a", 1.5), ("inpaint", 3.0)):
            if part not in parts:
                continue
            fastest = min(officials, key=lambda n: best[n][part])
            ratio = best[fastest][part] / best[ours][part]
            verdict = "met" if ratio >= target else "NOT met"
            print(
                f"{part}: ours-auto {best[ours][part]:.2f} s vs {fastest} "
                f"{best[fastest][part]:.2f} s = {ratio:.2f}x (target {target}x: {verdict})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
