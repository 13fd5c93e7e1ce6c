"""From the project, its regions and the Generate panel's settings to engine requests, and back.

Three steps, none of them touching Qt:

1. :func:`plan_generation` (GUI thread, fast): picks the regions, composes the prompts (prefix,
   tempo and key), groups regions that share a prompt into one pass, and runs the editor's
   context-window planner (:func:`sa3_studio.workflow.plan.plan_windows_for`, the same rules as
   the command line) so that long songs,
   or songs longer than the chosen context, send only a window around the regions. The result
   is a :class:`GenerationPlan` that says which window is sent.
2. :class:`GenerationTask` (model thread): cuts each window out of the track, converts it to the
   model's rate, encodes it once, generates one take per seed reusing those latents, converts
   back and cuts each region's audio out of the result. It also scores the seams and measures
   the loudness match a take would need, so that the panel can show both at once.
3. :func:`takes_from_outcome` (GUI thread): turns the generated audio into document
   :class:`~sa3_studio.document.take.Take` objects, ready for ``DocumentController.add_take``.

Modes: regenerate the selected regions, extend the song before its start or after its end
(continuation into new silence), vary regions (audio-to-audio with a strength) and new audio
from a prompt (on a new track, or inserted at the cursor). Extend and new-at-cursor first make
room with an undoable edit (:func:`prepare_extend`, :func:`prepare_new`) and then regenerate
the new region with the song around it as context.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sa3_studio.audio.seam import seam_scores
from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.document.arrange import add_track
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.context import Window, WindowRegion
from sa3_studio.document.crossfade import splice
from sa3_studio.document.edits import insert_silence
from sa3_studio.document.ids import new_id
from sa3_studio.document.project import Project
from sa3_studio.document.region import Region
from sa3_studio.document.region_edits import add_region, next_take_number
from sa3_studio.document.take import (
    GenerationSettings,
    LoraUse,
    LoudnessReport,
    Provenance,
    SeamReport,
    Take,
)
from sa3_studio.document.timefmt import format_range, format_time_compact
from sa3_studio.engine.api import (
    SAMPLERS,
    CancelToken,
    GenerationResult,
    ModelInfo,
    PipelineLike,
    StepCallback,
)
from sa3_studio.errors import EditError, GenerationError
from sa3_studio.workflow.loop import plan_loop
from sa3_studio.workflow.loras import apply_loras, lora_file_hash, loras_text
from sa3_studio.workflow.plan import Mode as WorkflowMode
from sa3_studio.workflow.plan import ModelLimits, PlacedRegion, Plan, WindowPlan, plan_windows_for
from sa3_studio.workflow.request import (
    PROMPT_PREFIXES,
    SEED_LIMIT,
    Settings,
    build_request,
    compose_prompt,
    default_prefix,
    random_seed,
    to_model,
)
from sa3_studio.workflow.run import run_plan
from sa3_studio.workflow.splice import region_audio, whole_window

__all__ = [
    "PROMPT_PREFIXES",
    "SEED_LIMIT",
    "apply_loras",
    "compose_prompt",
    "default_prefix",
    "loras_text",
    "random_seed",
]

log = logging.getLogger(__name__)

KEYS: tuple[str, ...] = tuple(
    f"{note} {quality}"
    for quality in ("major", "minor")
    for note in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
)
"""Musical keys the panel offers (appended to the prompt when chosen)."""

SEAM_CONTEXT_S = 1.0
"""Song audio on each side of a region used to score its seams."""

LOUDNESS_CONTEXT_S = 3.0
"""Song audio on each side of a region the loudness match compares the take with."""

DEFAULT_CROSSFADE_S = 0.025


class Mode(enum.StrEnum):
    """What the Generate panel does."""

    REGENERATE = "regenerate"
    EXTEND = "extend"
    VARY = "vary"
    NEW = "new"


def strip_prefix(prompt: str) -> tuple[str, str]:
    """Split a composed prompt into (prefix name, rest); ("None", prompt) without a prefix."""
    for name, prefix in PROMPT_PREFIXES.items():
        if prefix and prompt.startswith(prefix):
            return name, prompt[len(prefix) :]
    return "None", prompt


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model a generation is planned for.

    Attributes:
        name: its name ("small-music").
        path: its folder.
        sample_rate: its audio rate.
        max_seconds: the longest audio one pass can make (the largest context).
        is_base: a -base model (CFG scale and negative prompt apply).
    """

    name: str
    path: str
    sample_rate: int = SAMPLE_RATE
    max_seconds: float = 120.0
    is_base: bool = False

    @classmethod
    def from_info(cls, info: ModelInfo) -> ModelChoice:
        """From a model found on disk."""
        return cls(info.name, info.path, info.sample_rate, info.max_seconds, info.is_base)


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """Everything the Generate panel sets.

    Attributes:
        mode: what to do.
        prompt: the user's text (without the prefix).
        prefix: name of the tag prefix in :data:`PROMPT_PREFIXES`.
        negative_prompt: what should not be heard (-base models only).
        use_region_prompts: a region with its own prompt uses it instead of ``prompt``.
        steps: sampler steps (``None`` = the model's default).
        cfg_scale: guidance scale (-base models only; ``None`` = the model's default).
        seed: the first take's seed; take ``i`` uses ``seed + i``.
        takes: how many takes to make per region.
        context_s: the longest window sent to the model (``None`` = as long as it allows).
        tempo_bpm: appended to the prompt when set.
        key: appended to the prompt when set.
        extend_side: "before" the start or "after" the end (Extend).
        extend_s: seconds to add (Extend).
        vary_strength: 0..1, how far a variation may move from the original (Vary).
        new_place: "track" (a new track) or "cursor" (inserted at the cursor) (New).
        new_s: seconds of new audio (New).
        crossfade_s: crossfade an accepted take will get (used to score the seams).
        loras: ``(file, strength)`` of the LoRAs to apply, in order (0 = off, 1 = as trained).
        sampler: "euler", "dpmpp" or "rk4" for -base models (``None`` = the model's default).
    """

    mode: Mode = Mode.REGENERATE
    prompt: str = ""
    prefix: str = "Music"
    negative_prompt: str = ""
    use_region_prompts: bool = True
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int = 0
    takes: int = 2
    context_s: float | None = None
    tempo_bpm: float | None = None
    key: str = ""
    extend_side: str = "after"
    extend_s: float = 10.0
    vary_strength: float = 0.6
    new_place: str = "track"
    new_s: float = 10.0
    crossfade_s: float = DEFAULT_CROSSFADE_S
    loras: tuple[tuple[str, float], ...] = ()
    sampler: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            raise GenerationError(
                f"{self.mode!r} is not a mode; use regenerate, extend, vary or new."
            ) from None

    @property
    def prefix_text(self) -> str:
        """The prefix itself."""
        return PROMPT_PREFIXES.get(self.prefix, "")

    def compose(self, text: str | None = None) -> str:
        """The full prompt for ``text`` (default: the panel's prompt)."""
        return compose_prompt(
            self.prefix_text,
            self.prompt if text is None else text,
            tempo_bpm=self.tempo_bpm,
            key=self.key,
        )

    def seeds(self) -> tuple[int, ...]:
        """One seed per take."""
        return tuple((int(self.seed) + i) % SEED_LIMIT for i in range(max(1, self.takes)))


