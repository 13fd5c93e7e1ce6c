"""Headless commands behind the ``sa3-studio`` CLI (no Qt).

``generate``, ``inpaint``, ``continue`` and ``vary`` load a model (by official name or folder),
read any audio file the editor can import, run the engine with a progress bar, and write
WAV/FLAC files tagged with the prompt, the seed and the model. ``inpaint`` and ``continue``
write the source with only the regenerated parts replaced, spliced with the editor's
equal-power crossfades, at the source's own sample rate: every sample outside the regions is
the source's sample, unchanged (``--raw`` writes the model's whole output instead).

``models list|download|verify`` find, fetch and check model folders. Nothing is ever
downloaded except by ``models download``.

Terminal output goes to the ``out`` and ``err`` streams given to :func:`run` (standard output
and standard error by default): this module is the CLI's user interface, not a library, so it
writes text for people rather than log records. torch is imported only by the commands that
run a model.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import CancelToken, GenerationRequest, GenerationResult, ModelInfo
from sa3_studio.errors import Cancelled, Sa3Error

if TYPE_CHECKING:
    from sa3_studio.engine.pipeline import Pipeline

MODEL_RATE_FALLBACK = 44100
DEFAULT_DURATION_S = 30.0
PROMPT_TAG_START = "TrackType:"

FloatAudio = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------
# Terminal output
# --------------------------------------------------------------------------------------------


class _Console:
    """Where the commands write: plain lines, and a progress bar when the stream is a terminal."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._bar_shown = False

    @property
    def interactive(self) -> bool:
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())

    def line(self, text: str) -> None:
        """One line of result on the output stream."""
        self.end_bar()
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """One line of information on the error stream (keeps standard output for results)."""
        self.end_bar()
        self.err.write(text + "\n")
        self.err.flush()

    def bar(self, label: str, done: float, total: float, suffix: str = "") -> None:
        """Redraw a one-line progress bar (terminals only)."""
        if not self.interactive:
            return
        width = 30
        frac = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        filled = round(frac * width)
        self.err.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {suffix}   ")
        self.err.flush()
        self._bar_shown = True

    def end_bar(self) -> None:
        if self._bar_shown:
            self.err.write("\n")
            self.err.flush()
            self._bar_shown = False


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# --------------------------------------------------------------------------------------------
# Entry
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the subcommand in ``args``; returns the process exit code.

    Raises:
        Sa3Error: a problem the user can fix (the CLI prints the message and exits with 2).
        Cancelled: interrupted.
    """
    console = _Console(out or sys.stdout, err or sys.stderr)
    command = args.command
    if command in ("generate", "inpaint", "continue", "vary"):
        return _run_generation(args, console)
    if command == "models":
        action = args.models_command
        if action == "list":
            return _models_list(args, console)
        if action == "download":
            return _models_download(args, console)
        if action == "verify":
            return _models_verify(args, console)
    raise Sa3Error(f"`sa3-studio {command}` is not a command; run `sa3-studio --help`.")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _search_env(dirs: Sequence[str]) -> dict[str, str]:
    """The environment with extra ``--dir`` folders searched first."""
    env = dict(os.environ)
    if dirs:
        extra = os.pathsep.join(str(Path(d).expanduser()) for d in dirs)
        env["SA3_STUDIO_MODELS"] = (
            extra + os.pathsep + env["SA3_STUDIO_MODELS"] if env.get("SA3_STUDIO_MODELS") else extra
        )
    return env


def _models_list(args: argparse.Namespace, console: _Console) -> int:
    from sa3_studio.engine import registry

    env = _search_env(args.dir)
    locations = registry.search_locations(env=env)
    found = registry.discover(env=env)
    console.line("Searched: " + "; ".join(f"{loc.path} ({loc.source})" for loc in locations))
    if not found:
        console.line("No models found. Download one with `sa3-studio models download small-music`.")
        return 0
    for info in found:
        state = "complete" if info.complete else "INCOMPLETE"
        details = f"{info.family or '?'}, {info.objective or '?'}"
        if info.max_seconds:
            details += f", up to {info.max_seconds:.0f} s"
        console.line(
            f"{info.name:<20} {state:<10} {_size(info.size_bytes):>9}  {details}  "
            f"[{info.source}] {info.path}"
        )
        if not info.complete:
            for item in info.missing:
                console.line(f"{'':<20} missing: {item}")
    return 0


def _models_download(args: argparse.Namespace, console: _Console) -> int:
    from sa3_studio.engine import registry

    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-3)
        console.bar(
            "Downloading", done, total, f"{_size(done)} / {_size(total)} ({_size(int(rate))}/s)"
        )

    official = registry.OFFICIAL_MODELS.get(args.name)
    where = args.dir or "the Hugging Face cache"
    console.note(
        f"Downloading {args.name}"
        + (f" from {official.url}" if official else "")
        + f" into {where} (only the files inference needs; run again to resume)."
    )
    info = registry.download(args.name, args.dir, progress=progress)
    console.end_bar()
    console.line(f"{info.name}: complete, {_size(info.size_bytes)} in {info.path}")
    return 0


def _models_verify(args: argparse.Namespace, console: _Console) -> int:
    from sa3_studio.engine import registry

    env = _search_env(getattr(args, "dir", []) or [])
    if args.name is None:
        targets = registry.discover(env=env)
        if not targets:
            console.line("No models found to verify.")
            return 0
    else:
        path = Path(args.name).expanduser()
        if path.exists():
            folder = path.parent if path.is_file() else path
            targets = [registry.inspect_folder(folder, source="path")]
        else:
            targets = [i for i in registry.discover(env=env) if i.name == args.name]
            if not targets:
                raise Sa3Error(
                    f"Model {args.name!r} was not found; `sa3-studio models list` shows what is "
                    "installed, and `sa3-studio models download NAME` fetches an official model."
                )
    bad = 0
    for info in targets:
        problems = registry.verify(info)
        if problems:
            bad += 1
            console.line(f"{info.name}: {len(problems)} problem(s) in {info.path}")
            for p in problems:
                console.line(f"  - {p}")
        else:
            console.line(f"{info.name}: OK ({_size(info.size_bytes)}, {info.path})")
        for field in registry.ignored_config_fields(info):
            console.line(f"  - note: model_config.json field `{field}` is not read (ignored)")
    return 1 if bad else 0


def _resolve_model(name: str | None) -> ModelInfo:
    from sa3_studio.engine import registry

    if name:
        return registry.resolve_info(name)
    for info in registry.discover():
        if info.complete and info.objective in ("rf_denoiser", "rectified_flow"):
            return info
    raise Sa3Error(
        "No model was given and none is installed: download one with "
        "`sa3-studio models download small-music`, or pass --model with a model folder."
    )


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    """An input file, at the model's rate (for the model) and at its own (for splicing)."""

    path: Path
    model: FloatAudio  # (2, n) at the model's rate
    native: FloatAudio  # (2, m) at the file's rate
    native_rate: int
    notices: tuple[str, ...] = ()

    def seconds(self, rate: int) -> float:
        return float(self.model.shape[-1]) / rate


