"""Opening, saving, autosaving and exporting, as background jobs with progress and cancel.

Each operation runs on the :class:`~sa3_studio.app.jobs.JobRunner`'s pool, takes an immutable
project snapshot (so the user can keep editing meanwhile) and reports back through queued
signals. Errors arrive as sentences from ``sa3_studio.errors`` for the window to show.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from sa3_studio.app.export_request import ExportRequest, ExportWhat, FormatChoice
from sa3_studio.app.jobs import Job, JobRunner, ProgressFn
from sa3_studio.app.mixdown import audible_tracks, render_mix, render_track
from sa3_studio.app.waveform_source import EnergyIndex, PyramidCache
from sa3_studio.audio import files, store
from sa3_studio.audio.peaks import PeakPyramid
from sa3_studio.audio.true_peak import limit_true_peak, true_peak_dbtp
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.history import History
from sa3_studio.document.project import Project, ProjectMeta
from sa3_studio.engine.api import CancelToken
from sa3_studio.errors import AudioFileError, ProjectFileError

log = logging.getLogger(__name__)

PROJECT_SUFFIX = store.PROJECT_SUFFIX
"""File name extension of SA3 Studio projects."""

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc")
"""Extensions offered in the Open dialog for audio files."""


@dataclass(frozen=True, slots=True)
class OpenWarning:
    """Something the user must read after an open (a dialog, not the status bar)."""

    title: str
    message: str


@dataclass(frozen=True, slots=True, eq=False)
class OpenResult:
    """What an open (or recover) job produced.

    Attributes:
        history: the undo history (a fresh one for an audio file; the stored one for a
            project, so undo reaches back before it was closed).
        session: the project's store session (autosave, save, recovery).
        path: the project file (``None`` while the work has never been saved as a project).
        source: the file the user opened.
        pyramids: peak pyramids built for the current snapshot's buffers, by content id.
        energies: energy indexes (RMS) of the same buffers.
        notices: sentences about what import changed (rate conversion, truncation ...).
        recovered: the history is autosaved work recovered after a crash (it counts as unsaved).
        newer_autosave: for a saved project: newer autosaved work a crash left in the file,
            to be offered to the user (``None`` when there is none).
        warnings: sentences the user must read (a dialog, not the status bar): autosaved
            work that could not be recovered, a project opened read-only.
    """

    history: History
    session: store.ProjectSession
    path: Path | None
    source: Path
    pyramids: dict[str, PeakPyramid] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    recovered: bool = False
    newer_autosave: History | None = None
    energies: dict[str, EnergyIndex] = field(default_factory=dict)
    warnings: tuple[OpenWarning, ...] = ()

    @property
    def project(self) -> Project:
        """The current snapshot."""
        return self.history.project


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: the files and sentences for the user."""

    paths: tuple[Path, ...]
    notices: tuple[str, ...] = ()


def is_project_file(path: str | Path) -> bool:
    """True for a SA3 Studio project file (by extension)."""
    return Path(path).suffix.lower() == PROJECT_SUFFIX


def _cancel_check(token: CancelToken) -> Callable[[], bool]:
    return lambda: token.cancelled


def import_project_from_audio(
    path: Path, progress: ProgressFn, token: CancelToken
) -> tuple[Project, tuple[str, ...]]:
    """Decode ``path`` into a new one-track project (runs on a worker thread)."""

    def on_progress(done: int, total: int) -> None:
        progress(0.8 * done / max(total, 1), "Decoding")

    audio, info = files.import_audio(path, on_progress=on_progress, cancel=_cancel_check(token))
    progress(0.82, "Preparing")
    data = AudioData.from_array(audio, copy=False)
    meta = ProjectMeta(
        title=path.stem,
        source_path=str(path),
        source_sample_rate=info.original_rate,
        source_channels=info.channels,
        source_format=info.format,
        source_subtype=info.subtype,
        truncated_notice=(" ".join(info.notices) if info.truncated else None),
    )
    return Project.from_audio(data, meta, track_name=path.stem), tuple(info.notices)


@contextmanager
def _closed_on_failure(session: store.ProjectSession) -> Iterator[store.ProjectSession]:
    """Close ``session`` if the block raises: a failed open leaves no file handle behind."""
    try:
        yield session
    except BaseException:
        session.close()
        raise


