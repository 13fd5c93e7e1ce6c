"""Undo and redo of whole project snapshots.

Snapshots share their read-only audio buffers, so the history costs what changed, not copies of
the project. The history knows the saved point (``is_dirty``), merges repeated pushes with the
same merge key (dragging one region again and again makes one undo step), and drops the oldest
snapshots when the audio only they use exceeds a memory limit.

Selection, zoom and playhead are view state and never go through the history.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.project import Project
from sa3_studio.errors import EditError

log = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 2 * 1024**3
"""Bytes of audio the history may hold before dropping its oldest undo steps (2 GiB)."""


def project_buffers(project: Project) -> dict[int, AudioData]:
    """The distinct buffers a project holds in memory, keyed by the identity of their arrays."""
    out: dict[int, AudioData] = {}
    for t in project.tracks:
        for c in t.clips:
            for a in c.buffers():
                out[id(a.samples)] = a
    for k in project.takes:
        out[id(k.audio.samples)] = k.audio
    return out


@dataclass(frozen=True, slots=True)
class _Entry:
    project: Project
    label: str  # what produced this snapshot from the one before it
    merge_key: Hashable | None
    serial: int


class History:
    """Snapshots of a project with undo, redo, labels, merging, a saved point and a memory limit.

    Args:
        project: the starting snapshot (counts as saved).
        memory_limit: bytes of distinct audio all snapshots together may hold; beyond it the
            oldest undo steps are dropped (the current snapshot is always kept).
        max_steps: optional cap on the number of undo steps kept.
    """

    def __init__(
        self,
        project: Project,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_steps: int | None = None,
    ) -> None:
        if memory_limit < 0 or (max_steps is not None and max_steps < 0):
            raise ValueError("limits cannot be negative")
        self._serials = itertools.count()
        self._entries: list[_Entry] = [_Entry(project, "", None, next(self._serials))]
        self._index = 0
        self._saved: int | None = self._entries[0].serial
        self._sealed = True
        self.memory_limit = memory_limit
        self.max_steps = max_steps

    @classmethod
    def restore(
        cls,
        entries: Sequence[tuple[str, Project]],
        index: int,
        saved_index: int | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_steps: int | None = None,
    ) -> History:
        """Rebuild a history from :meth:`snapshots` (e.g. read back from a project file).

        Args:
            entries: ``(label, project)`` oldest first; the first label is not shown.
            index: position of the current snapshot.
            saved_index: position of the saved snapshot, or ``None`` if none is saved.
            memory_limit: see :class:`History`.
            max_steps: see :class:`History`.

        Raises:
            ValueError: no entries, or an index outside them.
        """
        if not entries:
            raise ValueError("a history needs at least one snapshot")
        if not 0 <= index < len(entries):
            raise ValueError(f"current index {index} is outside {len(entries)} snapshots")
        if saved_index is not None and not 0 <= saved_index < len(entries):
            raise ValueError(f"saved index {saved_index} is outside {len(entries)} snapshots")
        history = cls(entries[0][1], memory_limit=memory_limit, max_steps=max_steps)
        history._entries = [
            _Entry(project, label, None, next(history._serials)) for label, project in entries
        ]
        history._index = index
        history._saved = None if saved_index is None else history._entries[saved_index].serial
        history._enforce_limits()
        return history

    # -- state ---------------------------------------------------------------------------------

    def snapshots(self) -> tuple[tuple[str, Project], ...]:
        """Every snapshot as ``(label, project)``, oldest first (what a project file stores).

        A snapshot's label names the step that led to it; the first one's is not shown.
        """
        return tuple((e.label, e.project) for e in self._entries)

    @property
    def index(self) -> int:
        """Position of the current snapshot in :meth:`snapshots`."""
        return self._index

    @property
    def saved_index(self) -> int | None:
        """Position of the saved snapshot in :meth:`snapshots`, or ``None`` when it is gone."""
        for i, e in enumerate(self._entries):
            if e.serial == self._saved:
                return i
        return None

    @property
    def project(self) -> Project:
        """The current snapshot."""
        return self._entries[self._index].project

    @property
    def can_undo(self) -> bool:
        """True when there is a step to undo."""
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        """True when there is a step to redo."""
        return self._index < len(self._entries) - 1

    @property
    def undo_label(self) -> str | None:
        """Menu text for undo ("Undo Accept take 3 at 0:12–0:16"), or ``None``."""
        return f"Undo {self._entries[self._index].label}" if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        """Menu text for redo ("Redo Gain 0:01–0:02"), or ``None``."""
        return f"Redo {self._entries[self._index + 1].label}" if self.can_redo else None

    @property
    def undo_steps(self) -> int:
        """Number of steps that can be undone."""
        return self._index

    @property
    def redo_steps(self) -> int:
        """Number of steps that can be redone."""
        return len(self._entries) - 1 - self._index

    def labels(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Labels for a history panel: ``(done, oldest first; undone, next first)``."""
        done = tuple(e.label for e in self._entries[1 : self._index + 1])
        undone = tuple(e.label for e in self._entries[self._index + 1 :])
        return done, undone

    @property
    def is_dirty(self) -> bool:
        """True when the current snapshot differs from the last one saved."""
        return self._saved != self._entries[self._index].serial

    def mark_saved(self) -> None:
        """Record that the current snapshot has been saved."""
        self._saved = self._entries[self._index].serial
        self._sealed = True

    def seal(self) -> None:
        """Make the next push a new step even if its merge key equals the last one's."""
        self._sealed = True

    def memory_bytes(self) -> int:
        """Bytes of distinct audio held by all snapshots together."""
        seen: dict[int, AudioData] = {}
        for e in self._entries:
            seen.update(project_buffers(e.project))
        return sum(a.nbytes for a in seen.values())

    # -- changes -------------------------------------------------------------------------------

    def push(self, project: Project, label: str, merge_key: Hashable | None = None) -> None:
        """Make ``project`` the current snapshot, undoable as ``label``.

        Steps that were undone are discarded. A push with the same non-``None`` ``merge_key``
        as the previous push (and no undo, redo, save or :meth:`seal` in between) replaces that
        step instead of adding one: its label becomes ``label`` and undo goes back to before
        the first of the merged pushes. Pushing the current snapshot again does nothing.

        Args:
            project: the new snapshot (the result of an edit of :attr:`project`).
            label: what the edit did, for the menu ("Gain 0:01–0:02").
            merge_key: pushes with equal keys in a row merge (e.g. ``("move-region", id)``).
        """
        if project is self.project or project == self.project:
            return
        del self._entries[self._index + 1 :]
        top = self._entries[self._index]
        merge = (
            merge_key is not None
            and not self._sealed
            and self._index > 0
            and top.merge_key == merge_key
            and top.serial != self._saved
        )
        entry = _Entry(project, label, merge_key, next(self._serials))
        if merge:
            self._entries[self._index] = entry
        else:
            self._entries.append(entry)
            self._index += 1
        self._sealed = False
        self._enforce_limits()

    def undo(self) -> Project:
        """Step back and return the snapshot before the last step.

        Raises:
            EditError: there is nothing to undo.
        """
        if not self.can_undo:
            raise EditError("There is nothing to undo.")
        self._index -= 1
        self._sealed = True
        return self.project

    def redo(self) -> Project:
        """Step forward again and return that snapshot.

        Raises:
            EditError: there is nothing to redo.
        """
        if not self.can_redo:
            raise EditError("There is nothing to redo.")
        self._index += 1
        self._sealed = True
        return self.project

    def amend_all(self, change: Callable[[Project], Project]) -> None:
        """Apply ``change`` to every snapshot, past, current and undone, without a new step.

        Used for things that must survive undo, above all a newly generated take::

            history.amend_all(lambda p: add_take(p, take, require_region=False))

        The project counts as changed since the last save afterwards.

        Raises:
            Whatever ``change`` raises; the history is left unchanged then.
        """
        amended = [
            _Entry(change(e.project), e.label, e.merge_key, next(self._serials))
            for e in self._entries
        ]
        self._entries = amended
        self._saved = None
        self._enforce_limits()

    def clear(self, project: Project | None = None, *, saved: bool = True) -> None:
        """Forget all steps, keeping ``project`` (default: the current snapshot)."""
        current = self.project if project is None else project
        self._entries = [_Entry(current, "", None, next(self._serials))]
        self._index = 0
        self._saved = self._entries[0].serial if saved else None
        self._sealed = True

    def _enforce_limits(self) -> None:
        dropped = 0
        while self.max_steps is not None and self._index > self.max_steps:
            self._drop_oldest()
            dropped += 1
        if self.memory_bytes() > self.memory_limit:
            # Work out what each drop frees from reference counts instead of re-scanning.
            counts: dict[int, int] = {}
            sizes: dict[int, int] = {}
            per_entry = [project_buffers(e.project) for e in self._entries]
            for bufs in per_entry:
                for key, a in bufs.items():
                    counts[key] = counts.get(key, 0) + 1
                    sizes[key] = a.nbytes
            total = sum(sizes.values())
            while total > self.memory_limit and (self._index > 0 or self.can_redo):
                # Oldest undo steps go first; undone steps only when no undo step is left.
                position = 0 if self._index > 0 else len(self._entries) - 1
                for key in per_entry.pop(position):
                    counts[key] -= 1
                    if counts[key] == 0:
                        total -= sizes.pop(key)
                del self._entries[position]
                if position == 0:
                    self._index -= 1
                dropped += 1
        if dropped:
            log.info("history dropped %d old step(s) to stay within its limits", dropped)

    def _drop_oldest(self) -> None:
        del self._entries[0]
        self._index -= 1