@dataclass(frozen=True, slots=True)
class PlannedPass:
    """One window sent to the model, with the regions it regenerates.

    Attributes:
        track_id: the track the window is cut from.
        window: where in the song (project frames) and where its regions lie in it.
        prompt: the full prompt.
        negative_prompt: "" for none.
        text_only: generate without context (a new, empty track).
        text: the user's own words in ``prompt`` (region prompt or panel prompt).
    """

    track_id: str
    window: Window
    prompt: str
    negative_prompt: str = ""
    text_only: bool = False
    text: str = ""

    @property
    def region_ids(self) -> tuple[str, ...]:
        """The regions this pass makes takes for."""
        return tuple(r.region_id for r in self.window.regions)

    def describe(self) -> str:
        """``Window 1:02–3:02 (2:00) for 2 regions``."""
        w = self.window
        count = len(w.regions)
        what = "1 region" if count == 1 else f"{count} regions"
        if self.text_only:
            return f"New audio {format_range(w.start, w.end)} from the prompt alone"
        return f"Window {format_range(w.start, w.end)} ({format_time_compact(w.length)}) for {what}"


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """What one press of Generate will do.

    Attributes:
        mode: the panel's mode.
        model: the model it is planned for.
        passes: the windows to send, in song order.
        seeds: one per take.
        steps: sampler steps (``None`` = the model's default).
        cfg_scale: guidance scale (``None`` = default; always ``None`` for post-trained models).
        init_strength: Vary's init noise level (``None`` outside Vary).
        options: the panel settings it came from.
        parent_take_id: the take a re-roll derives from.
        label: what the queue shows.
        loop: make each region a seamless loop (regenerate where its end meets its start,
            with the region itself as the loop; see :mod:`sa3_studio.workflow.loop`).
    """

    mode: Mode
    model: ModelChoice
    passes: tuple[PlannedPass, ...]
    seeds: tuple[int, ...]
    steps: int | None = None
    cfg_scale: float | None = None
    init_strength: float | None = None
    options: GenerateOptions = field(default_factory=GenerateOptions)
    parent_take_id: str | None = None
    label: str = ""
    loop: bool = False

    @property
    def sampler(self) -> str | None:
        """The sampler asked for: -base models only (post-trained ones always use ping-pong)."""
        return self.options.sampler if self.model.is_base else None

    @property
    def region_ids(self) -> tuple[str, ...]:
        """Every region the plan makes takes for."""
        return tuple(rid for p in self.passes for rid in p.region_ids)

    @property
    def uses_context_window(self) -> bool:
        """True when at least one pass sends only part of the song."""
        return any(not p.text_only for p in self.passes)

    def describe(self) -> list[str]:
        """One line per pass, for the panel ("which window is sent")."""
        return [p.describe() for p in self.passes]


