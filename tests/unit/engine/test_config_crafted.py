"""Crafted model configs: each fails with a clear error within a second and well below 1 GB.

A size out of range is refused by the parser before anything is built, a deeply nested file
before it is decoded, a config that asks for more DiT layers than its weights hold before the
model is built, and a ``model_config.json`` that is a named pipe is not read at all.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sa3_studio.engine import registry
from sa3_studio.engine.config import load_model_config, parse_model_config
from sa3_studio.engine.pipeline import load_pipeline
from sa3_studio.engine.synthetic import make_random_model
from sa3_studio.errors import ConfigError, Sa3Error, WeightsError

SECOND = 1.0
GIGABYTE = 1 << 30


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Path:
    return make_random_model(
        tmp_path_factory.mktemp("crafted") / "tiny44k",
        preset="tiny44k",
        seed=5,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
    )


@pytest.fixture
def medium_json(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (vectors_dir / "keys" / "medium.model_config.json").read_text()
    )
    return data


def _bounded(call: Callable[[], object], error: type[Exception]) -> str:
    """Run ``call``, expect ``error``; assert it came within a second and under 1 GB."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            call()
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < SECOND, f"took {elapsed:.2f} s"
    assert peak < GIGABYTE, f"peaked at {peak / GIGABYTE:.2f} GB"
    return str(info.value)


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


PROMPT = ("model", "conditioning", "configs", 0, "config")
DIT = ("model", "diffusion", "config")
ENCODER = ("model", "pretransform", "config", "encoder", "config")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ((*PROMPT, "max_length"), 2**40, "max_length"),
        ((*DIT, "depth"), 100_000, "depth"),
        ((*DIT, "embed_dim"), 2**40, "embed_dim"),
        ((*ENCODER, "transformer_depths"), [100_000], "transformer_depths[0]"),
        ((*ENCODER, "channels"), 2**31, "channels"),
        (("sample_size",), 2**40, "sample_size"),
        (("sample_rate",), 2**40, "sample_rate"),
    ],
)
def test_sizes_out_of_range_are_refused_before_building(
    medium_json: dict[str, Any], path: tuple[Any, ...], value: Any, field: str
) -> None:
    data = _set(medium_json, path, value)
    msg = _bounded(lambda: parse_model_config(data, "crafted.json"), ConfigError)
    assert field in msg
    assert f"is {value[0] if isinstance(value, list) else value}," in msg
    assert "more than SA3 Studio allows" in msg


def test_a_config_nested_100000_levels_deep(tmp_path: Path) -> None:
    path = tmp_path / "model_config.json"
    depth = 100_000
    path.write_text(
        '{"model_type": "diffusion_cond_inpaint", "x": ' + "[" * depth + "]" * depth + "}"
    )
    msg = _bounded(lambda: load_model_config(path), ConfigError)
    assert "nests 100001 levels deep" in msg
    assert str(path) in msg


def test_a_huge_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "model_config.json"
    with path.open("wb") as fh:
        fh.truncate(64 << 20)  # sparse: 64 MB on paper, nothing on disk
    msg = _bounded(lambda: load_model_config(path), ConfigError)
    assert "not a model_config.json" in msg


def test_max_length_2_pow_40_in_a_model_folder_loads_nothing(
    model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    config_path = folder / "model_config.json"
    data = json.loads(config_path.read_text())
    data["model"]["conditioning"]["configs"][0]["config"]["max_length"] = 2**40
    config_path.write_text(json.dumps(data))
    msg = _bounded(lambda: load_pipeline(folder, device="cpu", dtype="float32"), ConfigError)
    assert "max_length" in msg


def test_more_dit_layers_than_the_weights_hold(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    config_path = folder / "model_config.json"
    data = json.loads(config_path.read_text())
    held = data["model"]["diffusion"]["config"]["depth"]
    data["model"]["diffusion"]["config"]["depth"] = 500  # in range, but not these weights
    config_path.write_text(json.dumps(data))
    msg = _bounded(lambda: load_pipeline(folder, device="cpu", dtype="float32"), WeightsError)
    assert "500 layers" in msg
    assert f"holds {held}" in msg


@pytest.fixture
def fifo_folder(model_dir: Path, tmp_path: Path) -> Iterator[Path]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need a POSIX system")
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    (folder / "model_config.json").unlink()
    os.mkfifo(folder / "model_config.json")
    yield folder
    # Whatever happened, nothing may stay blocked on the pipe: open it for writing without
    # blocking (fails when no reader waits, which is the expected case).
    try:
        fd = os.open(folder / "model_config.json", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def _in_thread(call: Callable[[], object]) -> object:
    """Run ``call`` on a daemon thread for at most a second (a hang fails, never blocks)."""
    box: list[object] = []
    worker = threading.Thread(target=lambda: box.append(_catch(call)), daemon=True)
    worker.start()
    worker.join(timeout=SECOND * 5)
    assert not worker.is_alive(), "hung reading a named pipe"
    return box[0]


def _catch(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as exc:  # returned to the test thread to be checked there
        return exc


def test_a_named_pipe_config_is_not_read(fifo_folder: Path) -> None:
    config = fifo_folder / "model_config.json"
    error = _in_thread(lambda: load_model_config(config))
    assert isinstance(error, ConfigError)
    assert "not a regular file" in str(error)


def test_models_verify_on_a_named_pipe_does_not_hang(fifo_folder: Path) -> None:
    problems = _in_thread(lambda: registry.verify(fifo_folder))
    assert isinstance(problems, tuple)
    assert any("model_config.json" in p for p in problems), problems
    error = _in_thread(lambda: load_pipeline(fifo_folder, device="cpu"))
    assert isinstance(error, Sa3Error)


def test_ignored_fields_warn_once_at_load_and_show_in_verify(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    config_path = folder / "model_config.json"
    data = json.loads(config_path.read_text())
    data["svd_bases_path"] = "bases.safetensors"
    data["model"]["diffusion"]["config"]["ff_mult"] = 4
    config_path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="sa3_studio.engine.pipeline"):
        pipe = load_pipeline(folder, device="cpu", dtype="float32")
    warnings = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warnings) == 1
    assert "model.diffusion.config.ff_mult" in warnings[0]
    assert "svd_bases_path" in warnings[0]
    assert pipe.config.ignored_fields == ("model.diffusion.config.ff_mult", "svd_bases_path")
    assert registry.verify(folder) == ()
    assert registry.ignored_config_fields(folder) == pipe.config.ignored_fields
