"""Keyboard focus rules of the editor window.

Typing keys (Space, ``=``, ``-``, letters) are the editor's shortcuts as long as no text field
has the keyboard. A field gets it only when the user picks it (a click, Tab, a mnemonic); when
Qt hands focus on by itself (a focused button vanished, the welcome page was replaced), the
focus goes back to the waveform instead, so that Space plays rather than typing a space into a
prompt. Escape leaves a field. Spin boxes, combo boxes and sliders take the mouse wheel only
while they have the focus: scrolling a panel never changes a seed on the way.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFocusEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QSlider,
    QTextEdit,
    QWidget,
)

_CHOSEN = (
    Qt.FocusReason.MouseFocusReason,
    Qt.FocusReason.ShortcutFocusReason,
    Qt.FocusReason.PopupFocusReason,
    Qt.FocusReason.MenuBarFocusReason,
    Qt.FocusReason.OtherFocusReason,  # code that gives a field the focus on purpose
)
_TAB_KEYS = (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)


def is_text_field(widget: QObject | None) -> bool:
    """Whether typing into ``widget`` would change text (a line, text or spin box)."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox))


class FocusGuard(QObject):
    """Keeps the keyboard away from text fields the user did not pick (see the module doc).

    Args:
        window: the window whose fields are guarded (other windows, dialogs, are left alone).
        home: the widget that should have the keyboard instead (the waveform); may be None.
    """

    def __init__(self, window: QWidget, home: Callable[[], QWidget | None]) -> None:
        super().__init__(window)
        self._window = window
        self._home = home
        self._tab_pressed = False
        self._picked: QObject | None = None
        self._picks = 0
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def _mine(self, obj: QObject) -> bool:
        return isinstance(obj, QWidget) and obj.window() is self._window

    def go_home(self) -> None:
        """Give the keyboard to the home widget (or take it from any field)."""
        home = self._home()
        focused = QApplication.focusWidget()
        if home is not None and home.isVisible():
            home.setFocus(Qt.FocusReason.OtherFocusReason)
        elif focused is not None and self._mine(focused):
            focused.clearFocus()

    def go_home_soon(self) -> None:
        """Give the keyboard to the home widget once pending events are handled, unless the
        user picks a field in the meantime."""
        picks = self._picks
        QTimer.singleShot(0, self, lambda: self._picks == picks and self.go_home())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            self._tab_pressed = event.key() in _TAB_KEYS
            if event.key() == Qt.Key.Key_Escape and self._leaves(obj, event):
                self.go_home()
                return True
        elif kind == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            # Escape in a field leaves the field (it is not "Select None" there).
            if event.key() == Qt.Key.Key_Escape and self._leaves(obj, event):
                event.accept()
                return True
        elif kind == QEvent.Type.FocusIn and isinstance(event, QFocusEvent):
            tabbed = self._tab_pressed and event.reason() in (
                Qt.FocusReason.TabFocusReason,
                Qt.FocusReason.BacktabFocusReason,
            )
            self._tab_pressed = False
            if self._mine(obj) and is_text_field(obj):
                back = event.reason() == Qt.FocusReason.ActiveWindowFocusReason
                if tabbed or event.reason() in _CHOSEN or (back and obj is self._picked):
                    self._picked = obj
                    self._picks += 1
                else:
                    # Handed on by Qt (a focused button vanished, the window's first
                    # activation), not picked by the user: send the keyboard home once the
                    # focus change is over.
                    QTimer.singleShot(0, self, lambda w=obj: self._undo_focus(w))
        return False

    def _leaves(self, obj: QObject, event: QKeyEvent) -> bool:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods != Qt.KeyboardModifier.NoModifier or not self._mine(obj):
            return False
        widget = obj if is_text_field(obj) else None
        if widget is None and isinstance(obj, QWidget):
            # A spin box's inner line edit or a combo's editor: the field is the parent.
            parent = obj.parentWidget()
            widget = parent if is_text_field(parent) else None
        return widget is not None

    def _undo_focus(self, widget: QObject) -> None:
        if isinstance(widget, QWidget) and widget.hasFocus():
            self.go_home()


class _WheelOnlyWhenFocused(QObject):
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            # Ignored, the event goes on to the parent (the scroll area scrolls).
            event.ignore()
            return True
        return False


def wheel_only_when_focused(root: QWidget) -> None:
    """Spin boxes, combo boxes and sliders under ``root`` take the wheel only with the focus.

    They no longer take the focus from the wheel either (a click or Tab gives it). Call again
    after adding such widgets; widgets already handled are skipped.
    """
    guard = root.findChild(_WheelOnlyWhenFocused, "wheelGuard")
    if guard is None:
        guard = _WheelOnlyWhenFocused(root)
        guard.setObjectName("wheelGuard")
    for kind in (QAbstractSpinBox, QComboBox, QSlider):
        for widget in root.findChildren(kind):
            if widget.property("wheelGuarded"):
                continue
            widget.setProperty("wheelGuarded", True)
            if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(guard)
