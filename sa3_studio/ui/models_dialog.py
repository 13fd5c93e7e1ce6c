"""Get Models: what to download, why some models need a token, and a download with progress.

Nothing is downloaded unless the user presses Download. Gated repositories (small-music,
small-sfx, medium) need a Hugging Face account that accepted the model's licence on its page,
and an access token (pasted here, or stored by ``hf auth login``); the -base models are open.
The download runs on a background job (the window stays responsive) with a byte progress bar
and Cancel; huggingface_hub resumes an interrupted download when it is started again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.engine_client import ModelCatalog, OfficialModelEntry
from sa3_studio.app.jobs import Job, JobRunner, ProgressFn
from sa3_studio.engine.api import CancelToken, ModelInfo

log = logging.getLogger(__name__)

HF_CACHE_CHOICE = "Hugging Face cache (recommended)"


def _seconds_text(seconds: float) -> str:
    if seconds <= 0:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _bytes_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


class ModelsDialog(QDialog):
    """The Get Models dialog.

    Args:
        catalog: discovery, download and the list of official models.
        models_folder: the models folder from the settings ("" when none is set).
        parent: parent widget.

    Signals:
        models_changed(): a download finished; discover again.
    """

    models_changed = Signal()

    def __init__(
        self,
        catalog: ModelCatalog,
        models_folder: str = "",
        parent: QWidget | None = None,
        *,
        set_models_folder: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelsDialog")
        self.setWindowTitle("Get Models")
        self.resize(760, 600)
        self._catalog = catalog
        self._models_folder = models_folder
        self._set_models_folder = set_models_folder
        self._runner = JobRunner(self, max_threads=1)
        self._job: Job | None = None
        self._runner.progress.connect(self._on_progress)
        self._runner.finished.connect(self._on_finished)
        self._runner.failed.connect(self._on_failed)
        self._runner.cancelled.connect(self._on_cancelled)

        self.intro = QLabel()
        self.intro.setObjectName("modelsIntro")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)

        self.places = QLabel()
        self.places.setObjectName("modelPlaces")
        self.places.setWordWrap(True)
        self.places.setTextFormat(Qt.TextFormat.RichText)
        self.places.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_folder_button = QPushButton("Add Folder…")
        self.add_folder_button.setObjectName("addModelsFolder")
        self.add_folder_button.setToolTip(
            "Choose a folder that holds model folders (or is one); it becomes the models "
            "folder of the Settings"
        )
        self.add_folder_button.setEnabled(set_models_folder is not None)
        self.add_folder_button.clicked.connect(self._choose_folder)

        self.table = QTreeWidget()
        self.table.setObjectName("officialModels")
        self.table.setColumnCount(5)
        self.table.setHeaderLabels(["Model", "Kind", "Longest", "Access", "On this computer"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.header().setStretchLastSection(True)
        self.table.currentItemChanged.connect(lambda *_: self._update_buttons())

        self.gated_note = QLabel(
            "<b>Gated models</b> (small-music, small-sfx, medium) need a free Hugging Face "
            "account: open the model's page, accept its licence, create an access token "
            "(Settings › Access Tokens, “read”) and paste it below — or log in once with "
            "<code>hf auth login</code>. The <b>-base</b> models are open and need no token; "
            "they take more steps and accept a negative prompt and a CFG scale."
        )
        self.gated_note.setObjectName("gatedNote")
        self.gated_note.setWordWrap(True)
        self.gated_note.setTextFormat(Qt.TextFormat.RichText)
        self.gated_note.setOpenExternalLinks(True)

        self.token = QLineEdit()
        self.token.setObjectName("hfToken")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_… (only for gated models; not stored)")
        self.destination = QComboBox()
        self.destination.setObjectName("downloadDestination")
        self.destination.addItem(HF_CACHE_CHOICE, "")
        if models_folder:
            self.destination.addItem(f"Models folder: {models_folder}", models_folder)
        form = QFormLayout()
        form.addRow("Access token", self.token)
        form.addRow("Save to", self.destination)

        self.progress = QProgressBar()
        self.progress.setObjectName("downloadProgress")
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("downloadStatus")
        self.progress_label.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setObjectName("downloadError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #f0736a;")
        self.error_label.setVisible(False)

        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadButton")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button = QPushButton("Cancel Download")
        self.cancel_button.setObjectName("cancelDownload")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress_label, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.close_button)

        lay = QVBoxLayout(self)
        lay.addWidget(self.intro)
        places_row = QHBoxLayout()
        places_row.addWidget(self.places, 1)
        places_row.addWidget(self.add_folder_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(places_row)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.gated_note)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.error_label)
        lay.addLayout(buttons)
        self.refresh()

    # -- content -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Look for models on disk again and redraw the list."""
        try:
            found = self._catalog.discover()
        except Exception as exc:  # a broken folder must not break the dialog
            log.warning("model discovery failed: %s", exc)
            found = []
        complete = {m.name: m for m in found if m.complete}
        partial = {m.name: m for m in found if not m.complete}
        self.places.setText(self._places_text(found))
        if complete:
            head = (
                f"<p><b>{len(complete)} model(s) found.</b> Download another one below, or "
                "close this window and pick a model in the Generate panel.</p>"
            )
        else:
            head = (
                "<p><b>No Stable Audio 3 model was found on this computer.</b> SA3 Studio "
                "generates audio with a model that runs locally; download one below "
                "(<b>small-music</b> is a good start: about 2 minutes per pass, fast on a "
                "GPU, usable on a CPU).</p>"
            )
        self.intro.setText(head)
        current = self.selected_name()
        self.table.clear()
        for entry in self._catalog.official:
            item = QTreeWidgetItem(
                [
                    entry.name,
                    self._kind(entry),
                    _seconds_text(entry.max_seconds),
                    "Token + licence" if entry.gated else "Open",
                    self._status(entry, complete.get(entry.name), partial.get(entry.name)),
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, entry.name)
            item.setToolTip(0, entry.url)
            item.setToolTip(
                3,
                f"Accept the licence at {entry.url} and use a token."
                if entry.gated
                else "No account needed.",
            )
            self.table.addTopLevelItem(item)
            if entry.name == current:
                self.table.setCurrentItem(item)
        first = self.table.topLevelItem(0)
        if self.table.currentItem() is None and first is not None:
            self.table.setCurrentItem(first)
        self._update_buttons()

    def _places_text(self, found: list[ModelInfo]) -> str:
        """Every place searched (the unset ones too) and every model found there."""
        places = [html.escape(p) for p in self._catalog.search_places()]
        if not any("(settings)" in p for p in places):
            places.insert(0, "Models folder of the Settings: <i>not set</i> (Add Folder… sets it)")
        if not any("(SA3_STUDIO_MODELS)" in p for p in places):
            places.insert(
                1, "<code>SA3_STUDIO_MODELS</code>: <i>not set</i> (folders, separated like PATH)"
            )
        keys = QKeySequence("Ctrl+,").toString(QKeySequence.SequenceFormat.NativeText)
        text = "<p>SA3 Studio looks for models in:</p><ul>"
        text += "".join(f"<li>{p}</li>" for p in places) + "</ul>"
        text += (
            "<p>The models folder of the Settings is chosen with Add Folder… here, or in "
            f"Edit › Settings… ({html.escape(keys)}) under Models.</p>"
        )
        if found:
            rows = []
            for m in found:
                where = html.escape(m.path)
                if m.complete:
                    rows.append(f"<li><b>{html.escape(m.name)}</b> — ready ({where})</li>")
                else:
                    why = html.escape("; ".join(m.missing) or "incomplete")
                    rows.append(
                        f"<li><b>{html.escape(m.name)}</b> — incomplete: {why} ({where})</li>"
                    )
            text += "<p>Found on this computer:</p><ul>" + "".join(rows) + "</ul>"
        else:
            text += "<p>No model folder was found in these places.</p>"
        return text

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder with models", self._models_folder or str(Path.home())
        )
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        """Make ``folder`` the models folder of the Settings and look for models again."""
        if self._set_models_folder is None:
            return
        self._set_models_folder(folder)
        self._models_folder = folder
        if self.destination.findData(folder) < 0:
            self.destination.addItem(f"Models folder: {folder}", folder)
        self.refresh()
        self.models_changed.emit()

    @staticmethod
    def _kind(entry: OfficialModelEntry) -> str:
        what = "sound effects" if "sfx" in entry.name else "music"
        tuning = "base" if entry.is_base else "post-trained"
        size = f" · {entry.size_hint}" if entry.size_hint else ""
        return f"{entry.family} {what}, {tuning}{size}"

    @staticmethod
    def _status(entry: OfficialModelEntry, found: ModelInfo | None, part: ModelInfo | None) -> str:
        if found is not None:
            return f"Installed ({found.source})"
        if part is not None:
            return f"Incomplete: missing {', '.join(part.missing[:2])}"
        return "Not downloaded"

    def selected_name(self) -> str:
        """The official id of the selected row ("" when none)."""
        item = self.table.currentItem()
        return str(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else ""

    def select(self, name: str) -> None:
        """Select a model's row."""
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.table.setCurrentItem(item)
                return

    def _entry(self, name: str) -> OfficialModelEntry | None:
        return next((e for e in self._catalog.official if e.name == name), None)

    def _update_buttons(self) -> None:
        busy = self._job is not None
        self.download_button.setEnabled(
            not busy and bool(self.selected_name()) and self._catalog.download is not None
        )
        if self._catalog.download is None:
            self.download_button.setToolTip("Downloading is not available in this build.")
        self.cancel_button.setVisible(busy)
        self.table.setEnabled(not busy)

    # -- download ------------------------------------------------------------------------------

    @property
    def downloading(self) -> bool:
        """True while a download runs."""
        return self._job is not None

    def start_download(self) -> Job | None:
        """Download the selected model (the explicit user action)."""
        name = self.selected_name()
        download = self._catalog.download
        if not name or download is None or self._job is not None:
            return None
        entry = self._entry(name)
        token = self.token.text().strip() or None
        dest = str(self.destination.currentData() or "") or None
        self.error_label.setVisible(False)

        def work(progress: ProgressFn, cancel: CancelToken) -> ModelInfo:
            def on_bytes(done: int, total: int) -> None:
                total = max(total, done, 1)
                progress(done / total, f"{_bytes_text(done)} of {_bytes_text(total)}")

            return download(name, dest, progress=on_bytes, token=token)

        gated = (
            " (gated: your token and licence acceptance are checked)"
            if entry and entry.gated
            else ""
        )
        self.progress_label.setText(f"Downloading {name}{gated}…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._job = self._runner.submit("download", work, f"Downloading {name}")
        self._update_buttons()
        return self._job

    def cancel_download(self) -> None:
        """Stop the download at its next progress report (it resumes when started again)."""
        if self._job is not None:
            self._job.cancel()
            self.progress_label.setText("Cancelling…")

    def _on_progress(self, job: Job, fraction: float, message: str) -> None:
        if job is not self._job:
            return
        self.progress.setValue(round(fraction * 1000))
        if message:
            self.progress_label.setText(f"{job.label}: {message}")

    def _finish(self) -> None:
        self._job = None
        self.progress.setVisible(False)
        self._update_buttons()

    def _on_finished(self, job: Job, result: object) -> None:
        if job is not self._job:
            return
        self._finish()
        where = result.path if isinstance(result, ModelInfo) else ""
        self.progress_label.setText(f"Downloaded to {Path(where)}." if where else "Downloaded.")
        self.refresh()
        self.models_changed.emit()

    def _on_failed(self, job: Job, message: str, exc: object) -> None:
        if job is not self._job:
            return
        self._finish()
        self.progress_label.setText("")
        self.error_label.setText(message)
        self.error_label.setVisible(True)

    def _on_cancelled(self, job: Job) -> None:
        if job is not self._job:
            return
        self._finish()
        self.progress_label.setText(
            "Download cancelled; start it again to resume where it stopped."
        )

    def shutdown(self) -> None:
        """Stop a running download and wait for its thread (call before destroying)."""
        if self._job is not None:
            self._job.cancel()
        self._runner.shutdown()

    def done(self, result: int) -> None:
        """Closing the dialog (Close, Escape, the title bar) stops a running download."""
        self.shutdown()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
