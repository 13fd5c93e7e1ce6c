"""The generation workflow shared by the editor, the command line and scripts (no Qt, no torch).

From a source (any rate, channel count and length), regions as integer frame ranges of it, a
mode and a model's limits: :mod:`~sa3_studio.workflow.plan` picks the windows sent to the
model, :mod:`~sa3_studio.workflow.request` builds the engine requests,
:mod:`~sa3_studio.workflow.splice` puts the results back at the source's own rate and channels
(bit-identical outside the regions), :mod:`~sa3_studio.workflow.run` does all three on a loaded
pipeline, and :mod:`~sa3_studio.workflow.loop` makes a loop repeat without a seam.

A script::

    from sa3_studio.engine.pipeline import load_pipeline
    from sa3_studio.workflow import ModelLimits, SampleRange, Settings, plan_regions, run_plan

    pipe = load_pipeline("models/small-music")
    limits = ModelLimits.of(pipe.sample_rate, pipe.max_seconds)
    plan = plan_regions(audio.shape[-1], rate, [SampleRange(12 * rate, 16 * rate)], limits)
    outcome = run_plan(pipe, plan, Settings(prompt="drum fill", seed=1), audio,
                       crossfade_frames=round(0.025 * rate))
"""

from __future__ import annotations

from sa3_studio.workflow.plan import (
    Mode,
    ModelLimits,
    PlacedRegion,
    Plan,
    SampleRange,
    WindowPlan,
    plan_extend,
    plan_new,
    plan_regions,
)
from sa3_studio.workflow.request import Settings, build_request, compose_prompt, window_audio
from sa3_studio.workflow.run import Outcome, run_plan
from sa3_studio.workflow.splice import region_audio, splice

__all__ = [
    "Mode",
    "ModelLimits",
    "Outcome",
    "PlacedRegion",
    "Plan",
    "SampleRange",
    "Settings",
    "WindowPlan",
    "build_request",
    "compose_prompt",
    "plan_extend",
    "plan_new",
    "plan_regions",
    "region_audio",
    "run_plan",
    "splice",
    "window_audio",
]
