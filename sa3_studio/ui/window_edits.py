"""Edit commands of the main window: clipboard, level edits, regions, nudging and zoom.

A mixin of :class:`~sa3_studio.ui.main_window.MainWindow`; every document change goes through
``services.document`` (one undo step each); selection and zoom stay view state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMenu

from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE

if TYPE_CHECKING:
    from sa3_studio.ui.main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object

NUDGE_S = 0.010
"""Nudge step without a snap grid (seconds); Shift nudges ten times as far."""


class EditCommands(_Base):
    """The Edit and Regions menus, nudging, zooming to a region, the context menu."""

    def _undo(self) -> None:
        self.services.document.undo()

    def _redo(self) -> None:
        self.services.document.redo()

    def _cut(self) -> None:
        ranges, tracks = self.target_ranges(), self.target_tracks()
        if self.services.document.cut(ranges, track_ids=tracks):
            self._collapse_to(ranges[0][0], tracks)

    def _copy(self) -> None:
        if self.services.document.copy(self.target_ranges(), track_ids=self.target_tracks()):
            self._update_actions()

    def _delete(self) -> None:
        ranges, tracks = self.target_ranges(), self.target_tracks()
        if self.services.document.delete(ranges, track_ids=tracks):
            self._collapse_to(ranges[0][0], tracks)

    def _collapse_to(self, frame: int, tracks: list[str] | None = None) -> None:
        """Put the cursor at ``frame``, still in the lanes that were edited (for a paste)."""
        s = self.services.session
        s.clear_selection()
        s.set_selected_regions(())
        s.set_cursor(frame)
        s.set_selection_tracks(tracks or ())
        self._update_actions()

    def _paste(self) -> None:
        s = self.services.session
        bounds = s.selection_bounds()
        at = bounds[0] if bounds is not None else s.cursor
        n = self.services.document.paste(at, track_ids=self.target_tracks())
        if n:
            s.set_selected_regions(())
            s.set_selection([(at, at + n)])

    def _gain(self) -> None:
        ranges = self.target_ranges()
        db = self.prompts.gain_db()
        if db is not None:
            self.services.document.gain(ranges, db, track_ids=self.target_tracks())

    def _normalize(self) -> None:
        ranges = self.target_ranges()
        target = self.prompts.normalize_target()
        if target is not None:
            self.services.document.normalize(ranges, target, track_ids=self.target_tracks())

    def _select_all(self) -> None:
        self.services.session.set_selected_regions(())
        self.services.session.select_all()

    def _select_none(self) -> None:
        self.services.session.set_selected_regions(())
        self.services.session.clear_selection()

    def _nudge_step(self, big: bool) -> int:
        s = self.services.session
        grid = self.services.document.project.meta.grid
        if s.snap.beats and grid is not None:
            return round(grid.bar_frames if big else grid.beat_frames)
        if s.snap.latent:
            return LATENT_FRAMES * (8 if big else 1)
        return round(NUDGE_S * SAMPLE_RATE * (10 if big else 1))

    def _nudge(self, direction: int, *, big: bool) -> None:
        s = self.services.session
        step = direction * self._nudge_step(big)
        if s.has_selection() and not s.selected_region_ids():
            s.nudge_selection(step)
        else:
            s.set_cursor(s.cursor + step)
            s.ensure_visible(s.cursor / SAMPLE_RATE)

    def _add_regions(self) -> None:
        s = self.services.session
        ids = self.services.document.add_regions(
            s.selection(), track_ids=s.selection_tracks() or None
        )
        if ids:
            s.set_selected_regions(ids)

    def _delete_regions(self) -> None:
        ids = list(self.services.session.selected_region_ids())
        if self.services.document.delete_regions(ids):
            self.services.session.set_selected_regions(())

    def _step_region(self, direction: int) -> None:
        s = self.services.session
        regions = sorted(self.services.document.project.regions, key=lambda r: r.start)
        if not regions:
            return
        cur = s.cursor
        if direction > 0:
            nxt = next((r for r in regions if r.start > cur), regions[0])
        else:
            nxt = next((r for r in reversed(regions) if r.start < cur), regions[-1])
        s.set_selected_regions([nxt.id])
        s.set_selection([(nxt.start, nxt.end)])
        s.set_cursor(nxt.start)
        s.ensure_visible(nxt.start / SAMPLE_RATE)

    def _on_region_edge(self, region_id: str, start: int, end: int) -> None:
        doc = self.services.document
        doc.seal()
        if not doc.set_region_span(region_id, start, end):
            self.timeline.regions_item.clear_preview()
            return
        s = self.services.session
        if region_id in s.selected_region_ids():
            spans = [(r.start, r.end) for r in self.selected_regions()]
            s.set_selection(spans)

    def _zoom_selection(self) -> None:
        s = self.services.session
        ranges = self.target_ranges()
        if ranges:
            a, b = ranges[0][0], ranges[-1][1]
            margin = 0.05 * (b - a)
            s.set_view((a - margin) / SAMPLE_RATE, (b + margin) / SAMPLE_RATE)

    def _zoom_to_region(self, region_id: str) -> None:
        for r in self.services.document.project.regions:
            if r.id == region_id:
                margin = 0.1 * (r.end - r.start)
                self.services.session.set_view(
                    (r.start - margin) / SAMPLE_RATE, (r.end + margin) / SAMPLE_RATE
                )

    def _tempo(self) -> None:
        grid = self.services.document.project.meta.grid
        bpm = self.prompts.tempo(grid.bpm if grid else None)
        if bpm is None:
            return
        self.services.document.set_tempo(bpm if bpm > 0 else None)

    def _context_menu(self, pos: object) -> None:
        menu = QMenu(self)
        a = self.actions
        for key in (
            "edit.cut",
            "edit.copy",
            "edit.paste",
            "edit.delete",
            None,
            "edit.silence",
            "edit.fade_in",
            "edit.fade_out",
            "edit.gain",
            "edit.normalize",
            None,
            "region.add",
            "region.delete",
            None,
            "file.export",
        ):
            if key is None:
                menu.addSeparator()
            else:
                menu.addAction(a[key])
        menu.exec(pos)  # type: ignore[arg-type]