def _newer_autosave(
    session: store.ProjectSession, path: Path
) -> tuple[History | None, tuple[OpenWarning, ...]]:
    """The autosaved work newer than the saved state, if any and if it can be read.

    A damaged autosave never blocks the saved project: the file is copied aside as it is,
    the autosave is dropped, and the user is told.
    """
    try:
        newer = session.recovered()
        if newer is None:
            return None, ()
        saved = session.file.current_digest(store.SAVED)
        if newer.history.current_snapshot.digest == saved:
            session.discard_recovered()  # a crash between a save and its clean-up: nothing new
            return None, ()
        return newer.to_history(), ()
    except ProjectFileError as exc:
        log.warning("the autosave in %s cannot be read: %s", path, exc)
    copy = session.set_aside_recovered()
    kept = (
        f" A copy of the file as it was is kept as “{copy.name}” in {copy.parent}."
        if copy is not None
        else ""
    )
    message = (
        f"Changes to “{path.stem}” that were autosaved but never saved could not be "
        "recovered: that part of the file is damaged. The last saved version is open." + kept
    )
    return None, (OpenWarning("Unsaved changes could not be recovered", message),)


def _open_read_only(p: Path, recovery_dir: Path | None, progress: ProgressFn) -> OpenResult:
    """Open a project this user cannot write: its saved state, as untitled work.

    Changes autosave into the recovery folder like any unsaved work; Save As puts them in a
    project of their own. The read-only file is never written.
    """
    history = store.read_saved_read_only(p).to_history()
    progress(0.4, "Reading")
    pyramids, energies = build_pyramids(history.project, progress, 0.5)
    session = store.ProjectSession.new(recovery_dir=recovery_dir, title=p.stem)
    warning = OpenWarning(
        "Opened read-only",
        f"“{p.name}” cannot be written (the file or its folder is read-only), so it opened "
        "as a copy. Your changes are autosaved as you work; use Save As to save them "
        "somewhere you can write.",
    )
    return OpenResult(history, session, None, p, pyramids, energies=energies, warnings=(warning,))


def build_pyramids(
    project: Project, progress: ProgressFn, lo: float
) -> tuple[dict[str, PeakPyramid], dict[str, EnergyIndex]]:
    """Peak pyramids and energy indexes of the current snapshot's buffers (biggest first)."""
    buffers = sorted(project.audio_buffers().values(), key=lambda a: -a.frames)
    peaks: dict[str, PeakPyramid] = {}
    energies: dict[str, EnergyIndex] = {}
    total = sum(a.frames for a in buffers) or 1
    done = 0
    for a in buffers:
        peaks[a.content_id] = PyramidCache.build(a)
        energies[a.content_id] = EnergyIndex(a.samples)
        done += a.frames
        progress(lo + (1.0 - lo) * done / total, "Drawing")
    return peaks, energies


_QUIET_KINDS = ("autosave", "prime")
"""Background writes the user does not wait for: they never show the progress bar."""


