"""The Generate panel's choices kept per user: model, takes, LoRAs and strengths, prefix, sampler.

They are restored when the panel is installed and written back as soon as one changes, so a
Re-roll after a restart uses the model the user picked, not the first one found.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.settings import AppSettings, GenerationChoices

if TYPE_CHECKING:
    from sa3_studio.ui.generate_panel import GeneratePanel

log = logging.getLogger(__name__)


def current_choices(panel: GeneratePanel, controller: GenerationController) -> GenerationChoices:
    """What the panel shows now, as the record that is remembered."""
    model = controller.model
    return GenerationChoices(
        model_path=model.path if model is not None else "",
        takes=panel.takes_spin.value(),
        loras=tuple((row.path, row.strength.value()) for row in panel.lora_rows),
        prefix=str(panel.prefix_combo.currentData() or ""),
        sampler=str(panel.sampler_combo.currentData() or ""),
    )


def restore_choices(panel: GeneratePanel, choices: GenerationChoices) -> list[str]:
    """Show remembered choices in the panel.

    A model or LoRA file that is gone is skipped (the panel keeps its default).

    Returns:
        Sentences about what could not be restored (for the status bar).
    """
    notes: list[str] = []
    if choices.model_path and not panel.choose_model(choices.model_path, load=False):
        notes.append(
            f"The model last used ({Path(choices.model_path).name}) is not found any more; "
            "using another one."
        )
    if choices.prefix:
        index = panel.prefix_combo.findData(choices.prefix)
        if index >= 0:
            panel.prefix_combo.setCurrentIndex(index)
    if choices.sampler:
        index = panel.sampler_combo.findData(choices.sampler)
        if index >= 0:
            panel.sampler_combo.setCurrentIndex(index)
    panel.takes_spin.setValue(choices.takes)
    for path, strength in choices.loras:
        if Path(path).is_file():
            panel.add_lora(path, strength)
        else:
            notes.append(f"The LoRA {Path(path).name} is not found any more; it was left out.")
    return notes


def remember_choices(
    panel: GeneratePanel, controller: GenerationController, settings: AppSettings
) -> list[str]:
    """Restore the panel's choices from ``settings`` and keep them there as they change.

    Returns:
        What could not be restored (see :func:`restore_choices`).
    """
    restoring = [True]

    def save(*_: object) -> None:
        if not restoring[0]:
            settings.set_generation_choices(current_choices(panel, controller))

    controller.model_changed.connect(save)
    panel.takes_spin.valueChanged.connect(save)
    panel.prefix_combo.currentIndexChanged.connect(save)
    panel.sampler_combo.currentIndexChanged.connect(save)
    panel.loras_changed.connect(save)
    try:
        notes = restore_choices(panel, settings.generation_choices())
    finally:
        restoring[0] = False
    for note in notes:
        log.info("%s", note)
    return notes
