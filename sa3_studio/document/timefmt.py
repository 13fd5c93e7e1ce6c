"""Frames <-> text: ``0:12.345`` clock times, bar.beat positions, and labels for menus.

Positions are integer frames everywhere in the document; these helpers are the edge where
seconds and bars meet the user. Parsing raises :class:`~sa3_studio.errors.EditError` with a
sentence for the user, because parsed text comes from what they typed.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.grid import BeatGrid
from sa3_studio.errors import EditError

_EN_DASH = "\u2013"


def _split_units(frames: int, sample_rate: int, decimals: int) -> tuple[str, int, int, int, int]:
    """Round ``|frames|`` to ``decimals`` and split it into (sign, h, m, s, fraction)."""
    if decimals < 0 or decimals > 6:
        raise ValueError(f"decimals must be 0..6, got {decimals}")
    scale = 10**decimals
    magnitude = abs(frames)
    # Round half up in integers, so 0.0005 s never turns into 0.000 by float error.
    units = (2 * magnitude * scale + sample_rate) // (2 * sample_rate)
    sign = "-" if frames < 0 and units > 0 else ""
    whole, fraction = divmod(units, scale)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    return sign, hours, minutes, seconds, fraction


def format_time(frames: int, sample_rate: int = SAMPLE_RATE, *, decimals: int = 3) -> str:
    """Format a frame count as a clock time: ``0:12.345``, ``12:03.000``, ``1:02:03.500``.

    Args:
        frames: the position or duration (may be negative).
        sample_rate: frames per second.
        decimals: digits after the seconds' point (0 drops the point).

    Returns:
        ``[-][h:]m:ss[.fff]``; hours appear only when non-zero.
    """
    sign, hours, minutes, seconds, fraction = _split_units(frames, sample_rate, decimals)
    tail = f".{fraction:0{decimals}d}" if decimals else ""
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{seconds:02d}{tail}"
    return f"{sign}{minutes}:{seconds:02d}{tail}"


def format_time_compact(frames: int, sample_rate: int = SAMPLE_RATE) -> str:
    """Like :func:`format_time` with at most two decimals and no trailing zeros: ``0:12``,
    ``0:12.5``, ``0:12.25``. Used in menu labels."""
    text = format_time(frames, sample_rate, decimals=2)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_range(start: int, end: int, sample_rate: int = SAMPLE_RATE) -> str:
    """``0:12–0:16``: a span in compact clock times joined by an en dash."""
    return (
        f"{format_time_compact(start, sample_rate)}{_EN_DASH}"
        f"{format_time_compact(end, sample_rate)}"
    )


def range_label(action: str, start: int, end: int, sample_rate: int = SAMPLE_RATE) -> str:
    """A history label for an edit of a span: ``range_label("Gain", ...)`` -> ``Gain 0:12–0:16``.

    The history adds "Undo " / "Redo " in front of it for the menu.
    """
    return f"{action} {format_range(start, end, sample_rate)}"


_TIME_RE = re.compile(
    r"""^\s*
    (?:(?P<h>\d+):(?=\d+:))?          # hours, only when minutes follow
    (?:(?P<m>\d+):)?                  # minutes
    (?P<s>\d+(?:\.\d*)?|\.\d+)        # seconds
    \s*(?P<unit>ms|s|sec|seconds?)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def parse_time(text: str, sample_rate: int = SAMPLE_RATE) -> int:
    """Parse a time the user typed into frames (rounded to the nearest frame).

    Accepted: ``12``, ``12.5``, ``12.5s``, ``250ms``, ``1:02.5``, ``1:02:03.25``.

    Raises:
        EditError: the text is not a time in one of those forms.
    """
    match = _TIME_RE.match(text)
    hint = f"'{text.strip()}' is not a time; write it as 1:23.456 or as seconds (83.456)."
    if match is None:
        raise EditError(hint)
    try:
        seconds = Decimal(match["s"])
    except InvalidOperation:
        raise EditError(hint) from None
    unit = (match["unit"] or "").lower()
    has_clock = match["m"] is not None
    if unit == "ms":
        if has_clock:
            raise EditError(hint)
        seconds /= 1000
    if has_clock:
        if seconds >= 60:
            raise EditError(f"'{text.strip()}' has more than 59 seconds after the minutes.")
        minutes = int(match["m"])
        if match["h"] is not None:
            if minutes >= 60:
                raise EditError(f"'{text.strip()}' has more than 59 minutes after the hours.")
            minutes += 60 * int(match["h"])
        seconds += 60 * minutes
    frames = (seconds * sample_rate).to_integral_value(rounding=ROUND_HALF_UP)
    return int(frames)


def _beat_hundredths(frame: int, grid: BeatGrid) -> int:
    # Positions come from frame_at_beat(), which rounds to the nearest frame; half a frame of
    # slack makes every such position print as the hundredth it was made from.
    return math.floor((frame - grid.offset + 0.5) * 100 / grid.beat_frames)


def format_bars_beats(frame: int, grid: BeatGrid) -> str:
    """Format a position as ``bar.beat.hundredths`` (1-based): ``1.1.00`` is the first downbeat.

    Positions before the first downbeat count down through bar 0, -1, ...
    """
    hundredths = _beat_hundredths(frame, grid)
    beats, frac = divmod(hundredths, 100)
    bar, beat = divmod(beats, grid.beats_per_bar)
    return f"{bar + 1}.{beat + 1}.{frac:02d}"


_BARS_RE = re.compile(r"^\s*(-?\d+)(?:[.:](\d+)(?:[.:](\d{1,2}))?)?\s*$")


def parse_bars_beats(text: str, grid: BeatGrid) -> int:
    """Parse ``bar[.beat[.hundredths]]`` (1-based, ``:`` also accepted) into a frame.

    Raises:
        EditError: the text is not a bar position, or the beat is outside the bar.
    """
    match = _BARS_RE.match(text)
    if match is None:
        raise EditError(f"'{text.strip()}' is not a bar position; write it as bar.beat, e.g. 5.3.")
    bar = int(match[1])
    beat = int(match[2]) if match[2] is not None else 1
    hundredths = int(match[3].ljust(2, "0")) if match[3] is not None else 0
    if not 1 <= beat <= grid.beats_per_bar:
        raise EditError(
            f"Beat {beat} does not exist in a bar of {grid.beats_per_bar} beats; "
            f"use a beat from 1 to {grid.beats_per_bar}."
        )
    beats = (bar - 1) * grid.beats_per_bar + (beat - 1) + hundredths / 100
    return grid.frame_at_beat(beats)
