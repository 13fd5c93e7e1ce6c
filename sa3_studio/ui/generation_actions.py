"""The Generate menu's commands (Generate, Accept, next/previous take, A/B, Re-roll, Cancel)
bound to the Generate and Takes panels of a window.

The keys are declared once in :mod:`sa3_studio.ui.actions`; the panels' buttons show them in
their tooltips, so a button, its menu entry and the F1 list always agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from sa3_studio.ui.actions import GENERATE_ACTIONS, with_shortcut
from sa3_studio.ui.focus import wheel_only_when_focused

if TYPE_CHECKING:
    from sa3_studio.ui.generate_panel import GeneratePanel
    from sa3_studio.ui.takes_panel import TakesPanel


def bind_generation_actions(
    actions: Mapping[str, QAction], panel: GeneratePanel, takes: TakesPanel
) -> None:
    """Connect the window's Generate commands to the panels and enable them.

    The prompt's own Ctrl+Return shortcut is switched off: the window-wide Generate command
    has the same key, and two shortcuts on one key would both stay silent.
    """
    engine = panel.engine

    def cancel_running() -> None:
        jobs = engine.jobs()
        if jobs:
            engine.cancel(jobs[0].id)

    handlers: dict[str, Callable[[], object]] = {
        "take.generate": panel.generate,
        "take.cancel": cancel_running,
        "take.accept": takes.accept,
        "take.next": takes.next_take,
        "take.previous": takes.previous_take,
        "take.ab": takes.toggle_ab,
        "take.reroll": takes.reroll,
    }
    for key in GENERATE_ACTIONS:
        action = actions.get(key)
        if action is None:
            continue
        action.triggered.connect(lambda _checked=False, fn=handlers[key]: fn())
        action.setEnabled(True)
    make_loop = actions.get("region.make_loop")
    if make_loop is not None:
        make_loop.triggered.connect(lambda _checked=False: panel.make_loop())
        make_loop.setEnabled(True)
    panel.use_window_shortcut()
    buttons = (
        (panel.generate_button, "Generate with these settings", "take.generate"),
        (takes.accept_button, "Splice the take into the song", "take.accept"),
        (takes.next_button, "Next take", "take.next"),
        (takes.prev_button, "Previous take", "take.previous"),
        (takes.reroll_button, "One more take, same settings, new seed", "take.reroll"),
    )
    for button, tip, key in buttons:
        action = actions.get(key)
        button.setToolTip(with_shortcut(tip, action) if action is not None else tip)
    takes.set_ab_keys(actions.get("take.ab"))
    wheel_only_when_focused(panel)
    wheel_only_when_focused(takes)