# -- planning (GUI thread) -----------------------------------------------------------------------


def _context_s(options: GenerateOptions, model: ModelChoice) -> float:
    longest = model.max_seconds if model.max_seconds > 0 else 120.0
    if options.context_s is None:
        return longest
    if not math.isfinite(options.context_s) or options.context_s <= 0:
        raise GenerationError("The context length must be a positive number of seconds.")
    return min(options.context_s, longest)


def _check_options(options: GenerateOptions) -> None:
    if options.takes < 1:
        raise GenerationError("The number of takes must be at least 1.")
    if options.steps is not None and options.steps < 1:
        raise GenerationError("The number of steps must be at least 1.")
    if not 0 <= options.seed < SEED_LIMIT:
        raise GenerationError(f"The seed must be a whole number from 0 to {SEED_LIMIT - 1}.")
    if options.mode is Mode.VARY and not 0.0 < options.vary_strength <= 1.0:
        raise GenerationError("The variation strength must be more than 0 and at most 1.")
    if options.sampler is not None and options.sampler not in SAMPLERS:
        raise GenerationError(
            f"{options.sampler!r} is not a sampler; use one of {', '.join(SAMPLERS)}."
        )
    for path, strength in options.loras:
        if not math.isfinite(strength):
            raise GenerationError(f"The strength of the LoRA {path} must be a number.")


def _region_prompt(region: Region, options: GenerateOptions) -> tuple[str, str, str]:
    """(full prompt, negative prompt, the user's words) for one region."""
    own = options.use_region_prompts and bool(region.prompt.strip())
    text = region.prompt if own else options.prompt
    negative = options.negative_prompt
    if options.use_region_prompts and region.negative_prompt.strip():
        negative = region.negative_prompt
    return options.compose(text), negative.strip(), " ".join(text.split())


