"""The context-window planner: which stretches of the song to send to the model.

The model sees at most ``context`` frames at a time (about 120 s for the small models, 380 s
for medium), and shorter windows are faster. :func:`plan_windows` takes the song length, the
regions to regenerate and a window length, and returns windows that each hold one or more regions
with song audio on both sides. For every window it gives the masks in window time and the way
back: which part of the window's generated audio belongs to which region.

Everything is in integer frames; seconds appear only in :meth:`Window.inpaint_regions_s`, the
form :class:`sa3_studio.engine.api.GenerationRequest` takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.document.timefmt import format_time
from sa3_studio.errors import EditError

SMALL_MAX_CONTEXT_S = 120.0
"""Longest stretch the small models can see (their ``sample_size`` is about 120 s)."""

MEDIUM_MAX_CONTEXT_S = 380.0
"""Longest stretch the medium models can see (their ``sample_size`` is about 380 s)."""

DEFAULT_MIN_CONTEXT_S = 5.0
"""Song audio a window keeps on each side of its regions, where the song has it."""


def context_frames_for(
    seconds: float, *, sample_rate: int = SAMPLE_RATE, latent: int = LATENT_FRAMES
) -> int:
    """Whole latent frames that fit in ``seconds`` (what to pass as ``context_frames``)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("the context length must be a positive number of seconds")
    return max(1, math.floor(seconds * sample_rate / latent)) * latent


