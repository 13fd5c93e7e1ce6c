"""Editor benchmarks: print figures for the editor's hot paths (these are not tests).

Usage::

    python bench/editor.py                      # every section
    python bench/editor.py --section import_peaks

Each section is a function ``bench_<name>()`` registered in ``SECTIONS``; add new ones there.
Figures go to stdout only. The machine is shared, so report the best of several runs and the
median next to it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

# Runnable as a script from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sa3_studio.audio.files import import_audio
from sa3_studio.audio.peaks import PeakPyramid


def _write_test_wav(path: Path, minutes: float, rate: int, subtype: str) -> None:
    """A stereo file of music-like content (tones plus noise), written in blocks."""
    frames = round(minutes * 60 * rate)
    rng = np.random.default_rng(0)
    block = 1 << 18
    with sf.SoundFile(str(path), "w", rate, 2, subtype, format="WAV") as f:
        for start in range(0, frames, block):
            n = min(block, frames - start)
            t = (start + np.arange(n)) / rate
            tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3520 * t)
            x = np.stack([tone, np.roll(tone, 17)], axis=1) + 0.05 * rng.standard_normal((n, 2))
            f.write(x.astype(np.float32))


def bench_import_peaks(minutes: float = 6.0, repeats: int = 5) -> None:
    """Import a generated stereo WAV and build its peak pyramid (target: < 1 s for 6 min)."""
    cases = [
        (44100, "PCM_16", "44.1 kHz 16-bit (target case)"),
        (44100, "PCM_24", "44.1 kHz 24-bit"),
        (48000, "PCM_16", "48 kHz 16-bit (resampled to 44.1 kHz)"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for rate, subtype, label in cases:
            path = Path(tmp) / f"bench_{rate}_{subtype}.wav"
            _write_test_wav(path, minutes, rate, subtype)
            size_mb = path.stat().st_size / 2**20
            imports, peaks, totals = [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                audio, _info = import_audio(path)
                t1 = time.perf_counter()
                pyramid = PeakPyramid.from_audio(audio)
                t2 = time.perf_counter()
                imports.append(t1 - t0)
                peaks.append(t2 - t1)
                totals.append(t2 - t0)
                del audio, pyramid
            print(f"import+peaks, {minutes:g} min stereo WAV, {label}, {size_mb:.0f} MB on disk:")
            for name, values in (("import", imports), ("peaks", peaks), ("total", totals)):
                print(
                    f"  {name:<7} best {min(values) * 1000:7.1f} ms   "
                    f"median {statistics.median(values) * 1000:7.1f} ms"
                )


SECTIONS: dict[str, Callable[[], None]] = {
    "import_peaks": bench_import_peaks,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args(argv)
    for name in args.section or list(SECTIONS):
        SECTIONS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
