"""File commands of the main window: open, save, autosave, recovery, export, drag and drop.

A mixin of :class:`~sa3_studio.ui.main_window.MainWindow`; it uses the window's services,
prompts, actions and timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, Qt, QTimer, QUrl
from PySide6.QtGui import QDrag, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QListWidgetItem

from sa3_studio.app.export_request import ExportRequest
from sa3_studio.app.file_service import (
    PROJECT_SUFFIX,
    ExportSummary,
    OpenResult,
    export_region_for_drag,
)
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.timefmt import format_range
from sa3_studio.errors import Sa3Error
from sa3_studio.ui.dialogs import UnsavedChoice
from sa3_studio.ui.icons import icon

if TYPE_CHECKING:
    from sa3_studio.ui.main_window import MainWindow

    _Base = MainWindow
else:
    _Base = object


class FileCommands(_Base):
    """Open, save, autosave, recover, export; files dropped on and regions dragged out."""

    def open_path(self, path: str | Path) -> None:
        """Open an audio file or a project (asks to save unsaved changes first)."""
        p = Path(path).expanduser()
        current = self.services.document.path
        if current is not None and p.exists() and p.resolve() == current.resolve():
            self.status(f"{p.name} is already open.")
            return
        if self.offer_recovery():
            # Open the file once the recovered work is shown (it asks about saving it first).
            self._open_after_recovery = p
            return
        if not p.exists():
            self.services.settings.remove_recent_file(p)
            self.show_error(
                "File not found",
                f"“{p}” does not exist any more. It may have been moved or deleted; "
                "open it from its new place.",
            )
            return
        self._maybe_save(lambda discard: self._start_open(p, discard))

    def _open_dialog(self) -> None:
        path = self.prompts.open_path(self.services.settings.last_directory())
        if path is not None:
            self.open_path(path)

    def _start_open(self, path: Path, discard_previous: bool) -> None:
        self._discard_on_adopt = discard_previous
        self.services.settings.set_last_directory(path.parent)
        self.services.files.open(path)
        self.status(f"Opening {path.name}…", 0)

    def _on_opened(self, result: OpenResult) -> None:
        s = self.services
        history = result.history
        if result.newer_autosave is not None:
            if self.prompts.ask_recover_newer(result.source.stem):
                history = result.newer_autosave
            else:
                result.session.discard_recovered()
        for cid, pyr in result.pyramids.items():
            s.pyramids.put(cid, pyr, result.energies.get(cid))
        s.transport.stop()
        s.files.adopt(result, discard_previous=self._discard_on_adopt)
        self._discard_on_adopt = False
        s.session.clear_selection()
        s.session.set_selected_regions(())
        s.session.set_cursor(0)
        s.session.set_playhead(0)
        self._fit_next = True
        s.document.set_history(history, result.path)
        if not result.recovered:
            s.settings.add_recent_file(result.source)
        pending, self._open_after_recovery = self._open_after_recovery, None
        if pending is not None:
            QTimer.singleShot(0, lambda: self.open_path(pending))
        notices = " ".join(result.notices)
        # Recovered work is named by the project, not by its internal recovery file.
        name = self.services.document.title() if result.recovered else result.source.name
        verb = "Recovered" if result.recovered else "Opened"
        self.status(f"{verb} {name}. {notices}".strip(), 8000)
        for warning in result.warnings:
            self.prompts.info(warning.title, warning.message)
        if result.project.meta.truncated_notice:
            self.prompts.info(
                "Part of the file could not be read", result.project.meta.truncated_notice
            )
        self.timeline.plot.setFocus()

    def save(self) -> None:
        """Save the project (asks for a file name the first time)."""
        if self.services.document.path is None:
            self.save_as()
            return
        self._save_to(None)

    def save_as(self) -> None:
        """Save the project under a new name."""
        doc = self.services.document
        folder = self.services.settings.last_directory() or str(Path.home())
        suggested = str(Path(folder) / f"{doc.title()}{PROJECT_SUFFIX}")
        path = self.prompts.save_path(suggested)
        if path is None:
            self._after_save = None
            return
        self._save_to(path)

    def _save_to(self, path: Path | None) -> None:
        doc = self.services.document
        self._saving_project = doc.project
        if self.services.files.save(doc.history, path) is None:
            self._after_save = None

    def _on_saved(self, path: Path) -> None:
        doc = self.services.document
        if self._saving_project is doc.project:
            doc.mark_saved(path)
        self._saving_project = None
        self.services.settings.add_recent_file(path)
        self.status(f"Saved {path.name}.")
        then, self._after_save = self._after_save, None
        if then is not None:
            then()

    def _maybe_save(self, then: Callable[[bool], None]) -> None:
        """Run ``then(discarded)`` once unsaved changes are saved or the user dropped them."""
        doc = self.services.document
        if not (doc.has_document and doc.is_dirty):
            then(False)
            return
        choice = self.prompts.ask_unsaved(doc.title())
        if choice is UnsavedChoice.CANCEL:
            return
        if choice is UnsavedChoice.DISCARD:
            then(True)
            return
        self._after_save = lambda: then(False)
        self.save()

    def export(self) -> None:
        """Show the export dialog and export in the background."""
        s = self.services
        project = s.document.project
        regions = [
            (r.id, f"{r.name or 'Region'}  {format_range(r.start, r.end)}")
            for r in sorted(project.regions, key=lambda r: r.start)
        ]
        selected = s.session.selected_region_ids()
        request = self.prompts.export(
            s.files.export_formats(),
            regions,
            has_selection=s.session.has_selection(),
            selection=tuple(s.session.selection()),
            project_rate=SAMPLE_RATE,
            source_rate=project.meta.source_sample_rate,
            default_dir=s.settings.last_directory() or str(Path.home()),
            base_name=s.document.title(),
            preselect_region=selected[0] if selected else "",
        )
        if request is not None:
            self.start_export(request)

    def start_export(self, request: ExportRequest) -> None:
        """Export as ``request`` says (in the background)."""
        self.services.files.export(self.services.document.project, request)

    def _on_exported(self, summary: ExportSummary) -> None:
        names = ", ".join(p.name for p in summary.paths)
        self.status(f"Exported {names}. {' '.join(summary.notices)}".strip(), 8000)

    def _on_file_failed(self, title: str, message: str) -> None:
        self._after_save = None
        self._saving_project = None
        self.status(title)
        self.show_error(title, message)

    def _on_progress(self, label: str, fraction: float) -> None:
        self.progress_label.setText(label)
        self.progress.setValue(int(fraction * 1000))

    def _on_busy(self) -> None:
        busy = self.services.files.is_busy()
        for w in (self.progress_label, self.progress, self.cancel_button):
            w.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def _close_project(self) -> None:
        def close(discard: bool) -> None:
            s = self.services
            s.transport.stop()
            s.files.close_document(discard_unsaved=discard)
            self._fit_next = True
            s.session.clear_selection()
            s.session.set_selected_regions(())
            s.session.set_cursor(0)
            s.document.close()

        self._maybe_save(close)

    def _refresh_recent(self) -> None:
        files = self.services.settings.recent_files()
        self.recent_menu.clear()
        self.welcome.recent.clear()
        for i, f in enumerate(files):
            p = Path(f)
            act = self.recent_menu.addAction(f"&{i + 1}  {p.name}")
            act.setToolTip(str(p))
            act.triggered.connect(lambda _c=False, f=f: self.open_path(f))
            item = QListWidgetItem(f"{p.name}    —    {p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, f)
            self.welcome.recent.addItem(item)
        self.welcome.recent.setVisible(bool(files))
        if files:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear Recent Files")
            clear.triggered.connect(self.services.settings.clear_recent_files)
        self.recent_menu.setEnabled(bool(files))

    def _apply_autosave_interval(self, seconds: int) -> None:
        # Any change is autosaved as it is made (0 turns autosave off): waiting seconds
        # for a quiet moment would lose the last edits to a crash. The timer only folds the
        # changes of one turn of the event loop into one write.
        self._autosave_ms = 0 if seconds > 0 else -1
        if self._autosave_ms < 0:
            self._autosave.stop()

    def _schedule_autosave(self) -> None:
        doc = self.services.document
        if self._autosave_ms >= 0 and doc.has_document and not self._autosave.isActive():
            self._autosave.start(self._autosave_ms)

    def _on_autosave_timer(self) -> None:
        doc = self.services.document
        if doc.has_document:
            self.services.files.autosave(doc.history)

    def offer_recovery(self) -> bool:
        """Offer autosaved work that a crashed session left behind (once, at start-up).

        Runs before the first file is opened, so that looking through the recovery folder
        never meets the autosave file a new project is creating there.

        Returns:
            True when recovered work is being opened.
        """
        if self._recovery_checked:
            return False
        self._recovery_checked = True
        files = self.services.files
        items = files.find_recoverable()
        if not items:
            return False
        names = [
            f"{i.title} — {i.label or 'opened'} ({i.steps - 1} edits)" if i.steps > 1 else i.title
            for i in items
        ]
        choice = self.prompts.ask_recover(names)
        if choice is None:
            for item in items:
                files.discard_recoverable(item)
            return False
        files.recover(items[choice])
        return True

    def _drag_region_out(self, region_id: str) -> None:
        try:
            path = export_region_for_drag(self.services.document.project, region_id)
        except Sa3Error as exc:
            self.show_error("Cannot drag the region", str(exc))
            return
        self.start_drag(path)

    def region_mime_data(self, path: Path) -> QMimeData:
        """What a dragged region carries: the WAV file's URL (DAWs and file managers take it)."""
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        return mime

    def start_drag(self, path: Path) -> None:
        """Start an OS drag of the file at ``path`` (tests replace this)."""
        drag = QDrag(self)
        drag.setMimeData(self.region_mime_data(path))
        drag.setPixmap(icon("region", self._theme.text).pixmap(32, 32))
        drag.exec(Qt.DropAction.CopyAction)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = self._dropped_path(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_path(path))

    @staticmethod
    def _dropped_path(mime: QMimeData) -> Path | None:
        for url in mime.urls():
            if url.isLocalFile():
                p = Path(url.toLocalFile())
                if p.is_file():
                    return p
        return None
