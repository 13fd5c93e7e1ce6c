"""Kill a writer process at random moments; every version it reported committed must survive.

Each iteration starts a fresh writer (``_store_writer.py``) on the same project file, waits a
random time, kills it with SIGKILL (often in the middle of a transaction, a save or a Save As)
and reopens the file: it must open, pass ``PRAGMA integrity_check``, and hold at least the last
version the writer printed, with all of its audio intact.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from sa3_studio.audio.store import AUTOSAVE, SAVED, ProjectFile, find_recoverable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
WRITER = HERE / "_store_writer.py"
ITERATIONS = 30


def _writer_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_store_writer", WRITER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


version_audio = _writer_module().version_audio


def run_and_kill(mode: str, project: Path, recovery: Path, delay: float) -> list[str]:
    """Start a writer, let it work for ``delay`` seconds after it is ready, kill it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), mode, str(project), str(recovery)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        if first != "ready":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the writer did not start: {first!r} {err[-2000:]}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        assert proc.returncode is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return [line for line in out.splitlines() if line.strip()]


def check_version(file: ProjectFile, at_least: int) -> int:
    """The newest state in ``file``: its version, checked to be complete and exact."""
    assert file.integrity_check() == "ok"
    state = file.read(AUTOSAVE) or file.read(SAVED)
    assert state is not None
    version = int(state.history.current_snapshot.manifest["version"])
    assert version >= at_least
    for snap in state.history.snapshots:
        v = int(snap.manifest["version"])
        aid, samples = version_audio(v)
        assert snap.manifest["audio"] == aid
        np.testing.assert_array_equal(snap.audio[aid], samples)
    return version


def test_killing_the_writer_never_loses_a_committed_version(tmp_path: Path) -> None:
    project = tmp_path / "crash.sa3proj"
    recovery = tmp_path / "recovery"
    rng = random.Random(20240531)
    last_commit = 0
    save_as_seen: dict[Path, int] = {}
    kills_with_progress = 0
    for i in range(ITERATIONS):
        delay = rng.uniform(0.0, 0.35)
        if i % 5 == 4:
            target = tmp_path / "saveas.sa3proj"
            lines = run_and_kill("saveas", target, recovery, delay)
            for line in lines:
                path, version = line.rsplit(" ", 1)
                save_as_seen[Path(path)] = int(version)
            for path, version in save_as_seen.items():
                # Each target is either the complete file reported, or a newer complete one.
                with ProjectFile.open(path) as file:
                    assert check_version(file, version) >= version
            continue
        lines = run_and_kill("commit", project, recovery, delay)
        reported = [int(x) for x in lines]
        if reported:
            kills_with_progress += 1
            last_commit = reported[-1]
        with ProjectFile.open(project) as file:
            found = check_version(file, last_commit)
            # Never more than the one version in flight when the writer died.
            assert found <= last_commit + 1
            has_autosave = file.has(AUTOSAVE)
        last_commit = found
        if has_autosave:
            # The pointer is written before the first autosave: a crash is always found.
            items = find_recoverable(recovery)
            assert any(item.project_path == project for item in items)
    # Not a vacuous run: writers got work done before they were killed (how much depends on
    # the machine's load, so only a little is required).
    assert kills_with_progress >= 5
    assert last_commit >= 10
