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
from typing import TYPE_CHECKING, TextIO

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import CancelToken, ModelInfo, PipelineLike
from sa3_studio.errors import AudioFileError, Cancelled, Sa3Error

if TYPE_CHECKING:
    from sa3_studio.audio.files import ExportFormat
    from sa3_studio.workflow import ModelLimits, Plan, Settings, WindowPlan
    from sa3_studio.workflow.loop import LoopPlan

MODEL_RATE_FALLBACK = 44100
OUTPUT_RATE = 44100
"""Rate of ``generate``'s files unless --rate says otherwise."""
DEFAULT_DURATION_S = 30.0

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


GENERATION_COMMANDS = ("generate", "inpaint", "continue", "vary", "loop")


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the subcommand in ``args``; returns the process exit code.

    Raises:
        Sa3Error: a problem the user can fix (the CLI prints the message and exits with 2).
        Cancelled: interrupted.
    """
    console = _Console(out or sys.stdout, err or sys.stderr)
    command = args.command
    if command in GENERATION_COMMANDS:
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


def _editor_models_folder() -> str | None:
    """The models folder set in the editor's settings, if any."""
    from sa3_studio.app.settings import saved_models_folder

    return saved_models_folder() or None


def _models_list(args: argparse.Namespace, console: _Console) -> int:
    if getattr(args, "server", None):
        from sa3_studio.remote.cli import model_lines

        for text in model_lines(args):
            console.line(text)
        return 0
    from sa3_studio.engine import registry

    env = _search_env(args.dir)
    folder = _editor_models_folder()  # the same places as the editor
    locations = registry.search_locations(folder, env=env)
    found = registry.discover(folder, env=env)
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

    folder = _editor_models_folder()
    if name:
        return registry.resolve_info(name, folder)
    for info in registry.discover(folder):
        if info.complete and info.objective in ("rf_denoiser", "rectified_flow"):
            return info
    raise Sa3Error(
        "No model was given and none is installed: download one with "
        "`sa3-studio models download small-music`, or pass --model with a model folder."
    )


# --------------------------------------------------------------------------------------------
# Generation: files in and out here; planning, requests and splicing in sa3_studio.workflow
# --------------------------------------------------------------------------------------------

_CONTAINERS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}


@dataclass(frozen=True, slots=True)
class _Source:
    """An input file at its own rate and channel count, exactly as it holds its samples."""

    path: Path
    audio: FloatAudio  # (C, n) at ``rate``
    rate: int
    container: str  # libsndfile's name: "WAV", "FLAC", "OGG", ...
    subtype: str  # "PCM_24", "FLOAT", ...
    notices: tuple[str, ...] = ()

    @property
    def frames(self) -> int:
        return int(self.audio.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.audio.shape[0])

    def describe(self) -> str:
        return (
            f"{self.path.name}: {self.frames / self.rate:.3f} s, {self.rate} Hz, "
            f"{self.channels} channel{'s' if self.channels != 1 else ''}, "
            f"{self.container} {self.subtype}"
        )


def _read_source(path: str) -> _Source:
    """Read a file without converting it (its rate, channels and samples as they are).

    Raises:
        AudioFileError: the file is missing, not audio, or unreadable (the editor's import
            names what is wrong).
    """
    import soundfile as sf

    from sa3_studio.audio.files import import_audio

    p = Path(path).expanduser()
    try:
        info = sf.info(str(p))
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)  # (n, C)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError):
        # The editor's import says what is wrong (missing, not audio, damaged), or reads what
        # it can (a file cut short), as stereo at the file's rate with a notice.
        audio, imported = import_audio(p)
        if imported.original_rate != imported.sample_rate:
            audio, imported = import_audio(p, sample_rate=imported.original_rate)
        return _Source(
            p,
            np.ascontiguousarray(audio),
            imported.original_rate,
            imported.format,
            imported.subtype,
            tuple(imported.notices),
        )
    if data.shape[0] == 0:
        raise AudioFileError(f"Cannot read '{p}': it contains no audio. Choose another file.")
    audio = np.ascontiguousarray(data.T)
    return _Source(p, audio, int(rate), str(info.format), str(info.subtype))


