"""The vectors' acceptance rule: 10 x the larger of the float64 and the other-CPU spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vector_cases import parity_tolerance

CHECKS = {
    "float32_vs_float64_replay_max_abs_diff": 3e-6,
    "float32_vs_float64_replay_per_tensor": {"out": {"max_abs": 1e-6}, "tap/a": {"max_abs": 2e-6}},
    "float32_other_cpu_max_abs_diff": 2e-4,
    "float32_other_cpu_per_tensor": {"out": {"max_abs": 5e-5}, "tap/b": {"max_abs": 1e-7}},
}


def test_case_bound_takes_the_larger_spread() -> None:
    assert parity_tolerance(CHECKS) == pytest.approx(2e-3)
    only_float64 = {"float32_vs_float64_replay_max_abs_diff": 3e-6}
    assert parity_tolerance(only_float64) == pytest.approx(3e-5)


def test_tensor_bound_uses_each_figure_where_recorded() -> None:
    assert parity_tolerance(CHECKS, "out") == pytest.approx(5e-4)
    # tap/a: its own float64 figure, the case's other-CPU figure.
    assert parity_tolerance(CHECKS, "tap/a") == pytest.approx(2e-3)
    # tap/b: the case's float64 figure, its own (small) other-CPU figure.
    assert parity_tolerance(CHECKS, "tap/b") == pytest.approx(3e-5)


def test_every_vector_case_records_the_other_cpu_spread(vectors_dir: Path) -> None:
    """The rule only holds across CPU types if every case carries both figures."""
    for meta_path in sorted(vectors_dir.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        cases = meta.get("cases", {"": meta})
        for name, case in cases.items():
            checks = case["checks"]
            assert "float32_other_cpu_max_abs_diff" in checks, f"{meta_path.parent.name}/{name}"
            assert parity_tolerance(checks) >= 10 * checks["float32_other_cpu_max_abs_diff"]
