"""The Generate panel: model, mode, prompt, sampling settings, the window sent, and the queue.

The panel only gathers settings into a :class:`~sa3_studio.app.generation.GenerateOptions` and
hands them to the :class:`~sa3_studio.app.generation_controller.GenerationController`; it shows
what the controller and the model thread report back (model loading, which context window is
sent, the queue with per-step progress, ETA and Cancel). The prompt's tag prefix for the model
is added automatically and shown; tempo and key are appended when set; the seed is always a
number (random for each press of Generate unless locked).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.engine_client import (
    EngineClient,
    EngineJob,
    JobKind,
    JobState,
    ModelCatalog,
)
from sa3_studio.app.engine_worker import LoadedModel
from sa3_studio.app.generation import (
    KEYS,
    PROMPT_PREFIXES,
    SEED_LIMIT,
    GenerateOptions,
    Mode,
    ModelChoice,
    compose_prompt,
    default_prefix,
    random_seed,
)
from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.settings import AppSettings
from sa3_studio.engine.api import (
    BASE_DEFAULT_CFG,
    BASE_DEFAULT_STEPS,
    DEFAULT_STEPS,
    ModelInfo,
)
from sa3_studio.ui.focus import wheel_only_when_focused
from sa3_studio.ui.generation_actions import bind_generation_actions
from sa3_studio.ui.generation_choices import remember_choices
from sa3_studio.ui.models_dialog import ModelsDialog
from sa3_studio.ui.over_peak_dialog import install_over_peak
from sa3_studio.ui.takes_panel import TakesPanel, timeline_overlays
from sa3_studio.ui.timeline import TimelineWidget

log = logging.getLogger(__name__)

BASE_SAMPLERS = (("Euler", "euler"), ("DPM-Solver++", "dpmpp"), ("RK4", "rk4"))
"""The samplers offered for -base models (post-trained models always use ping-pong)."""

CONTEXT_CHOICES_S = (10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 380.0)
"""Context lengths offered besides "as long as the model allows"."""

MODE_TEXT = {
    Mode.REGENERATE: ("Regenerate", "Regenerate the selected regions in place"),
    Mode.EXTEND: ("Extend", "Continue the song before its start or after its end"),
    Mode.VARY: ("Vary", "Make variations of the selected regions (audio-to-audio)"),
    Mode.NEW: ("New", "New audio from the prompt, on a new track or at the cursor"),
}

PANEL_STYLE = """
QWidget#generatePanel QLabel[section="true"] {
    font-weight: 600; font-size: 8pt; letter-spacing: 1px; color: palette(mid);
    padding-top: 6px;
}
QToolButton[modeButton="true"] {
    padding: 5px 4px; border: 1px solid palette(mid); background: palette(button);
}
QToolButton[modeButton="true"]:checked {
    background: palette(highlight); color: palette(highlighted-text);
    border-color: palette(highlight);
}
QPushButton#generateButton {
    background: palette(highlight); color: palette(highlighted-text); font-weight: 600;
    padding: 8px 10px; border-radius: 4px; border: none; font-size: 10.5pt;
}
QPushButton#generateButton:disabled { background: palette(mid); }
QLabel#prefixChip {
    border: 1px solid palette(highlight); border-radius: 3px; padding: 1px 6px;
    color: palette(highlight);
}
QLabel#fullPrompt, QLabel#modelStatus, QLabel#windowInfo, QLabel[hint="true"] {
    color: palette(mid);
}
QLabel#windowProblem { color: #e0a33a; }
QFrame#jobRow { border: 1px solid palette(mid); border-radius: 4px; }
QFrame#generateFooter { border-top: 1px solid palette(mid); }
"""


def _section(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setProperty("section", True)
    return label


def _seconds(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


class JobRow(QFrame):
    """One job of the queue: label, progress bar, ETA and a cancel button."""

    cancel_requested = Signal(int)

    def __init__(self, job: EngineJob, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.job_id = job.id
        self.title = QLabel(job.label)
        self.title.setObjectName("jobTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.state = QLabel("")
        self.state.setObjectName("jobState")
        self.state.setProperty("hint", True)
        self.bar = QProgressBar()
        self.bar.setObjectName("jobBar")
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.cancel = QToolButton()
        self.cancel.setObjectName("jobCancel")
        self.cancel.setText("✕")
        self.cancel.setToolTip("Cancel this job")
        self.cancel.setAutoRaise(True)
        self.cancel.clicked.connect(lambda: self.cancel_requested.emit(self.job_id))
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.setSpacing(8)
        bottom.addWidget(self.bar, 1)
        bottom.addWidget(self.state)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 3, 5)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addLayout(bottom)
        self.update_from(job)

    def update_from(self, job: EngineJob) -> None:
        """Show the job's state, progress and ETA."""
        if job.state is JobState.QUEUED:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.state.setText("queued")
        elif job.state is JobState.CANCELLING:
            self.state.setText("cancelling…")
            self.cancel.setEnabled(False)
        elif job.kind is JobKind.LOAD or job.total == 0:
            self.bar.setRange(0, 0)  # busy: loading, or before the first step
            self.state.setText("loading…" if job.kind is JobKind.LOAD else "preparing…")
        else:
            self.set_progress(job.done, job.total, job.eta_s)

    def set_progress(self, done: int, total: int, eta_s: float | None) -> None:
        """Steps done of total, and the time left."""
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        left = f" · {_seconds(eta_s)} left" if eta_s is not None and eta_s >= 0 else ""
        self.state.setText(f"step {done}/{total}{left}")