def _convert_source(source: _Source, rate: int | None, channels: int | None) -> _Source:
    """The source at the asked rate and channel count (a printed notice for each change).

    Raises:
        GenerationError: more than two channels and no ``--channels``.
    """
    from sa3_studio.audio.resample import resample
    from sa3_studio.workflow.splice import check_channels

    audio, notices = source.audio, list(source.notices)
    if channels is not None and channels != source.channels:
        if channels == 1:
            audio = audio.mean(axis=0, keepdims=True, dtype=np.float32)
        elif source.channels == 1:
            audio = np.repeat(audio, 2, axis=0)
        else:
            from sa3_studio.audio.files import import_audio

            # The editor's downmix of surround files (centre and surrounds folded in).
            audio, _ = import_audio(source.path, sample_rate=source.rate)
        notices.append(
            f"{source.channels} channels were converted to {channels} (--channels); the "
            f"result has {channels}."
        )
    elif source.channels > 2:
        check_channels(source.channels)  # raises: the user chooses --channels 2
    if rate is not None and rate != source.rate:
        audio = resample(audio, source.rate, rate)
        notices.append(f"{source.rate} Hz was converted to {rate} Hz (--rate).")
    out_rate = rate or source.rate
    return _Source(
        source.path,
        np.ascontiguousarray(audio, dtype=np.float32),
        out_rate,
        source.container,
        source.subtype,
        tuple(notices),
    )


def _output_format(
    path: Path, source: _Source | None, subtype: str | None
) -> tuple[ExportFormat, tuple[str, ...]]:
    """The format to write: the source's own where the container allows, else the chosen one.

    Raises:
        Sa3Error: an extension or subtype that cannot be written.
    """
    from sa3_studio.audio.files import ExportFormat

    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise Sa3Error(
            f"Cannot write {path.name}: the output must end in .wav, .flac, .ogg or .mp3."
        )
    by_pair = {(f.container, f.subtype): f for f in ExportFormat}
    if container in ("OGG", "MP3"):
        if subtype is not None:
            raise Sa3Error(f"--subtype {subtype} does not apply to {container} files.")
        return (ExportFormat.OGG_VORBIS if container == "OGG" else ExportFormat.MP3), ()
    if subtype is not None:
        fmt = by_pair.get((container, subtype))
        if fmt is None:
            raise Sa3Error(
                f"{container} files cannot hold {subtype}; use PCM_16 or PCM_24"
                + (" (or write a .wav file for FLOAT)." if container == "FLAC" else ".")
            )
        return fmt, ()
    default = ExportFormat.WAV_FLOAT if container == "WAV" else ExportFormat.FLAC_24
    if source is None or source.container != container:
        return default, ()
    same = by_pair.get((container, source.subtype))
    if same is not None:
        return same, ()
    return default, (
        f"{path.name}: {source.path.name} holds {source.subtype} samples, which are not "
        f"written here; wrote {default.label} (choose another with --subtype).",
    )


def _default_suffix(source: _Source | None) -> str:
    if source is not None:
        suffix = source.path.suffix.lower()
        if suffix in _CONTAINERS:
            return suffix
    return ".wav"


def _output_paths(
    output: str | None, command: str, seed: int, takes: int, suffix: str
) -> list[Path]:
    base = Path(output).expanduser() if output else Path(f"{command}_{seed}{suffix}")
    if base.suffix.lower() not in _CONTAINERS:
        raise Sa3Error(
            f"Cannot write {base.name}: the output must end in .wav, .flac, .ogg or .mp3."
        )
    if takes == 1:
        return [base]
    return [base.with_name(f"{base.stem}_{i}{base.suffix}") for i in range(1, takes + 1)]


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


