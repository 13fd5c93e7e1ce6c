"""Run a plan on a loaded pipeline and splice the results back (the CLI's and scripts' path).

The editor runs windows itself on its model thread (one take per region per seed, scored for
seams), but it plans, builds requests and places results with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sa3_studio.engine.api import CancelToken, PipelineLike, StepCallback
from sa3_studio.errors import GenerationError
from sa3_studio.workflow.level import Level, level_audio
from sa3_studio.workflow.loras import apply_loras
from sa3_studio.workflow.plan import Mode, Plan, WindowPlan
from sa3_studio.workflow.request import Settings, build_request, window_audio
from sa3_studio.workflow.splice import (
    Audio,
    place_source,
    region_audio,
    splice,
    splice_region,
    whole_window,
)

WindowCallback = Callable[[int, WindowPlan], None]
"""Called before each window with (its number from 1, the window)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :func:`run_plan` made.

    Attributes:
        plan: the plan it ran.
        outputs: one ``(channels, plan.output_frames)`` array per take, in the source's dtype
            and channels (stereo float32 for mode "new").
        seed: the seed used.
        weights_hash: the weights that made it ("" when the pipeline does not say).
        timings: seconds per phase, summed over the windows.
        model_peak_dbtp: the highest true peak the engine measured in its output (the
            workflow asks for unclamped float audio; -200 when the engine does not say).
    """

    plan: Plan
    outputs: tuple[Audio, ...]
    seed: int
    weights_hash: str
    timings: dict[str, float]
    model_peak_dbtp: float = -200.0


def run_plan(
    pipeline: PipelineLike,
    plan: Plan,
    settings: Settings,
    source: Audio | None = None,
    *,
    crossfade_frames: int = 0,
    raw: bool = False,
    level: Level = Level.KEEP,
    on_step: StepCallback | None = None,
    on_window: WindowCallback | None = None,
    cancel: CancelToken | None = None,
) -> Outcome:
    """Make every window of ``plan`` and put the results in place.

    Args:
        pipeline: the loaded model (its LoRAs are set to ``settings.loras`` first).
        plan: from :mod:`sa3_studio.workflow.plan`, for this pipeline's limits.
        settings: prompt, seed, steps...
        source: ``(channels, plan.source_frames)`` at ``plan.rate`` (``None`` for mode "new").
        crossfade_frames: fade at each region edge that borders the source.
        raw: write the model's whole decoded window instead of splicing (one window only).
        level: new audio whose true peak is over -1 dBTP is limited, or gained down, to -1 dBTP
            before it is spliced (the source's samples are never touched).
        on_step: ``(steps done, total)`` over all windows.
        on_window: called before each window.
        cancel: checked before every step.

    Raises:
        GenerationError: the engine refused a request, or ``raw`` with several windows.
        Cancelled: cancelled.
    """
    if plan.mode is not Mode.NEW and source is None:
        raise GenerationError("This generation needs its source audio.")
    if raw and len(plan.windows) != 1:
        raise GenerationError(
            f"The raw output is one window, but this plan has {len(plan.windows)}; leave out "
            "the raw option, or choose a context long enough for one window."
        )
    if plan.in_parts and settings.takes > 1:
        raise GenerationError(
            "A region longer than one window is made in parts, each hearing the part before, "
            f"so it is made one take at a time; ask for 1 take, not {settings.takes}."
        )
    token = cancel or CancelToken()
    # A plan in parts: each window hears the new audio of the windows before it.
    working = place_source(source, plan) if plan.in_parts and source is not None else None
    apply_loras(pipeline, settings.loras)
    steps = settings.steps if settings.steps is not None else int(pipeline.default_steps)
    total = steps * len(plan.windows)
    new_audio: dict[str, npt.NDArray[np.float32]] = {}
    whole: npt.NDArray[np.float32] | None = None
    timings: dict[str, float] = {}
    weights_hash = str(getattr(pipeline, "weights_hash", ""))
    model_peak = -200.0
    for i, window in enumerate(plan.windows):
        token.raise_if_cancelled()
        if on_window is not None:
            on_window(i + 1, window)
        context = working if working is not None else source
        audio = None if window.text_only or context is None else window_audio(context, plan, window)
        request = build_request(plan, window, settings, audio=audio, whole=raw or window.text_only)

        def step(done: int, _total: int, base: int = i * steps) -> None:
            if on_step is not None:
                on_step(base + done, total)

        result = pipeline.generate(request, on_step=step, cancel=token)
        weights_hash = result.weights_hash or weights_hash
        model_peak = max((model_peak, *result.true_peak_dbtp))
        for name, value in result.timings.items():
            timings[name] = timings.get(name, 0.0) + float(value)
        if raw or window.text_only:
            whole = whole_window(result, plan, window)
            if level is not Level.KEEP:
                whole = np.stack([level_audio(t, plan.rate, level) for t in whole])
        else:
            pieces = region_audio(result, plan, window)
            if level is not Level.KEEP:
                pieces = {
                    k: np.stack([level_audio(t, plan.rate, level) for t in v])
                    for k, v in pieces.items()
                }
            new_audio.update(pieces)
            if working is not None:
                for r in window.regions:
                    splice_region(working, r, pieces[r.id][0], crossfade_frames)
    if whole is not None:
        outputs: tuple[Audio, ...] = tuple(whole)
    else:
        assert source is not None
        takes = settings.takes
        outputs = tuple(
            splice(source, plan, {k: v[t] for k, v in new_audio.items()}, crossfade_frames)
            for t in range(takes)
        )
    return Outcome(plan, outputs, settings.seed, weights_hash, timings, model_peak)
