"""The regions list as a Qt table model: name, track, start, end, length and prompt, editable.

Edits go through the document controller (each one an undo step); the model refreshes itself
from every new project snapshot.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from sa3_studio.app.document_controller import DocumentController
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.project import Project
from sa3_studio.document.region import Region
from sa3_studio.document.timefmt import format_time, parse_time
from sa3_studio.errors import EditError

COLUMNS = ("Name", "Track", "Start", "End", "Length", "Takes", "Prompt")
NAME, TRACK, START, END, LENGTH, TAKES, PROMPT = range(len(COLUMNS))
EDITABLE = {NAME, START, END, PROMPT}

AnyIndex = QModelIndex | QPersistentModelIndex


class RegionsModel(QAbstractTableModel):
    """Rows are the project's regions, sorted by start.

    Args:
        doc: the document controller (source of the regions and target of edits).
        parent: Qt parent.
    """

    def __init__(self, doc: DocumentController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._doc = doc
        self._regions: list[Region] = []
        self._takes: dict[str, int] = {}
        self._track_names: dict[str, str] = {}
        doc.project_changed.connect(self._on_project)
        self._on_project(doc.project)

    def region_at(self, row: int) -> Region | None:
        """The region in ``row``."""
        return self._regions[row] if 0 <= row < len(self._regions) else None

    def row_of(self, region_id: str) -> int:
        """Row of a region, or -1."""
        for i, r in enumerate(self._regions):
            if r.id == region_id:
                return i
        return -1

    def shows_tracks(self) -> bool:
        """Whether the Track column means anything: the project has more than one track."""
        return len(self._track_names) > 1

    def _on_project(self, project: Project) -> None:
        names = {t.id: t.name or f"Track {i + 1}" for i, t in enumerate(project.tracks)}
        self._track_names = names
        regions = sorted(project.regions, key=lambda r: (r.start, r.id))
        takes: dict[str, int] = {}
        for k in project.takes:
            takes[k.region_id] = takes.get(k.region_id, 0) + 1
        if [r.id for r in regions] == [r.id for r in self._regions]:
            self._regions = regions
            self._takes = takes
            if regions:
                self.dataChanged.emit(
                    self.index(0, 0), self.index(len(regions) - 1, len(COLUMNS) - 1)
                )
            return
        self.beginResetModel()
        self._regions = regions
        self._takes = takes
        self.endResetModel()

    # -- model ---------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._regions)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        base = (
            Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        )
        if index.isValid() and index.column() in EDITABLE:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.region_at(index.row()) if index.isValid() else None
        if r is None:
            return None
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == NAME:
                return r.name if (r.name or role == Qt.ItemDataRole.EditRole) else "(unnamed)"
            if col == TRACK:
                return self._track_names.get(r.track_id, "")
            if col == START:
                return format_time(r.start, SAMPLE_RATE)
            if col == END:
                return format_time(r.end, SAMPLE_RATE)
            if col == LENGTH:
                return format_time(r.length, SAMPLE_RATE)
            if col == TAKES:
                return str(self._takes.get(r.id, 0))
            if col == PROMPT:
                return r.prompt
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.prompt or "Double-click to write a prompt for this region"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (START, END, LENGTH, TAKES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return r.id
        return None

    def setData(  # noqa: N802
        self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        r = self.region_at(index.row()) if index.isValid() else None
        if r is None or role != Qt.ItemDataRole.EditRole:
            return False
        col = index.column()
        text = str(value)
        if col == NAME:
            return text == r.name or self._doc.update_region(r.id, name=text.strip())
        if col == PROMPT:
            return text == r.prompt or self._doc.update_region(r.id, prompt=text.strip())
        if col in (START, END):
            try:
                frame = parse_time(text, SAMPLE_RATE)
            except EditError as exc:
                self._doc.error.emit(str(exc))
                return False
            start, end = (frame, r.end) if col == START else (r.start, frame)
            if (start, end) == (r.start, r.end):
                return True
            self._doc.seal()
            return self._doc.set_region_span(r.id, start, end)
        return False
