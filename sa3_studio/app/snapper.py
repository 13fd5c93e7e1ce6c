"""Snapping of dragged edges to the grids the session has switched on."""

from __future__ import annotations

from collections.abc import Callable

from sa3_studio.app.session import Session
from sa3_studio.document import snapping
from sa3_studio.document.constants import LATENT_FRAMES
from sa3_studio.document.project import Project

ZERO_CROSSING_REACH = 441
"""Zero crossings are looked for at least this far (10 ms) either side, whatever the zoom."""


def snap_frame(project: Project, session: Session, frame: int, tolerance: int) -> int:
    """Snap ``frame`` to the grids turned on in ``session``.

    Latent frames and beats quantise (the nearest grid line wins when both are on). Zero
    crossings move ``frame`` to the nearest crossing within ``tolerance`` frames, but only when
    no grid is on: a latent-aligned edge must stay on its grid line.

    Args:
        project: the project (its tempo grid and audio).
        session: which grids are on.
        frame: the position under the mouse.
        tolerance: how far (frames) a zero crossing may be; a few pixels' worth.
    """
    modes = session.snap
    candidates: list[int] = []
    if modes.latent:
        candidates.append(snapping.snap_to_latent(frame, latent=LATENT_FRAMES))
    grid = project.meta.grid
    if modes.beats and grid is not None:
        candidates.append(snapping.snap_to_beat(frame, grid))
    best = min(candidates, key=lambda c: abs(c - frame)) if candidates else frame
    if modes.zero_crossings and project.tracks and not candidates:
        radius = max(tolerance, ZERO_CROSSING_REACH)
        best = snapping.snap_to_zero_crossing(project.tracks[0], best, radius=radius)
    return max(0, best)


def make_snapper(project_of: Callable[[], Project], session: Session) -> Callable[[int, int], int]:
    """A ``snap(frame, tolerance)`` function for the timeline, reading the current project."""

    def snap(frame: int, tolerance: int) -> int:
        return snap_frame(project_of(), session, frame, tolerance)

    return snap