def plan_generation(
    project: Project,
    region_ids: Sequence[str],
    options: GenerateOptions,
    model: ModelChoice,
    *,
    text_only: bool = False,
    parent_take_id: str | None = None,
    loop: bool = False,
) -> GenerationPlan:
    """Plan the passes that regenerate ``region_ids`` with ``options``.

    With ``loop``, each region is a loop on its own: one pass per region, whose window is the
    region, regenerating where its end meets its start.

    Regions on one track that share a prompt go together (one pass when they fit in one
    window); regions with different prompts get a pass each. Windows come from the context
    planner, at most ``options.context_s`` (or the model's maximum) long.

    Args:
        project: the current snapshot.
        region_ids: the regions to make takes for.
        options: the panel's settings.
        model: the model it will run on.
        text_only: generate from the prompt alone, without the song around (a new track).
        parent_take_id: the take a re-roll derives from.

    Raises:
        EditError: no region, a missing region, or a region too long for the context.
        GenerationError: settings out of range, or empty prompt text with nothing to go by.
    """
    _check_options(options)
    if not region_ids:
        raise EditError(
            "There is no region to generate; select a part of the waveform (or a region) first."
        )
    regions = [project.region(rid) for rid in dict.fromkeys(region_ids)]
    context_s = _context_s(options, model)
    limits = ModelLimits.of(
        model.sample_rate, model.max_seconds if model.max_seconds > 0 else 120.0
    )
    groups: dict[tuple[str, str, str, str], list[Region]] = {}
    for r in regions:
        prompt, negative, text = _region_prompt(r, options)
        if text_only and not prompt:
            raise GenerationError("New audio needs a prompt; describe what should be heard.")
        groups.setdefault((r.track_id, prompt, negative, text), []).append(r)
    passes: list[PlannedPass] = []
    for (track_id, prompt, negative, text), members in groups.items():
        if text_only or loop:
            for r in members:
                window = Window(r.start, r.end, (WindowRegion(r.id, 0, r.length),))
                if loop:  # checked here, so that the panel explains a loop that cannot be
                    plan_loop(r.length, SAMPLE_RATE, limits, context_s=context_s)
                passes.append(
                    PlannedPass(track_id, window, prompt, negative, text_only=text_only, text=text)
                )
            continue
        song = max(project.track(track_id).end, project.frames)
        placed = [PlacedRegion(r.id, r.start, r.end, name=r.name) for r in members]
        for w in plan_windows_for(placed, song, SAMPLE_RATE, limits, context_s):
            inner = tuple(WindowRegion(r.id, r.start - w.start, r.end - w.start) for r in w.regions)
            window = Window(w.start, w.end, inner)
            passes.append(PlannedPass(track_id, window, prompt, negative, text=text))
    passes.sort(key=lambda p: (p.window.start, p.track_id))
    seeds = options.seeds()
    n_regions = len(regions)
    what = "1 region" if n_regions == 1 else f"{n_regions} regions"
    takes = "1 take" if len(seeds) == 1 else f"{len(seeds)} takes"
    verb = {
        Mode.REGENERATE: "Regenerate",
        Mode.EXTEND: "Extend",
        Mode.VARY: "Vary",
        Mode.NEW: "New audio",
    }[options.mode]
    if loop:
        verb = "Make seamless loop of"
    if parent_take_id is not None:
        verb = "Re-roll"
    return GenerationPlan(
        mode=options.mode,
        model=model,
        passes=tuple(passes),
        seeds=seeds,
        steps=options.steps,
        cfg_scale=options.cfg_scale if model.is_base else None,
        init_strength=options.vary_strength if options.mode is Mode.VARY else None,
        options=options,
        parent_take_id=parent_take_id,
        label=f"{verb} {what} · {takes}",
        loop=loop,
    )


def prepare_extend(
    project: Project, track_id: str, side: str, seconds: float, prompt: str = ""
) -> tuple[Project, str]:
    """Make room to extend the song and add a region over the new span (an undoable edit).

    "after" appends silence at the end of the song; "before" inserts it at 0:00 on every track
    (so the tracks stay in time). The region then gets regenerated with the song as context:
    a continuation.

    Returns:
        ``(new project, the new region's id)``.

    Raises:
        EditError: bad length or side, or an empty song.
    """
    frames = round(seconds * SAMPLE_RATE) if math.isfinite(seconds) else 0
    if frames < 1:
        raise EditError("Choose how many seconds to add (more than zero).")
    if project.frames == 0:
        raise EditError("The song is empty, so there is nothing to extend; open audio first.")
    if side == "after":
        at = project.frames
        project = insert_silence(project, at, frames)
    elif side == "before":
        at = 0
        project = insert_silence(project, 0, frames)
    else:
        raise EditError("Extend the song 'before' its start or 'after' its end.")
    return add_region(project, track_id, at, at + frames, name="Extension", prompt=prompt)


def prepare_new(
    project: Project, place: str, at: int, seconds: float, prompt: str = ""
) -> tuple[Project, str, bool]:
    """Make room for new audio from a prompt and add a region over it (an undoable edit).

    "track" adds an empty track with a region at ``at`` (generated from the prompt alone);
    "cursor" inserts silence at ``at`` on every track and adds a region there on the first
    track (generated with the song around it as context).

    Returns:
        ``(new project, the new region's id, text_only)``.
    """
    frames = round(seconds * SAMPLE_RATE) if math.isfinite(seconds) else 0
    if frames < 1:
        raise EditError("Choose how many seconds of new audio to make (more than zero).")
    at = max(0, int(at))
    if place == "track":
        project, track_id = add_track(project, "Generated")
        project, rid = add_region(project, track_id, at, at + frames, name="New", prompt=prompt)
        return project, rid, True
    if place == "cursor":
        if not project.tracks:
            raise EditError("The project has no tracks; open an audio file first.")
        at = min(at, project.frames)
        project = insert_silence(project, at, frames)
        track_id = project.tracks[0].id
        project, rid = add_region(project, track_id, at, at + frames, name="New", prompt=prompt)
        return project, rid, False
    raise EditError("Place new audio on a 'track' or at the 'cursor'.")