def _read_source(path: str, model_rate: int) -> _Source:
    from sa3_studio.audio.files import import_audio

    p = Path(path).expanduser()
    audio, info = import_audio(p, sample_rate=model_rate)
    native = audio
    if info.original_rate != model_rate:
        # The untouched samples at the file's own rate, so the output keeps them exactly.
        native, _ = import_audio(p, sample_rate=info.original_rate)
    return _Source(
        p,
        np.ascontiguousarray(audio),
        np.ascontiguousarray(native),
        info.original_rate,
        tuple(info.notices),
    )


def _parse_lora(spec: str) -> tuple[Path, float]:
    path, strength = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            strength = float(tail)
        except ValueError:
            pass  # a colon in the path itself
        else:
            path = head
    if not math.isfinite(strength):
        raise Sa3Error(f"The LoRA strength in {spec!r} is not a number; use PATH or PATH:0.8.")
    p = Path(path).expanduser()
    if not p.is_file():
        raise Sa3Error(f"There is no LoRA file at {p}; check the --lora path.")
    return p, strength


def _full_prompt(prompt: str, info: ModelInfo, no_prefix: bool) -> str:
    if no_prefix or not prompt.strip() or prompt.lstrip().startswith(PROMPT_TAG_START):
        return prompt
    return info.prompt_prefix + prompt


def _output_paths(output: str | None, command: str, seed: int, takes: int) -> list[Path]:
    base = Path(output).expanduser() if output else Path(f"{command}_{seed}.wav")
    if base.suffix.lower() not in (".wav", ".flac"):
        raise Sa3Error(
            f"Cannot write {base.name}: the output must end in .wav (32-bit float) or .flac "
            "(24-bit)."
        )
    if takes == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(1, takes + 1)]


