"""A synthesised song for GUI tests, benchmarks and screenshots: drums, bass and chords.

Deterministic (seeded), stereo, 44.1 kHz float32. It looks and sounds like music on a
waveform: kicks and snares make transients, the bass and pads fill the body, and the sections
(intro, verse, break, chorus) give the overview strip a shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

RATE = 44100
BPM = 120.0

FloatArray = npt.NDArray[np.float32]

# A minor - F - C - G, as MIDI roots and triads.
_PROGRESSION = ((45, (57, 60, 64)), (41, (53, 57, 60)), (48, (55, 60, 64)), (43, (55, 59, 62)))


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def _add(out: FloatArray, start: int, sig: npt.NDArray[np.float64], pan: float = 0.0) -> None:
    end = min(start + sig.shape[0], out.shape[1])
    if end <= start:
        return
    s = sig[: end - start]
    left = np.cos((pan + 1.0) * np.pi / 4.0)
    right = np.sin((pan + 1.0) * np.pi / 4.0)
    out[0, start:end] += (s * left * np.sqrt(2.0)).astype(np.float32)
    out[1, start:end] += (s * right * np.sqrt(2.0)).astype(np.float32)


def _kick(rate: int) -> npt.NDArray[np.float64]:
    t = np.arange(int(0.35 * rate)) / rate
    freq = 45.0 + 110.0 * np.exp(-t * 28.0)
    phase = 2.0 * np.pi * np.cumsum(freq) / rate
    return np.sin(phase) * np.exp(-t * 9.0) * 0.95


def _snare(rate: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    t = np.arange(int(0.25 * rate)) / rate
    noise = rng.standard_normal(t.shape[0])
    noise = np.diff(noise, prepend=0.0) * 0.5  # brighter
    tone = np.sin(2.0 * np.pi * 185.0 * t) * np.exp(-t * 30.0)
    return (noise * np.exp(-t * 16.0) * 0.45 + tone * 0.5) * 0.8


def _hat(rate: int, rng: np.random.Generator, open_: bool = False) -> npt.NDArray[np.float64]:
    t = np.arange(int((0.18 if open_ else 0.05) * rate)) / rate
    noise = np.diff(rng.standard_normal(t.shape[0] + 1), n=1)
    return noise * np.exp(-t * (18.0 if open_ else 70.0)) * 0.16


def _bass_note(rate: int, midi: int, length_s: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(length_s * rate)) / rate
    f = _hz(midi)
    wave = sum(np.sin(2.0 * np.pi * f * k * t) / k for k in range(1, 7))
    env = np.minimum(t / 0.005, 1.0) * np.exp(-t * 7.0)
    return wave * env * 0.26


def _pad_chord(rate: int, notes: tuple[int, ...], length_s: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(length_s * rate)) / rate
    out = np.zeros_like(t)
    for n in notes:
        for detune in (-0.08, 0.0, 0.08):
            f = _hz(n + detune)
            out += np.sin(2.0 * np.pi * f * t) + 0.3 * np.sin(4.0 * np.pi * f * t)
    attack = np.minimum(t / 0.25, 1.0)
    release = np.minimum((length_s - t) / 0.3, 1.0)
    return out * attack * release * 0.022


def make_song(bars: int = 16, *, bpm: float = BPM, rate: int = RATE, seed: int = 7) -> FloatArray:
    """A song of ``bars`` 4/4 bars: intro (drums), verse, a break (pads only), chorus.

    Returns:
        ``(2, frames)`` float32 in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    beat = round(60.0 / bpm * rate)
    bar = 4 * beat
    out = np.zeros((2, bars * bar), dtype=np.float32)
    kick, snare = _kick(rate), _snare(rate, rng)
    for b in range(bars):
        section = b / max(bars, 1)
        intro = b < max(bars // 8, 1)
        brk = 0.6 <= section < 0.7
        root, chord = _PROGRESSION[b % 4]
        start = b * bar
        if not brk:
            for k in (0, 2) if not intro else (0, 1, 2, 3):
                _add(out, start + k * beat, kick)
            _add(out, start + int(2.5 * beat), kick * 0.7)
            for k in (1, 3):
                _add(out, start + k * beat, snare, pan=0.1)
            for k in range(8):
                hat = _hat(rate, rng, open_=(k == 7))
                _add(out, start + k * beat // 2, hat * (1.0 if k % 2 else 0.6), pan=-0.35)
        if not intro:
            if not brk:
                for k in range(8):
                    note = root + (12 if k in (3, 6) else 0)
                    _add(out, start + k * beat // 2, _bass_note(rate, note, 0.22), pan=0.0)
            loud = 1.6 if brk else (1.25 if section >= 0.7 else 1.0)
            _add(out, start, _pad_chord(rate, chord, 4 * beat / rate) * loud, pan=0.25)
            _add(out, start, _pad_chord(rate, chord, 4 * beat / rate) * loud * 0.8, pan=-0.25)
    peak = float(np.max(np.abs(out))) or 1.0
    out *= np.float32(0.89 / peak)
    return out


def write_song(path: Path, bars: int = 16, **kwargs: float) -> Path:
    """Write :func:`make_song` as a 16-bit WAV file and return its path."""
    audio = make_song(bars, **kwargs)  # type: ignore[arg-type]
    sf.write(str(path), audio.T, RATE, subtype="PCM_16")
    return path