# -- running (model thread) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeneratedTake:
    """The audio of one take for one region, with everything needed to keep it.

    Attributes:
        region_id: the region.
        audio: ``(2, region frames)`` at the project rate.
        prompt: the full prompt sent.
        negative_prompt: "" for none.
        seed: the seed used.
        settings: the settings used.
        elapsed_s: seconds this take cost (its share of encoding included).
        parent_take_id: the take it was re-rolled from.
        provenance: how it was made (window, prompt parts, LoRAs, seam and loudness).
        true_peak_dbtp: the audio's true peak, measured on the model thread so that the
            window never measures it (None: not measured).
    """

    region_id: str
    audio: AudioData
    prompt: str
    negative_prompt: str
    seed: int
    settings: GenerationSettings
    elapsed_s: float
    parent_take_id: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    true_peak_dbtp: float | None = None


@dataclass(frozen=True, slots=True)
class GenerationOutcome:
    """What a :class:`GenerationTask` returns.

    Attributes:
        plan: the plan it ran.
        takes: every take made, pass by pass, take by take.
        model_name: the model that made them.
        weights_hash: its weights.
        elapsed_s: seconds the whole job took on the model thread.
    """

    plan: GenerationPlan
    takes: tuple[GeneratedTake, ...]
    model_name: str
    weights_hash: str
    elapsed_s: float


def _score(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 3)


def seam_and_loudness(
    project: Project,
    track_id: str,
    start: int,
    take: npt.NDArray[np.float32],
    crossfade_s: float = DEFAULT_CROSSFADE_S,
) -> tuple[SeamReport, LoudnessReport]:
    """Seam scores of a take spliced into its track, and the gain that matches its loudness.

    Returns:
        ``(seams, loudness)``: seam scores (``None`` at the song's edges) and whether one is
        bad; the matching gain with the sentence saying why.
    """
    track = project.track(track_id)
    end = start + take.shape[-1]
    song_end = max(track.end, project.frames)
    seam_ctx = round(SEAM_CONTEXT_S * SAMPLE_RATE)
    before = track.read(max(0, start - seam_ctx), start)
    after = track.read(end, min(song_end, end + seam_ctx)) if end < song_end else before[:, :0]
    original = track.read(start, end)
    spliced_body = splice(original, take, round(crossfade_s * SAMPLE_RATE))
    joined = np.concatenate((before, spliced_body, after), axis=1)  # (2, T)
    boundaries: list[int] = []
    if before.shape[1] > 0:
        boundaries.append(before.shape[1])
    if after.shape[1] > 0:
        boundaries.append(before.shape[1] + take.shape[-1])
    scores = seam_scores(joined, boundaries, SAMPLE_RATE) if boundaries else []
    by_frame = {s.frame: s for s in scores}
    seam_in = by_frame.get(before.shape[1]) if before.shape[1] > 0 else None
    seam_out = by_frame.get(before.shape[1] + take.shape[-1]) if after.shape[1] > 0 else None
    seams = SeamReport(
        _score(seam_in.score) if seam_in else None,
        _score(seam_out.score) if seam_out else None,
        any(s.bad for s in scores),
    )
    # Imported here: the loudness meter pulls in scipy, which the window need not load to start.
    from sa3_studio.audio.loudness import match_gain

    loud_ctx = round(LOUDNESS_CONTEXT_S * SAMPLE_RATE)
    ref_before = track.read(max(0, start - loud_ctx), start)
    ref_after = track.read(end, min(song_end, end + loud_ctx)) if end < song_end else None
    refs = [a for a in (ref_before, ref_after) if a is not None and a.shape[1] > 0]
    if refs:
        match = match_gain(take, refs, sample_rate=SAMPLE_RATE)
        loudness = LoudnessReport(round(float(match.gain_db), 2), match.reason)
    else:
        loudness = LoudnessReport(
            0.0, "There is no song audio around the take to match its loudness to."
        )
    return seams, loudness