def _check_generation_args(args: argparse.Namespace) -> None:
    if args.batch < 1:
        raise Sa3Error("--batch must be at least 1 (the number of takes).")
    if args.steps is not None and args.steps < 1:
        raise Sa3Error("--steps must be at least 1.")
    duration = getattr(args, "duration", None)
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise Sa3Error("--duration must be a positive number of seconds.")
    if args.output:
        parent = Path(args.output).expanduser().parent
        if not parent.is_dir():
            raise Sa3Error(f"Cannot write {args.output}: the folder {parent} does not exist.")
    if args.command == "inpaint":
        starts, ends = args.inpaint_start, args.inpaint_end
        if len(starts) != len(ends):
            raise Sa3Error(
                f"{len(starts)} --inpaint-start but {len(ends)} --inpaint-end were given; give "
                "one end for every start."
            )
        for s, e in zip(starts, ends, strict=True):
            if not (math.isfinite(s) and math.isfinite(e) and 0 <= s < e):
                raise Sa3Error(
                    f"The region {s}-{e} s is empty or negative; --inpaint-end must be after "
                    "--inpaint-start."
                )
    if args.command in ("inpaint", "continue") and args.crossfade_ms < 0:
        raise Sa3Error("--crossfade-ms must be zero or more.")
    if args.command == "vary" and not 0 < args.init_noise_level <= 1:
        raise Sa3Error("--init-noise-level must be greater than 0 and at most 1.")


def _run_generation(args: argparse.Namespace, console: _Console) -> int:
    _check_generation_args(args)
    info = _resolve_model(args.model)
    rate = info.sample_rate or MODEL_RATE_FALLBACK
    source: _Source | None = None
    if args.command in ("inpaint", "continue"):
        source = _read_source(args.inpaint_audio, rate)
    elif args.command == "vary":
        source = _read_source(args.init_audio, rate)
    if source is not None:
        for notice in source.notices:
            console.note(f"{source.path.name}: {notice}")
    loras = [_parse_lora(spec) for spec in args.lora]

    prompt = _full_prompt(args.prompt, info, args.no_prefix)
    seed = args.seed if args.seed is not None and args.seed >= 0 else _random_seed()
    request, splice = _build_request(args, source, prompt, seed, rate)
    paths = _output_paths(args.output, args.command, seed, request.batch_size)

    console.note(f"Model: {info.name} ({info.path})")
    pipe = _load(info, args, console)
    for path, strength in loras:
        pipe.add_lora(path, strength)
        console.note(f"LoRA: {path.name} at strength {strength:g}")
    console.line(f"Prompt: {prompt!r}")
    if request.negative_prompt:
        console.line(f"Negative prompt: {request.negative_prompt!r}")
    console.line(f"Seed: {seed}")

    result = _generate(pipe, request, console)
    _write_outputs(args, console, info, prompt, result, source, splice, paths)
    return 0


def _random_seed() -> int:
    return int(np.random.default_rng().integers(0, 2**31 - 1))


@dataclass(frozen=True, slots=True)
class _Splice:
    """Where the regenerated audio goes back into the source (seconds, model time)."""

    regions: tuple[tuple[float, float], ...]
    continuation_from: float | None = None  # source length, for `continue`
    total: float = 0.0  # output length in seconds


def _build_request(
    args: argparse.Namespace,
    source: _Source | None,
    prompt: str,
    seed: int,
    rate: int,
) -> tuple[GenerationRequest, _Splice | None]:
    common: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": args.negative_prompt,
        "steps": args.steps,
        "cfg_scale": args.cfg_scale,
        "sampler": args.sampler,
        "seed": seed,
        "batch_size": args.batch,
    }
    command = args.command
    if command == "generate":
        duration = args.duration if args.duration is not None else DEFAULT_DURATION_S
        return GenerationRequest(duration=duration, **common), None
    assert source is not None
    length = source.seconds(rate)
    if command == "vary":
        duration = args.duration if args.duration is not None else length
        return (
            GenerationRequest(
                duration=duration,
                init_audio=source.model,
                init_noise_level=args.init_noise_level,
                **common,
            ),
            None,
        )
    raw = bool(args.raw)
    margin = 0.05  # decode a little beyond the splice, for the resampler's filter
    if command == "inpaint":
        regions = tuple(sorted(zip(args.inpaint_start, args.inpaint_end, strict=True)))
        if regions[-1][1] > length + 0.5 / rate:
            s, e = regions[-1]
            raise Sa3Error(
                f"The region {s}-{e} s ends after the end of {source.path.name} "
                f"({length:.3f} s); to make the audio longer, use `sa3-studio continue`."
            )
        decode = None if raw else (max(0.0, regions[0][0] - margin), regions[-1][1] + margin)
        request = GenerationRequest(
            duration=length,
            inpaint_audio=source.model,
            inpaint_regions=regions,
            decode_range=decode,
            **common,
        )
        return request, _Splice(regions=regions, total=length)
    # continue: regenerate everything after the source, up to --duration
    if args.duration is None or args.duration <= length:
        raise Sa3Error(
            f"`continue` needs --duration: the total length in seconds, longer than "
            f"{source.path.name} ({length:.2f} s)."
        )
    fade = args.crossfade_ms / 1000.0
    decode = None if raw else (max(0.0, length - fade - margin), args.duration)
    request = GenerationRequest(
        duration=args.duration,
        inpaint_audio=source.model,
        inpaint_regions=((length, args.duration),),
        decode_range=decode,
        **common,
    )
    return request, _Splice(
        regions=((length, args.duration),), continuation_from=length, total=args.duration
    )