def _check_generation_args(args: argparse.Namespace) -> None:
    if args.batch < 1:
        raise Sa3Error("--batch must be at least 1 (the number of takes).")
    if args.steps is not None and args.steps < 1:
        raise Sa3Error("--steps must be at least 1.")
    for name in ("duration", "add", "context", "seam"):
        value = getattr(args, name, None)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise Sa3Error(f"--{name} must be a positive number of seconds, not {value}.")
    if args.rate is not None and not 1000 <= args.rate <= 768000:
        raise Sa3Error(f"--rate {args.rate} Hz is not a usable sample rate (1000-768000).")
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
        prompts = args.inpaint_prompt
        if prompts and len(prompts) != len(starts):
            raise Sa3Error(
                f"{len(prompts)} --inpaint-prompt for {len(starts)} regions were given; give one "
                "per region ('' for the main prompt), or none."
            )
        for s, e in zip(starts, ends, strict=True):
            if not (math.isfinite(s) and math.isfinite(e)):
                raise Sa3Error(f"The region {s}-{e} s is not a pair of numbers of seconds.")
    if getattr(args, "crossfade_ms", 0.0) < 0:
        raise Sa3Error("--crossfade-ms must be zero or more.")
    if args.command == "vary" and not 0 < args.init_noise_level <= 1:
        raise Sa3Error("--init-noise-level must be greater than 0 and at most 1.")


def _source_path(args: argparse.Namespace) -> str | None:
    for name in ("inpaint_audio", "init_audio", "audio"):
        value = getattr(args, name, None)
        if value:
            return str(value)
    return None


def _frames(seconds: float, rate: int) -> int:
    """Seconds given on the command line, as frames of the source (the only float step)."""
    return round(seconds * rate)


def _plan(
    args: argparse.Namespace, source: _Source | None, limits: ModelLimits, console: _Console
) -> tuple[Plan, LoopPlan | None]:
    """The workflow plan for the command (raises before any model is loaded)."""
    from sa3_studio.workflow import plan as wp
    from sa3_studio.workflow.loop import plan_loop

    command = args.command
    if command == "generate":
        rate = args.rate or OUTPUT_RATE
        seconds = args.duration if args.duration is not None else DEFAULT_DURATION_S
        return wp.plan_new(_frames(seconds, rate), rate, limits), None
    assert source is not None
    rate, frames = source.rate, source.frames
    if command == "inpaint":
        prompts = args.inpaint_prompt or [""] * len(args.inpaint_start)
        regions = [
            wp.SampleRange(_frames(s, rate), _frames(e, rate), prompt=p.strip() or None)
            for s, e, p in zip(args.inpaint_start, args.inpaint_end, prompts, strict=True)
        ]
        return (
            wp.plan_regions(frames, rate, regions, limits, context_s=args.context, split_long=True),
            None,
        )
    if command == "vary":
        vary_end = frames
        if args.duration is not None:
            vary_end = _frames(args.duration, rate)
            if vary_end > frames:
                raise Sa3Error(
                    f"vary makes at most the length of {source.path.name} "
                    f"({source.frames / rate:.3f} s), not {args.duration:g} s; use `continue` "
                    "to make it longer."
                )
        return (
            wp.plan_regions(
                frames, rate, [wp.SampleRange(0, vary_end)], limits, mode=wp.Mode.VARY,
                context_s=args.context, split_long=True,
            ),
            None,
        )  # fmt: skip
    if command == "loop":
        seam = None if args.seam is None else _frames(args.seam, rate)
        loop = plan_loop(frames, rate, limits, seam_frames=seam, context_s=args.context)
        return loop.plan, loop
    # continue
    if args.add is not None:
        added = _frames(args.add, rate)
    elif args.duration is None:
        raise Sa3Error("`continue` needs --add SECONDS (or --duration, the total length).")
    else:
        total = _frames(args.duration, rate)
        added = total - frames
        if added <= 0:
            added = total
            console.note(
                f"{source.path.name} is already {frames / rate:.3f} s long, longer than "
                f"--duration {args.duration:g}; adding {args.duration:g} s to it instead "
                f"(use --add to say how much to add)."
            )
    side = "before" if args.before else "after"
    return wp.plan_extend(frames, rate, side, added, limits, context_s=args.context), None


