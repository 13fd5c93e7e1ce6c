"""Every question the window asks the user, in one replaceable object.

The main window never opens a modal dialog directly: it asks its :class:`Prompts`. Tests give
the window a scripted subclass, so no test ever blocks on a dialog.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sa3_studio import __version__
from sa3_studio.app.export_request import ExportRequest, FormatChoice
from sa3_studio.app.file_service import PROJECT_SUFFIX
from sa3_studio.app.settings import Preferences
from sa3_studio.ui.export_dialog import ExportDialog
from sa3_studio.ui.settings_dialog import SettingsDialog


class UnsavedChoice(enum.Enum):
    """Answer to "Save changes before closing?"."""

    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


_AUDIO = "*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aif *.aiff *.aifc"
OPEN_FILTER = (
    f"Audio and projects ({_AUDIO} *{PROJECT_SUFFIX});;Audio files ({_AUDIO});;"
    f"SA3 Studio projects (*{PROJECT_SUFFIX});;All files (*)"
)
PROJECT_FILTER = f"SA3 Studio projects (*{PROJECT_SUFFIX})"


class ShortcutsDialog(QDialog):
    """Help > Keyboard Shortcuts: every command and its keys, grouped by menu."""

    def __init__(self, rows: Sequence[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setObjectName("shortcutsDialog")
        self.resize(560, 620)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Command", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        groups: dict[str, QTreeWidgetItem] = {}
        for group, command, keys in rows:
            parent_item = groups.get(group)
            if parent_item is None:
                parent_item = QTreeWidgetItem([group, ""])
                font = parent_item.font(0)
                font.setBold(True)
                parent_item.setFont(0, font)
                parent_item.setFirstColumnSpanned(True)
                self.tree.addTopLevelItem(parent_item)
                groups[group] = parent_item
            parent_item.addChild(QTreeWidgetItem([command, keys]))
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        mouse = QLabel(
            "Mouse: drag to select · Ctrl/Cmd-drag adds a span · Shift-click extends · "
            "drag edges to resize · Ctrl/Cmd-wheel zooms · wheel scrolls · "
            "drag a region's header out of the window to export it as WAV"
        )
        mouse.setWordWrap(True)
        mouse.setObjectName("hint")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree, 1)
        lay.addWidget(mouse)
        lay.addWidget(buttons)


class Prompts:
    """The window's questions and messages (modal dialogs by default).

    Args:
        parent: the window the dialogs belong to.
    """

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def error(self, title: str, message: str) -> None:
        """Tell the user something failed (the message says what to do)."""
        QMessageBox.warning(self.parent, title, message)

    def info(self, title: str, message: str) -> None:
        """Tell the user something worth knowing."""
        QMessageBox.information(self.parent, title, message)

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        """Ask whether to save changes to ``name`` before they would be lost."""
        box = QMessageBox(self.parent)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"Do you want to save the changes to “{name}”?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return UnsavedChoice.SAVE
        if answer == QMessageBox.StandardButton.Discard:
            return UnsavedChoice.DISCARD
        return UnsavedChoice.CANCEL

    def ask_recover(self, names: Sequence[str]) -> int | None:
        """Offer to recover autosaved work after a crash; returns the index chosen or None."""
        if not names:
            return None
        if len(names) == 1:
            answer = QMessageBox.question(
                self.parent,
                "Recover unsaved work",
                f"SA3 Studio did not close normally last time. Unsaved work on “{names[0]}” "
                "was autosaved. Do you want to recover it? (No throws it away.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.Yes,
            )
            return 0 if answer == QMessageBox.StandardButton.Yes else None
        item, ok = QInputDialog.getItem(
            self.parent,
            "Recover unsaved work",
            "SA3 Studio did not close normally last time. Choose the work to recover:",
            list(names),
            0,
            False,
        )
        return list(names).index(item) if ok else None

    def ask_recover_newer(self, name: str) -> bool:
        """A saved project has newer autosaved work (a crash): use it?"""
        answer = QMessageBox.question(
            self.parent,
            "Recover unsaved work",
            f"“{name}” has changes that were autosaved but not saved, probably because SA3 "
            "Studio did not close normally. Do you want to recover them? (No opens the saved "
            "version and throws the autosaved changes away.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def open_path(self, folder: str) -> Path | None:
        """Ask for an audio file or project to open."""
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open", folder, OPEN_FILTER)
        return Path(path) if path else None

    def save_path(self, suggested: str) -> Path | None:
        """Ask where to save the project."""
        path, _ = QFileDialog.getSaveFileName(
            self.parent, "Save Project As", suggested, PROJECT_FILTER
        )
        if not path:
            return None
        p = Path(path)
        return p if p.suffix.lower() == PROJECT_SUFFIX else p.with_suffix(PROJECT_SUFFIX)

    def gain_db(self) -> float | None:
        """Ask for a gain in decibels."""
        value, ok = QInputDialog.getDouble(
            self.parent, "Gain", "Change the level by (dB):", 0.0, -60.0, 60.0, 1
        )
        return float(value) if ok else None

    def normalize_target(self) -> float | None:
        """Ask for a peak level in dBFS."""
        value, ok = QInputDialog.getDouble(
            self.parent, "Normalise", "Peak level (dBFS):", -1.0, -60.0, 0.0, 1
        )
        return float(value) if ok else None

    def tempo(self, current: float | None) -> float | None:
        """Ask for a tempo in BPM (0 clears it)."""
        value, ok = QInputDialog.getDouble(
            self.parent,
            "Tempo",
            "Tempo in beats per minute (0 to clear):",
            current or 120.0,
            0.0,
            999.0,
            2,
        )
        return float(value) if ok else None

    def export(
        self,
        formats: Sequence[FormatChoice],
        regions: Sequence[tuple[str, str]],
        **kwargs: object,
    ) -> ExportRequest | None:
        """Show the export dialog; returns the request or None when cancelled."""
        dlg = ExportDialog(formats, regions, parent=self.parent, **kwargs)  # type: ignore[arg-type]
        return dlg.request() if dlg.exec() == QDialog.DialogCode.Accepted else None

    def settings(self, prefs: Preferences, output_devices: Sequence[str]) -> Preferences | None:
        """Show the settings dialog; returns the new preferences or None when cancelled."""
        dlg = SettingsDialog(prefs, output_devices, self.parent)
        return dlg.preferences() if dlg.exec() == QDialog.DialogCode.Accepted else None

    def shortcuts(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Show the keyboard shortcuts."""
        ShortcutsDialog(rows, self.parent).exec()

    def about(self) -> None:
        """Show the About box."""
        QMessageBox.about(
            self.parent,
            "About SA3 Studio",
            f"<b>SA3 Studio {__version__}</b><p>An audio editor that regenerates selected "
            "regions in place with Stable Audio 3.</p>",
        )
