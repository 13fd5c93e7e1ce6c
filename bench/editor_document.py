"""Document-model benchmarks: memory of the undo history and time of the edits (not tests).

Usage::

    python bench/editor_document.py                 # every section
    python bench/editor_document.py --section history_memory

Figures go to stdout only. The machine is shared, so read timings as rough; the memory figures
are exact (bytes of distinct audio buffers held by all snapshots).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Runnable as a script from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sa3_studio.document import (
    SAMPLE_RATE,
    AudioData,
    History,
    Project,
    accept_take,
    add_region,
    add_take,
    apply_gain,
    context_frames_for,
    delete_range,
    fade_in,
    insert_silence,
    new_take,
    plan_windows,
)
from sa3_studio.document.loudness import integrated_loudness

SR = SAMPLE_RATE


def _song(minutes: float, seed: int = 0) -> AudioData:
    frames = round(minutes * 60 * SR)
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal((2, frames), dtype=np.float32) * np.float32(0.1)
    return AudioData.from_array(samples, copy=False)


def _timed(fn: Callable[[], object], repeats: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def bench_history_memory() -> None:
    """100 mixed small edits on a 6-minute stereo song: history memory vs the song's size."""
    song = _song(6.0)
    project = Project.from_audio(song)
    history = History(project)
    frames = song.frames
    t0 = time.perf_counter()
    for i in range(100):
        at = (i * 3 * SR + 1234) % (frames - 10 * SR)
        kind = i % 5
        if kind == 0:
            project = apply_gain(project, at, at + SR, -1.0)
        elif kind == 1:
            project = fade_in(project, at, at + SR // 2)
        elif kind == 2:
            project = insert_silence(project, at, SR // 10)
        elif kind == 3:
            project = delete_range(project, at, at + SR // 10)
        else:
            project, rid = add_region(project, "track-1", at, at + 5 * SR)
            audio = _song(5 / 60, seed=i)
            take = new_take(project, rid, audio, prompt="", seed=i, model_name="m", weights_hash="")
            project = accept_take(add_take(project, take), rid, take.id)
        history.push(project, f"Edit {i}")
    elapsed = time.perf_counter() - t0
    ratio = history.memory_bytes() / song.nbytes
    print(f"song: {song.nbytes / 2**20:.1f} MiB ({frames} frames)")
    print(f"100 edits + pushes: {elapsed:.2f} s ({elapsed * 10:.1f} ms per edit)")
    print(f"history holds {history.memory_bytes() / 2**20:.1f} MiB = {ratio:.3f} x the song")
    t0 = time.perf_counter()
    while history.can_undo:
        history.undo()
    while history.can_redo:
        history.redo()
    print(f"undo all + redo all: {(time.perf_counter() - t0) * 1000:.1f} ms")


def bench_edits() -> None:
    """Single edits on a 6-minute song (best and median of 5)."""
    project = Project.from_audio(_song(6.0))
    cases: dict[str, Callable[[], object]] = {
        "gain 1 s": lambda: apply_gain(project, 60 * SR, 61 * SR, -3.0),
        "delete 1 s": lambda: delete_range(project, 60 * SR, 61 * SR),
        "insert silence": lambda: insert_silence(project, 60 * SR, SR),
        "fade in 10 s": lambda: fade_in(project, 0, 10 * SR),
    }
    for name, fn in cases.items():
        best, median = _timed(fn)
        print(f"{name:16s} best {best * 1000:7.2f} ms  median {median * 1000:7.2f} ms")


def bench_accept_take() -> None:
    """Accepting a 5 s take into a 6-minute song (crossfades 25 ms; best and median of 5)."""
    project = Project.from_audio(_song(6.0))
    start, end = 120 * SR, 125 * SR
    project, region_id = add_region(project, "track-1", start, end)
    take_audio = AudioData.from_array(_song(6.0, seed=1).samples[:, : end - start])
    take = new_take(
        project, region_id, take_audio, prompt="fill", seed=1, model_name="bench", weights_hash="0"
    )
    project = add_take(project, take)
    best, median = _timed(lambda: accept_take(project, region_id, take.id))
    print(f"accept 5 s take   best {best * 1000:7.2f} ms  median {median * 1000:7.2f} ms")


def bench_loudness() -> None:
    """BS.1770 integrated loudness of a 6-minute stereo song."""
    samples = _song(6.0).samples
    best, median = _timed(lambda: integrated_loudness(samples), repeats=3)
    print(f"integrated loudness, 6 min stereo: best {best:.2f} s  median {median:.2f} s")


def bench_planner() -> None:
    """Planning 50 regions in a 6-minute song for both context lengths."""
    project = Project.from_audio(_song(6.0))
    for i in range(50):
        project, _ = add_region(project, "track-1", (i * 7 + 1) * SR, (i * 7 + 4) * SR)
    for seconds in (120.0, 380.0):
        ctx = context_frames_for(seconds)
        windows = plan_windows(project.frames, project.regions, ctx)
        best, _ = _timed(lambda ctx=ctx: plan_windows(project.frames, project.regions, ctx))
        print(f"context {seconds:.0f} s: {len(windows)} windows, planned in {best * 1000:.2f} ms")


SECTIONS: dict[str, Callable[[], None]] = {
    "history_memory": bench_history_memory,
    "edits": bench_edits,
    "accept_take": bench_accept_take,
    "loudness": bench_loudness,
    "planner": bench_planner,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args()
    for name in args.section or list(SECTIONS):
        print(f"== {name}")
        SECTIONS[name]()


if __name__ == "__main__":
    main()
