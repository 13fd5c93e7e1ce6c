"""A writer process for the crash test: commits (and saves) versions of a project in a loop.

Usage: ``python _store_writer.py MODE PROJECT RECOVERY_DIR``

- ``commit``: open PROJECT (creating it with Save As the first time), then forever: make
  version v+1 (a new snapshot with new audio, keeping the last five snapshots), autosave it,
  or every fourth version save it, and print ``v`` once the call has returned.
- ``saveas``: forever Save As version v+1 alternately to PROJECT and to PROJECT with ``-b``
  before the suffix, printing ``<path> v`` once the call has returned (numbering goes on from
  the newest version already in those files).

It prints ``ready`` before the loop. The parent kills it (SIGKILL) at a random moment; every
version printed must survive.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sa3_studio.audio.store import SAVED, HistoryRecord, ProjectFile, ProjectSession, Snapshot

KEEP = 5


def version_audio(version: int) -> tuple[str, np.ndarray]:
    """The audio of a version: deterministic, of varying size (up to about 2.4 MB)."""
    rng = np.random.default_rng(version)
    frames = int(rng.integers(1000, 300_000))
    samples = rng.standard_normal((2, frames)).astype(np.float32)
    samples.setflags(write=False)
    return f"audio-{version}", samples


def version_snapshot(version: int) -> Snapshot:
    aid, samples = version_audio(version)
    return Snapshot(f"Edit {version}", {"version": version, "audio": aid}, {aid: samples})


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_commits(project: Path, recovery: Path) -> None:
    if not project.exists():
        first = ProjectSession.new(recovery_dir=recovery)
        first.save_as(project, HistoryRecord((version_snapshot(0),), 0))
        first.close()
    session = ProjectSession.open(project, recovery_dir=recovery)
    state = session.recovered() or session.load()
    assert state is not None
    snapshots = list(state.history.snapshots[: state.history.current + 1])
    version = int(state.history.current_snapshot.manifest["version"])
    say("ready")
    while True:
        version += 1
        snapshots = [*snapshots, version_snapshot(version)][-KEEP:]
        record = HistoryRecord(tuple(snapshots), len(snapshots) - 1)
        if version % 4 == 0:
            session.save(record)
        else:
            session.commit(record)
        say(str(version))


def run_save_as(project: Path, recovery: Path) -> None:
    other = project.with_name(project.stem + "-b" + project.suffix)
    version = 0  # go on numbering after what earlier (killed) writers saved
    for target in (project, other):
        if target.exists():
            with ProjectFile.open(target) as file:
                state = file.read(SAVED)
                assert state is not None
                version = max(version, int(state.history.current_snapshot.manifest["version"]))
    session = ProjectSession.new(recovery_dir=recovery)
    say("ready")
    while True:
        version += 1
        target = project if version % 2 else other
        session.save_as(target, HistoryRecord((version_snapshot(version),), 0))
        say(f"{target} {version}")


def main() -> None:
    mode, project, recovery = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if mode == "commit":
        run_commits(project, recovery)
    elif mode == "saveas":
        run_save_as(project, recovery)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