def _run_generation(args: argparse.Namespace, console: _Console) -> int:
    from sa3_studio.workflow import ModelLimits, Settings
    from sa3_studio.workflow.request import PROMPT_PREFIXES, default_prefix, random_seed

    _check_generation_args(args)
    remote = None
    if getattr(args, "server", None):  # --server: the model and its LoRAs are the server's
        from sa3_studio.remote import cli as remote_cli

        remote = remote_cli.connect(args)
        info = remote_cli.model_info(remote)
    else:
        info = _resolve_model(args.model)
    source: _Source | None = None
    path = _source_path(args)
    if path is not None:
        source = _convert_source(_read_source(path), args.rate, args.channels)
    if remote is not None:
        loras = remote_cli.lora_choices(args.lora)
    else:
        loras = [_parse_lora(spec) for spec in args.lora]
    limits = ModelLimits.of(info.sample_rate or MODEL_RATE_FALLBACK, info.max_seconds or 120.0)
    plan, loop = _plan(args, source, limits, console)
    if plan.in_parts and args.batch > 1:
        raise Sa3Error(
            "A region longer than one window is made in parts, each hearing the part before, "
            f"so one take at a time; leave out --batch {args.batch} (or run again with "
            "another --seed)."
        )
    seed = args.seed if args.seed is not None and args.seed >= 0 else random_seed()
    prefix = "" if args.no_prefix else PROMPT_PREFIXES[default_prefix(info.name)]
    settings = Settings(
        prompt=args.prompt,
        prefix=prefix,
        negative_prompt=args.negative_prompt or "",
        tempo_bpm=args.bpm,
        key=args.key or "",
        seed=seed,
        takes=args.batch,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        sampler=args.sampler,
        vary_strength=getattr(args, "init_noise_level", 0.6),
        loras=tuple((str(p), s) for p, s in loras),
    )
    suffix = _default_suffix(source)
    paths = _output_paths(args.output, args.command, seed, settings.takes, suffix)
    formats = [_output_format(p, source, args.subtype) for p in paths]
    if source is not None:
        console.note(source.describe())
        for notice in source.notices:
            console.note(f"{source.path.name}: {notice}")

    console.note(f"Model: {info.name} ({info.path})")
    windows = loop.describe() if loop is not None else plan.describe()
    for line in windows:
        console.line(line[0].upper() + line[1:])
    pipe = remote if remote is not None else make_pipeline(info, args, console)
    for p, strength in loras:
        console.note(f"LoRA: {p.name} at strength {strength:g}")
    console.line(f"Prompt: {settings.full_prompt()!r}")
    if settings.negative_prompt:
        console.line(f"Negative prompt: {settings.negative_prompt!r}")
    console.line(f"Seed: {seed}")

    outputs = _generate(pipe, plan, settings, source, loop, args, console)
    _write_outputs(args, console, info, settings, plan, windows, outputs, source, paths, formats)
    return 0


def make_pipeline(info: ModelInfo, args: argparse.Namespace, console: _Console) -> PipelineLike:
    """The one place the commands make a pipeline (a loaded model, here on this machine)."""
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