class FileService(QObject):
    """Open, save, autosave, recover and export in the background.

    The open project lives in a :class:`~sa3_studio.audio.store.ProjectSession` (a SQLite file
    with the whole undo history). Writes to it run one at a time, in order, on their own
    single-thread pool; autosaves coalesce (a newer one replaces one still waiting).

    Args:
        runner: the job runner for decoding and exporting.
        store_runner: a single-thread job runner for project file writes.
        recovery_dir: where autosaves of unsaved work live (``None``: the user data folder).
        parent: Qt parent.

    Signals:
        opened(result): an :class:`OpenResult` (adopt it with :meth:`adopt`).
        saved(path): the project was saved.
        autosaved(): the latest committed state is on disk.
        exported(summary): an :class:`ExportSummary`.
        failed(title, message): an operation failed; the message says what to do.
        cancelled(label): the user cancelled an operation.
        progress(label, fraction): a running job's progress (0..1).
        busy_changed(): a job the user waits for started, or the last one ended (see
            :meth:`is_busy`; no bool is emitted, see ``transport.Transport``).
    """

    opened = Signal(object)
    saved = Signal(object)
    autosaved = Signal()
    exported = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal(str)
    progress = Signal(str, float)
    busy_changed = Signal()

    def __init__(
        self,
        runner: JobRunner,
        store_runner: JobRunner,
        recovery_dir: str | Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._store_runner = store_runner
        # Saves run on their own thread: autosaves of edits made during a long Save As go on
        # into the file being left, and the latest state follows into the new one.
        self._save_runner = JobRunner(self, max_threads=1)
        self._history: History | None = None
        self._recovery_dir = Path(recovery_dir) if recovery_dir is not None else None
        self._session: store.ProjectSession | None = None
        self._autosaved = False
        # Keyed by the job itself: ids count per runner, so two runners' jobs share ids.
        self._titles: dict[Job, str] = {}
        self._on_done: dict[Job, Callable[[object], None]] = {}
        self._quiet: set[Job] = set()
        for r in (runner, store_runner, self._save_runner):
            r.progress.connect(self._on_progress)
            r.finished.connect(self._on_finished)
            r.failed.connect(self._on_failed)
            r.cancelled.connect(self._on_cancelled)
            r.discarded.connect(self._on_discarded)

    @property
    def runner(self) -> JobRunner:
        """The job runner for decoding and exporting."""
        return self._runner

    @property
    def session(self) -> store.ProjectSession | None:
        """The open project's store session."""
        return self._session

    @property
    def recovery_dir(self) -> Path | None:
        """Where autosaves of never-saved work live (``None``: the default folder)."""
        return self._recovery_dir

    def is_busy(self) -> bool:
        """True while a job the user waits for runs (autosaves do not count)."""
        return any(j not in self._quiet for j in self._on_done)

    # -- open and recover ----------------------------------------------------------------------

    def open(self, path: str | Path) -> Job:
        """Open an audio file or a project in the background; emits :attr:`opened`."""
        p = Path(path).expanduser()
        recovery_dir = self._recovery_dir

        def work(progress: ProgressFn, token: CancelToken) -> OpenResult:
            progress(0.0, "Opening")
            if is_project_file(p) and p.exists() and not store.is_writable(p):
                return _open_read_only(p, recovery_dir, progress)
            if is_project_file(p):
                session = store.ProjectSession.open(p, recovery_dir=recovery_dir)
                with _closed_on_failure(session):
                    stored = session.load()
                    if stored is None:
                        raise ProjectFileError(
                            f"'{p.name}' holds no saved project. It may come from a save that "
                            "did not finish; open an older copy or the original audio."
                        )
                    history = stored.to_history()
                    progress(0.4, "Reading")
                    newer_history, warning = _newer_autosave(session, p)
                    pyramids, energies = build_pyramids(history.project, progress, 0.5)
                return OpenResult(
                    history,
                    session,
                    p,
                    p,
                    pyramids,
                    newer_autosave=newer_history,
                    energies=energies,
                    warnings=warning,
                )
            project, notices = import_project_from_audio(p, progress, token)
            pyramids, energies = build_pyramids(project, progress, 0.85)
            session = store.ProjectSession.new(recovery_dir=recovery_dir, title=p.stem)
            return OpenResult(
                History(project), session, None, p, pyramids, notices, energies=energies
            )

        return self._submit(self._runner, "open", f"Opening {p.name}", work, self.opened.emit)

    def find_recoverable(self) -> list[store.Recoverable]:
        """Unsaved work a crashed session left behind, newest first."""
        try:
            return store.find_recoverable(self._recovery_dir)
        except ProjectFileError as exc:
            log.warning("looking for recoverable work failed: %s", exc)
            return []

    def recover(self, item: store.Recoverable) -> Job:
        """Open autosaved work found by :meth:`find_recoverable`; emits :attr:`opened`."""
        recovery_dir = self._recovery_dir

        def work(progress: ProgressFn, token: CancelToken) -> OpenResult:
            session = store.ProjectSession.resume(item, recovery_dir=recovery_dir)
            with _closed_on_failure(session):
                state = session.recovered()
                if state is None:
                    raise ProjectFileError(
                        f"The autosaved work on '{item.title}' is no longer there; it may have "
                        "been recovered or discarded already."
                    )
                history = state.to_history()
                pyramids, energies = build_pyramids(history.project, progress, 0.5)
            return OpenResult(
                history,
                session,
                item.project_path,
                item.file,
                pyramids,
                recovered=True,
                energies=energies,
            )

        return self._submit(
            self._runner, "open", f"Recovering {item.title}", work, self.opened.emit
        )

    def discard_recoverable(self, item: store.Recoverable) -> None:
        """Throw away autosaved work the user does not want."""
        try:
            store.discard_recoverable(item)
        except ProjectFileError as exc:
            self.failed.emit("Could not discard the autosaved work", str(exc))

    def adopt(self, result: OpenResult, *, discard_previous: bool) -> None:
        """Make ``result``'s session the open project, closing the previous one.

        Args:
            result: what :attr:`opened` delivered.
            discard_previous: the user chose to drop the previous project's unsaved changes
                (its autosave goes too); otherwise they stay recoverable.
        """
        self.close_document(discard_unsaved=discard_previous)
        self._session = result.session
        self._autosaved = result.recovered
        session = result.session
        if session.untitled and not result.recovered:
            # Put the opened audio into the recovery file now, in the background: the first
            # edit's autosave then only writes what the edit changed.
            record = session.snapshots.record_history(result.history)

            def work(progress: ProgressFn, token: CancelToken) -> None:
                session.prime(record)

            job = self._submit(
                self._store_runner, "prime", "Preparing the recovery file", work, lambda _r: None
            )
            self._quiet.add(job)

    def reject(self, result: OpenResult) -> None:
        """Close the session of a result that will not be used."""
        result.session.close()

    def start_untitled(self, title: str = "Untitled") -> None:
        """Give a project made in the empty editor (new audio from a prompt) a session of its
        own, so that it autosaves, can be recovered and saved like an opened file."""
        if self._session is None:
            self._session = store.ProjectSession.new(recovery_dir=self._recovery_dir, title=title)

    def close_document(self, *, discard_unsaved: bool) -> None:
        """Close the open project's session (after its pending writes finished)."""
        session, self._session = self._session, None
        self._history = None
        if session is None:
            return
        self._save_runner.wait()
        self._store_runner.wait()
        try:
            session.close(discard_unsaved=discard_unsaved)
        except ProjectFileError as exc:
            self.failed.emit("Could not close the project", str(exc))

    # -- save and autosave ---------------------------------------------------------------------

    def _record(self, history: History) -> store.HistoryRecord | None:
        session = self._session
        if session is None:
            return None
        return session.snapshots.record_history(history)

    def save(self, history: History, path: str | Path | None = None) -> Job | None:
        """Save the history's project (in place, or as ``path``); emits :attr:`saved`.

        The record of the history is taken now, on the calling thread; the user may keep
        editing while it is written.
        """
        session = self._session
        record = self._record(history)
        if session is None or record is None:
            self.failed.emit(
                "Could not save the project", "There is no open project to save; open one first."
            )
            return None
        target = Path(path) if path is not None else session.path
        if target is None:
            self.failed.emit(
                "Could not save the project",
                "This project has not been saved yet; use Save As to choose where to save it.",
            )
            return None
        if target.suffix.lower() != PROJECT_SUFFIX:
            target = target.with_suffix(PROJECT_SUFFIX)
        in_place = session.path is not None and path is None

        def work(progress: ProgressFn, token: CancelToken) -> Path:
            progress(0.0, "Saving")
            if in_place:
                session.save(record)
            else:
                session.save_as(target, record)
            return target

        if history.is_dirty:
            # Durable before the save starts: a crash during a long Save As loses nothing.
            self.autosave(history)

        def done(saved: Path) -> None:
            self.saved.emit(saved)
            # Edits made while the copy was written went into the file left behind: write
            # the latest state into the saved one (nothing when it is the saved state).
            if self._session is session and self._history is not None:
                self.autosave(self._history)

        self._history = history
        return self._submit(self._save_runner, "save", f"Saving {target.name}", work, done)

    def autosave(self, history: History) -> Job | None:
        """Write the history to the autosave slot in the background (coalesced).

        Call it after every change: the record is taken now (only snapshots not seen before
        are serialised) and written by the store thread, durably, a few milliseconds later.
        A history back at its saved (or opened) state clears the autosave slot instead, so
        that nothing is offered for recovery that the user would not miss.
        """
        session = self._session
        if session is None:
            return None
        self._history = history
        if not history.is_dirty:
            if not self._autosaved:
                return None
            self._autosaved = False

            def clear(progress: ProgressFn, token: CancelToken) -> None:
                session.discard_recovered()

            job = self._submit(self._store_runner, "autosave", "Autosaving", clear, lambda _r: None)
            self._quiet.add(job)
            return job
        record = self._record(history)
        if record is None:
            return None
        self._autosaved = True

        def work(progress: ProgressFn, token: CancelToken) -> None:
            session.commit(record)

        job = self._submit(
            self._store_runner, "autosave", "Autosaving", work, lambda _r: self.autosaved.emit()
        )
        self._quiet.add(job)
        return job

    def wait_for_writes(self, timeout_ms: int = 30000) -> bool:
        """Block until every queued project write is on disk (before quitting)."""
        return self._save_runner.wait(timeout_ms) and self._store_runner.wait(timeout_ms)

    # -- export --------------------------------------------------------------------------------

    @staticmethod
    def export_formats() -> list[FormatChoice]:
        """The formats this machine can write."""
        return [
            FormatChoice(f.value, f.label, f.extension, f.bits)
            for f in files.available_export_formats()
        ]

    def export(self, project: Project, request: ExportRequest) -> Job:
        """Carry out ``request`` on ``project`` in the background; emits :attr:`exported`."""

        def work(progress: ProgressFn, token: CancelToken) -> ExportSummary:
            return run_export(project, request, progress, token)

        label = f"Exporting {request.path.name}"
        return self._submit(self._runner, "export", label, work, self.exported.emit)

    def cancel(self, kind: str | None = None) -> None:
        """Cancel the running job of ``kind`` (all decoding and exporting with ``None``)."""
        if kind is None:
            self._runner.cancel_all()
        else:
            self._runner.cancel(kind)

    def shutdown(self, *, discard_unsaved: bool) -> None:
        """Finish pending writes and close the project (the window is closing)."""
        self._runner.shutdown()
        self.close_document(discard_unsaved=discard_unsaved)
        self._save_runner.shutdown()
        self._store_runner.shutdown()

    # -- plumbing ------------------------------------------------------------------------------

    def _submit(
        self,
        runner: JobRunner,
        kind: str,
        label: str,
        work: Callable[[ProgressFn, CancelToken], object],
        done: Callable[[Any], None],
    ) -> Job:
        old = runner.current(kind)
        if old is not None:
            # The runner drops the superseded job's results; forget its callbacks too.
            self._forget(old)
        was_busy = self.is_busy()
        job = runner.submit(kind, work, label)
        self._titles[job] = label
        self._on_done[job] = done
        if not was_busy and kind not in _QUIET_KINDS:
            self.busy_changed.emit()
        return job

    def _forget(self, job: Job) -> tuple[str, Callable[[object], None] | None]:
        was_busy = self.is_busy()
        title = self._titles.pop(job, job.label)
        done = self._on_done.pop(job, None)
        self._quiet.discard(job)
        if was_busy and not self.is_busy():
            self.busy_changed.emit()
        return title, done

    def _on_progress(self, job: Job, fraction: float, message: str) -> None:
        if job in self._titles and job not in self._quiet:
            self.progress.emit(self._titles[job], fraction)

    def _on_finished(self, job: Job, result: object) -> None:
        _, done = self._forget(job)
        if done is not None:
            done(result)

    def _on_failed(self, job: Job, message: str, exc: object) -> None:
        label, done = self._forget(job)
        if done is None:
            return
        titles = {
            "open": "Could not open the file",
            "save": "Could not save the project",
            "autosave": "Autosave failed",
            "export": "Export failed",
        }
        self.failed.emit(titles.get(job.kind, f"{label} failed"), message)

    def _on_discarded(self, job: Job, result: object) -> None:
        if isinstance(result, OpenResult):
            # A newer open replaced this one: release the project it opened.
            result.session.close()

    def _on_cancelled(self, job: Job) -> None:
        label, done = self._forget(job)
        if done is not None and job.kind != "autosave":
            self.cancelled.emit(label)


def _options(request: ExportRequest, position: int, project: Project) -> files.ExportOptions:
    fmt = files.ExportFormat(request.format_key)
    level: float | None = None
    mode: str | None = None
    if fmt is files.ExportFormat.MP3:
        # Level 0 is the top of libsndfile's MP3 scale: 320 kbps constant, or VBR V0.
        level, mode = 0.0, ("CONSTANT" if request.mp3_mode == "cbr320" else "VARIABLE")
    elif fmt is files.ExportFormat.OGG_VORBIS:
        level = 1.0 - request.vorbis_quality / 10.0  # libsndfile's Vorbis quality is 1 - level
    return files.ExportOptions(
        format=fmt,
        sample_rate=request.sample_rate,
        dither=request.dither,
        tags=files.ExportTags(title=project.meta.title),
        position_frame=position,
        compression_level=level,
        bitrate_mode=mode,
    )


def run_export(
    project: Project, request: ExportRequest, progress: ProgressFn, token: CancelToken
) -> ExportSummary:
    """Render and write what ``request`` asks for (runs on a worker thread).

    Raises:
        AudioFileError: nothing to export, or writing failed.
        Cancelled: the user cancelled (nothing half-written is left behind).
    """
    if project.frames == 0:
        raise AudioFileError(
            "The project is empty, so there is nothing to export; open audio first."
        )

    def on_progress(done: int, total: int) -> None:
        progress(0.1 + 0.9 * done / max(total, 1), "Writing")

    cancel = _cancel_check(token)
    what = request.what
    path = request.path
    progress(0.0, "Rendering")
    limited: list[str] = []
    if what is ExportWhat.STEMS:
        path.mkdir(parents=True, exist_ok=True)
        stems = {}
        for t in audible_tracks(project):
            name = t.name or t.id
            stems[name] = _limited(render_track(t, 0, project.frames), request, name, limited)
        results = files.export_stems(
            path,
            stems,
            SAMPLE_RATE,
            _options(request, 0, project),
            on_progress=on_progress,
            cancel=cancel,
        )
        notices = tuple(limited) + tuple(n for r in results for n in r.notices)
        return ExportSummary(tuple(r.path for r in results), notices)
    if what is ExportWhat.MIX:
        audio, position = render_mix(project), 0
    elif what is ExportWhat.SELECTION:
        if not request.ranges:
            raise AudioFileError("Nothing is selected; select the audio to export first.")
        a = request.ranges[0][0]
        b = min(request.ranges[-1][1], project.frames)
        audio, position = render_mix(project, a, b), a
    else:
        region = project.region(request.region_id)
        handles = round(request.handles_ms / 1000.0 * SAMPLE_RATE)
        lo = max(region.start - handles, 0)
        hi = min(region.end + handles, project.frames)
        audio, position = render_mix(project, lo, hi), lo
    if audio.shape[-1] == 0:
        raise AudioFileError("The chosen span is empty, so there is nothing to export.")
    audio = _limited(audio, request, path.name, limited)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = files.export_audio(
        path,
        audio,
        SAMPLE_RATE,
        _options(request, position, project),
        on_progress=on_progress,
        cancel=cancel,
    )
    return ExportSummary((result.path,), tuple(limited) + result.notices)


def _limited(audio: Any, request: ExportRequest, name: str, notices: list[str]) -> Any:
    """``audio`` with its true peaks limited as ``request`` asks (a notice when it changed)."""
    ceiling = request.true_peak_limit_dbtp
    if ceiling is None:
        return audio
    before = true_peak_dbtp(audio)
    if before <= ceiling:
        return audio
    notices.append(
        f"{name}: true peaks limited from {before:+.1f} to {ceiling:+.1f} dBTP (nothing clips)."
    )
    return limit_true_peak(audio, SAMPLE_RATE, ceiling_dbtp=ceiling)


def export_region_for_drag(project: Project, region_id: str, folder: Path | None = None) -> Path:
    """Write a region as a 24-bit WAV in a temporary folder, for dragging it to another program.

    Runs on the calling thread (a drag needs the file before it starts; regions are short).

    Raises:
        AudioFileError: the region is empty or the file cannot be written.
        EditError: the region does not exist.
    """
    region = project.region(region_id)
    audio = render_mix(project, region.start, min(region.end, project.frames))
    if audio.shape[-1] == 0:
        raise AudioFileError("The region lies after the end of the song; there is nothing to drag.")
    base = folder or Path(tempfile.gettempdir()) / "sa3-studio-drag"
    base.mkdir(parents=True, exist_ok=True)
    title = project.meta.title or "region"
    name = region.name or region.prompt[:40] or f"{region.start}"
    safe = "".join(c if c.isalnum() or c in " -_." else "_" for c in f"{title} - {name}").strip()
    target = base / f"{safe or 'region'}.wav"
    opts = files.ExportOptions(
        format=files.ExportFormat.WAV_24,
        position_frame=region.start,
        tags=files.ExportTags(title=name, prompt=region.prompt),
        measure_loudness=False,
    )
    files.export_audio(target, audio, SAMPLE_RATE, opts)
    return target
