"""The time ruler above the waveform: minutes:seconds, or bars:beats when a tempo is set."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyqtgraph as pg

NICE_STEPS_S = (
    0.0001,
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
"""Spacings of labelled ticks, in seconds."""

MIN_LABEL_PX = 84.0
"""Labelled ticks are at least this far apart."""


@dataclass(frozen=True, slots=True)
class Tempo:
    """What the ruler needs of a beat grid.

    Attributes:
        bpm: beats per minute.
        offset_s: time of bar 1, beat 1, in seconds.
        beats_per_bar: beats in one bar.
    """

    bpm: float
    offset_s: float = 0.0
    beats_per_bar: int = 4

    @property
    def beat_s(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.bpm


def format_seconds(t: float, step: float) -> str:
    """Label a tick at ``t`` seconds; ``step`` (the tick spacing) sets the precision."""
    sign = "-" if t < 0 else ""
    t = abs(t)
    if step >= 1.0:
        decimals = 0
    elif step >= 0.1:
        decimals = 1
    elif step >= 0.01:
        decimals = 2
    elif step >= 0.001:
        decimals = 3
    else:
        decimals = 4
    scale = 10**decimals
    total = round(t * scale)
    whole, frac = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    tail = f".{frac:0{decimals}d}" if decimals else ""
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{seconds:02d}{tail}"
    return f"{sign}{minutes}:{seconds:02d}{tail}"


def time_ticks(lo: float, hi: float, px: float) -> tuple[float, float]:
    """Major and minor tick spacing (seconds) for a view of ``hi - lo`` seconds over ``px``."""
    span = max(hi - lo, 1e-9)
    per_px = span / max(px, 1.0)
    major = NICE_STEPS_S[-1]
    for step in NICE_STEPS_S:
        if step / per_px >= MIN_LABEL_PX:
            major = step
            break
    text = f"{major:.6g}"
    if text.startswith(("2", "15")):
        minor = major / 4 if text.startswith("2") else major / 3
    elif text.startswith(("3", "6")):
        minor = major / 6
    else:
        minor = major / 5
    return major, minor


def beat_ticks(lo: float, hi: float, px: float, tempo: Tempo) -> tuple[float, float]:
    """Major and minor tick spacing (in beats) for the bars:beats ruler."""
    span_beats = max(hi - lo, 1e-9) / tempo.beat_s
    per_px = span_beats / max(px, 1.0)
    bar = tempo.beats_per_bar
    candidates = [0.25, 0.5, 1.0] + [float(bar * n) for n in (1, 2, 4, 8, 16, 32, 64, 128)]
    major = candidates[-1]
    for step in candidates:
        if step / per_px >= MIN_LABEL_PX * 0.6:
            major = step
            break
    minor = 1.0 if major >= bar else major / 2
    if major > bar * 4:
        minor = float(bar)
    return major, minor


def format_beat(beat: float, tempo: Tempo, step: float) -> str:
    """Label a tick at ``beat`` beats from bar 1 as ``bar`` or ``bar.beat`` (1-based)."""
    bar_i, rest = divmod(beat, tempo.beats_per_bar)
    bar_n = int(bar_i) + 1
    if step >= tempo.beats_per_bar and abs(rest) < 1e-6:
        return f"{bar_n}"
    beat_n = math.floor(rest + 1e-6) + 1
    sub = rest - math.floor(rest + 1e-6)
    if step < 1.0 and sub > 1e-6:
        return f"{bar_n}.{beat_n}.{round(sub * 4) + 1}"
    return f"{bar_n}.{beat_n}"


class TimeAxis(pg.AxisItem):
    """A pyqtgraph axis that labels seconds as m:ss(.fff), or bars.beats with a tempo."""

    def __init__(self, orientation: str = "top", **kwargs: object) -> None:
        super().__init__(orientation, **kwargs)
        self._tempo: Tempo | None = None
        self._label_fn: Callable[[float, float], str] = format_seconds
        self.enableAutoSIPrefix(False)

    def set_tempo(self, tempo: Tempo | None) -> None:
        """Show bars:beats for ``tempo`` (``None``: minutes:seconds)."""
        if tempo != self._tempo:
            self._tempo = tempo
            self.picture = None
            self.update()

    def tempo(self) -> Tempo | None:
        """The tempo shown, if any."""
        return self._tempo

    def tickValues(  # noqa: N802
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:
        lo, hi = (minVal, maxVal) if minVal <= maxVal else (maxVal, minVal)
        tempo = self._tempo
        if tempo is None:
            major, minor = time_ticks(lo, hi, size)
            return [
                (major, _multiples(lo, hi, major, 0.0)),
                (minor, _multiples(lo, hi, minor, 0.0)),
            ]
        major_b, minor_b = beat_ticks(lo, hi, size, tempo)
        beat_s = tempo.beat_s
        return [
            (major_b * beat_s, _multiples(lo, hi, major_b * beat_s, tempo.offset_s)),
            (minor_b * beat_s, _multiples(lo, hi, minor_b * beat_s, tempo.offset_s)),
        ]

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        tempo = self._tempo
        if tempo is None:
            return [format_seconds(v, spacing) for v in values]
        step_beats = spacing / tempo.beat_s
        return [format_beat((v - tempo.offset_s) / tempo.beat_s, tempo, step_beats) for v in values]


def _multiples(lo: float, hi: float, step: float, origin: float) -> list[float]:
    """Every ``origin + k * step`` inside ``[lo, hi]``."""
    if step <= 0:
        return []
    first = math.ceil((lo - origin) / step - 1e-9)
    last = math.floor((hi - origin) / step + 1e-9)
    if last - first > 4000:  # a degenerate size: never build huge tick lists
        return []
    return [origin + k * step for k in range(first, last + 1)]
