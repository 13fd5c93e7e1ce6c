"""The Takes panel: every take of the chosen regions, auditioned in place, accepted or discarded.

Regions are the top rows, their takes below them. Each take shows its seed, prompt, model, the
time it took, its seam score (bad seams flagged) and the gain a loudness match would apply. With
the list focused:

    Space           play the take in place (pre-roll, take, post-roll); again to stop
    A               switch between the original (A) and the take (B) while playing
    [ / ]           previous / next take of the region (Up and Down move too)
    Return          accept the take (an undoable splice with crossfades)
    Delete          discard the take (undoable)
    R               re-roll: one more take with the same settings and a new seed

Keys the window also uses (Space, Delete, Return) are claimed by the list while it has focus,
so they act on takes there and keep their usual meaning everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.generation import GenerateOptions, options_from_take, seam_score_of
from sa3_studio.app.generation_controller import GenerationController, PendingOverlay
from sa3_studio.app.levels import CLIP_DBTP, LIMIT_DBTP
from sa3_studio.document.region import Region
from sa3_studio.document.take import Take
from sa3_studio.document.timefmt import format_range
from sa3_studio.errors import EditError
from sa3_studio.ui.actions import shortcut_text
from sa3_studio.ui.timeline_items import TakeOverlay

log = logging.getLogger(__name__)

COLUMNS = ("Take", "Status", "Seed", "Prompt", "Model", "Time", "Seam", "Loudness", "Peak")
TAKE_ROLE = Qt.ItemDataRole.UserRole
REGION_ROLE = Qt.ItemDataRole.UserRole + 1

KEY_ACTIONS: dict[int, str] = {
    int(Qt.Key.Key_Space): "audition",
    int(Qt.Key.Key_A): "ab",
    int(Qt.Key.Key_Return): "accept",
    int(Qt.Key.Key_Enter): "accept",
    int(Qt.Key.Key_Delete): "discard",
    int(Qt.Key.Key_Backspace): "discard",
    int(Qt.Key.Key_R): "reroll",
    int(Qt.Key.Key_BracketLeft): "previous",
    int(Qt.Key.Key_BracketRight): "next",
}

BAD_SEAM = QColor("#f0736a")
ACCEPTED = QColor("#6cc57c")
AUDITION = QColor("#b894ff")

PANEL_STYLE = """
QLabel#takesTitle { font-weight: 600; }
QToolButton[takeAction="true"] { padding: 3px 8px; }
QToolButton#acceptTake {
    background: palette(highlight); color: palette(highlighted-text); border-radius: 3px;
    font-weight: 600;
}
QToolButton#acceptTake:disabled { background: palette(mid); }
QLabel#takesHint { color: palette(mid); }
"""


def overlay_label(p: PendingOverlay, *, hearing_take: bool = True) -> str:
    """What a pending take's badge says: which take, and whether it is what you hear.

    A pending take is not in the mix (the region plays its accepted audio) until it is
    accepted; while it plays in place the badge says whether the take (B) or the original (A)
    is heard.
    """
    if p.active:
        state = "▶ hearing B, the take" if hearing_take else "▶ hearing A, the original"
    else:
        state = "pending, not in the mix"
    return f"{p.label} · {state}" + ("  ⚠ seam" if p.bad_seam else "")


def timeline_overlays(
    pending: list[PendingOverlay],
    *,
    hearing_take: bool = True,
    track_of: Mapping[str, str] | None = None,
) -> list[TakeOverlay]:
    """The timeline's overlay items for the controller's pending takes.

    Args:
        pending: the controller's overlays.
        hearing_take: whether the take (not the original) is heard while auditioning.
        track_of: the track of each take by take id (its lane when tracks are lanes).
    """
    return [
        TakeOverlay(
            start=p.start,
            end=p.end,
            track_id=(track_of or {}).get(p.key, ""),
            label=overlay_label(p, hearing_take=hearing_take),
            source=p.source,
            active=p.active,
            key=p.key,
        )
        for p in pending
    ]


class TakesTree(QTreeWidget):
    """The list of regions and takes; claims the take keys while it has focus."""

    key_action = Signal(str)

    def event(self, e: QEvent) -> bool:
        # Window-wide shortcuts (Space = play, Delete = delete) would take these keys first;
        # accepting the override gives them to keyPressEvent while the list has focus.
        if e.type() == QEvent.Type.ShortcutOverride and isinstance(e, QKeyEvent):
            mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if e.key() in KEY_ACTIONS and mods == Qt.KeyboardModifier.NoModifier:
                e.accept()
                return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        mods = e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        action = KEY_ACTIONS.get(int(e.key()))
        if action is not None and mods == Qt.KeyboardModifier.NoModifier:
            self.key_action.emit(action)
            e.accept()
            return
        super().keyPressEvent(e)


class TakesPanel(QWidget):
    """Takes of the selected regions (of every region with takes when none is selected).

    Args:
        controller: the generation controller.
        parent: parent widget.

    Signals:
        copy_settings(options): "Copy settings" was pressed; the Generate panel shows them.
    """

    copy_settings = Signal(object)

    def __init__(self, controller: GenerationController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("takesPanel")
        self.setStyleSheet(PANEL_STYLE)
        self._controller = controller
        self._rebuilding = False
        self._region_for_prompt: str | None = None
        self._true_peak = controller.true_peaks

        self.title = QLabel("Takes")
        self.title.setObjectName("takesTitle")
        self.region_prompt = QLineEdit()
        self.region_prompt.setObjectName("regionPrompt")
        self.region_prompt.setPlaceholderText(
            "This region's own prompt (empty: the Generate panel's prompt)"
        )
        self.region_prompt.setEnabled(False)

        def button(name: str, text: str, tip: str, slot: object) -> QToolButton:
            b = QToolButton()
            b.setObjectName(name)
            b.setText(text)
            b.setToolTip(tip)
            b.setProperty("takeAction", True)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.clicked.connect(slot)
            return b

        self.play_button = button(
            "playTake", "▶ Play in place", "Play the take with pre-roll (Space)", self.audition
        )
        self.ab_button = button("abSwitch", "A | B", "", self.toggle_ab)
        self.ab_button.setCheckable(True)
        self._ab_keys = "A"
        self.prev_button = button("previousTake", "◀", "Previous take ([)", self.previous_take)
        self.next_button = button("nextTake", "▶", "Next take (])", self.next_take)
        self.accept_button = button(
            "acceptTake", "Accept", "Splice the take into the song (Return)", self.accept
        )
        self.match_loudness = QCheckBox("Match loudness")
        self.match_loudness.setObjectName("matchLoudness")
        self.match_loudness.setToolTip(
            "Apply the gain that brings the take to the loudness of the song around it"
        )
        self.discard_button = button(
            "discardTake", "Discard", "Delete the take (Delete)", self.discard
        )
        self.reroll_button = button(
            "rerollTake", "Re-roll", "One more take, same settings, new seed (R)", self.reroll
        )
        self.copy_button = button(
            "copySettings",
            "Copy settings",
            "Show this take's settings in the Generate panel",
            self.copy_to_panel,
        )

        self.tree = TakesTree()
        self.tree.setObjectName("takesTree")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for i in range(len(COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.hint = QLabel("Generate takes for a region; they appear here.")
        self.hint.setObjectName("takesHint")

        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.region_prompt, 1)
        bar = QHBoxLayout()
        bar.setSpacing(4)
        for w in (self.play_button, self.ab_button, self.prev_button, self.next_button):
            bar.addWidget(w)
        bar.addSpacing(12)
        bar.addWidget(self.accept_button)
        bar.addWidget(self.match_loudness)
        bar.addSpacing(12)
        for w in (self.discard_button, self.reroll_button, self.copy_button):
            bar.addWidget(w)
        bar.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 6)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addLayout(bar)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.hint)

        c = controller
        c.document.project_changed.connect(self.refresh)
        c.session.selected_regions_changed.connect(self.refresh)
        c.current_take_changed.connect(self._on_current_take_changed)
        c.audition_changed.connect(self._on_audition_changed)
        c.ab_changed.connect(self._on_ab_changed)
        c.pending_changed.connect(self.refresh)
        # Peaks measured in the background arrive one by one: one rebuild for a burst of them.
        self._peaks_arrived = QTimer(self)
        self._peaks_arrived.setSingleShot(True)
        self._peaks_arrived.setInterval(100)
        self._peaks_arrived.timeout.connect(self.refresh)
        c.true_peaks.measured.connect(self._peaks_arrived.start)
        self.tree.currentItemChanged.connect(self._on_item_changed)
        self.tree.key_action.connect(self._on_key)
        self.region_prompt.editingFinished.connect(self._commit_region_prompt)
        self.refresh()
        self._show_ab(False)

    # -- content -------------------------------------------------------------------------------

    def shown_regions(self) -> list[Region]:
        """The regions listed: the selected ones, else every region with takes or a job."""
        project = self._controller.document.project
        selected = set(self._controller.session.selected_region_ids())
        pending = self._controller.pending_regions()
        with_takes = {k.region_id for k in project.takes}
        if selected:
            wanted = selected | set(pending)
        else:
            wanted = with_takes | set(pending)
        regions = [r for r in project.regions if r.id in wanted]
        return sorted(regions, key=lambda r: (r.start, r.track_id))

    def refresh(self, *_: object) -> None:
        """Rebuild the list from the document (keeping the current row)."""
        keep = self.current_take_id()
        keep_region = self.current_region_id()
        c = self._controller
        project = c.document.project
        pending = c.pending_regions()
        self._rebuilding = True
        self.tree.clear()
        current_item: QTreeWidgetItem | None = None
        regions = self.shown_regions()
        for region in regions:
            takes = project.takes_for(region.id)
            label = region.name or "Region"
            title = f"{label}  {format_range(region.start, region.end)}"
            if region.prompt:
                title += f"  ·  “{region.prompt}”"
            count = f"{len(takes)} take{'s' if len(takes) != 1 else ''}"
            if region.id in pending:
                count += " · generating…"
            top = QTreeWidgetItem([f"{title}   —   {count}"])
            top.setData(0, REGION_ROLE, region.id)
            font = QFont(top.font(0))
            font.setBold(True)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)  # the region's line runs across the columns
            chosen = c.current_take(region.id)
            for take in takes:
                item = self._take_item(take, region)
                top.addChild(item)
                if take.id == keep or (keep is None and take.id == chosen):
                    current_item = current_item or item
            if current_item is None and region.id == keep_region:
                current_item = top
            top.setExpanded(True)
        first = self.tree.topLevelItem(0)
        if current_item is None and first is not None:
            current_item = first.child(0) if first.childCount() else first
        if current_item is not None:
            self.tree.setCurrentItem(current_item)
        self.tree.setColumnWidth(0, max(self.tree.columnWidth(0), 90))
        self._rebuilding = False
        self.hint.setVisible(not regions)
        self._sync_header()
        self._update_buttons()

    def _take_item(self, take: Take, region: Region) -> QTreeWidgetItem:
        c = self._controller
        made = take.provenance
        accepted = region.accepted_take_id == take.id
        status = "✓ accepted" if accepted else "pending"
        if c.auditioning == take.id:
            status = "▶ playing"
        prompt = made.user_prompt or take.prompt
        seam = seam_score_of(take)
        bad = made.seam is not None and made.seam.bad
        seam_text = "—" if seam is None else (f"⚠ {seam:.1f}" if bad else f"{seam:.1f}")
        gain_text = "—" if made.loudness is None else f"{made.loudness.gain_db:+.1f} dB"
        peak = self._true_peak.soon(take.audio)  # None: being measured off the GUI thread
        clips = peak is not None and peak > CLIP_DBTP
        if peak is None:
            peak_text = "…"
        else:
            peak_text = f"{'⚠ ' if clips else ''}{peak:+.1f} dBTP" if peak > -199 else "silent"
        length_ok = take.frames == region.length
        model_text = take.model_name or "—"
        if made.loras:
            model_text += f" + {made.loras_text}"
        item = QTreeWidgetItem(
            [
                f"Take {take.number}",
                status if length_ok else "length changed",
                str(take.seed),
                prompt,
                model_text,
                f"{take.elapsed_s:.1f} s",
                seam_text,
                gain_text,
                peak_text,
            ]
        )
        item.setData(0, TAKE_ROLE, take.id)
        item.setData(0, REGION_ROLE, region.id)
        item.setToolTip(
            3, take.prompt + (f"\nNegative: {take.negative_prompt}" if take.negative_prompt else "")
        )
        seam_in = None if made.seam is None else made.seam.seam_in
        seam_out = None if made.seam is None else made.seam.seam_out
        item.setToolTip(
            6,
            "Spectral jump at the seams (start "
            f"{seam_in if seam_in is not None else '—'}, end "
            f"{seam_out if seam_out is not None else '—'}); about 1 is seamless, above 4 is "
            "flagged: listen to the seam before accepting.",
        )
        if made.loudness is not None:
            item.setToolTip(7, made.loudness.note)
        if peak is None:
            item.setToolTip(8, "Measuring the true peak…")
        else:
            item.setToolTip(
                8,
                f"True peak {peak:+.1f} dBTP (4x oversampled, as loudness meters measure it). "
                + (
                    "Over 0 dBTP the take clips on playback and after lossy encoding: lower its "
                    "gain once accepted."
                    if clips
                    else f"Above {LIMIT_DBTP:.0f} dBTP a lossy export may clip."
                    if peak > LIMIT_DBTP
                    else "No clipping."
                ),
            )
        if clips:
            item.setForeground(8, QBrush(BAD_SEAM))
        item.setToolTip(
            2, "Re-generating with this seed and the same settings gives this take again."
        )
        if bad:
            item.setForeground(6, QBrush(BAD_SEAM))
        if accepted:
            item.setForeground(1, QBrush(ACCEPTED))
            font = QFont(item.font(0))
            font.setBold(True)
            item.setFont(0, font)
        if c.auditioning == take.id:
            item.setForeground(1, QBrush(AUDITION))
        return item

    def _sync_header(self) -> None:
        rid = self.current_region_id()
        project = self._controller.document.project
        region = None
        if rid is not None:
            try:
                region = project.region(rid)
            except EditError:
                region = None
        self._region_for_prompt = region.id if region is not None else None
        self.region_prompt.setEnabled(region is not None)
        if region is None:
            self.title.setText("Takes")
            self.region_prompt.setText("")
            return
        self.title.setText(f"Takes · {format_range(region.start, region.end)}")
        if not self.region_prompt.hasFocus():
            self.region_prompt.setText(region.prompt)

    # -- current row ---------------------------------------------------------------------------

    def current_take_id(self) -> str | None:
        """The take of the current row (the region's chosen take on a region row)."""
        item = self.tree.currentItem()
        if item is None:
            return None
        tid = item.data(0, TAKE_ROLE)
        if tid:
            return str(tid)
        rid = item.data(0, REGION_ROLE)
        return self._controller.current_take(str(rid)) if rid else None

    def current_region_id(self) -> str | None:
        """The region of the current row."""
        item = self.tree.currentItem()
        if item is None:
            return None
        rid = item.data(0, REGION_ROLE)
        return str(rid) if rid else None

    def _take_items(self) -> list[QTreeWidgetItem]:
        """Every take row, top to bottom."""
        out: list[QTreeWidgetItem] = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is None:
                continue
            for j in range(top.childCount()):
                item = top.child(j)
                if item is not None:
                    out.append(item)
        return out

    def select_take(self, take_id: str) -> bool:
        """Make a take the current row."""
        for item in self._take_items():
            if item.data(0, TAKE_ROLE) == take_id:
                self.tree.setCurrentItem(item)
                return True
        return False

    def take_ids(self) -> list[str]:
        """Every take listed, top to bottom."""
        return [str(item.data(0, TAKE_ROLE)) for item in self._take_items()]

    def _on_item_changed(self, current: QTreeWidgetItem | None, _previous: object) -> None:
        if self._rebuilding or current is None:
            return
        tid = current.data(0, TAKE_ROLE)
        rid = current.data(0, REGION_ROLE)
        if tid and rid:
            self._controller.set_current_take(str(rid), str(tid))
        self._sync_header()
        self._update_buttons()

    def _on_current_take_changed(self, region_id: str, take_id: str) -> None:
        if self.current_take_id() != take_id and not self.select_take(take_id):
            self.refresh()

    def _update_buttons(self) -> None:
        tid = self.current_take_id()
        has = tid is not None
        pending = False
        if has:
            try:
                take = self._controller.document.project.take(str(tid))
                pending = self._controller.is_pending(take)
            except EditError:
                has = False
        for b in (
            self.play_button,
            self.prev_button,
            self.next_button,
            self.discard_button,
            self.reroll_button,
            self.copy_button,
        ):
            b.setEnabled(has)
        self.accept_button.setEnabled(has and pending)
        self.ab_button.setEnabled(bool(self._controller.auditioning))
        playing = bool(self._controller.auditioning)
        self.play_button.setText("■ Stop" if playing else "▶ Play in place")

    # -- actions -------------------------------------------------------------------------------

    def _on_key(self, action: str) -> None:
        {
            "audition": self.audition,
            "ab": self.toggle_ab,
            "accept": self.accept,
            "discard": self.discard,
            "reroll": self.reroll,
            "previous": self.previous_take,
            "next": self.next_take,
        }[action]()

    def audition(self) -> None:
        """Play the current take in place; stop when it is already playing."""
        c = self._controller
        if c.auditioning:
            c.stop_audition()
            return
        tid = self.current_take_id()
        if tid is not None:
            c.audition(tid)

    def toggle_ab(self) -> None:
        """Switch between the original and the take while playing."""
        self._controller.toggle_ab()

    def previous_take(self) -> None:
        """Step to the previous take of the current region."""
        rid = self.current_region_id()
        if rid is not None:
            tid = self._controller.step_take(rid, -1)
            if tid is not None:
                self.select_take(tid)

    def next_take(self) -> None:
        """Step to the next take of the current region."""
        rid = self.current_region_id()
        if rid is not None:
            tid = self._controller.step_take(rid, 1)
            if tid is not None:
                self.select_take(tid)

    def accept(self) -> None:
        """Accept the current take (with the loudness match when ticked)."""
        tid = self.current_take_id()
        if tid is not None:
            self._controller.accept(tid, loudness_match=self.match_loudness.isChecked())

    def discard(self) -> None:
        """Discard the current take."""
        tid = self.current_take_id()
        if tid is not None:
            self._controller.discard(tid)

    def reroll(self) -> None:
        """One more take of the current region with the same settings and a new seed."""
        tid = self.current_take_id()
        if tid is not None:
            self._controller.reroll(tid)

    def copy_to_panel(self) -> GenerateOptions | None:
        """Send the current take's settings to the Generate panel."""
        tid = self.current_take_id()
        if tid is None:
            return None
        take = self._controller.document.project.take(tid)
        options = options_from_take(take, self._controller.last_options)
        self.copy_settings.emit(options)
        return options

    def _commit_region_prompt(self) -> None:
        rid = self._region_for_prompt
        if rid is None:
            return
        text = self.region_prompt.text().strip()
        try:
            region = self._controller.document.project.region(rid)
        except EditError:
            return
        if text != region.prompt:
            self._controller.document.update_region(rid, prompt=text)

    def _on_audition_changed(self, take_id: str) -> None:
        self.refresh()
        if not take_id:
            self.ab_button.setChecked(False)
        self._show_ab(self.ab_button.isChecked())

    def set_ab_keys(self, action: QAction | None) -> None:
        """Name the window's A/B command's key in the A/B button's tooltip."""
        self._ab_keys = shortcut_text(action) if action is not None else "A"
        self._show_ab(self.ab_button.isChecked())

    def _show_ab(self, hearing_take: bool) -> None:
        playing = bool(self._controller.auditioning)
        if not playing:
            self.ab_button.setText("A | B")
            tip = "While a take plays in place: hear the original (A) or the take (B)"
        elif hearing_take:
            self.ab_button.setText("Hearing B: take")
            tip = "You hear the take (B); switch to the original (A)"
        else:
            self.ab_button.setText("Hearing A: original")
            tip = "You hear the original (A); switch to the take (B)"
        self.ab_button.setToolTip(f"{tip} ({self._ab_keys})" if self._ab_keys else tip)

    def hearing_text(self) -> str:
        """What the A/B button says is heard ("" when nothing plays in place)."""
        return self.ab_button.text() if self._controller.auditioning else ""

    def _on_ab_changed(self, hearing_take: bool) -> None:
        self.ab_button.setChecked(hearing_take)
        self._show_ab(hearing_take)