def seam_score_of(take: Take) -> float | None:
    """The worse of a take's two seam scores, or ``None`` when it has none."""
    seam = take.provenance.seam
    return None if seam is None else seam.worst


def seam_is_bad(take: Take) -> bool:
    """True when the take's splice scored as an audible seam."""
    seam = take.provenance.seam
    return seam is not None and seam.bad


class GenerationTask:
    """Runs a :class:`GenerationPlan` on the model thread.

    Args:
        plan: what to make.
        project: the snapshot the plan was made against (immutable, safe to read here).
        clock: seconds, for the timings (tests may pass a fake).
    """

    def __init__(
        self,
        plan: GenerationPlan,
        project: Project,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.plan = plan
        self.project = project
        self._clock = clock

    def run(
        self, pipeline: PipelineLike, on_step: StepCallback, cancel: CancelToken
    ) -> GenerationOutcome:
        """Make every take of the plan (called on the model thread).

        Raises:
            Cancelled: the user cancelled (checked before each step and between passes).
            GenerationError: the engine refused a request.
        """
        t_start = self._clock()
        plan = self.plan
        rate = int(pipeline.sample_rate)
        steps = plan.steps if plan.steps is not None else int(pipeline.default_steps)
        total = steps * len(plan.seeds) * len(plan.passes)
        done_before = 0
        made: list[GeneratedTake] = []
        model_name = plan.model.name
        weights_hash = str(getattr(pipeline, "weights_hash", ""))
        apply_loras(pipeline, plan.options.loras)
        for pass_ in plan.passes:
            cancel.raise_if_cancelled()
            made.extend(
                self._run_pass(pipeline, pass_, rate, steps, on_step, cancel, done_before, total)
            )
            done_before += steps * len(plan.seeds)
        return GenerationOutcome(
            plan=plan,
            takes=tuple(made),
            model_name=model_name,
            weights_hash=weights_hash,
            elapsed_s=self._clock() - t_start,
        )

    def _run_pass(
        self,
        pipeline: PipelineLike,
        pass_: PlannedPass,
        rate: int,
        steps: int,
        on_step: StepCallback,
        cancel: CancelToken,
        done_before: int,
        total: int,
    ) -> list[GeneratedTake]:
        plan = self.plan
        if plan.loop:
            return self._run_loop_pass(
                pipeline, pass_, rate, steps, on_step, cancel, done_before, total
            )
        wplan, wwindow = workflow_window(pass_, rate, float(pipeline.max_seconds), plan.mode)
        settings = dataclasses.replace(
            _pass_settings(plan, pass_, seed=plan.seeds[0], steps=steps),
            vary_strength=plan.init_strength if plan.init_strength is not None else 1.0,
        )
        track = self.project.track(pass_.track_id)
        t0 = self._clock()
        source_m: npt.NDArray[np.float32] | None = None
        latents: object = None
        if not pass_.text_only:
            source = track.read(wwindow.start, wwindow.end)  # (2, W) project rate
            source_m = to_model(source, SAMPLE_RATE, wplan.limits, wwindow.model_frames)
            latents = pipeline.encode(source_m, duration=wwindow.model_frames / rate)
        encode_s = self._clock() - t0
        results: list[tuple[int, GenerationResult, float]] = []
        for i, seed in enumerate(plan.seeds):
            cancel.raise_if_cancelled()
            base = done_before + i * steps

            def step(done: int, _total: int, base: int = base) -> None:
                on_step(base + done, total)

            request = build_request(
                wplan,
                wwindow,
                settings,
                seed=seed,
                audio=source_m,
                latents=latents,
                whole=pass_.text_only,
            )
            t1 = self._clock()
            result = pipeline.generate(request, on_step=step, cancel=cancel)
            results.append((seed, result, self._clock() - t1))
        out: list[GeneratedTake] = []
        share = encode_s / max(len(results), 1)
        shared = _pass_provenance(plan, pass_, mode=plan.mode.value, model_rate=rate)
        for seed, result, gen_s in results:
            cancel.raise_if_cancelled()
            if pass_.text_only:
                pieces = {wwindow.regions[0].id: whole_window(result, wplan, wwindow)}
            else:
                pieces = region_audio(result, wplan, wwindow)
            for r in wwindow.regions:
                take_audio = np.ascontiguousarray(pieces[r.id][0], dtype=np.float32)  # (2, n)
                seams: SeamReport | None = None
                loudness: LoudnessReport | None = None
                if not pass_.text_only:
                    seams, loudness = seam_and_loudness(
                        self.project, pass_.track_id, r.start, take_audio, plan.options.crossfade_s
                    )
                provenance = dataclasses.replace(
                    shared,
                    window_start=wwindow.start,
                    window_end=wwindow.end,
                    text_only=pass_.text_only,
                    seam=seams,
                    loudness=loudness,
                )
                settings_used = GenerationSettings(
                    steps=steps,
                    cfg_scale=plan.cfg_scale,
                    sampler=plan.sampler,
                    seed=seed,
                    init_noise_level=plan.init_strength if plan.init_strength else 1.0,
                    context_s=round(pass_.window.duration_s, 3),
                )
                out.append(
                    GeneratedTake(
                        region_id=r.id,
                        audio=AudioData.from_array(take_audio, copy=False),
                        prompt=pass_.prompt,
                        negative_prompt=pass_.negative_prompt,
                        seed=seed,
                        settings=settings_used,
                        elapsed_s=(gen_s + share) / max(len(wwindow.regions), 1),
                        parent_take_id=plan.parent_take_id,
                        provenance=provenance,
                        true_peak_dbtp=true_peak_dbtp(take_audio),
                    )
                )
        return out

    def _run_loop_pass(
        self,
        pipeline: PipelineLike,
        pass_: PlannedPass,
        rate: int,
        steps: int,
        on_step: StepCallback,
        cancel: CancelToken,
        done_before: int,
        total: int,
    ) -> list[GeneratedTake]:
        """One take per seed of the region made into a seamless loop (the whole region)."""
        plan = self.plan
        (wr,) = pass_.window.regions
        start, end = pass_.window.start + wr.start, pass_.window.start + wr.end
        audio = self.project.track(pass_.track_id).read(start, end)  # (2, L) project rate
        limits = ModelLimits.of(rate, float(pipeline.max_seconds) or 120.0)
        context_s = _context_s(plan.options, plan.model)
        loop = plan_loop(audio.shape[-1], SAMPLE_RATE, limits, context_s=context_s)
        turned = loop.turn(audio)
        fade = round(plan.options.crossfade_s * SAMPLE_RATE)
        shared = _pass_provenance(plan, pass_, mode="loop", model_rate=rate)
        out: list[GeneratedTake] = []
        for i, seed in enumerate(plan.seeds):
            cancel.raise_if_cancelled()
            base = done_before + i * steps * len(loop.plan.windows)

            def step(done: int, _total: int, base: int = base) -> None:
                on_step(base + done, total)

            settings = _pass_settings(plan, pass_, seed=seed, steps=steps)
            t0 = self._clock()
            outcome = run_plan(
                pipeline, loop.plan, settings, turned, crossfade_frames=fade, on_step=step,
                cancel=cancel,
            )  # fmt: skip
            take_audio = np.ascontiguousarray(loop.unturn(outcome.outputs[0]), dtype=np.float32)
            window = loop.plan.windows[0]
            provenance = dataclasses.replace(
                shared, window_start=start, window_end=start + window.length
            )
            out.append(
                GeneratedTake(
                    region_id=wr.region_id,
                    audio=AudioData.from_array(take_audio, copy=False),
                    prompt=pass_.prompt,
                    negative_prompt=pass_.negative_prompt,
                    seed=seed,
                    settings=GenerationSettings(
                        steps=steps,
                        cfg_scale=plan.cfg_scale,
                        sampler=plan.sampler,
                        seed=seed,
                        context_s=round(window.length / SAMPLE_RATE, 3),
                    ),
                    elapsed_s=self._clock() - t0,
                    parent_take_id=plan.parent_take_id,
                    provenance=provenance,
                    true_peak_dbtp=true_peak_dbtp(take_audio),
                )
            )
        return out


def _pass_settings(plan: GenerationPlan, pass_: PlannedPass, *, seed: int, steps: int) -> Settings:
    """The workflow settings of one take of a pass: its prompts, seed and the plan's sampling."""
    return Settings(
        prompt=pass_.prompt,
        negative_prompt=pass_.negative_prompt,
        seed=seed,
        steps=steps,
        cfg_scale=plan.cfg_scale,
        sampler=plan.sampler,
    )


def _pass_provenance(
    plan: GenerationPlan, pass_: PlannedPass, *, mode: str, model_rate: int
) -> Provenance:
    """What the provenance of every take of a pass shares: how it was asked for (mode, prefix,
    the user's words, tempo, key), the model's rate and the LoRAs with their file hashes."""
    return Provenance(
        mode=mode,
        prefix=plan.options.prefix,
        user_prompt=pass_.text,
        tempo_bpm=float(plan.options.tempo_bpm) if plan.options.tempo_bpm else None,
        key=plan.options.key,
        model_rate=model_rate,
        loras=tuple(
            LoraUse(path, strength, lora_file_hash(path)) for path, strength in plan.options.loras
        ),
    )


def workflow_window(
    pass_: PlannedPass, model_rate: int, max_seconds: float, mode: Mode
) -> tuple[Plan, WindowPlan]:
    """A planned pass as the workflow's window (project frames, the model's limits)."""
    limits = ModelLimits.of(model_rate, max_seconds if max_seconds > 0 else 120.0)
    w = pass_.window
    regions = tuple(
        PlacedRegion(r.region_id, w.start + r.start, w.start + r.end) for r in w.regions
    )
    model_frames = min(limits.max_frames, limits.model_frames(w.length, SAMPLE_RATE))
    window = WindowPlan(w.start, w.end, regions, model_frames, text_only=pass_.text_only)
    wmode = WorkflowMode.NEW if pass_.text_only else WorkflowMode(mode.value)
    plan = Plan(wmode, SAMPLE_RATE, w.end, w.end, 0, (window,), limits)
    return plan, window


# -- back to the document (GUI thread) ----------------------------------------------------------


def takes_from_outcome(
    project: Project, outcome: GenerationOutcome, *, now: Callable[[], float] = time.time
) -> list[Take]:
    """Document takes for the generated audio, numbered after each region's existing takes.

    A region that has gone from the current snapshot (deleted, or undone) still gets its takes:
    they are kept as orphans so that redo (or undo) brings them back with it.
    """
    taken = set(project.ids())
    numbers: dict[str, int] = {}
    out: list[Take] = []
    created = now()
    for g in outcome.takes:
        number = numbers.get(g.region_id) or next_take_number(project, g.region_id)
        numbers[g.region_id] = number + 1
        take_id = new_id("take", taken)
        taken.add(take_id)
        out.append(
            Take(
                id=take_id,
                region_id=g.region_id,
                number=number,
                audio=g.audio,
                prompt=g.prompt,
                negative_prompt=g.negative_prompt,
                seed=g.seed,
                model_name=outcome.model_name,
                weights_hash=outcome.weights_hash,
                settings=g.settings,
                created_at=created,
                elapsed_s=max(0.0, float(g.elapsed_s)),
                parent_take_id=g.parent_take_id,
                provenance=g.provenance,
            )
        )
    return out


def options_from_take(take: Take, base: GenerateOptions) -> GenerateOptions:
    """The panel settings that made ``take`` (for "copy settings to the panel")."""
    made = take.provenance
    prefix, rest = strip_prefix(take.prompt)
    user = made.user_prompt
    tempo = made.tempo_bpm
    key = made.key
    mode = made.mode
    text = user or rest
    if user:
        prefix = made.prefix or prefix
    else:
        # Without the user's own text on record, strip the appended tempo and key back off.
        for tail in (key, f"{tempo:g} BPM" if tempo else ""):
            if tail and text.endswith(tail):
                text = text[: -len(tail)].rstrip(", ")
    try:
        chosen = Mode(mode) if mode else base.mode
    except ValueError:
        chosen = base.mode
    if chosen in (Mode.EXTEND, Mode.NEW):
        chosen = Mode.REGENERATE  # the room was made already; more takes regenerate it
    return dataclasses.replace(
        base,
        mode=chosen,
        prompt=text,
        prefix=prefix if prefix in PROMPT_PREFIXES else base.prefix,
        negative_prompt=take.negative_prompt,
        steps=take.settings.steps,
        cfg_scale=take.settings.cfg_scale,
        sampler=take.settings.sampler if take.settings.sampler in SAMPLERS else None,
        seed=int(take.seed) % SEED_LIMIT,
        context_s=take.settings.context_s,
        tempo_bpm=float(tempo) if tempo else None,
        key=key,
        vary_strength=(
            take.settings.init_noise_level
            if take.settings.init_noise_level < 1.0
            else base.vary_strength
        ),
    )