def _generate(
    pipe: PipelineLike,
    plan: Plan,
    settings: Settings,
    source: _Source | None,
    loop: LoopPlan | None,
    args: argparse.Namespace,
    console: _Console,
) -> tuple[FloatAudio, ...]:
    from sa3_studio.workflow.level import Level
    from sa3_studio.workflow.run import run_plan

    t0 = time.perf_counter()
    token = CancelToken()
    count = len(plan.windows)

    def on_step(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        console.bar("Generating", done, total, f"step {done}/{total}, {elapsed:.1f} s")

    def on_window(number: int, _window: WindowPlan) -> None:
        if count > 1:
            console.note(f"Window {number} of {count}")

    audio = None if source is None else source.audio
    if loop is not None and audio is not None:
        audio = loop.turn(audio)
    console.bar("Generating", 0, 1, "preparing")
    try:
        outcome = run_plan(
            pipe,
            plan,
            settings,
            audio,
            crossfade_frames=round(getattr(args, "crossfade_ms", 0.0) / 1000.0 * plan.rate),
            raw=bool(getattr(args, "raw", False)),
            level=Level(getattr(args, "level", "keep")),
            on_step=on_step,
            on_window=on_window,
            cancel=token,
        )
    except KeyboardInterrupt:
        token.cancel()
        console.end_bar()
        raise Cancelled("Generation was interrupted; nothing was written.") from None
    console.end_bar()
    console.note(f"Generated in {time.perf_counter() - t0:.1f} s")
    if outcome.model_peak_dbtp > 0.0:
        console.note(
            f"The model's output peaked at {outcome.model_peak_dbtp:+.1f} dBTP; it is kept "
            "as float audio, not clipped."
        )
    outputs = outcome.outputs
    if loop is not None:
        outputs = tuple(loop.unturn(o) for o in outputs)
    return tuple(np.ascontiguousarray(o, dtype=np.float32) for o in outputs)


def _write_outputs(
    args: argparse.Namespace,
    console: _Console,
    info: ModelInfo,
    settings: Settings,
    plan: Plan,
    windows: list[str],
    outputs: tuple[FloatAudio, ...],
    source: _Source | None,
    paths: list[Path],
    formats: list[tuple[ExportFormat, tuple[str, ...]]],
) -> None:
    from sa3_studio.audio.files import ExportOptions, ExportTags, export_audio
    from sa3_studio.audio.true_peak import true_peak_dbtp
    from sa3_studio.workflow.splice import to_channels

    takes = len(outputs)
    for i, (path, audio, (fmt, notices)) in enumerate(zip(paths, outputs, formats, strict=True)):
        if source is None:  # new audio: stereo unless asked otherwise
            audio = to_channels(audio, args.channels or 2)
        comment = f"sa3-studio {args.command}"
        if takes > 1:
            comment += f"; take {i + 1} of {takes} made together (same seed, --batch {takes})"
        if settings.steps is not None or settings.sampler is not None:
            comment += (
                f"; steps {settings.steps or 'default'}, sampler {settings.sampler or 'default'}"
            )
        comment += "\n" + "\n".join(windows)
        tags = ExportTags(
            prompt=settings.full_prompt(), seed=settings.seed, model=info.name, comment=comment
        )
        # No dither: every sample outside the regions must come back exactly as it was read.
        options = ExportOptions(format=fmt, tags=tags, dither=False)
        written = export_audio(path, audio, plan.rate, options)
        peak = true_peak_dbtp(audio)
        console.line(
            f"Wrote {written.path} ({written.frames / written.sample_rate:.3f} s, "
            f"{written.sample_rate} Hz, {written.channels} channel"
            f"{'s' if written.channels != 1 else ''}, {fmt.label})"
        )
        if peak > 0.0:
            console.note(_over_peak_note(written.path.name, peak, getattr(args, "level", "keep")))
        for notice in (*notices, *written.notices):
            console.note(notice)


def _over_peak_note(name: str, peak: float, level: str) -> str:
    """What to say about a written file whose true peak is over 0 dBTP."""
    if level != "keep":
        return (
            f"{name}: true peak {peak:+.1f} dBTP, over 0 dBTP where the source's own audio (or a "
            "crossfade into it) peaks; the new audio is at or under -1 dBTP."
        )
    return (
        f"{name}: true peak {peak:+.1f} dBTP, over 0 dBTP: it clips on playback and after lossy "
        "encoding. Run again with --limit (a true-peak limiter to -1 dBTP) or --gain-to-ceiling "
        "(the new audio turned down to -1 dBTP)."
    )
