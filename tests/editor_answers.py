"""The editor's dialogs answered by a test: errors are recorded to fail with, unsaved work is
discarded, nothing is recovered, Save As answers ``save_answer``.

Shared by the end-to-end tests of the editor (local and against a server); it sits beside the
top-level conftest.py, so every test can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from sa3_studio.ui.dialogs import Prompts, UnsavedChoice


class EditorAnswers(Prompts):
    """The window's questions answered without dialogs; errors are recorded."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.errors: list[tuple[str, str]] = []
        self.save_answer: Path | None = None

    def error(self, title: str, message: str) -> None:
        self.errors.append((title, message))

    def info(self, title: str, message: str) -> None:
        pass

    def ask_unsaved(self, name: str) -> UnsavedChoice:
        return UnsavedChoice.DISCARD

    def ask_recover(self, names: Any) -> int | None:
        return None

    def ask_recover_newer(self, name: str) -> bool:
        return False

    def save_path(self, suggested: str) -> Path | None:
        return self.save_answer
