"""The Regions panel: a table of regions (name, track, times, takes, prompt) that the user can
edit; the Track column is shown only when the project has more than one track."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.regions_model import NAME, PROMPT, TRACK, RegionsModel
from sa3_studio.app.session import Session


class _RegionTable(QTableView):
    """A table whose drags carry regions out of the window as WAV files."""

    drag_out = Signal(str)

    def startDrag(self, supported: Qt.DropAction) -> None:  # noqa: N802
        index = self.currentIndex()
        if index.isValid():
            rid = index.data(Qt.ItemDataRole.UserRole)
            if rid:
                self.drag_out.emit(str(rid))


class RegionsPanel(QWidget):
    """Table of the project's regions, kept in step with the session's selected regions.

    Args:
        model: the regions model.
        session: view state (selected regions, selection).
        add_action: the "Add Region from Selection" action (shown as a button).
        delete_action: the "Delete Region" action.
        parent: parent widget.

    Signals:
        drag_out(region_id): the user dragged a row out of the table.
        activated(region_id): a row was double-clicked on a time column.
    """

    drag_out = Signal(str)
    activated = Signal(str)

    def __init__(
        self,
        model: RegionsModel,
        session: Session,
        add_action: QAction | None = None,
        delete_action: QAction | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("regionsPanel")
        self._model = model
        self._session = session
        self._syncing = False

        self.table = _RegionTable()
        self.table.setObjectName("regionsTable")
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.setDragEnabled(True)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PROMPT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(NAME, 110)
        header.setHighlightSections(False)
        self.table.drag_out.connect(self.drag_out)

        self.empty = QLabel(
            "No regions yet. Select a span on the waveform and press Add Region "
            "(Ctrl+B) to mark it for regeneration."
        )
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(4, 2, 4, 2)
        for act in (add_action, delete_action):
            if act is not None:
                b = QToolButton()
                b.setDefaultAction(act)
                b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
                buttons.addWidget(b)
        buttons.addStretch(1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.empty)

        sel = self.table.selectionModel()
        sel.selectionChanged.connect(self._on_table_selection)
        session.selected_regions_changed.connect(self._on_session_selection)
        model.modelReset.connect(self._after_reset)
        model.dataChanged.connect(self._show_track_column)
        self.table.doubleClicked.connect(self._on_double_click)
        self._after_reset()

    def _after_reset(self) -> None:
        empty = self._model.rowCount() == 0
        self.empty.setVisible(empty)
        self.table.setVisible(not empty)
        self._show_track_column()
        self._on_session_selection()

    def _show_track_column(self) -> None:
        self.table.setColumnHidden(TRACK, not self._model.shows_tracks())

    def _on_table_selection(self, *_: QItemSelection) -> None:
        if self._syncing:
            return
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        regions = [r for r in (self._model.region_at(i) for i in rows) if r is not None]
        self._syncing = True
        try:
            self._session.set_selected_regions([r.id for r in regions])
            if regions:
                self._session.set_selection([(r.start, r.end) for r in regions])
        finally:
            self._syncing = False

    def _on_session_selection(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            sel = self.table.selectionModel()
            sel.clearSelection()
            flags = (
                QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
            )
            for rid in self._session.selected_region_ids():
                row = self._model.row_of(rid)
                if row >= 0:
                    sel.select(self._model.index(row, 0), flags)
        finally:
            self._syncing = False

    def _on_double_click(self, index: object) -> None:
        region = self._model.region_at(index.row())  # type: ignore[attr-defined]
        if region is not None:
            self.activated.emit(region.id)
