"""A real local Ray Serve running ``sa3-studio serve`` (CPU, the tiny 44.1 kHz model, two
replicas), started once for the server tests and shut down after them.

The server runs in its own process, exactly as a user starts it, so this test process never
imports Ray (no Ray threads to leak here) and all traffic goes to 127.0.0.1. Ray is kept small:
two CPUs, a 100 MB object store, half a CPU per replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import LiveServer, start_server, stop_server, write_style_lora

from sa3_studio.engine.synthetic import make_random_model


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("server")
    model_dir = make_random_model(
        root / "models" / "tiny44k",
        preset="tiny44k",
        seed=5,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
    )
    loras = root / "loras"
    loras.mkdir()
    write_style_lora(loras / "style.safetensors")
    proc, live = start_server(root, model_dir, ("--loras", str(loras)))
    try:
        yield live
    finally:
        stop_server(proc)
