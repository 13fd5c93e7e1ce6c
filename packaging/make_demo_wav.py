"""Write the demo clip resources/demo/demo-loop-120bpm.wav (run from the repository root).

Two bars of a synthesised loop at 120 BPM: kick, hi-hat, a plucked bass line and a minor-seventh
chord stab; 4 s, 44.1 kHz, stereo, 16-bit PCM (about 690 KB). The clip is made from a fixed seed,
so running this again writes the same samples. It is what the package smoke test opens and what a
new user can try the editor on.

    python packaging/make_demo_wav.py [OUTPUT]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)

RATE = 44_100
BPM = 120.0
BARS = 2
BEAT = 60.0 / BPM  # seconds per quarter note
SEED = 20_240_301


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    """Attack-then-exponential-decay envelope of ``n`` samples; times in seconds."""
    t = np.arange(n) / RATE
    a = np.clip(t / max(attack, 1e-6), 0.0, 1.0)
    return a * np.exp(-t / decay)


def _kick(n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    # A sine whose pitch falls from 150 Hz to 45 Hz: the usual synthesised kick.
    freq = 45.0 + 105.0 * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    return np.sin(phase) * _env(n, 0.002, 0.18)


def _hat(n: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(n)
    # First difference: a cheap high-pass that leaves the hiss of a closed hi-hat.
    bright = np.diff(noise, prepend=0.0)
    return 0.25 * bright * _env(n, 0.001, 0.03)


def _pluck(n: int, freq: float) -> np.ndarray:
    t = np.arange(n) / RATE
    tone = np.sin(2 * np.pi * freq * t) + 0.35 * np.sin(2 * np.pi * 2 * freq * t)
    return tone * _env(n, 0.004, 0.22)


def _stab(n: int, freqs: list[float]) -> np.ndarray:
    t = np.arange(n) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 3 * f * t) for f in freqs)
    return tone / len(freqs) * _env(n, 0.01, 0.35)


def _add(buf: np.ndarray, start_s: float, sig: np.ndarray, gain: float, pan: float) -> None:
    """Mix ``sig`` into ``buf`` (T, 2) at ``start_s`` with constant-power ``pan`` in [-1, 1]."""
    i = round(start_s * RATE)
    n = min(len(sig), buf.shape[0] - i)
    angle = (pan + 1.0) * np.pi / 4.0
    buf[i : i + n, 0] += gain * np.cos(angle) * sig[:n]
    buf[i : i + n, 1] += gain * np.sin(angle) * sig[:n]


def synthesize() -> np.ndarray:
    """The demo loop as float32 samples, shape (T, 2), peak at -1 dBFS."""
    rng = np.random.default_rng(SEED)
    total = round(BARS * 4 * BEAT * RATE)
    buf = np.zeros((total, 2))  # (T, C)
    eighth = BEAT / 2
    # A minor: bass notes per eighth, two bars.
    bass = [55.0, 55.0, 65.41, 55.0, 73.42, 55.0, 82.41, 73.42] * BARS
    for step in range(BARS * 8):
        t0 = step * eighth
        if step % 2 == 0:
            _add(buf, t0, _kick(int(0.35 * RATE)), 0.9, 0.0)
        _add(buf, t0, _hat(int(0.08 * RATE), rng), 0.5, 0.35 if step % 2 else -0.35)
        _add(buf, t0, _pluck(int(eighth * RATE), bass[step]), 0.45, -0.1)
    chords = [[220.0, 261.63, 329.63, 392.0], [196.0, 246.94, 293.66, 349.23]]
    for bar in range(BARS):
        for beat in (1.5, 3.0):
            _add(buf, (bar * 4 + beat) * BEAT, _stab(int(0.6 * RATE), chords[bar]), 0.35, 0.25)
    # Fade the last 5 ms so the loop ends on silence and repeats without a click.
    fade = int(0.005 * RATE)
    buf[-fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    peak = float(np.max(np.abs(buf)))
    return (buf * (10 ** (-1.0 / 20.0) / peak)).astype(np.float32)


def main(argv: list[str]) -> int:
    """Write the clip to ``argv[0]`` or the default path; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(argv[0]) if argv else Path("resources/demo/demo-loop-120bpm.wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    audio = synthesize()
    sf.write(str(out), audio, RATE, subtype="PCM_16")
    log.info("wrote %s: %.1f s, %d bytes", out, audio.shape[0] / RATE, out.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