class LoraRow(QWidget):
    """One applied LoRA: its name (full path in the tooltip), strength and a remove button."""

    removed = Signal(object)

    def __init__(self, path: str, strength: float = 1.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loraRow")
        self.path = path
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.name = QLabel(Path(path).stem)
        self.name.setObjectName("loraName")
        self.name.setToolTip(path)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.strength = QDoubleSpinBox()
        self.strength.setObjectName("loraStrength")
        self.strength.setRange(-2.0, 2.0)
        self.strength.setSingleStep(0.05)
        self.strength.setDecimals(2)
        self.strength.setValue(strength)
        self.strength.setToolTip("Strength: 0 = off, 1 = as trained")
        self.remove = QToolButton()
        self.remove.setObjectName("loraRemove")
        self.remove.setText("✕")
        self.remove.setToolTip("Remove this LoRA")
        self.remove.clicked.connect(lambda: self.removed.emit(self))
        lay.addWidget(self.name, 1)
        lay.addWidget(self.strength)
        lay.addWidget(self.remove)


class GeneratePanel(QWidget):
    """Settings of the next generation, the model, and the job queue.

    Args:
        controller: the generation controller.
        catalog: where models are found and how they are downloaded.
        models_folder: the models folder from the settings (for Get Models).
        rng: the random source of new seeds (tests pass a seeded one).
        parent: parent widget.

    Signals:
        get_models_requested(): the user pressed Get Models (when no opener was given).
    """

    get_models_requested = Signal()
    loras_changed = Signal()

    def __init__(
        self,
        controller: GenerationController,
        catalog: ModelCatalog,
        *,
        models_folder: str = "",
        rng: random.Random | None = None,
        open_models_dialog: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("generatePanel")
        self.setStyleSheet(PANEL_STYLE)
        self._controller = controller
        self._engine = controller.engine
        self._catalog = catalog
        self._models_folder = models_folder
        self._rng = rng or random.SystemRandom()
        self._open_models = open_models_dialog
        self._models: list[ModelInfo] = []
        self._rows: dict[int, JobRow] = {}
        self._last_kind_is_base: bool | None = None

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(30)
        self._preview_timer.timeout.connect(self.update_preview)

        content = QWidget()
        content.setObjectName("generateContent")
        lay = QVBoxLayout(content)
        lay.setContentsMargins(10, 6, 10, 10)
        lay.setSpacing(6)
        self._build_model(lay)
        self._build_mode(lay)
        self._build_prompt(lay)
        self._build_sampling(lay)
        self._build_loras(lay)
        self._build_context(lay)
        lay.addStretch(1)

        # The window sent, Generate and the queue stay in view below the settings.
        footer = QFrame()
        footer.setObjectName("generateFooter")
        foot = QVBoxLayout(footer)
        foot.setContentsMargins(10, 6, 10, 8)
        foot.setSpacing(5)
        foot.addWidget(self.window_info)
        foot.addWidget(self.window_problem)
        self._build_generate(foot)
        self._build_queue(foot)

        scroll = QScrollArea()
        scroll.setObjectName("generateScroll")
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(scroll, 1)
        outer.addWidget(footer)
        self.setMinimumWidth(300)

        self._connect()
        self.refresh_models()
        self.seed_spin.setValue(random_seed(self._rng))
        self._update_model_widgets()
        self._rebuild_queue()
        self._grid_bpm = 0.0
        self._sync_tempo()
        self.update_preview()
        wheel_only_when_focused(self)

    @property
    def engine(self) -> EngineClient:
        """The model thread's client the panel queues on."""
        return self._engine

    def _sync_tempo(self, *_: object) -> None:
        # The song's tempo (View > Set Tempo) fills the Tempo field unless the user typed
        # another one there.
        grid = self._controller.document.project.meta.grid
        bpm = float(grid.bpm) if grid is not None else 0.0
        if bpm != self._grid_bpm:
            if self.tempo_spin.value() in (0.0, self._grid_bpm):
                self.tempo_spin.setValue(bpm)
            self._grid_bpm = bpm

    def use_window_shortcut(self) -> None:
        """The window's Generate command (Ctrl+Return) replaces the prompt's own shortcut."""
        self._shortcut.setEnabled(False)

    # -- building ------------------------------------------------------------------------------

    def _build_model(self, lay: QVBoxLayout) -> None:
        lay.addWidget(_section("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setMinimumContentsLength(12)
        self.refresh_button = QToolButton()
        self.refresh_button.setObjectName("refreshModels")
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Look for models on disk again")
        self.get_models_button = QPushButton("Get Models…")
        self.get_models_button.setObjectName("getModels")
        self.get_models_button.setToolTip("What to download, and a download with progress")
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.get_models_button)
        lay.addLayout(row)
        self.model_status = QLabel("")
        self.model_status.setObjectName("modelStatus")
        self.model_status.setWordWrap(True)
        self.load_bar = QProgressBar()
        self.load_bar.setObjectName("loadBar")
        self.load_bar.setRange(0, 0)
        self.load_bar.setTextVisible(False)
        self.load_bar.setFixedHeight(5)
        self.load_bar.setVisible(False)
        lay.addWidget(self.model_status)
        lay.addWidget(self.load_bar)

    def _build_mode(self, lay: QVBoxLayout) -> None:
        lay.addWidget(_section("Mode"))
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[Mode, QToolButton] = {}
        row = QHBoxLayout()
        row.setSpacing(0)
        for mode in Mode:
            text, tip = MODE_TEXT[mode]
            b = QToolButton()
            b.setObjectName(f"mode-{mode.value}")
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.setProperty("modeButton", True)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.mode_group.addButton(b)
            self.mode_buttons[mode] = b
            row.addWidget(b)
        self.mode_buttons[Mode.REGENERATE].setChecked(True)
        lay.addLayout(row)

        self.mode_stack = QStackedWidget()
        self.mode_stack.setObjectName("modeStack")
        # Regenerate
        regen = QWidget()
        rl = QVBoxLayout(regen)
        rl.setContentsMargins(0, 2, 0, 0)
        self.targets_label = QLabel("")
        self.targets_label.setObjectName("targetsLabel")
        self.targets_label.setWordWrap(True)
        self.region_prompts = QCheckBox("Regions with their own prompt use it")
        self.region_prompts.setObjectName("regionPrompts")
        self.region_prompts.setChecked(True)
        self.region_prompts.setToolTip(
            "Regions that share a prompt are generated together in one pass; a region with a "
            "prompt of its own gets a pass of its own."
        )
        rl.addWidget(self.targets_label)
        rl.addWidget(self.region_prompts)
        # Extend
        extend = QWidget()
        el = QFormLayout(extend)
        el.setContentsMargins(0, 2, 0, 0)
        self.extend_side = QComboBox()
        self.extend_side.setObjectName("extendSide")
        self.extend_side.addItem("After the end", "after")
        self.extend_side.addItem("Before the start", "before")
        self.extend_length = QDoubleSpinBox()
        self.extend_length.setObjectName("extendLength")
        self.extend_length.setRange(1.0, 380.0)
        self.extend_length.setDecimals(1)
        self.extend_length.setSuffix(" s")
        self.extend_length.setValue(10.0)
        el.addRow("Where", self.extend_side)
        el.addRow("Add", self.extend_length)
        # Vary
        vary = QWidget()
        vl = QVBoxLayout(vary)
        vl.setContentsMargins(0, 2, 0, 0)
        self.vary_targets = QLabel("")
        self.vary_targets.setObjectName("varyTargets")
        self.vary_targets.setWordWrap(True)
        srow = QHBoxLayout()
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setObjectName("varyStrength")
        self.strength.setRange(5, 100)
        self.strength.setValue(60)
        self.strength.setToolTip("Low: close to the original. High: free to change a lot.")
        self.strength_label = QLabel("0.60")
        self.strength_label.setObjectName("varyStrengthValue")
        self.strength_label.setMinimumWidth(34)
        srow.addWidget(QLabel("Strength"))
        srow.addWidget(self.strength, 1)
        srow.addWidget(self.strength_label)
        vl.addWidget(self.vary_targets)
        vl.addLayout(srow)
        # New
        new = QWidget()
        nl = QFormLayout(new)
        nl.setContentsMargins(0, 2, 0, 0)
        self.new_place = QComboBox()
        self.new_place.setObjectName("newPlace")
        self.new_place.addItem("On a new track", "track")
        self.new_place.addItem("Inserted at the cursor", "cursor")
        self.new_length = QDoubleSpinBox()
        self.new_length.setObjectName("newLength")
        self.new_length.setRange(1.0, 380.0)
        self.new_length.setDecimals(1)
        self.new_length.setSuffix(" s")
        self.new_length.setValue(10.0)
        nl.addRow("Where", self.new_place)
        nl.addRow("Length", self.new_length)
        for page in (regen, extend, vary, new):
            self.mode_stack.addWidget(page)
        lay.addWidget(self.mode_stack)

    def _build_prompt(self, lay: QVBoxLayout) -> None:
        lay.addWidget(_section("Prompt"))
        prow = QHBoxLayout()
        self.prefix_combo = QComboBox()
        self.prefix_combo.setObjectName("prefixCombo")
        for name in PROMPT_PREFIXES:
            self.prefix_combo.addItem(name, name)
        self.prefix_combo.setToolTip("The tag prefix the model's prompting guide recommends")
        self.prefix_chip = QLabel("")
        self.prefix_chip.setObjectName("prefixChip")
        self.prefix_chip.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.prefix_chip.setWordWrap(True)
        prow.addWidget(QLabel("Prefix"))
        prow.addWidget(self.prefix_combo, 1)
        lay.addLayout(prow)
        lay.addWidget(self.prefix_chip)
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("promptEdit")
        self.prompt_edit.setPlaceholderText(
            "Describe what should be there, e.g. “warm Rhodes chords, brushed drums, mellow”"
        )
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setFixedHeight(62)
        lay.addWidget(self.prompt_edit)
        grid = QGridLayout()
        self.tempo_spin = QDoubleSpinBox()
        self.tempo_spin.setObjectName("tempoSpin")
        self.tempo_spin.setRange(0.0, 300.0)
        self.tempo_spin.setDecimals(1)
        self.tempo_spin.setSpecialValueText("—")
        self.tempo_spin.setSuffix(" BPM")
        self.tempo_spin.setToolTip("Appended to the prompt when set")
        self.key_combo = QComboBox()
        self.key_combo.setObjectName("keyCombo")
        self.key_combo.addItem("— key", "")
        for k in KEYS:
            self.key_combo.addItem(k, k)
        self.key_combo.setToolTip("Appended to the prompt when set")
        grid.addWidget(QLabel("Tempo"), 0, 0)
        grid.addWidget(self.tempo_spin, 0, 1)
        grid.addWidget(self.key_combo, 0, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        lay.addLayout(grid)
        self.full_prompt = QLabel("")
        self.full_prompt.setObjectName("fullPrompt")
        self.full_prompt.setWordWrap(True)
        self.full_prompt.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.full_prompt)
        self.negative_edit = QLineEdit()
        self.negative_edit.setObjectName("negativeEdit")
        self.negative_edit.setPlaceholderText("Negative prompt (-base models)")
        lay.addWidget(self.negative_edit)

    def _build_sampling(self, lay: QVBoxLayout) -> None:
        lay.addWidget(_section("Sampling"))
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("stepsSpin")
        self.steps_spin.setRange(1, 250)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.cfg_spin = QDoubleSpinBox()
        self.cfg_spin.setObjectName("cfgSpin")
        self.cfg_spin.setRange(1.0, 20.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setDecimals(1)
        self.cfg_spin.setValue(BASE_DEFAULT_CFG)
        self.sampler_combo = QComboBox()
        self.sampler_combo.setObjectName("samplerCombo")
        for label, name in BASE_SAMPLERS:
            self.sampler_combo.addItem(label, name)
        self.takes_spin = QSpinBox()
        self.takes_spin.setObjectName("takesSpin")
        self.takes_spin.setRange(1, 8)
        self.takes_spin.setValue(2)
        self.takes_spin.setToolTip("Takes made for each region (seeds seed, seed+1, …)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(0, SEED_LIMIT - 1)
        self.seed_spin.setToolTip("The first take's seed; the next takes use seed+1, seed+2, …")
        self.seed_lock = QToolButton()
        self.seed_lock.setObjectName("seedLock")
        self.seed_lock.setCheckable(True)
        self.seed_lock.setText("Lock")
        self.seed_lock.setToolTip("Lock the seed (otherwise a new one is drawn for each run)")
        self.seed_dice = QToolButton()
        self.seed_dice.setObjectName("seedDice")
        self.seed_dice.setText("New")
        self.seed_dice.setToolTip("Draw a new random seed")
        grid.addWidget(QLabel("Steps"), 0, 0)
        grid.addWidget(self.steps_spin, 0, 1)
        grid.addWidget(QLabel("Takes"), 0, 2)
        grid.addWidget(self.takes_spin, 0, 3)
        grid.addWidget(QLabel("CFG"), 1, 0)
        grid.addWidget(self.cfg_spin, 1, 1)
        grid.addWidget(QLabel("Sampler"), 1, 2)
        grid.addWidget(self.sampler_combo, 1, 3)
        seed_row = QHBoxLayout()
        seed_row.setSpacing(2)
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.seed_lock)
        seed_row.addWidget(self.seed_dice)
        grid.addWidget(QLabel("Seed"), 2, 0)
        grid.addLayout(seed_row, 2, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        lay.addLayout(grid)

    def _build_loras(self, lay: QVBoxLayout) -> None:
        head = QHBoxLayout()
        head.addWidget(_section("LoRA"))
        head.addStretch(1)
        self.lora_add = QToolButton()
        self.lora_add.setObjectName("loraAdd")
        self.lora_add.setText("Add…")
        self.lora_add.setToolTip(
            "Apply a LoRA file (.safetensors or .ckpt, the official format) to the model; "
            "several stack in the order shown"
        )
        head.addWidget(self.lora_add)
        lay.addLayout(head)
        self.lora_list = QVBoxLayout()
        self.lora_list.setSpacing(2)
        lay.addLayout(self.lora_list)
        self.lora_rows: list[LoraRow] = []
        self.lora_add.clicked.connect(self._choose_lora_files)

    def _choose_lora_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add LoRA", "", "LoRA files (*.safetensors *.ckpt);;All files (*)"
        )
        for path in paths:
            self.add_lora(path)

    def add_lora(self, path: str, strength: float = 1.0) -> LoraRow | None:
        """Add a LoRA row (a file already in the list is not added twice)."""
        if any(row.path == path for row in self.lora_rows):
            return None
        row = LoraRow(path, strength)
        row.removed.connect(self._remove_lora_row)
        self.lora_rows.append(row)
        self.lora_list.addWidget(row)
        wheel_only_when_focused(row)
        row.strength.valueChanged.connect(lambda *_: self.loras_changed.emit())
        self.loras_changed.emit()
        return row

    def _remove_lora_row(self, row: LoraRow) -> None:
        self.lora_rows.remove(row)
        self.lora_list.removeWidget(row)
        row.deleteLater()
        self.loras_changed.emit()

    def _build_context(self, lay: QVBoxLayout) -> None:
        lay.addWidget(_section("Context"))
        self.context_combo = QComboBox()
        self.context_combo.setObjectName("contextCombo")
        self.context_combo.setToolTip(
            "How much of the song the model hears around the regions. Shorter is faster; "
            "long songs are cut into windows of this length around the regions."
        )
        lay.addWidget(self.context_combo)
        self.window_info = QLabel("")
        self.window_info.setObjectName("windowInfo")
        self.window_info.setWordWrap(True)
        self.window_problem = QLabel("")
        self.window_problem.setObjectName("windowProblem")
        self.window_problem.setWordWrap(True)

    def _build_generate(self, lay: QVBoxLayout) -> None:
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setToolTip("Generate (Ctrl+Return in the prompt)")
        lay.addWidget(self.generate_button)
        self._shortcut = QShortcut(QKeySequence("Ctrl+Return"), self.prompt_edit)
        self._shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        self._shortcut.activated.connect(self.generate)

    def _build_queue(self, lay: QVBoxLayout) -> None:
        head = QHBoxLayout()
        head.addWidget(_section("Queue"))
        head.addStretch(1)
        self.cancel_all_button = QToolButton()
        self.cancel_all_button.setObjectName("cancelAll")
        self.cancel_all_button.setText("Cancel all")
        self.cancel_all_button.setAutoRaise(True)
        head.addWidget(self.cancel_all_button)
        lay.addLayout(head)
        self.queue_empty = QLabel("Nothing is running.")
        self.queue_empty.setObjectName("queueEmpty")
        self.queue_empty.setProperty("hint", True)
        lay.addWidget(self.queue_empty)
        rows = QWidget()
        rows.setObjectName("queueRows")
        self.queue_box = QVBoxLayout(rows)
        self.queue_box.setContentsMargins(0, 0, 0, 0)
        self.queue_box.setSpacing(4)
        self.queue_box.addStretch(1)
        self.queue_scroll = QScrollArea()
        self.queue_scroll.setObjectName("queueScroll")
        self.queue_scroll.setWidget(rows)
        self.queue_scroll.setWidgetResizable(True)
        self.queue_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.queue_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addWidget(self.queue_scroll)

    def _connect(self) -> None:
        c = self._controller
        e = self._engine
        self.model_combo.activated.connect(self._on_model_chosen)
        self.refresh_button.clicked.connect(self.refresh_models)
        self.get_models_button.clicked.connect(self._get_models)
        self.mode_group.buttonToggled.connect(self._on_mode_toggled)
        self.prefix_combo.currentIndexChanged.connect(self._schedule_preview)
        self.prompt_edit.textChanged.connect(self._schedule_preview)
        self.tempo_spin.valueChanged.connect(self._schedule_preview)
        self.key_combo.currentIndexChanged.connect(self._schedule_preview)
        self.region_prompts.toggled.connect(self._schedule_preview)
        self.context_combo.currentIndexChanged.connect(self._schedule_preview)
        self.extend_side.currentIndexChanged.connect(self._schedule_preview)
        self.extend_length.valueChanged.connect(self._schedule_preview)
        self.new_place.currentIndexChanged.connect(self._schedule_preview)
        self.new_length.valueChanged.connect(self._schedule_preview)
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText(f"{v / 100:.2f}"))
        self.seed_dice.clicked.connect(self.roll_seed)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_all_button.clicked.connect(e.cancel_all)
        c.model_changed.connect(self._update_model_widgets)
        c.model_changed.connect(self._schedule_preview)
        s = c.session
        s.selection_changed.connect(self._schedule_preview)
        s.selected_regions_changed.connect(self._schedule_preview)
        s.cursor_changed.connect(self._schedule_preview)
        c.document.project_changed.connect(self._schedule_preview)
        c.document.project_changed.connect(self._sync_tempo)
        e.queue_changed.connect(self._rebuild_queue)
        e.progress.connect(self._on_progress)
        e.model_loading.connect(self._on_model_loading)
        e.model_loaded.connect(self._on_model_loaded)
        e.load_failed.connect(self._on_load_failed)

    # -- models --------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Discover the models on disk and fill the picker (keeping the choice if it is there)."""
        try:
            found = self._catalog.discover()
        except Exception as exc:  # a broken folder must not break the panel
            log.warning("model discovery failed: %s", exc)
            found = []
        self._models = found
        chosen = self._controller.model
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        usable = [m for m in found if m.complete]
        for m in found:
            text = f"{m.name} — {_seconds(m.max_seconds)}"
            if not m.complete:
                text += "  (incomplete)"
            self.model_combo.addItem(text, m.path)
            index = self.model_combo.count() - 1
            tip = f"{m.path}\nfound in {m.source or 'a folder'}"
            if not m.complete:
                tip += "\nmissing: " + ", ".join(m.missing)
                item = self.model_combo.model().item(index)  # type: ignore[attr-defined]
                if item is not None:
                    item.setEnabled(False)
            self.model_combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        if not usable:
            self.model_combo.insertItem(0, "No model found", "")
            self.model_combo.setCurrentIndex(0)
        self.model_combo.blockSignals(False)
        if chosen is not None and any(m.path == chosen.path for m in usable):
            self.model_combo.setCurrentIndex(self.model_combo.findData(chosen.path))
        elif usable:
            first = usable[0]
            self.model_combo.setCurrentIndex(self.model_combo.findData(first.path))
            self._choose(first, load=False)
        else:
            self._controller.set_model(None)
        self._update_model_widgets()

    def models(self) -> list[ModelInfo]:
        """The models last discovered."""
        return list(self._models)

    def choose_model(self, path: str, *, load: bool = True) -> bool:
        """Pick a discovered model by folder (and load it)."""
        for m in self._models:
            if m.path == path and m.complete:
                self.model_combo.setCurrentIndex(self.model_combo.findData(path))
                self._choose(m, load=load)
                return True
        return False

    def _on_model_chosen(self, index: int) -> None:
        path = self.model_combo.itemData(index)
        if path:
            self.choose_model(str(path), load=True)

    def _choose(self, info: ModelInfo, *, load: bool) -> None:
        self._controller.set_model(ModelChoice.from_info(info), load=load)
        self.prefix_combo.setCurrentIndex(self.prefix_combo.findData(default_prefix(info.name)))
        self._apply_model_defaults(info.is_base)

    def _apply_model_defaults(self, is_base: bool) -> None:
        if is_base == self._last_kind_is_base:
            return
        self._last_kind_is_base = is_base
        self.steps_spin.setValue(BASE_DEFAULT_STEPS if is_base else DEFAULT_STEPS)
        self.cfg_spin.setValue(BASE_DEFAULT_CFG if is_base else 1.0)

    def _get_models(self) -> None:
        if self._open_models is not None:
            self._open_models()
        else:
            self.get_models_requested.emit()

    def _update_model_widgets(self) -> None:
        model = self._controller.model
        loaded = self._engine.loaded_model
        loading = self._engine.loading_name
        is_base = bool(model and model.is_base)
        self.negative_edit.setEnabled(is_base)
        self.cfg_spin.setEnabled(is_base)
        self.sampler_combo.setEnabled(is_base)
        why = (
            ""
            if is_base
            else "Only -base models use a negative prompt, a CFG scale and a choice of sampler."
        )
        self.negative_edit.setToolTip(why)
        self.cfg_spin.setToolTip(why or "Classifier-free guidance scale")
        self.sampler_combo.setToolTip(
            why
            or "Euler: the default. DPM-Solver++: second order, better with few steps. "
            "RK4: four model passes per step, the most accurate per step."
        )
        if model is not None:
            self._apply_model_defaults(is_base)
        self._fill_context(model)
        self.load_bar.setVisible(loading is not None)
        if model is None:
            self.model_status.setText(
                "No Stable Audio 3 model found. Get Models explains what to download."
            )
            self.get_models_button.setDefault(True)
        elif loading is not None:
            self.model_status.setText(f"Loading {loading}…")
        elif loaded is not None and loaded.path == model.path:
            self.model_status.setText(
                f"● Ready on {loaded.device} · {loaded.dtype} · up to "
                f"{_seconds(loaded.max_seconds)} per pass"
            )
        else:
            device = self._engine.compute[0]
            self.model_status.setText(
                f"Up to {_seconds(model.max_seconds)} per pass · device: {device} · loads on "
                "first use"
            )
        self.generate_button.setEnabled(model is not None)

    def _fill_context(self, model: ModelChoice | None) -> None:
        longest = model.max_seconds if model is not None else 120.0
        current = self.context_combo.currentData()
        self.context_combo.blockSignals(True)
        self.context_combo.clear()
        self.context_combo.addItem(f"Auto — up to {_seconds(min(longest, 3600.0))}", None)
        for s in CONTEXT_CHOICES_S:
            if s < longest:
                self.context_combo.addItem(f"{_seconds(s)} around the regions", s)
        index = self.context_combo.findData(current) if current is not None else 0
        self.context_combo.setCurrentIndex(max(index, 0))
        self.context_combo.blockSignals(False)

    def _on_model_loading(self, name: str) -> None:
        self._update_model_widgets()

    def _on_model_loaded(self, loaded: LoadedModel) -> None:
        self._update_model_widgets()

    def _on_load_failed(self, title: str, message: str) -> None:
        self._update_model_widgets()
        self.model_status.setText(f"Could not load the model: {message}")

    # -- settings ------------------------------------------------------------------------------

    def mode(self) -> Mode:
        """The selected mode."""
        for mode, b in self.mode_buttons.items():
            if b.isChecked():
                return mode
        return Mode.REGENERATE

    def set_mode(self, mode: Mode) -> None:
        """Select a mode."""
        self.mode_buttons[mode].setChecked(True)

    def _on_mode_toggled(self, button: QToolButton, checked: bool) -> None:
        if checked:
            self.mode_stack.setCurrentIndex(list(Mode).index(self.mode()))
            self._schedule_preview()

    def options(self) -> GenerateOptions:
        """The panel's settings."""
        model = self._controller.model
        is_base = bool(model and model.is_base)
        tempo = self.tempo_spin.value()
        return GenerateOptions(
            mode=self.mode(),
            prompt=self.prompt_edit.toPlainText().strip(),
            prefix=str(self.prefix_combo.currentData() or "None"),
            negative_prompt=self.negative_edit.text().strip() if is_base else "",
            use_region_prompts=self.region_prompts.isChecked(),
            steps=self.steps_spin.value(),
            cfg_scale=self.cfg_spin.value() if is_base else None,
            sampler=str(self.sampler_combo.currentData()) if is_base else None,
            seed=self.seed_spin.value(),
            takes=self.takes_spin.value(),
            context_s=self.context_combo.currentData(),
            tempo_bpm=tempo if tempo > 0 else None,
            key=str(self.key_combo.currentData() or ""),
            extend_side=str(self.extend_side.currentData()),
            extend_s=self.extend_length.value(),
            vary_strength=self.strength.value() / 100.0,
            new_place=str(self.new_place.currentData()),
            new_s=self.new_length.value(),
            crossfade_s=self._controller.crossfade_s,
            loras=tuple((row.path, row.strength.value()) for row in self.lora_rows),
        )

    def apply_options(self, options: GenerateOptions) -> None:
        """Show ``options`` in the panel (from a take's "copy settings"); locks the seed."""
        self.set_mode(options.mode)
        self.prompt_edit.setPlainText(options.prompt)
        index = self.prefix_combo.findData(options.prefix)
        if index >= 0:
            self.prefix_combo.setCurrentIndex(index)
        self.negative_edit.setText(options.negative_prompt)
        if options.steps is not None:
            self.steps_spin.setValue(options.steps)
        if options.cfg_scale is not None:
            self.cfg_spin.setValue(options.cfg_scale)
        if options.sampler is not None:
            self.sampler_combo.setCurrentIndex(max(self.sampler_combo.findData(options.sampler), 0))
        self.seed_spin.setValue(options.seed)
        self.seed_lock.setChecked(True)
        self.tempo_spin.setValue(options.tempo_bpm or 0.0)
        self.key_combo.setCurrentIndex(max(self.key_combo.findData(options.key), 0))
        self.strength.setValue(round(options.vary_strength * 100))
        if options.context_s is not None:
            index = self.context_combo.findData(options.context_s)
            if index < 0:
                self.context_combo.addItem(
                    f"{_seconds(options.context_s)} around the regions", options.context_s
                )
                index = self.context_combo.count() - 1
            self.context_combo.setCurrentIndex(index)
        self.update_preview()

    def roll_seed(self) -> int:
        """Draw a new seed and show it."""
        seed = random_seed(self._rng)
        self.seed_spin.setValue(seed)
        return seed

    # -- preview -------------------------------------------------------------------------------

    def _schedule_preview(self, *_: object) -> None:
        self._preview_timer.start()

    def update_preview(self) -> None:
        """Show the full prompt, the targets and which window will be sent."""
        options = self.options()
        prefix = options.prefix_text
        self.prefix_chip.setText(prefix.strip().rstrip(",") if prefix else "no prefix")
        self.prefix_chip.setToolTip(f"Added in front of the prompt: “{prefix}”")
        full = compose_prompt(prefix, options.prompt, tempo_bpm=options.tempo_bpm, key=options.key)
        self.full_prompt.setText(f"Sent: {full}" if options.prompt else "")
        c = self._controller
        ids = c.target_region_ids()
        spans = c.session.selection()
        if ids:
            text = f"{len(ids)} selected region{'s' if len(ids) != 1 else ''}"
        elif spans:
            text = (
                f"The selection ({len(spans)} span{'s' if len(spans) != 1 else ''}) "
                "becomes new regions"
            )
        else:
            text = "Select a part of the waveform, or a region, to regenerate."
        self.targets_label.setText(text)
        self.vary_targets.setText(text.replace("regenerate", "vary"))
        lines, problem = c.preview(options)
        self.window_info.setText(
            "Sent to the model: " + "; ".join(lines[:4]) + (" …" if len(lines) > 4 else "")
            if lines
            else ""
        )
        self.window_problem.setText(problem)
        self.window_problem.setVisible(bool(problem))

    # -- generate ------------------------------------------------------------------------------

    def generate(self) -> int | None:
        """Queue a generation with the panel's settings; returns the job id.

        Without any model on disk this opens Get Models instead.
        """
        if self._controller.model is None and not any(m.complete for m in self._models):
            self._get_models()
            return None
        options = self.options()
        job = self._controller.generate(options)
        if job is not None and not self.seed_lock.isChecked():
            self.roll_seed()
        self.update_preview()
        return job

    def make_loop(self) -> int | None:
        """Queue making the selected region (or span) a seamless loop; returns the job id."""
        job = self._controller.make_loop(self.options())
        if job is not None and not self.seed_lock.isChecked():
            self.roll_seed()
        return job

    # -- queue ---------------------------------------------------------------------------------

    def _rebuild_queue(self) -> None:
        jobs = self._engine.jobs()
        live = {j.id for j in jobs}
        for jid in list(self._rows):
            if jid not in live:
                row = self._rows.pop(jid)
                self.queue_box.removeWidget(row)
                row.deleteLater()
        for index, job in enumerate(jobs):
            existing = self._rows.get(job.id)
            if existing is None:
                row = JobRow(job)
                row.cancel_requested.connect(self._engine.cancel)
                self._rows[job.id] = row
                self.queue_box.insertWidget(index, row)
            else:
                row = existing
            row.update_from(job)
        self.queue_empty.setVisible(not jobs)
        self.queue_scroll.setVisible(bool(jobs))
        needed = sum(r.sizeHint().height() + 4 for r in self._rows.values())
        self.queue_scroll.setFixedHeight(min(170, needed) if jobs else 0)
        self.cancel_all_button.setVisible(bool(jobs))

    def _on_progress(self, job_id: int, done: int, total: int, eta_s: float) -> None:
        row = self._rows.get(job_id)
        if row is not None:
            row.set_progress(done, total, eta_s if eta_s >= 0 else None)

    def queue_rows(self) -> list[JobRow]:
        """The rows of the queue, running job first."""
        return [self._rows[j.id] for j in self._engine.jobs() if j.id in self._rows]


class GenerationHost(Protocol):
    """What :func:`install_generation_ui` needs from the main window."""

    timeline: TimelineWidget

    def set_generate_panel(self, widget: QWidget) -> QDockWidget: ...

    def set_takes_panel(self, widget: QWidget) -> QDockWidget: ...

    def show_error(self, title: str, message: str) -> None: ...

    def status(self, message: str, ms: int = 5000) -> None: ...


@dataclass(eq=False)
class GenerationUi:
    """The generation widgets installed in a window.

    Attributes:
        generate_panel: the Generate panel.
        takes_panel: the Takes panel.
        models_dialog: the Get Models dialog while it is open.
        engine: the model thread's client (when ``sa3_studio.main.attach_generation`` made it).
        controller: the generation controller (likewise).
    """

    generate_panel: GeneratePanel
    takes_panel: TakesPanel
    models_dialog: ModelsDialog | None = None
    set_models_folder: Callable[[str], None] | None = None
    engine: EngineClient | None = None
    controller: GenerationController | None = None

    def open_models_dialog(self, host: QWidget, catalog: ModelCatalog, folder: str) -> ModelsDialog:
        """Show Get Models (one at a time); found models refresh the picker."""
        if self.models_dialog is not None and self.models_dialog.isVisible():
            self.models_dialog.raise_()
            return self.models_dialog
        dialog = ModelsDialog(catalog, folder, host, set_models_folder=self.set_models_folder)
        dialog.models_changed.connect(self.generate_panel.refresh_models)
        dialog.finished.connect(lambda *_: self.generate_panel.refresh_models())
        self.models_dialog = dialog
        dialog.show()
        return dialog


def install_generation_ui(
    window: GenerationHost,
    controller: GenerationController,
    catalog: ModelCatalog,
    *,
    models_folder: str = "",
    settings: AppSettings | None = None,
) -> GenerationUi:
    """Dock the Generate and Takes panels in ``window`` and wire them to ``controller``.

    Pending takes are drawn on the timeline, errors become dialogs, notes go to the status
    bar, and a take's "Copy settings" fills the Generate panel.
    """
    host = window if isinstance(window, QWidget) else None
    ui_ref: list[GenerationUi] = []

    def open_models() -> None:
        if ui_ref and host is not None:
            folder = settings.preferences().models_folder if settings else models_folder
            ui_ref[0].open_models_dialog(host, catalog, folder)

    panel = GeneratePanel(
        controller, catalog, models_folder=models_folder, open_models_dialog=open_models
    )
    takes = TakesPanel(controller)
    ui = GenerationUi(panel, takes)
    ui_ref.append(ui)
    generate_dock = window.set_generate_panel(panel)
    takes_dock = window.set_takes_panel(takes)
    if isinstance(window, QMainWindow):
        # The window restored its saved layout before these docks existed: restore theirs.
        restored = window.restoreDockWidget(generate_dock)
        restored = window.restoreDockWidget(takes_dock) or restored
        if not restored:  # first start: room for a few takes under the timeline
            window.resizeDocks([takes_dock], [240], Qt.Orientation.Vertical)

    def draw_overlays() -> None:
        project = controller.document.project
        track_of_region = {r.id: r.track_id for r in project.regions}
        track_of = {k.id: track_of_region.get(k.region_id, "") for k in project.takes}
        window.timeline.set_take_overlays(
            timeline_overlays(
                controller.overlays(), hearing_take=controller.hearing_take(), track_of=track_of
            )
        )

    def on_takes(job_id: int, take_ids: list[str]) -> None:
        takes_dock.show()
        takes_dock.raise_()

    controller.overlays_changed.connect(draw_overlays)
    controller.ab_changed.connect(lambda *_: draw_overlays())
    controller.error.connect(window.show_error)
    controller.status.connect(lambda text: window.status(text))
    controller.takes_added.connect(on_takes)
    takes.copy_settings.connect(panel.apply_options)
    host = window if isinstance(window, QWidget) else None
    install_over_peak(controller, host, settings, accept_button=takes.accept_button)
    if settings is not None:  # the user's model, takes, LoRAs, prefix and sampler
        for note in remember_choices(panel, controller, settings):
            window.status(note)
        ui.set_models_folder = lambda path: settings.set_preferences(
            dataclasses.replace(settings.preferences(), models_folder=path)
        )
    window_actions = getattr(window, "actions", None)
    if isinstance(window_actions, dict):
        bind_generation_actions(window_actions, panel, takes)
    draw_overlays()
    return ui