def _load(info: ModelInfo, args: argparse.Namespace, console: _Console) -> Pipeline:
    from sa3_studio.engine.pipeline import load_pipeline

    t0 = time.perf_counter()
    pipe = load_pipeline(
        info.path,
        device=args.device,
        dtype=args.dtype,
        attention=args.attention,
        model_id=info.name,
    )
    console.note(
        f"Loaded in {time.perf_counter() - t0:.1f} s on {pipe.choice.description}"
        f" ({'base model' if pipe.is_base else 'post-trained model'})"
    )
    return pipe


def _generate(pipe: Pipeline, request: GenerationRequest, console: _Console) -> GenerationResult:
    t0 = time.perf_counter()
    token = CancelToken()

    def on_step(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        console.bar("Generating", done, total, f"step {done}/{total}, {elapsed:.1f} s")

    console.bar("Generating", 0, 1, "preparing")
    try:
        result = pipe.generate(request, on_step=on_step, cancel=token)
    except KeyboardInterrupt:
        token.cancel()
        console.end_bar()
        raise Cancelled("Generation was interrupted; nothing was written.") from None
    console.end_bar()
    console.note(f"Generated in {time.perf_counter() - t0:.1f} s")
    return result


def _write_outputs(
    args: argparse.Namespace,
    console: _Console,
    info: ModelInfo,
    prompt: str,
    result: GenerationResult,
    source: _Source | None,
    splice: _Splice | None,
    paths: list[Path],
) -> None:
    from sa3_studio.audio.files import ExportFormat, ExportOptions, ExportTags, export_audio

    takes = result.audio.shape[0]
    rate = result.sample_rate
    for i, path in enumerate(paths):
        take = np.ascontiguousarray(result.audio[i], dtype=np.float32)  # (C, n)
        out_rate = rate
        if splice is not None and source is not None and not args.raw:
            audio = _splice_into_source(take, result.start_frame, rate, source, splice, args)
            out_rate = source.native_rate
        else:
            audio = take
        fmt = ExportFormat.FLAC_24 if path.suffix.lower() == ".flac" else ExportFormat.WAV_FLOAT
        comment = f"sa3-studio {args.command}"
        if takes > 1:
            comment += f"; take {i + 1} of {takes} made together (same seed, --batch {takes})"
        tags = ExportTags(prompt=prompt, seed=result.seed, model=info.name, comment=comment)
        written = export_audio(path, audio, out_rate, ExportOptions(format=fmt, tags=tags))
        console.line(
            f"Wrote {written.path} ({written.frames / written.sample_rate:.2f} s, "
            f"{written.sample_rate} Hz)"
        )
        for notice in written.notices:
            console.note(notice)


def _splice_into_source(
    take: FloatAudio,
    start_frame: int,
    rate: int,
    source: _Source,
    splice: _Splice,
    args: argparse.Namespace,
) -> FloatAudio:
    """The source at its own rate with the regenerated regions spliced in (editor crossfades)."""
    from sa3_studio.audio.resample import resample
    from sa3_studio.document.crossfade import splice as crossfade_splice

    native_rate = source.native_rate
    total_model = round(splice.total * rate)
    # The decoded span in place, at the model's rate, then at the source's rate.
    generated = np.zeros((take.shape[0], total_model), dtype=np.float32)
    n = min(take.shape[-1], total_model - start_frame)
    generated[:, start_frame : start_frame + n] = take[:, :n]
    if native_rate != rate:
        generated = resample(generated, rate, native_rate)
    total_native = round(splice.total * native_rate)
    out = np.zeros((source.native.shape[0], total_native), dtype=np.float32)
    keep = min(source.native.shape[-1], total_native)
    out[:, :keep] = source.native[:, :keep]
    generated = _fit(generated, total_native)
    fade = round(args.crossfade_ms / 1000.0 * native_rate)
    if splice.continuation_from is not None:
        # Crossfade inside the last `fade` frames of the source, where the model's output
        # reproduces the source, so the continuation starts without a dip.
        end_src = min(round(splice.continuation_from * native_rate), keep)
        spans = [(max(0, end_src - fade), total_native)]
    else:
        spans = [(round(s * native_rate), round(e * native_rate)) for s, e in splice.regions]
    for s, e in spans:
        e = min(e, total_native)
        if e > s:
            out[:, s:e] = crossfade_splice(out[:, s:e], generated[:, s:e], fade)
    return out


def _fit(audio: FloatAudio, frames: int) -> FloatAudio:
    if audio.shape[-1] >= frames:
        return audio[:, :frames]
    return np.pad(audio, ((0, 0), (0, frames - audio.shape[-1])))
