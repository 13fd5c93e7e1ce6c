"""The controllers behind one editor window, built together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QSettings

from sa3_studio.app.document_controller import DocumentController
from sa3_studio.app.file_service import FileService
from sa3_studio.app.jobs import JobRunner
from sa3_studio.app.session import Session
from sa3_studio.app.settings import AppSettings
from sa3_studio.app.transport import Transport
from sa3_studio.app.waveform_source import PyramidCache
from sa3_studio.audio.player import AudioBackend, Player


@dataclass
class EditorServices:
    """Everything the main window talks to (all QtCore; no widgets).

    Attributes:
        settings: preferences and remembered view state.
        session: view state of the open project.
        document: the project and its undo history.
        transport: playback.
        files: open, save, autosave, export jobs.
        runner: the background pool for decoding and exporting.
        store_runner: a one-thread pool for project file writes (kept in order).
        view_runner: a second pool for view work (spectrograms), so it never waits behind an
            export.
        pyramids: peak pyramids by audio buffer.
    """

    settings: AppSettings
    session: Session
    document: DocumentController
    transport: Transport
    files: FileService
    runner: JobRunner
    store_runner: JobRunner
    view_runner: JobRunner
    pyramids: PyramidCache

    def shutdown(self, *, discard_unsaved: bool = False) -> None:
        """Stop playback and every background job, close the project, wait for the threads.

        Args:
            discard_unsaved: the user chose to drop unsaved changes (their autosave goes too).
        """
        self.transport.shutdown()
        self.view_runner.shutdown()
        self.files.shutdown(discard_unsaved=discard_unsaved)


def build_services(
    *,
    settings_store: QSettings | None = None,
    audio_backend: AudioBackend | None = None,
    recovery_dir: str | Path | None = None,
    parent: QObject | None = None,
) -> EditorServices:
    """Build the controllers of one editor window.

    Args:
        settings_store: where preferences live (tests pass a temporary INI file).
        audio_backend: the Player's stream factory (``None``: the sound card via PortAudio).
        recovery_dir: where autosaves of never-saved work go (``None``: the user data folder).
        parent: Qt parent of the QObjects.
    """
    settings = AppSettings(settings_store, parent)
    session = Session(parent)
    document = DocumentController(parent=parent)
    runner = JobRunner(parent)
    store_runner = JobRunner(parent, max_threads=1)
    view_runner = JobRunner(parent, max_threads=1)
    player = Player(audio_backend)
    transport = Transport(player, session, parent)
    files = FileService(runner, store_runner, recovery_dir, parent)
    return EditorServices(
        settings,
        session,
        document,
        transport,
        files,
        runner,
        store_runner,
        view_runner,
        PyramidCache(),
    )