class Span(Protocol):
    """Anything with an id and a ``[start, end)`` span in frames (a :class:`Region` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


@dataclass(frozen=True, slots=True)
class WindowRegion:
    """One region inside a window.

    Attributes:
        region_id: the region.
        start: first frame of the region in window time.
        end: frame after the region in window time.
    """

    region_id: str
    start: int
    end: int

    @property
    def length(self) -> int:
        """Length in frames."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the song sent to the model in one generation.

    Attributes:
        start: first song frame of the window (a latent boundary where possible).
        end: song frame after the window (may pass the song's end only for a continuation).
        regions: the regions to regenerate, in window time, sorted.
        sample_rate: frames per second.
    """

    start: int
    end: int
    regions: tuple[WindowRegion, ...]
    sample_rate: int = SAMPLE_RATE

    @property
    def length(self) -> int:
        """Length in frames (what to generate)."""
        return self.end - self.start

    @property
    def duration_s(self) -> float:
        """Length in seconds (the request's ``duration``)."""
        return self.length / self.sample_rate

    def to_window(self, song_frame: int) -> int:
        """Song frame -> window frame."""
        return song_frame - self.start

    def to_song(self, window_frame: int) -> int:
        """Window frame -> song frame."""
        return window_frame + self.start

    def inpaint_regions_s(self) -> tuple[tuple[float, float], ...]:
        """The regions as ``(start, end)`` seconds in window time (sorted, disjoint)."""
        merged: list[list[int]] = []
        for r in self.regions:
            if merged and r.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], r.end)
            else:
                merged.append([r.start, r.end])
        return tuple((s / self.sample_rate, e / self.sample_rate) for s, e in merged)

    def mask(self) -> npt.NDArray[np.bool_]:
        """Per window frame: True where the model generates, False where it keeps the song."""
        out = np.zeros(self.length, dtype=np.bool_)
        for r in self.regions:
            out[r.start : r.end] = True
        return out

    def latent_mask(self, latent: int = LATENT_FRAMES) -> npt.NDArray[np.bool_]:
        """Per latent frame: True where generated. Latent ``j`` takes the frame ``j * latent``
        (the official rule), so regions on latent boundaries map exactly."""
        frames = self.mask()
        return frames[::latent].copy()

    def source(self, song: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Cut the window out of the song audio ``(channels, frames)``; zeros past its end."""
        out = np.zeros((song.shape[0], self.length), dtype=np.float32)  # (C, W)
        stop = min(self.end, song.shape[1])
        if stop > self.start:
            out[:, : stop - self.start] = song[:, self.start : stop]
        return out

    def region(self, region_id: str) -> WindowRegion:
        """The window's entry for a region.

        Raises:
            KeyError: the region is not in this window.
        """
        for r in self.regions:
            if r.region_id == region_id:
                return r
        raise KeyError(region_id)

    def region_audio(
        self,
        generated: npt.NDArray[np.float32],
        region_id: str,
        *,
        generated_start: int = 0,
    ) -> npt.NDArray[np.float32]:
        """The part of a generated window that belongs to one region (the way back).

        Args:
            generated: ``(channels, frames)`` audio the model returned for this window.
            region_id: the region wanted.
            generated_start: window frame of ``generated[:, 0]`` (non-zero when only a part
                of the window was decoded).

        Returns:
            ``(channels, region length)``, a copy; ready for a take.

        Raises:
            KeyError: the region is not in this window.
            ValueError: ``generated`` does not cover the region.
        """
        r = self.region(region_id)
        lo, hi = r.start - generated_start, r.end - generated_start
        if lo < 0 or hi > generated.shape[-1]:
            raise ValueError(f"the generated audio does not cover region {region_id}")
        return np.array(generated[..., lo:hi], dtype=np.float32, copy=True)


def _needs(lo: int, hi: int, song: int, margin: int) -> tuple[int, int]:
    """Context wanted around ``[lo, hi)``: ``margin`` each side, less where the song ends."""
    return min(margin, lo), min(margin, max(0, song - hi))


def _title(span: Span) -> str:
    name = getattr(span, "name", "")
    return f"'{name}'" if name else f"{format_time(span.start)}"


def plan_windows(
    song_frames: int,
    regions: Sequence[Span],
    context_frames: int,
    *,
    sample_rate: int = SAMPLE_RATE,
    latent: int = LATENT_FRAMES,
    min_context_frames: int | None = None,
) -> list[Window]:
    """Plan the windows to generate ``regions`` of a song with a given context length.

    Regions are taken in song order. A region joins the previous window when the span of both,
    plus ``min_context_frames`` of song on each side, still fits in ``context_frames``;
    otherwise it starts a new window. Each window is ``context_frames`` long (the whole song
    when that is shorter) and centred on its regions, then moved to start on a latent boundary
    when that keeps the needed context and stays inside the song. A region reaching past the
    song's end (a continuation) stretches the "song" to its end.

    Args:
        song_frames: length of the song.
        regions: spans to regenerate (ids must be unique; overlapping spans are allowed).
        context_frames: most frames the model should see at once.
        sample_rate: frames per second (for messages and seconds).
        latent: frames per latent frame, for alignment.
        min_context_frames: song kept on each side of a window's regions where the song has it
            (default 5 s, lowered to what the context length leaves).

    Returns:
        Windows in song order; every region is in exactly one.

    Raises:
        EditError: no regions, bad lengths, or a region too long for the context length.
    """
    if context_frames < 1:
        raise EditError("The context length must be longer than zero.")
    if not regions:
        raise EditError("There is no region to generate; select a part of the song first.")
    spans = sorted(regions, key=lambda r: (r.start, r.end))
    if len({r.id for r in spans}) != len(spans):
        raise ValueError("region ids must be unique")
    for r in spans:
        if not 0 <= r.start < r.end:
            raise EditError(f"Region {_title(r)} is empty or starts before the song.")
    song = max(song_frames, max(r.end for r in spans))
    if min_context_frames is None:
        min_context_frames = round(DEFAULT_MIN_CONTEXT_S * sample_rate)
    if min_context_frames < 0:
        raise ValueError("min_context_frames cannot be negative")
    window_len = min(context_frames, song)

    for r in spans:
        before, after = _needs(r.start, r.end, song, min_context_frames)
        if r.end - r.start + before + after > window_len:
            most = window_len - before - after
            raise EditError(
                f"Region {_title(r)} is {format_time(r.end - r.start, sample_rate)} long, but "
                f"with a context of {format_time(context_frames, sample_rate)} a region there "
                f"can be at most {format_time(most, sample_rate)} (the model also needs "
                f"{format_time(min_context_frames, sample_rate)} of the song on each side); "
                "split the region or choose a longer context."
            )

    groups: list[list[Span]] = []
    for r in spans:
        if groups:
            lo = min(x.start for x in groups[-1])
            hi = max(max(x.end for x in groups[-1]), r.end)
            before, after = _needs(lo, hi, song, min_context_frames)
            if hi - lo + before + after <= window_len:
                groups[-1].append(r)
                continue
        groups.append([r])

    windows = []
    for group in groups:
        lo = min(x.start for x in group)
        hi = max(x.end for x in group)
        before, after = _needs(lo, hi, song, min_context_frames)
        start = _place(lo, hi, before, after, window_len, song, latent)
        inner = tuple(
            WindowRegion(x.id, x.start - start, x.end - start)
            for x in sorted(group, key=lambda x: (x.start, x.end, x.id))
        )
        windows.append(Window(start, start + window_len, inner, sample_rate))
    return windows


def _place(lo: int, hi: int, before: int, after: int, length: int, song: int, latent: int) -> int:
    """Start of a ``length``-frame window holding ``[lo - before, hi + after)``, centred."""
    earliest = max(0, hi + after - length)  # window must reach hi + after
    latest = min(lo - before, song - length)  # and start by lo - before, inside the song
    centred = lo - (length - (hi - lo)) // 2
    start = min(max(centred, earliest), latest)
    # Prefer a latent boundary: the nearest one that still satisfies both limits.
    down = start - start % latent
    up = down + latent if start % latent else start
    for candidate in sorted((down, up), key=lambda c: (abs(c - start), c)):
        if earliest <= candidate <= latest:
            return candidate
    return start
