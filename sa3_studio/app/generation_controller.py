"""The generation workflow on the GUI thread: Generate, pending takes, audition, accept.

:class:`GenerationController` joins the pieces: the Generate panel's settings and the session's
selected regions become a plan (:mod:`sa3_studio.app.generation`), the plan goes to the model
thread through the :class:`~sa3_studio.app.engine_client.EngineClient`, and the takes that come
back are kept in the document with ``DocumentController.amend_all`` (so no undo ever loses a
generation). A take is *pending* until accepted: it is drawn as an overlay on its region,
auditioned in place through the :class:`~sa3_studio.app.transport.Transport` (pre-roll, take,
post-roll, with an A/B switch to the original), and enters the song only through
``DocumentController.accept_take``, one undoable step.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from sa3_studio.app.document_controller import DocumentController
from sa3_studio.app.engine_client import EngineClient
from sa3_studio.app.engine_worker import LoadedModel
from sa3_studio.app.generation import (
    DEFAULT_CROSSFADE_S,
    GenerateOptions,
    GenerationOutcome,
    GenerationPlan,
    GenerationTask,
    Mode,
    ModelChoice,
    options_from_take,
    plan_generation,
    prepare_extend,
    prepare_new,
    random_seed,
    seam_is_bad,
    takes_from_outcome,
)
from sa3_studio.app.levels import TruePeakMemo
from sa3_studio.app.session import Session
from sa3_studio.app.take_level import (
    CLIP_DBTP,
    LevelAnswer,
    LeveledTake,
    OverPeak,
    level_take,
)
from sa3_studio.app.transport import Transport
from sa3_studio.app.waveform_source import PyramidCache
from sa3_studio.document.audio_data import AudioData, FloatArray
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.history import project_buffers
from sa3_studio.document.project import Project
from sa3_studio.document.region_edits import add_take, delete_take
from sa3_studio.document.take import Take
from sa3_studio.document.timefmt import format_range, format_time_compact
from sa3_studio.errors import EditError, Sa3Error

log = logging.getLogger(__name__)

DEFAULT_PRE_ROLL_S = 2.0
"""Seconds of song heard before a take when auditioning it."""

DEFAULT_POST_ROLL_S = 1.0
"""Seconds of song heard after it."""


class TakePeaks:
    """A take's audio as a waveform peak source (frame 0 is the take's first frame)."""

    def __init__(self, audio: AudioData, cache: PyramidCache) -> None:
        self._audio = audio
        self._pyramid = cache.get(audio)

    @property
    def channels(self) -> int:
        """Number of channels."""
        return self._audio.channels

    @property
    def frames(self) -> int:
        """Length of the take."""
        return self._audio.frames

    @property
    def sample_rate(self) -> int:
        """The project rate."""
        return SAMPLE_RATE

    def envelope(self, start: int, end: int, n: int) -> tuple[FloatArray, FloatArray]:
        """Min and max of ``n`` columns of ``[start, end)``; silence (0) past the take."""
        if n < 1 or end <= start:
            zero = np.zeros((self.channels, max(n, 0)), dtype=np.float32)
            return zero, zero.copy()
        mins, maxs = self._pyramid.query(start, end, n)
        return np.nan_to_num(mins, nan=0.0), np.nan_to_num(maxs, nan=0.0)

    def samples(self, start: int, end: int) -> FloatArray:
        """Samples of ``[start, end)`` (zeros past the take)."""
        out = np.zeros((self.channels, max(end - start, 0)), dtype=np.float32)
        lo, hi = max(start, 0), min(end, self.frames)
        if hi > lo:
            out[:, lo - start : hi - start] = self._audio.samples[:, lo:hi]
        return out


@dataclass(frozen=True, slots=True)
class PendingOverlay:
    """A pending take to draw over its region (the UI turns it into a timeline overlay).

    Attributes:
        start: first frame the take covers.
        end: frame after it.
        label: badge text ("Take 3 · seed 1234").
        source: the take's peaks.
        active: the take being auditioned.
        key: the take's id.
        bad_seam: its splice scored as an audible seam.
    """

    start: int
    end: int
    label: str
    source: TakePeaks
    active: bool
    key: str
    bad_seam: bool = False


@dataclass(frozen=True, slots=True)
class _Submitted:
    plan: GenerationPlan
    epoch: int


class GenerationController(QObject):
    """Plans, submits and collects generations; auditions, accepts and discards takes.

    Args:
        document: the document controller (every change goes through it).
        session: view state (selected regions, time selection, cursor).
        engine: the model thread's client.
        transport: playback (``None`` where no audition is possible, e.g. some tests).
        parent: Qt parent.

    Signals:
        overlays_changed(): :meth:`overlays` changed.
        current_take_changed(region_id, take_id): the take chosen for a region changed.
        takes_added(job_id, take_ids): a generation finished and its takes were kept.
        audition_changed(take_id): the take being auditioned ("" when none).
        ab_changed(hearing_take): the A/B switch moved (True: the take is heard).
        pending_changed(): :meth:`pending_regions` changed (a job was queued or ended).
        model_changed(): the chosen model, or what is known about it, changed.
        error(title, message): something the user must read (a dialog).
        status(message): a passing note for the status bar.
        over_peak_changed(choice): the remembered choice for takes over 0 dBTP changed.
    """

    overlays_changed = Signal()
    current_take_changed = Signal(str, str)
    takes_added = Signal(int, list)
    audition_changed = Signal(str)
    ab_changed = Signal(bool)
    pending_changed = Signal()
    model_changed = Signal()
    error = Signal(str, str)
    status = Signal(str)
    over_peak_changed = Signal(str)

    def __init__(
        self,
        document: DocumentController,
        session: Session,
        engine: EngineClient,
        transport: Transport | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._session = session
        self._engine = engine
        self._transport = transport
        self._model: ModelChoice | None = None
        self._current: dict[str, str] = {}
        self._auditioning = ""
        self._submitted: dict[int, _Submitted] = {}
        self._epoch = 0
        self._peaks_cache = PyramidCache()
        self._peaks: dict[str, TakePeaks] = {}
        self._project = document.project
        self.crossfade_s = DEFAULT_CROSSFADE_S
        self.pre_roll_s = DEFAULT_PRE_ROLL_S
        self.post_roll_s = DEFAULT_POST_ROLL_S
        self.last_options = GenerateOptions()
        self.over_peak = OverPeak.ASK
        """What accept does with a take over 0 dBTP (the remembered choice)."""
        self.ask_over_peak: Callable[[int, float], LevelAnswer | None] | None = None
        """Asks about a take over 0 dBTP: ``(take number, true peak)``; ``None``: cancel."""
        self.true_peaks = TruePeakMemo(parent=self)
        """True peaks of takes (shared with the Takes panel)."""
        document.project_changed.connect(self._on_project_changed)
        engine.job_finished.connect(self._on_job_finished)
        engine.job_failed.connect(self._on_job_failed)
        engine.job_cancelled.connect(self._on_job_cancelled)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.load_failed.connect(self._on_load_failed)
        if transport is not None:
            transport.state_changed.connect(self._on_transport_state)
            transport.source_changed.connect(self._on_source_changed)

    # -- model ---------------------------------------------------------------------------------

    @property
    def engine(self) -> EngineClient:
        """The model thread's client."""
        return self._engine

    @property
    def document(self) -> DocumentController:
        """The document controller."""
        return self._doc

    @property
    def session(self) -> Session:
        """The view state."""
        return self._session

    @property
    def model(self) -> ModelChoice | None:
        """The chosen model."""
        return self._model

    def set_model(self, model: ModelChoice | None, *, load: bool = True) -> None:
        """Choose the model to generate with (and start loading it, unless told not to)."""
        if model == self._model:
            return
        self._model = model
        self.model_changed.emit()
        if model is not None and load:
            loaded = self._engine.loaded_model
            if loaded is None or loaded.path != model.path:
                self._engine.load_model(model.path, model.name)

    def set_crossfade_ms(self, ms: float) -> None:
        """Crossfade at each seam of an accepted take (from the preferences)."""
        self.crossfade_s = max(0.0, float(ms)) / 1000.0

    @Slot(object)
    def _on_model_loaded(self, loaded: LoadedModel) -> None:
        model = self._model
        if model is not None and loaded.path == model.path:
            # What the loaded pipeline says wins over what the folder's config suggested.
            self._model = dataclasses.replace(
                model,
                sample_rate=loaded.sample_rate,
                max_seconds=loaded.max_seconds,
                is_base=loaded.is_base,
            )
        self.status.emit(f"{loaded.name} is ready on {loaded.device} ({loaded.load_s:.1f} s).")
        self.model_changed.emit()

    @Slot(str, str)
    def _on_load_failed(self, title: str, message: str) -> None:
        self.model_changed.emit()
        self.error.emit(title, message)

    # -- generate ------------------------------------------------------------------------------

    def target_region_ids(self) -> list[str]:
        """The selected regions that still exist, in song order."""
        project = self._doc.project
        existing = {r.id: r for r in project.regions}
        chosen = [existing[r] for r in self._session.selected_region_ids() if r in existing]
        return [r.id for r in sorted(chosen, key=lambda r: (r.start, r.track_id))]

    def preview(self, options: GenerateOptions) -> tuple[list[str], str]:
        """What Generate would send now: (one line per window, or [] ; a problem, or "")."""
        model = self._model
        if model is None:
            return [], "Choose a model first."
        project = self._doc.project
        if project.frames == 0 and options.mode is not Mode.NEW:
            return [], "Open an audio file first."
        try:
            if options.mode in (Mode.REGENERATE, Mode.VARY):
                ids = self.target_region_ids()
                if not ids:
                    spans = self._session.selection()
                    if not spans:
                        return [], "Select a part of the waveform, or a region."
                    return [
                        f"{len(spans)} new region(s) from the selection "
                        f"({', '.join(format_range(a, b) for a, b in spans[:3])})"
                    ], ""
                plan = plan_generation(project, ids, options, model)
                return plan.describe(), ""
            if options.mode is Mode.EXTEND:
                seconds = max(options.extend_s, 0.0)
                where = "before the start" if options.extend_side == "before" else "after the end"
                span = format_time_compact(round(seconds * SAMPLE_RATE))
                return [f"Continue the song {span} {where}, with the song as context"], ""
            span = format_time_compact(round(max(options.new_s, 0.0) * SAMPLE_RATE))
            if options.new_place == "track":
                return [f"{span} of new audio on a new track, from the prompt alone"], ""
            at = format_time_compact(self._session.cursor)
            return [f"Insert {span} of new audio at {at}, with the song as context"], ""
        except Sa3Error as exc:
            return [], str(exc)

    def generate(self, options: GenerateOptions) -> int | None:
        """Plan and queue a generation for the panel's settings.

        Regenerate and Vary work on the selected regions; with none selected, each selected
        span first becomes a region (an undoable step). Extend and New first make room (an
        undoable step) and then regenerate the new region.

        Returns:
            The queued job's id, or ``None`` when nothing was queued (``error`` said why).
        """
        model = self._model
        if model is None:
            self.error.emit(
                "No model chosen",
                "Choose a model in the Generate panel first; if none is listed, open Get "
                "Models to download one.",
            )
            return None
        self.last_options = options
        text_only = False
        made_room = False
        try:
            if options.mode in (Mode.REGENERATE, Mode.VARY):
                ids = self.target_region_ids()
                if not ids:
                    ids = self._regions_from_selection(options)
                    if not ids:
                        return None
            elif options.mode is Mode.EXTEND:
                ids, made_room = self._make_room_extend(options)
            else:
                ids, text_only, made_room = self._make_room_new(options)
            if not ids:
                return None
            project = self._doc.project
            plan = plan_generation(project, ids, options, model, text_only=text_only)
        except Sa3Error as exc:
            if made_room:
                self._doc.undo()
            self.error.emit("Cannot generate", str(exc))
            return None
        self._session.set_selected_regions(ids)
        return self._submit(plan, project)

    def make_loop(self, options: GenerateOptions) -> int | None:
        """Queue making each selected region (or selected span) a seamless loop.

        The region is the loop: where its end meets its start is regenerated, with the loop
        around it as context, so that it repeats without a seam. Each take is the whole region
        (the rest of it bit for bit the original); it is accepted without crossfades, which
        would bring the seam back.

        Returns:
            The queued job's id, or ``None`` when nothing was queued (``error`` said why).
        """
        model = self._model
        if model is None:
            self.error.emit("No model chosen", "Choose a model in the Generate panel first.")
            return None
        options = dataclasses.replace(options, mode=Mode.REGENERATE)
        self.last_options = options
        try:
            ids = self.target_region_ids() or self._regions_from_selection(options)
            if not ids:
                return None
            project = self._doc.project
            plan = plan_generation(project, ids, options, model, loop=True)
        except Sa3Error as exc:
            self.error.emit("Cannot make a seamless loop", str(exc))
            return None
        self._session.set_selected_regions(ids)
        return self._submit(plan, project)

    def reroll(self, take_id: str) -> int | None:
        """Generate one more take for the same region with the same settings, a new seed."""
        model = self._model
        project = self._doc.project
        try:
            take = project.take(take_id)
            project.region(take.region_id)
        except EditError as exc:
            self.error.emit("Cannot re-roll", str(exc))
            return None
        if model is None:
            self.error.emit("No model chosen", "Choose a model in the Generate panel first.")
            return None
        options = dataclasses.replace(
            options_from_take(take, self.last_options),
            seed=random_seed(),
            takes=1,
            crossfade_s=self.crossfade_s,
        )
        text_only = take.provenance.text_only
        try:
            plan = plan_generation(
                project,
                [take.region_id],
                options,
                model,
                text_only=text_only,
                parent_take_id=take.id,
                loop=take.provenance.mode == "loop",
            )
        except Sa3Error as exc:
            self.error.emit("Cannot re-roll", str(exc))
            return None
        return self._submit(plan, project)

    def cancel(self, job_id: int) -> None:
        """Cancel a queued or running job."""
        self._engine.cancel(job_id)

    def pending_regions(self) -> dict[str, int]:
        """Regions with a generation queued or running, and that job's id."""
        out: dict[str, int] = {}
        for job_id, sub in self._submitted.items():
            for rid in sub.plan.region_ids:
                out.setdefault(rid, job_id)
        return out

    def document_replaced(self) -> None:
        """A different document was opened: supersede its generations (results are dropped)."""
        old = self._epoch
        self._epoch += 1
        self._engine.cancel_tagged(("document", old))
        self._submitted.clear()
        self.pending_changed.emit()
        self._current.clear()
        self._stop_audition()
        self.overlays_changed.emit()

    def _submit(self, plan: GenerationPlan, project: Project) -> int:
        model = plan.model
        task = GenerationTask(plan, project)
        tag = ("document", self._epoch)
        job_id = self._engine.submit(
            task, plan.label, model_path=model.path, model_name=model.name, tag=tag
        )
        self._submitted[job_id] = _Submitted(plan, self._epoch)
        self.pending_changed.emit()
        for line in plan.describe()[:1]:
            self.status.emit(f"Queued: {plan.label} ({line}).")
        return job_id

    def _regions_from_selection(self, options: GenerateOptions) -> list[str]:
        spans = self._session.selection()
        if not spans:
            self.error.emit(
                "Nothing selected",
                "Select the part of the waveform to regenerate (drag over it), or click a "
                "region's header, then press Generate.",
            )
            return []
        # On the lanes the selection covers (several tracks), else on the main track.
        tracks = self._session.selection_tracks() or None
        return self._doc.add_regions(spans, prompt=options.prompt.strip(), track_ids=tracks)

    def _make_room_extend(self, options: GenerateOptions) -> tuple[list[str], bool]:
        project = self._doc.project
        if not project.tracks:
            raise EditError("The project has no tracks; open an audio file first.")
        track_id = project.tracks[0].id
        made: list[str] = []
        side = options.extend_side
        seconds = options.extend_s

        def edit(p: Project) -> Project:
            made.clear()
            p, rid = prepare_extend(p, track_id, side, seconds, options.prompt.strip())
            made.append(rid)
            return p

        what = "Before" if side == "before" else "After"
        label = f"Extend {what} by {format_time_compact(round(seconds * SAMPLE_RATE))}"
        if not self._doc.apply(label, edit):
            return [], False
        return list(made), True

    def _make_room_new(self, options: GenerateOptions) -> tuple[list[str], bool, bool]:
        made: list[str] = []
        flags: list[bool] = []
        at = self._session.cursor

        def edit(p: Project) -> Project:
            made.clear()
            flags.clear()
            p, rid, text_only = prepare_new(
                p, options.new_place, at, options.new_s, options.prompt.strip()
            )
            made.append(rid)
            flags.append(text_only)
            return p

        where = "on a New Track" if options.new_place == "track" else "at the Cursor"
        if not self._doc.apply(f"New Audio {where}", edit):
            return [], False, False
        return list(made), flags[0], True

    # -- results -------------------------------------------------------------------------------

    @Slot(int, object)
    def _on_job_finished(self, job_id: int, outcome: object) -> None:
        sub = self._submitted.pop(job_id, None)
        if sub is None or not isinstance(outcome, GenerationOutcome):
            return
        self.pending_changed.emit()
        if sub.epoch != self._epoch:
            log.info("dropped the takes of job %d: their document was closed", job_id)
            return
        takes = takes_from_outcome(self._doc.project, outcome)
        for made, take in zip(outcome.takes, takes, strict=True):
            if made.true_peak_dbtp is not None:
                self.true_peaks.remember(take.audio, made.true_peak_dbtp)

        def keep(p: Project) -> Project:
            for t in takes:
                p = add_take(p, t, require_region=False)
            return p

        if not self._doc.amend_all(keep):
            return
        first: dict[str, str] = {}
        for t in takes:
            first.setdefault(t.region_id, t.id)
        for rid, tid in first.items():
            self._current[rid] = tid
            self.current_take_changed.emit(rid, tid)
        self.overlays_changed.emit()
        n = len(takes)
        self.status.emit(
            f"{n} new take{'s' if n != 1 else ''} ready ({outcome.elapsed_s:.1f} s); "
            "audition them in the Takes panel."
        )
        self.takes_added.emit(job_id, [t.id for t in takes])

    @Slot(int, str, str)
    def _on_job_failed(self, job_id: int, title: str, message: str) -> None:
        if self._submitted.pop(job_id, None) is not None:
            self.pending_changed.emit()
            self.error.emit(title, message)

    @Slot(int)
    def _on_job_cancelled(self, job_id: int) -> None:
        if self._submitted.pop(job_id, None) is not None:
            self.pending_changed.emit()
            self.status.emit("Generation cancelled.")

    # -- takes ---------------------------------------------------------------------------------

    def current_take(self, region_id: str) -> str | None:
        """The take chosen for a region in the Takes panel (its newest pending one otherwise)."""
        project = self._doc.project
        takes = project.takes_for(region_id)
        ids = {t.id for t in takes}
        chosen = self._current.get(region_id)
        if chosen in ids:
            return chosen
        try:
            region = project.region(region_id)
        except EditError:
            return None
        pending = [t for t in takes if t.id != region.accepted_take_id]
        if pending:
            return pending[-1].id
        return region.accepted_take_id

    def set_current_take(self, region_id: str, take_id: str) -> None:
        """Choose which take of a region is shown (and auditioned by Space)."""
        if self._current.get(region_id) == take_id:
            return
        self._current[region_id] = take_id
        self.current_take_changed.emit(region_id, take_id)
        self.overlays_changed.emit()

    def step_take(self, region_id: str, delta: int) -> str | None:
        """Move to the next (``delta`` 1) or previous (-1) take of a region; returns its id."""
        takes = self._doc.project.takes_for(region_id)
        if not takes:
            return None
        current = self.current_take(region_id)
        ids = [t.id for t in takes]
        index = ids.index(current) if current in ids else 0
        new = ids[(index + delta) % len(ids)]
        self.set_current_take(region_id, new)
        if self._auditioning and self._auditioning != new:
            self.audition(new)
        return new

    def is_pending(self, take: Take) -> bool:
        """True when ``take`` is not the one accepted into its region."""
        try:
            region = self._doc.project.region(take.region_id)
        except EditError:
            return True
        return region.accepted_take_id != take.id

    def accept(
        self, take_id: str, *, loudness_match: bool = False, over_peak: OverPeak | None = None
    ) -> bool:
        """Splice a take into its region (one undoable step, with crossfades).

        A take whose true peak is over 0 dBTP is never clipped silently: it is limited to
        -1 dBTP, gained down to -1 dBTP or kept, as ``over_peak`` says, else as
        :attr:`over_peak` says, asking :attr:`ask_over_peak` when that is ``ask`` (with no one
        to ask, the take is limited). The history label says which.

        Args:
            take_id: the take.
            loudness_match: apply the gain measured when the take was made, so it sits at the
                loudness of the song around it.
            over_peak: what to do when the take is over 0 dBTP (this time only).

        Returns:
            False when the take could not be accepted or the question was cancelled.
        """
        project = self._doc.project
        try:
            take = project.take(take_id)
        except EditError as exc:
            self.error.emit("Cannot accept the take", str(exc))
            return False
        gain = 0.0
        if loudness_match:
            loudness = take.provenance.loudness
            gain = 0.0 if loudness is None else loudness.gain_db
        level = self._level(take, gain, over_peak)
        if level is None:
            return False
        self._stop_audition()
        # A loop's take starts and ends with new audio that must meet itself: no crossfades.
        fade = 0.0 if take.provenance.mode == "loop" else self.crossfade_s
        ok = self._doc.accept_take(
            take.region_id,
            take_id,
            crossfade_s=fade,
            gain_db=level.gain_db,
            body=level.body,
            note=level.note,
        )
        if ok:
            self._current[take.region_id] = take_id
            note = f" with {gain:+.1f} dB to match the loudness" if gain else ""
            self.status.emit(f"Take {take.number} accepted{note}{level.note}.")
            self.overlays_changed.emit()
        return ok

    def set_over_peak(self, choice: OverPeak) -> None:
        """Remember what accept does with a take over 0 dBTP (``ask``: ask each time)."""
        if choice is not self.over_peak:
            self.over_peak = choice
            self.over_peak_changed.emit(str(choice))

    def _level(self, take: Take, gain_db: float, over_peak: OverPeak | None) -> LeveledTake | None:
        """What to splice for ``take`` (``None``: the user cancelled the question)."""
        peak = self.true_peaks(take.audio)
        choice = over_peak or self.over_peak
        if peak + gain_db > CLIP_DBTP and choice is OverPeak.ASK:
            answer = (
                LevelAnswer(OverPeak.LIMIT)
                if self.ask_over_peak is None
                else self.ask_over_peak(take.number, peak + gain_db)
            )
            if answer is None or answer.choice is OverPeak.ASK:
                return None
            choice = answer.choice
            if answer.remember:
                self.set_over_peak(choice)
        if choice is OverPeak.ASK:
            choice = OverPeak.KEEP  # under 0 dBTP: nothing to do
        return level_take(take.audio, choice, loudness_db=gain_db, peak_dbtp=peak)

    def discard(self, take_id: str) -> bool:
        """Delete a take (one undoable step)."""
        project = self._doc.project
        try:
            take = project.take(take_id)
        except EditError as exc:
            self.error.emit("Cannot discard the take", str(exc))
            return False
        if self._auditioning == take_id:
            self._stop_audition()
        ok = self._doc.apply(
            f"Discard Take {take.number}",
            lambda p: delete_take(p, take_id),
        )
        if ok and self._current.get(take.region_id) == take_id:
            del self._current[take.region_id]
        self.overlays_changed.emit()
        return ok

    # -- audition ------------------------------------------------------------------------------

    @property
    def auditioning(self) -> str:
        """The take being auditioned ("" when none)."""
        return self._auditioning

    def audition(self, take_id: str, *, loop: bool = False) -> bool:
        """Play a take in place: pre-roll of the song, the take, post-roll."""
        transport = self._transport
        if transport is None:
            self.error.emit(
                "Playback unavailable", "There is no audio output here, so takes cannot be played."
            )
            return False
        project = self._doc.project
        try:
            take = project.take(take_id)
            region = project.region(take.region_id)
        except EditError as exc:
            self.error.emit("Cannot play the take", str(exc))
            return False
        self._auditioning = take_id
        transport.audition_take(
            take.audio.samples,
            region.start,
            pre_roll_s=self.pre_roll_s,
            post_roll_s=self.post_roll_s,
            loop=loop,
        )
        if not transport.is_playing:
            self._auditioning = ""
            return False
        self.set_current_take(take.region_id, take_id)
        self.audition_changed.emit(take_id)
        self.overlays_changed.emit()
        return True

    def toggle_ab(self) -> bool:
        """Switch between the take (B) and the original (A) while playing; True = take."""
        transport = self._transport
        if transport is None or not self._auditioning:
            return False
        hear_take = not transport.take_audible()
        transport.set_take_audible(hear_take)
        return hear_take

    def hearing_take(self) -> bool:
        """True while the take (not the original) is what plays."""
        return (
            bool(self._auditioning)
            and self._transport is not None
            and (self._transport.take_audible())
        )

    def stop_audition(self) -> None:
        """Stop auditioning."""
        self._stop_audition()

    def _stop_audition(self) -> None:
        if not self._auditioning:
            return
        self._auditioning = ""
        if self._transport is not None:
            self._transport.stop()
            self._transport.clear_take()
        self.audition_changed.emit("")
        self.overlays_changed.emit()

    @Slot()
    def _on_source_changed(self) -> None:
        if self._transport is not None:
            self.ab_changed.emit(self._transport.take_audible())

    @Slot(str)
    def _on_transport_state(self, state: str) -> None:
        if self._auditioning and state != "playing" and state != "paused":
            self._auditioning = ""
            self.audition_changed.emit("")
            self.overlays_changed.emit()

    # -- overlays ------------------------------------------------------------------------------

    def overlays(self) -> list[PendingOverlay]:
        """One overlay per region that has a pending take: its chosen take."""
        project = self._doc.project
        out: list[PendingOverlay] = []
        for region in project.regions:
            tid = self.current_take(region.id)
            if tid is None or tid == region.accepted_take_id:
                continue
            take = project.take(tid)
            out.append(
                PendingOverlay(
                    start=region.start,
                    end=region.start + take.frames,
                    label=f"Take {take.number} · seed {take.seed}",
                    source=self._peaks_for(take.audio),
                    active=tid == self._auditioning,
                    key=tid,
                    bad_seam=seam_is_bad(take),
                )
            )
        return out

    def _peaks_for(self, audio: AudioData) -> TakePeaks:
        peaks = self._peaks.get(audio.content_id)
        if peaks is None:
            peaks = TakePeaks(audio, self._peaks_cache)
            self._peaks[audio.content_id] = peaks
        return peaks

    @Slot(object)
    def _on_project_changed(self, project: Project) -> None:
        previous = self._project
        self._project = project
        history = self._doc.history
        if (
            previous is not project
            and history.undo_steps == 0
            and history.redo_steps == 0
            and (
                previous.meta != project.meta
                or not (set(project_buffers(previous)) & set(project_buffers(project)))
            )
            and previous.frames > 0
        ):
            self.document_replaced()
        live = {t.audio.content_id for t in project.takes}
        self._peaks = {k: v for k, v in self._peaks.items() if k in live}
        take_ids = {t.id for t in project.takes}
        self._current = {r: t for r, t in self._current.items() if t in take_ids}
        if self._auditioning and self._auditioning not in take_ids:
            self._stop_audition()
        self.overlays_changed.emit()
