"""The open project and its undo history, behind Qt signals.

Every change to the document goes through :meth:`DocumentController.apply` (one undoable step
with a label such as "Gain 0:12–0:16") or :meth:`DocumentController.amend_all` (for things that
must survive undo, such as a newly generated take). Edit functions come from ``document``; they
are pure and raise :class:`~sa3_studio.errors.EditError`, which the controller turns into an
:attr:`~DocumentController.error` signal with the error's sentence, leaving the project as it
was. View state (selection, zoom, playhead) never comes here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from sa3_studio.document import edits, region_edits
from sa3_studio.document.audio_data import AudioData, FloatArray
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.history import History
from sa3_studio.document.project import Project, ProjectMeta
from sa3_studio.document.take import Take
from sa3_studio.document.timefmt import format_range, range_label
from sa3_studio.document.timeline import map_span
from sa3_studio.errors import EditError

log = logging.getLogger(__name__)

Range = tuple[int, int]


def _spans_label(action: str, ranges: Sequence[Range]) -> str:
    if len(ranges) == 1:
        return range_label(action, *ranges[0])
    return f"{action} {len(ranges)} spans"


def _silence(audio: FloatArray, _at: int) -> FloatArray:
    return np.zeros_like(audio)


class DocumentController(QObject):
    """Owns the project snapshots (a :class:`~sa3_studio.document.history.History`).

    Args:
        project: the starting project (an empty one by default).
        parent: Qt parent.

    Signals:
        project_changed(project): a new snapshot is current (edit, undo, redo, open).
        history_changed(): undo/redo text or the saved state changed.
        path_changed(path): the project's file changed (``None`` for an unsaved project).
        error(message): an edit was refused; the message is for the user.
    """

    project_changed = Signal(object)
    history_changed = Signal()
    path_changed = Signal(object)
    error = Signal(str)

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._history = History(project if project is not None else Project.from_audio(None))
        self._path: Path | None = None
        self._clipboard: edits.Clipboard | None = None
        self._opened = project is not None

    # -- state ---------------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The current snapshot."""
        return self._history.project

    @property
    def history(self) -> History:
        """The undo history (read it; change it only through this controller)."""
        return self._history

    @property
    def path(self) -> Path | None:
        """The project file, or ``None`` before the first save."""
        return self._path

    @property
    def has_document(self) -> bool:
        """True once a file or project was opened (False for the empty start-up project)."""
        return self._opened

    @property
    def is_dirty(self) -> bool:
        """True when there are changes since the last save."""
        return self._history.is_dirty

    @property
    def clipboard(self) -> edits.Clipboard | None:
        """What Copy or Cut put aside."""
        return self._clipboard

    def title(self) -> str:
        """A name for the window title: the file's, the source's, or "Untitled"."""
        if self._path is not None:
            return self._path.stem
        meta = self.project.meta
        if meta.title:
            return meta.title
        if meta.source_path:
            return Path(meta.source_path).stem
        return "Untitled"

    def undo_text(self) -> str:
        """Menu text of Undo ("Undo Gain 0:12–0:16", or "Undo" when there is nothing)."""
        return self._history.undo_label or "Undo"

    def redo_text(self) -> str:
        """Menu text of Redo."""
        return self._history.redo_label or "Redo"

    @property
    def main_track_id(self) -> str:
        """The track regions are made on: the first one."""
        if not self.project.tracks:
            raise EditError("The project has no tracks; open an audio file first.")
        return self.project.tracks[0].id

    # -- whole-document changes ----------------------------------------------------------------

    def set_project(
        self, project: Project, path: Path | None = None, *, saved: bool = True
    ) -> None:
        """Replace the document (after opening a file); the history starts afresh.

        Args:
            project: the new project.
            path: its project file, if it came from one.
            saved: whether it counts as saved (False for a recovered autosave).
        """
        self._history.clear(project, saved=saved)
        self._opened = True
        self._set_path(path)
        self._emit()

    def set_history(self, history: History, path: Path | None = None) -> None:
        """Replace the document with a restored history (a project file or recovered work).

        Undo reaches back as far as the history does; its saved point says what is unsaved.
        """
        self._history = history
        self._opened = True
        self._set_path(path)
        self._emit()

    def adopt_untitled(self) -> None:
        """Make the start-up project an untitled document (audio was made in the empty
        editor): it is shown, can be saved, and opening a file asks about it first."""
        if not self._opened:
            self._opened = True
            self._emit()

    def close(self) -> None:
        """Go back to the empty start-up state (no document, no history)."""
        self._history.clear(Project.from_audio(None), saved=True)
        self._opened = False
        self._clipboard = None
        self._set_path(None)
        self._emit()

    def mark_saved(self, path: Path | None = None) -> None:
        """Record that the current snapshot was written (to ``path`` if given)."""
        self._history.mark_saved()
        if path is not None:
            self._set_path(path)
        self.history_changed.emit()

    def _set_path(self, path: Path | None) -> None:
        if path != self._path:
            self._path = path
            self.path_changed.emit(path)

    def _emit(self) -> None:
        self.project_changed.emit(self.project)
        self.history_changed.emit()

    # -- the one way to change the document ----------------------------------------------------

    def apply(
        self,
        label: str,
        edit: Callable[[Project], Project],
        merge_key: Hashable | None = None,
    ) -> bool:
        """Run ``edit`` on the current project and make the result one undoable step.

        Args:
            label: what the step did, for the Undo menu ("Fade In 0:12–0:16").
            edit: a pure function ``Project -> Project`` (it may raise EditError).
            merge_key: steps with equal keys in a row merge into one (dragging a region edge
                again and again).

        Returns:
            True if the project changed; False if the edit was refused (then :attr:`error` was
            emitted with the reason) or changed nothing.
        """
        before = self.project
        try:
            after = edit(before)
        except EditError as exc:
            self.error.emit(str(exc))
            return False
        except MemoryError:
            log.exception("%s ran out of memory", label)
            self.error.emit(
                f"{label} needs more memory than this computer has free, so nothing was "
                "changed. Work on a shorter span, or close other programs and try again."
            )
            return False
        except Exception as exc:  # a failure inside an action must reach the user, not Qt
            log.exception("%s failed", label)
            self.error.emit(
                f"{label} failed ({type(exc).__name__}: {exc}), so nothing was changed. "
                "If it keeps happening, report it with the log."
            )
            return False
        if after is before or after == before:
            return False
        self._history.push(after, label, merge_key)
        self._emit()
        return True

    def amend_all(self, change: Callable[[Project], Project]) -> bool:
        """Apply ``change`` to every snapshot in the history without adding an undo step.

        Used to keep a newly generated take whatever the user undoes later.

        Returns:
            True on success; False when ``change`` raised EditError (then :attr:`error` fired).
        """
        try:
            self._history.amend_all(change)
        except EditError as exc:
            self.error.emit(str(exc))
            return False
        self._emit()
        return True

    def undo(self) -> bool:
        """Undo the last step; False when there was nothing to undo."""
        if not self._history.can_undo:
            return False
        self._history.undo()
        self._emit()
        return True

    def redo(self) -> bool:
        """Redo the step last undone; False when there was nothing to redo."""
        if not self._history.can_redo:
            return False
        self._history.redo()
        self._emit()
        return True

    def seal(self) -> None:
        """End a run of mergeable steps (the next drag is its own undo step)."""
        self._history.seal()

    # -- audio edits ---------------------------------------------------------------------------

    def _one(self, ranges: Sequence[Range], what: str) -> Range | None:
        if not ranges:
            self.error.emit(f"Nothing is selected; select the audio to {what} first.")
            return None
        if len(ranges) > 1:
            self.error.emit(
                f"{what.capitalize()} works on one span at a time; select a single span "
                "and try again."
            )
            return None
        return ranges[0]

    def _need(self, ranges: Sequence[Range], what: str) -> bool:
        if not ranges:
            self.error.emit(f"Nothing is selected; select the audio to {what} first.")
            return False
        return True

    def _on_tracks(self, label: str, track_ids: Sequence[str] | None) -> str:
        """``label`` naming the tracks edited, when they are some of several ("Cut 0:01–0:02
        on 'Bells'")."""
        tracks = self.project.tracks
        names = [t.name or t.id for t in tracks if track_ids and t.id in track_ids]
        if len(tracks) < 2 or not names or len(names) == len(tracks):
            return label
        return label + " on " + ", ".join(f"'{n}'" for n in names)

    def copy(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Copy one span of ``track_ids`` (default: every track) to the clipboard (not an undo
        step)."""
        span = self._one(ranges, "copy")
        if span is None:
            return False
        try:
            self._clipboard = edits.copy_range(self.project, *span, track_ids)
        except EditError as exc:
            self.error.emit(str(exc))
            return False
        return True

    def cut(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Copy one span of ``track_ids`` (default: every track) and delete it (ripple on those
        tracks only)."""
        span = self._one(ranges, "cut")
        if span is None:
            return False
        try:
            clip = edits.copy_range(self.project, *span, track_ids)
        except EditError as exc:
            self.error.emit(str(exc))
            return False
        label = self._on_tracks(range_label("Cut", *span), track_ids)
        if self.apply(label, lambda p: edits.delete_range(p, *span, track_ids)):
            self._clipboard = clip
            return True
        return False

    def paste(self, at: int, *, track_ids: Sequence[str] | None = None) -> int:
        """Insert the clipboard at ``at`` (ripple); returns the frames inserted (0 if none).

        ``track_ids`` are the chosen lanes; see :func:`~sa3_studio.document.edits.paste_targets`
        for where the audio goes.
        """
        clip = self._clipboard
        if clip is None:
            self.error.emit("The clipboard is empty; copy or cut some audio first.")
            return 0
        targets = edits.paste_targets(self.project, clip, track_ids)
        label = self._on_tracks(range_label("Paste", at, at + clip.length), targets)
        ok = self.apply(label, lambda p: edits.paste(p, clip, at, targets))
        return clip.length if ok else 0

    def delete(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Delete every span of ``track_ids`` (default: every track) and close the gaps on
        those tracks (one undo step)."""
        if not self._need(ranges, "delete"):
            return False

        def run(p: Project) -> Project:
            # Last span first, so the earlier spans' positions still hold.
            for a, b in sorted(ranges, reverse=True):
                p = edits.delete_range(p, a, b, track_ids)
            return p

        return self.apply(self._on_tracks(_spans_label("Delete", ranges), track_ids), run)

    def silence(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Replace every span with silence, keeping the length (one undo step).

        ``track_ids`` limits the edit to those tracks (default: every track); so do the
        other level edits below.
        """
        if not self._need(ranges, "silence"):
            return False

        def run(p: Project) -> Project:
            tracks = list(p.tracks)
            for a, b in ranges:
                b = min(b, p.frames)
                if b <= a:
                    raise EditError(
                        f"The selection {format_range(a, b)} lies after the end of the song."
                    )
                tracks = [
                    map_span(t, a, b, _silence)[0] if not track_ids or t.id in track_ids else t
                    for t in tracks
                ]
            return dataclasses.replace(p, tracks=tuple(tracks))

        return self.apply(_spans_label("Silence", ranges), run)

    def fade_in(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Fade every span in (one undo step)."""
        if not self._need(ranges, "fade in"):
            return False

        def run(p: Project) -> Project:
            for a, b in ranges:
                p = edits.fade_in(p, a, b, track_ids=track_ids or None)
            return p

        return self.apply(_spans_label("Fade In", ranges), run)

    def fade_out(self, ranges: Sequence[Range], *, track_ids: Sequence[str] | None = None) -> bool:
        """Fade every span out (one undo step)."""
        if not self._need(ranges, "fade out"):
            return False

        def run(p: Project) -> Project:
            for a, b in ranges:
                p = edits.fade_out(p, a, b, track_ids=track_ids or None)
            return p

        return self.apply(_spans_label("Fade Out", ranges), run)

    def gain(
        self, ranges: Sequence[Range], gain_db: float, *, track_ids: Sequence[str] | None = None
    ) -> bool:
        """Change the level of every span by ``gain_db`` (one undo step)."""
        if not self._need(ranges, "change the level of"):
            return False

        def run(p: Project) -> Project:
            for a, b in ranges:
                p = edits.apply_gain(p, a, b, gain_db, track_ids=track_ids or None)
            return p

        return self.apply(_spans_label(f"Gain {gain_db:+.1f} dB", ranges), run)

    def normalize(
        self,
        ranges: Sequence[Range],
        target_dbfs: float = -1.0,
        *,
        track_ids: Sequence[str] | None = None,
    ) -> bool:
        """Scale every span so its peak is ``target_dbfs`` (one undo step)."""
        if not self._need(ranges, "normalise"):
            return False

        def run(p: Project) -> Project:
            for a, b in ranges:
                p = edits.normalize_peak(
                    p, a, b, target_dbfs=target_dbfs, track_ids=track_ids or None
                )
            return p

        return self.apply(_spans_label("Normalise", ranges), run)

    # -- regions -------------------------------------------------------------------------------

    def add_regions(
        self,
        ranges: Sequence[Range],
        *,
        prompt: str = "",
        track_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Make a region of each span on each of ``track_ids`` (default: the main track), in
        one undo step; returns their ids."""
        if not self._need(ranges, "turn into a region"):
            return []
        ids: list[str] = []

        def run(p: Project) -> Project:
            ids.clear()
            tracks = list(track_ids or ([p.tracks[0].id] if p.tracks else [""]))
            for track in tracks:
                for a, b in ranges:
                    p, rid = region_edits.add_region(p, track, a, min(b, p.frames), prompt=prompt)
                    ids.append(rid)
            return p

        if len(ranges) == 1:
            label = range_label("Add Region", *ranges[0])
        else:
            label = f"Add {len(ranges)} Regions"
        return list(ids) if self.apply(label, run) else []

    def delete_regions(self, region_ids: Sequence[str]) -> bool:
        """Delete regions and their takes (one undo step)."""
        if not region_ids:
            self.error.emit("No region is selected; click a region's header to select it.")
            return False

        def run(p: Project) -> Project:
            for rid in region_ids:
                p = region_edits.delete_region(p, rid)
            return p

        label = "Delete Region" if len(region_ids) == 1 else f"Delete {len(region_ids)} Regions"
        return self.apply(label, run)

    def set_region_span(self, region_id: str, start: int, end: int) -> bool:
        """Move a region's edges (repeated moves of one region merge into one undo step)."""
        label = range_label("Move Region", start, end)
        return self.apply(
            label,
            lambda p: region_edits.update_region(p, region_id, start=start, end=end),
            merge_key=("region-span", region_id),
        )

    def update_region(
        self,
        region_id: str,
        *,
        name: str | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
    ) -> bool:
        """Rename a region or change its prompts (one undo step per change)."""
        what = "Rename Region" if name is not None else "Edit Prompt"
        return self.apply(
            what,
            lambda p: region_edits.update_region(
                p, region_id, name=name, prompt=prompt, negative_prompt=negative_prompt
            ),
        )

    # -- takes (the generation workflow) -------------------------------------------------------

    def add_take(self, take: Take) -> bool:
        """Keep a generated take in every snapshot, so no undo ever loses it."""
        return self.amend_all(lambda p: region_edits.add_take(p, take, require_region=False))

    def accept_take(
        self,
        region_id: str,
        take_id: str,
        *,
        crossfade_s: float = 0.025,
        gain_db: float = 0.0,
        body: AudioData | None = None,
        note: str = "",
    ) -> bool:
        """Splice a take into its region (one undo step, "Accept take 3 at 0:12–0:16").

        ``body`` is spliced instead of the take's own audio (e.g. limited); ``note`` ends the
        history label (", limited from +2.1 to -1 dBTP").
        """
        try:
            label = region_edits.accept_label(self.project, region_id, take_id) + note
        except EditError as exc:
            self.error.emit(str(exc))
            return False
        return self.apply(
            label,
            lambda p: region_edits.accept_take(
                p, region_id, take_id, crossfade_s=crossfade_s, gain_db=gain_db, body=body
            ),
        )

    def delete_take(self, take_id: str) -> bool:
        """Delete a take (one undo step)."""
        return self.apply("Delete Take", lambda p: region_edits.delete_take(p, take_id))

    # -- project settings ----------------------------------------------------------------------

    def set_tempo(self, bpm: float | None, beats_per_bar: int = 4, offset: int = 0) -> bool:
        """Set (or clear, with ``None``) the tempo used for bars:beats and beat snapping."""

        def run(p: Project) -> Project:
            grid = None
            if bpm is not None:
                try:
                    grid = BeatGrid(float(bpm), offset, beats_per_bar)
                except ValueError as exc:
                    raise EditError(f"{str(exc).capitalize()}.") from None
            meta: ProjectMeta = dataclasses.replace(p.meta, grid=grid)
            return dataclasses.replace(p, meta=meta)

        label = f"Set Tempo {bpm:g} BPM" if bpm is not None else "Clear Tempo"
        return self.apply(label, run)
