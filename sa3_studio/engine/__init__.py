"""Stable Audio 3 inference engine (PyTorch).

Import :mod:`sa3_studio.engine.api` for the torch-free request/result types. The heavy entry point
is ``load_pipeline`` in :mod:`sa3_studio.engine.pipeline`; it is re-exported here lazily so that
``import sa3_studio.engine`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "load_pipeline":
        from sa3_studio.engine.pipeline import load_pipeline

        return load_pipeline
    raise AttributeError(name)
