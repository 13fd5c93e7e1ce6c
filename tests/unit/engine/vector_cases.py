"""Reading one case of the official generate vectors (shared by the engine tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sa3_studio.engine.api import GenerationRequest

PIPELINE_CASES = [
    ("pipeline_tiny", "t2a"),
    ("pipeline_tiny", "t2a_batch_varlen"),
    ("pipeline_tiny", "inpaint_one"),
    ("pipeline_tiny", "inpaint_two"),
    ("pipeline_tiny", "continuation"),
    ("pipeline_tiny", "a2a"),
    ("pipeline_base_tiny", "cfg_negative_apg"),
    ("pipeline_base_tiny", "cfg_batch_varlen_vanilla"),
    ("pipeline_medium_tiny", "t2a"),
    ("pipeline_medium_tiny", "inpaint_one"),
]
"""Every case of the three pipeline vector folders (none left out)."""

FULL_MODELS = (
    "small_music",
    "small_sfx",
    "medium",
    "small_music_base",
    "small_sfx_base",
    "medium_base",
)
"""Every released full-model configuration in vectors/keys."""


@dataclass(frozen=True)
class VectorCase:
    """One recorded ``generate`` call: its metadata, inputs and outputs (case prefix removed)."""

    meta: dict[str, Any]
    inputs: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.meta["kwargs"])

    def durations(self) -> list[float]:
        d = self.kwargs["duration"]
        batch = int(self.kwargs.get("batch_size", 1))
        return [float(x) for x in d] if isinstance(d, list) else [float(d)] * batch

    def tape(self) -> list[torch.Tensor]:
        """The recorded random draws, in the order the official code made them."""
        return [self.inputs[f"rng/{i:03d}"] for i in range(len(self.meta["rng_draws"]))]

    def request(self) -> GenerationRequest:
        """The recorded call as our engine's request (inpaint and init audio from the inputs)."""
        kwargs = self.kwargs
        extra: dict[str, Any] = {}
        if "inpaint_audio" in kwargs:
            starts = _as_list(kwargs["inpaint_mask_start_seconds"])
            ends = _as_list(kwargs["inpaint_mask_end_seconds"])
            extra["inpaint_audio"] = self.inputs["inpaint_audio"].numpy()
            extra["inpaint_regions"] = tuple(zip(starts, ends, strict=True))
        if "init_audio" in kwargs:
            extra["init_audio"] = self.inputs["init_audio"].numpy()
            extra["init_noise_level"] = float(kwargs["init_noise_level"])
        return GenerationRequest(
            prompt=kwargs["prompt"],
            negative_prompt=kwargs.get("negative_prompt"),
            duration=kwargs["duration"],
            steps=int(kwargs["steps"]),
            cfg_scale=float(kwargs.get("cfg_scale", 1.0)),
            apg_scale=float(kwargs.get("apg_scale", 1.0)),
            seed=int(kwargs["seed"]),
            batch_size=int(kwargs.get("batch_size", 1)),
            **extra,
        )


def _as_list(v: Any) -> list[float]:
    return [float(x) for x in v] if isinstance(v, list) else [float(v)]


def parity_tolerance(checks: Mapping[str, Any], tensor: str | None = None) -> float:
    """The vectors' acceptance bound for one case, or for one of its tensors.

    10 x the larger of two spreads of the official code itself: float32 against float64 on the
    machine that made the vectors, and float32 on another CPU type (Intel with AMX against the
    AMD Zen 4 that made them). The second is what float32 sin/cos and matrix kernels differ by
    between CPUs and math libraries; a bound from the float64 figure alone holds on one CPU type
    only. A tensor's own figure is used where the vectors record one, the case's otherwise.
    """

    def figure(case_key: str, per_tensor_key: str) -> float:
        per_tensor = checks.get(per_tensor_key) or {}
        if tensor is not None and tensor in per_tensor:
            return float(per_tensor[tensor]["max_abs"])
        return float(checks.get(case_key, 0.0))

    float64 = figure(
        "float32_vs_float64_replay_max_abs_diff", "float32_vs_float64_replay_per_tensor"
    )
    other_cpu = figure("float32_other_cpu_max_abs_diff", "float32_other_cpu_per_tensor")
    return 10.0 * max(float64, other_cpu)


def _strip(tensors: dict[str, torch.Tensor], case: str) -> dict[str, torch.Tensor]:
    return {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith(case + "/")}


def load_case(vectors_dir: Path, folder: str, case: str) -> VectorCase:
    """Read ``case`` of ``vectors_dir/folder``."""
    base = vectors_dir / folder
    meta = json.loads((base / "meta.json").read_text())["cases"][case]
    return VectorCase(
        meta=meta,
        inputs=_strip(load_file(str(base / "inputs.safetensors")), case),
        outputs=_strip(load_file(str(base / "outputs.safetensors")), case),
    )
