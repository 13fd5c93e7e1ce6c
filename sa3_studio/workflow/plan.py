"""Plan a generation: which windows of the source go to the model, and where results land.

Everything here is in integer frames of the *source* (its own sample rate): regions, windows
and the output. Seconds appear only in messages and in the engine request (window-relative,
see :mod:`sa3_studio.workflow.request`). The model's length limit is converted to source frames
once, rounded down, so a window's length at the model's rate never exceeds the model's maximum.

Modes:

- regenerate / vary: regions of the source are replaced; the output is exactly as long as the
  source.
- extend: silence is added before or after the source and regenerated with the source as
  context; the output is the source plus what was added.
- new: no source, one window from the prompt alone.
- loop: see :mod:`sa3_studio.workflow.loop`.

Regions that share a prompt go in one pass when they fit in one window (the editor's context
planner, :func:`sa3_studio.document.context.plan_windows`); regions far apart, or sources longer
than the model's context, get windows of their own.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sa3_studio.document.constants import LATENT_FRAMES
from sa3_studio.document.context import DEFAULT_MIN_CONTEXT_S, plan_windows
from sa3_studio.errors import EditError, GenerationError


class Mode(enum.StrEnum):
    """What a generation does to its source."""

    REGENERATE = "regenerate"
    EXTEND = "extend"
    VARY = "vary"
    NEW = "new"
    LOOP = "loop"


def seconds(frames: int, rate: int) -> str:
    """``"12.345 s"`` for messages."""
    return f"{frames / rate:.3f} s"


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """What the model can make.

    Attributes:
        sample_rate: the model's audio rate.
        max_frames: the most frames one pass can make, at the model's rate.
        latent_frames: audio frames per latent frame (windows prefer to start on one).
    """

    sample_rate: int
    max_frames: int
    latent_frames: int = LATENT_FRAMES

    def __post_init__(self) -> None:
        if self.sample_rate < 1 or self.max_frames < 1 or self.latent_frames < 1:
            raise ValueError(f"model limits must be positive, got {self}")

    @classmethod
    def of(cls, sample_rate: int, max_seconds: float) -> ModelLimits:
        """From a model's rate and its longest output in seconds."""
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise GenerationError(
                f"The model says it can make {max_seconds} s of audio; choose another model."
            )
        return cls(int(sample_rate), max(1, math.floor(max_seconds * sample_rate)))

    @property
    def max_seconds(self) -> float:
        """The longest output in seconds."""
        return self.max_frames / self.sample_rate

    def frames_at(self, rate: int) -> int:
        """The model's maximum in frames at ``rate``, rounded down."""
        return (self.max_frames * rate) // self.sample_rate

    def model_frames(self, frames: int, rate: int) -> int:
        """Frames at the model's rate for ``frames`` at ``rate`` (rounded half up, as soxr)."""
        return (frames * self.sample_rate + rate // 2) // rate


@dataclass(frozen=True, slots=True)
class SampleRange:
    """A region of the source to regenerate, in source frames ``[start, end)``.

    Attributes:
        start: first frame.
        end: frame after the last.
        id: a name for messages and results (default ``"r1"``, ``"r2"``... by position).
        prompt: this region's own text (``None``: the request's prompt).
        negative_prompt: this region's own negative prompt (``None``: the request's).
    """

    start: int
    end: int
    id: str = ""
    prompt: str | None = None
    negative_prompt: str | None = None

    @property
    def length(self) -> int:
        """Frames."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class PlacedRegion:
    """A region as the plan places it, in output frames.

    Attributes:
        id: the region's id.
        start: first output frame.
        end: output frame after the region.
        fade_in: crossfade from the source into the result at ``start`` (False where the
            region begins at the output's start, or continues the source into added audio).
        fade_out: crossfade back into the source at ``end``.
        prompt: the region's own prompt text, or ``None``.
        negative_prompt: the region's own negative prompt, or ``None``.
        name: what messages call it ("" = its id).
        part_of: the region this is a part of, when a region longer than one window is made
            in parts ("" otherwise).
    """

    id: str
    start: int
    end: int
    fade_in: bool = True
    fade_out: bool = True
    prompt: str | None = None
    negative_prompt: str | None = None
    name: str = ""
    part_of: str = ""

    @property
    def title(self) -> str:
        """``'Chorus'`` or the id, for messages."""
        return f"'{self.name}'" if self.name else self.id

    @property
    def length(self) -> int:
        """Frames."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """One pass of the model: a stretch of the output sent as context, with its regions.

    Attributes:
        start: first output frame of the window.
        end: output frame after the window.
        regions: the regions it regenerates (output frames), sorted.
        model_frames: the window's length at the model's rate (never above its maximum).
        text_only: made from the prompt alone (no source audio, mode "new").
    """

    start: int
    end: int
    regions: tuple[PlacedRegion, ...]
    model_frames: int
    text_only: bool = False

    @property
    def length(self) -> int:
        """Frames at the source's rate."""
        return self.end - self.start

    @property
    def prompt(self) -> str | None:
        """The regions' shared prompt text (``None``: the request's)."""
        return self.regions[0].prompt if self.regions else None

    @property
    def negative_prompt(self) -> str | None:
        """The regions' shared negative prompt (``None``: the request's)."""
        return self.regions[0].negative_prompt if self.regions else None


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a generation will do to its source.

    Attributes:
        mode: what it does.
        rate: the source's (and output's) sample rate.
        source_frames: the source's length.
        output_frames: the output's length (the source's, plus what extend adds).
        offset: output frame where the source begins (frames added before it).
        windows: the passes, in output order.
        limits: the model's limits it was planned for.
    """

    mode: Mode
    rate: int
    source_frames: int
    output_frames: int
    offset: int
    windows: tuple[WindowPlan, ...]
    limits: ModelLimits

    @property
    def regions(self) -> tuple[PlacedRegion, ...]:
        """Every region, in output order."""
        return tuple(sorted((r for w in self.windows for r in w.regions), key=lambda r: r.start))

    @property
    def in_parts(self) -> bool:
        """True when a region is made in parts, one window after another (each part hears the
        parts before it: windows must run in order, one take at a time)."""
        return any(r.part_of for w in self.windows for r in w.regions)

    @property
    def uses_context_window(self) -> bool:
        """True when some window sends only part of the source."""
        return any(
            not w.text_only and (w.start > 0 or w.end < self.output_frames) for w in self.windows
        )

    def describe(self) -> list[str]:
        """One line per window, e.g. ``window 1: 60.000-180.000 s (120.000 s) for r1, r2``."""
        lines = []
        for i, w in enumerate(self.windows, 1):
            names = ", ".join(
                f"{r.id} {_span(r.start, r.end, self.rate)}"
                + (f" with its own prompt {r.prompt!r}" if r.prompt else "")
                for r in w.regions
            )
            verb = "varying" if self.mode is Mode.VARY else "regenerating"
            what = "from the prompt alone" if w.text_only else f"{verb} {names}"
            lines.append(
                f"window {i}: {_span(w.start, w.end, self.rate)} "
                f"({seconds(w.length, self.rate)}) {what}"
            )
        return lines


def _span(start: int, end: int, rate: int) -> str:
    return f"{start / rate:.3f}-{end / rate:.3f} s"


# -- checks --------------------------------------------------------------------------------------


def _check_rate(rate: int) -> None:
    if rate < 1:
        raise GenerationError(f"The sample rate {rate} Hz is not positive; check the source.")


def check_regions(
    regions: Sequence[SampleRange], source_frames: int, rate: int
) -> tuple[SampleRange, ...]:
    """Regions named, sorted, inside the source, non-empty and disjoint (touching is fine).

    Raises:
        GenerationError: no region, or a region empty, outside the source or overlapping another.
    """
    if not regions:
        raise GenerationError("There is no region to regenerate; give at least one.")
    if source_frames < 1:
        raise GenerationError("The source is empty, so there is nothing to regenerate.")
    named = [
        r if r.id else SampleRange(r.start, r.end, f"r{i}", r.prompt, r.negative_prompt)
        for i, r in enumerate(regions, 1)
    ]
    if len({r.id for r in named}) != len(named):
        raise GenerationError("Two regions have the same id; give each region its own.")
    for r in named:
        where = f"Region {r.id} ({_span(r.start, r.end, rate)})"
        if r.end <= r.start:
            raise GenerationError(f"{where} is empty; its end must come after its start.")
        if r.start < 0:
            raise GenerationError(f"{where} starts before the source; start it at 0 s or later.")
        if r.end > source_frames:
            raise GenerationError(
                f"{where} ends after the end of the source ({seconds(source_frames, rate)}); "
                "end it there, or extend the source instead."
            )
    ordered = sorted(named, key=lambda r: (r.start, r.end))
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise GenerationError(
                f"Regions {a.id} ({_span(a.start, a.end, rate)}) and {b.id} "
                f"({_span(b.start, b.end, rate)}) overlap; merge them or make them disjoint."
            )
    return tuple(ordered)


def context_frames(limits: ModelLimits, rate: int, context_s: float | None = None) -> int:
    """The longest window in frames at ``rate``: the model's maximum, or less when asked.

    A chosen context is rounded down to whole latent frames of the model (at least one).

    Raises:
        GenerationError: ``context_s`` is not a positive number.
    """
    if context_s is None:
        return limits.frames_at(rate)
    if not (math.isfinite(context_s) and context_s > 0):
        raise GenerationError(
            f"The context length {context_s} s is not a positive number of seconds."
        )
    latent = limits.latent_frames
    model = min(limits.max_frames, math.floor(context_s * limits.sample_rate))
    model = max(min(latent, limits.max_frames), model - model % latent)
    return max(1, (model * rate) // limits.sample_rate)


def min_context_frames(limits: ModelLimits, rate: int) -> int:
    """Source kept on each side of a window's regions where the source has it: 5 s, or a
    quarter of the model's maximum for models that make less than 20 s."""
    return min(round(DEFAULT_MIN_CONTEXT_S * rate), limits.frames_at(rate) // 4)


# -- planning ------------------------------------------------------------------------------------


def _latent_at(limits: ModelLimits, rate: int) -> int:
    return max(1, (limits.latent_frames * rate + limits.sample_rate // 2) // limits.sample_rate)


def plan_windows_for(
    regions: Sequence[PlacedRegion],
    song_frames: int,
    rate: int,
    limits: ModelLimits,
    context_s: float | None = None,
) -> tuple[WindowPlan, ...]:
    """Windows for regions (the rules the editor and the command line share).

    Regions with the same prompt and negative prompt go in one window when they fit in it with
    :func:`min_context_frames` of the song on each side; others get windows of their own. A
    window is as long as the context allows (the whole song when shorter), centred on its
    regions and moved onto a latent boundary where it can be.

    Args:
        regions: in song frames; may reach past ``song_frames`` (extending the song).
        song_frames: the song's length.
        rate: frames per second of the song.
        limits: the model's limits.
        context_s: the longest window in seconds (default: the model's maximum).

    Raises:
        GenerationError: a region too long for a window with context on both sides.
    """
    if not regions:
        raise GenerationError("There is no region to generate; select a part of the song first.")
    song_frames = max(song_frames, max(r.end for r in regions))
    ctx = context_frames(limits, rate, context_s)
    groups: dict[tuple[str | None, str | None], list[PlacedRegion]] = {}
    for r in regions:
        groups.setdefault((r.prompt, r.negative_prompt), []).append(r)
    by_id = {r.id: r for r in regions}
    out: list[WindowPlan] = []
    min_ctx = min_context_frames(limits, rate)
    window_len = min(ctx, song_frames)
    for r in regions:
        needed = r.length + min(min_ctx, r.start) + min(min_ctx, max(0, song_frames - r.end))
        if needed > window_len:
            most = max(0, window_len - 2 * min_ctx)
            raise GenerationError(
                f"Region {r.title} ({_span(r.start, r.end, rate)}) is "
                f"{seconds(r.length, rate)} long, but the model sees at most "
                f"{seconds(ctx, rate)} at once and needs {seconds(min_ctx, rate)} of the song "
                f"on each side; split the region into parts of at most {seconds(most, rate)}"
                + (", or choose a longer context." if ctx < limits.frames_at(rate) else ".")
            )
    for members in groups.values():
        try:
            planned = plan_windows(
                song_frames,
                members,
                ctx,
                sample_rate=rate,
                latent=_latent_at(limits, rate),
                min_context_frames=min_ctx,
            )
        except EditError as exc:
            raise GenerationError(
                f"{exc} The model makes at most {limits.max_seconds:.3f} s in one pass."
            ) from None
        for w in planned:
            inner = tuple(by_id[wr.region_id] for wr in w.regions)
            out.append(WindowPlan(w.start, w.end, inner, limits.model_frames(w.length, rate)))
    out.sort(key=lambda w: (w.start, w.regions[0].start))
    for planned_window in out:  # the invariant every later step relies on
        if (
            planned_window.model_frames > limits.max_frames
            or planned_window.start < 0
            or planned_window.end > song_frames
        ):
            raise AssertionError(f"{planned_window} is outside the model's or the source's limits")
    return tuple(out)


def plan_regions(
    source_frames: int,
    rate: int,
    regions: Sequence[SampleRange],
    limits: ModelLimits,
    *,
    mode: Mode = Mode.REGENERATE,
    context_s: float | None = None,
    split_long: bool = False,
) -> Plan:
    """Plan regenerating (or varying) regions of a source; the output keeps its length.

    With ``split_long``, a region longer than one window can hold is made in equal parts, each
    in its own window after the one before (which it hears as context); parts join at a
    sample, without crossfades.

    Args:
        source_frames: the source's length in frames.
        rate: the source's sample rate.
        regions: what to regenerate, in source frames.
        limits: the model's limits.
        mode: :attr:`Mode.REGENERATE` or :attr:`Mode.VARY`.
        context_s: the longest window in seconds (default: as long as the model allows).
        split_long: make regions longer than a window in parts instead of refusing them.

    Raises:
        GenerationError: bad regions, or a region too long for the model even with a window.
    """
    _check_rate(rate)
    if mode not in (Mode.REGENERATE, Mode.VARY):
        raise ValueError(f"plan_regions plans regenerate or vary, not {mode}")
    checked = check_regions(regions, source_frames, rate)
    placed = [
        PlacedRegion(
            r.id,
            r.start,
            r.end,
            fade_in=r.start > 0,
            fade_out=r.end < source_frames,
            prompt=r.prompt,
            negative_prompt=r.negative_prompt,
        )
        for r in checked
    ]
    if split_long:
        placed = [
            part for r in placed for part in _parts(r, source_frames, rate, limits, context_s)
        ]
    windows = plan_windows_for(placed, source_frames, rate, limits, context_s)
    return Plan(mode, rate, source_frames, source_frames, 0, windows, limits)


def _parts(
    region: PlacedRegion, song_frames: int, rate: int, limits: ModelLimits, context_s: float | None
) -> list[PlacedRegion]:
    """``region`` in equal parts that each fit a window with context on both sides."""
    window_len = min(context_frames(limits, rate, context_s), song_frames)
    margin = min_context_frames(limits, rate)
    most = window_len - 2 * margin
    needed = region.length + min(margin, region.start) + min(margin, song_frames - region.end)
    if needed <= window_len or most < 1:
        return [region]  # fits (or cannot be split usefully: the planner explains)
    count = -(-region.length // most)
    cuts = [region.start + (k * region.length) // count for k in range(count + 1)]
    return [
        dataclasses.replace(
            region,
            id=f"{region.id}.{k + 1}",
            start=cuts[k],
            end=cuts[k + 1],
            fade_in=region.fade_in if k == 0 else False,
            fade_out=region.fade_out if k == count - 1 else False,
            part_of=region.id,
        )
        for k in range(count)
    ]


def plan_extend(
    source_frames: int,
    rate: int,
    side: str,
    added_frames: int,
    limits: ModelLimits,
    *,
    context_s: float | None = None,
    prompt: str | None = None,
) -> Plan:
    """Plan adding ``added_frames`` before or after the source, made with it as context.

    The new part joins the source at a sample (no crossfade there: the model continues the
    source, and the source itself is never changed); the output is the source plus the new part.

    Raises:
        GenerationError: nothing to add, an empty source, a bad side, or more than the model
            can make in one pass with the context it needs.
    """
    _check_rate(rate)
    if source_frames < 1:
        raise GenerationError("The source is empty, so there is nothing to extend.")
    if added_frames < 1:
        raise GenerationError(
            f"Extending by {seconds(added_frames, rate)} adds nothing; ask for more than 0 s."
        )
    total = source_frames + added_frames
    if side == "after":
        region = PlacedRegion("extension", source_frames, total, False, False, prompt)
        offset = 0
    elif side == "before":
        region = PlacedRegion("extension", 0, added_frames, False, False, prompt)
        offset = added_frames
    else:
        raise GenerationError(f"Extend {side!r}: use 'before' or 'after'.")
    windows = plan_windows_for([region], total, rate, limits, context_s)
    return Plan(Mode.EXTEND, rate, source_frames, total, offset, windows, limits)


def plan_new(frames: int, rate: int, limits: ModelLimits) -> Plan:
    """Plan new audio from the prompt alone: one window of ``frames`` at ``rate``.

    Raises:
        GenerationError: no length, or longer than the model can make.
    """
    _check_rate(rate)
    if frames < 1:
        raise GenerationError("Ask for more than 0 s of audio.")
    most = limits.frames_at(rate)
    if frames > most:
        raise GenerationError(
            f"{seconds(frames, rate)} is longer than this model can make in one pass "
            f"({limits.max_seconds:.3f} s); ask for at most that, or generate more and use "
            "`continue`."
        )
    region = PlacedRegion("new", 0, frames, False, False)
    window = WindowPlan(0, frames, (region,), limits.model_frames(frames, rate), text_only=True)
    return Plan(Mode.NEW, rate, 0, frames, 0, (window,), limits)
