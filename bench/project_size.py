"""Project size and reopen memory: a 6-minute song with ten takes.

Makes a 6-minute 16-bit 44.1 kHz stereo WAV (tones and noise), opens it as the editor does
(import), adds a 5 s region with ten generated-like takes (float32), accepts one, saves the
project (Save As), and reports the file size. Then, each in a fresh process, it measures the
peak memory (peak RSS, VmHWM, above the process's size after its imports) of opening the WAV and of
reopening the project.

Usage::

    python bench/project_size.py                       # this checkout
    python bench/project_size.py --repo /path/to/old   # another checkout's code (before/after)

Figures go to stdout; this is a benchmark script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
RATE = 44100
MINUTES = 6.0

_MEASURE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from sa3_studio.audio import files, store
from sa3_studio.document.history import History
def rss():
    # VmHWM, the peak of this process image (ru_maxrss would carry the parent's peak over
    # fork and exec on Linux).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
import time
before = rss()
start = time.perf_counter()
what, path, recovery = sys.argv[2], sys.argv[3], sys.argv[4]
if what == "wav":
    audio, _ = files.import_audio(path)
else:
    session = store.ProjectSession.open(path, recovery_dir=recovery)
    history = session.load().to_history()
    session.close()
print(json.dumps({"peak": rss() - before, "seconds": time.perf_counter() - start}))
"""


def _write_song(path: Path) -> None:
    import numpy as np
    import soundfile as sf

    frames = round(MINUTES * 60 * RATE)
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", RATE, 2, "PCM_16", format="WAV") as f:
        for start in range(0, frames, 1 << 18):
            t = (start + np.arange(min(1 << 18, frames - start))) / RATE
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
            left = 0.25 * env * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
            right = 0.25 * env * np.sin(2 * np.pi * 331 * t) + 0.02 * rng.standard_normal(t.size)
            f.write(np.stack([left, right], axis=1))


def _build_project(repo: Path, song: Path, target: Path, recovery: Path) -> None:
    sys.path.insert(0, str(repo))
    import numpy as np

    from sa3_studio.audio import files, store
    from sa3_studio.document.audio_data import AudioData
    from sa3_studio.document.project import Project
    from sa3_studio.document.region_edits import accept_take, add_region, add_take, new_take

    samples, _info = files.import_audio(song)
    opened = Project.from_audio(AudioData.from_array(samples, copy=False))
    track = opened.tracks[0].id
    with_region, rid = add_region(opened, track, 60 * RATE, 65 * RATE, prompt="a drum fill")
    project = with_region
    t = np.arange(5 * RATE) / RATE
    take_ids = []
    for k in range(10):
        rng = np.random.default_rng(100 + k)
        tone = 0.2 * np.sin(2 * np.pi * (200 + 10 * k) * t) + 0.05 * rng.standard_normal(t.size)
        take = new_take(
            project,
            rid,
            AudioData.from_array(np.stack([tone, np.roll(tone, 50)]).astype(np.float32)),
            prompt="a drum fill",
            seed=k,
            model_name="bench",
            weights_hash="0" * 16,
        )
        project = add_take(project, take, require_region=False)
        take_ids.append(take.id)
    accepted = accept_take(project, rid, take_ids[3])
    takes = project.takes

    def keep_takes(p: Project) -> Project:
        # Takes live in every snapshot, as the editor keeps them (amend_all).
        for take in takes:
            p = add_take(p, take, require_region=False)
        return p

    entries = [
        ("", keep_takes(opened)),
        ("Add Region", keep_takes(with_region)),
        ("Accept take 4", accepted),
    ]
    session = store.ProjectSession.new(recovery_dir=recovery)
    record = store.SnapshotCache().record(entries, 2, None)
    session.save_as(target, record)
    session.close()


def _peak(repo: Path, what: str, path: Path, recovery: Path) -> tuple[int, float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(repo), what, str(path), str(recovery)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return int(found["peak"]), float(found["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose code to use")
    args = parser.parse_args()
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="sa3-size-") as tmp:
        folder = Path(tmp)
        song, target, recovery = folder / "song.wav", folder / "song.sa3proj", folder / "rec"
        _write_song(song)
        _build_project(repo, song, target, recovery)
        mib = 1024 * 1024
        audio = round(MINUTES * 60 * RATE) * 2 * 4
        print(f"code: {repo}")
        print(f"song: {MINUTES:g} min 16-bit stereo WAV, {song.stat().st_size / mib:.1f} MiB")
        print(f"project with ten 5 s takes, one accepted: {target.stat().st_size / mib:.1f} MiB")
        wav = _peak(repo, "wav", song, recovery)
        proj = _peak(repo, "project", target, recovery)
        print(f"float32 samples of the song: {audio / mib:.1f} MiB")
        print(f"opening the WAV: peak memory {wav[0] / mib:.1f} MiB, {wav[1]:.2f} s")
        print(f"reopening the project: peak memory {proj[0] / mib:.1f} MiB, {proj[1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
