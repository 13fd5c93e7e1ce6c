"""The question at accept when a take's true peak is over 0 dBTP: limit, gain down or keep.

:func:`install_over_peak` gives the generation controller its asker and keeps the remembered
answer in the settings (``prefs/over_peak``), so the take is never clipped without a word.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.generation_controller import GenerationController
from sa3_studio.app.settings import AppSettings
from sa3_studio.app.take_level import OVER_PEAK_SETTING, LevelAnswer, OverPeak, over_peak_from

__all__ = ["OverPeakDialog", "install_over_peak", "over_peak_menu"]

CHOICES = (
    (OverPeak.LIMIT, "&Limit to -1 dBTP"),
    (OverPeak.GAIN, "&Gain down to -1 dBTP"),
    (OverPeak.KEEP, "&Keep as is"),
)
MENU = (
    (OverPeak.ASK, "Over 0 dBTP: ask each time"),
    (OverPeak.LIMIT, "Over 0 dBTP: limit to -1 dBTP"),
    (OverPeak.GAIN, "Over 0 dBTP: gain down to -1 dBTP"),
    (OverPeak.KEEP, "Over 0 dBTP: keep as is"),
)


class OverPeakDialog(QDialog):
    """Asks what to do with a take over 0 dBTP; :attr:`answer` holds the reply."""

    def __init__(self, take_number: int, peak_dbtp: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Take over 0 dBTP")
        self.answer: LevelAnswer | None = None
        text = QLabel(
            f"Take {take_number} peaks at {peak_dbtp:+.1f} dBTP: it would clip on playback and "
            "after lossy encoding.\n\nLimit it to -1 dBTP (only the loud moments are turned "
            "down), gain the whole take down so it peaks at -1 dBTP, or keep it as it is?"
        )
        text.setWordWrap(True)
        self.remember = QCheckBox("&Remember my choice (do not ask again)")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.choice_buttons: dict[OverPeak, QPushButton] = {}
        for choice, label in CHOICES:
            button = self.buttons.addButton(label, QDialogButtonBox.ButtonRole.AcceptRole)
            button.clicked.connect(lambda _=False, c=choice: self._choose(c))
            self.choice_buttons[choice] = button
        self.choice_buttons[OverPeak.LIMIT].setDefault(True)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.remember)
        layout.addWidget(self.buttons)

    def _choose(self, choice: OverPeak) -> None:
        self.answer = LevelAnswer(choice, self.remember.isChecked())
        self.accept()


def over_peak_menu(controller: GenerationController, parent: QWidget | None = None) -> QMenu:
    """A menu of the remembered choice (ask each time, limit, gain, keep), kept in step."""
    menu = QMenu(parent)
    menu.setObjectName("overPeakMenu")
    group = QActionGroup(menu)
    actions: dict[OverPeak, QAction] = {}
    for choice, label in MENU:
        action = menu.addAction(label)
        action.setCheckable(True)
        group.addAction(action)
        action.triggered.connect(lambda _=False, c=choice: controller.set_over_peak(c))
        actions[choice] = action

    def show_current() -> None:
        actions[controller.over_peak].setChecked(True)

    menu.aboutToShow.connect(show_current)
    show_current()
    return menu


def install_over_peak(
    controller: GenerationController,
    parent: QWidget | None,
    settings: AppSettings | None,
    *,
    dialog: Callable[[int, float], OverPeakDialog] | None = None,
    accept_button: QToolButton | None = None,
) -> None:
    """Let ``controller`` ask about takes over 0 dBTP and remember the answer in ``settings``;
    ``accept_button`` gets a menu of the remembered choice."""
    make = dialog or (lambda number, peak: OverPeakDialog(number, peak, parent))

    def ask(number: int, peak: float) -> LevelAnswer | None:
        box = make(number, peak)
        box.exec()
        return box.answer

    controller.ask_over_peak = ask
    if accept_button is not None:
        accept_button.setMenu(over_peak_menu(controller, accept_button))
        accept_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
    if settings is None:
        return
    store = settings.store
    controller.over_peak = over_peak_from(store.value(OVER_PEAK_SETTING, OverPeak.ASK.value))
    controller.over_peak_changed.connect(lambda value: store.setValue(OVER_PEAK_SETTING, value))
