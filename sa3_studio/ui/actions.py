"""Every command of the main window as a QAction, with platform-conventional shortcuts.

The table below is the single source of the menus' text, the shortcuts and the Help >
Keyboard Shortcuts list, so the three can never disagree. Standard keys (Open, Save, Undo,
Copy ...) use ``QKeySequence.StandardKey`` so they follow each platform's convention (Cmd on
macOS, Ctrl+Y or Ctrl+Shift+Z for Redo ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence

from sa3_studio.ui.icons import icon

Key = QKeySequence.StandardKey


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One command.

    Attributes:
        id: the name code uses (``actions["edit.undo"]``).
        text: menu text (``&`` marks the mnemonic).
        group: the menu it belongs to ("File", "Edit" ...), also the heading in the shortcut list.
        shortcuts: standard keys or portable strings ("Ctrl+E" is Cmd+E on macOS).
        tip: status bar text.
        checkable: a toggle.
        icon: name of an icon from :mod:`sa3_studio.ui.icons`.
    """

    id: str
    text: str
    group: str
    shortcuts: tuple[Key | str, ...] = ()
    tip: str = ""
    checkable: bool = False
    icon: str = ""


SPECS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec(
        "file.open", "&Open…", "File", (Key.Open,), "Open an audio file or a project", icon="open"
    ),
    ActionSpec("file.save", "&Save", "File", (Key.Save,), "Save the project", icon="save"),
    ActionSpec(
        "file.save_as",
        "Save &As…",
        "File",
        (Key.SaveAs, "Ctrl+Shift+S"),
        "Save the project under a new name",
    ),
    ActionSpec(
        "file.export",
        "&Export…",
        "File",
        ("Ctrl+Shift+E",),
        "Export the mix, the selection, a region or stems",
        icon="export",
    ),
    ActionSpec("file.close", "&Close Project", "File", (Key.Close,), "Close the project"),
    ActionSpec("file.quit", "&Quit", "File", (Key.Quit, "Ctrl+Q"), "Quit SA3 Studio"),
    # Edit
    ActionSpec("edit.undo", "&Undo", "Edit", (Key.Undo,), "Undo the last edit", icon="undo"),
    ActionSpec("edit.redo", "&Redo", "Edit", (Key.Redo,), "Redo the edit you undid", icon="redo"),
    ActionSpec(
        "edit.cut", "Cu&t", "Edit", (Key.Cut,), "Cut the selection to the clipboard", icon="cut"
    ),
    ActionSpec("edit.copy", "&Copy", "Edit", (Key.Copy,), "Copy the selection", icon="copy"),
    ActionSpec(
        "edit.paste",
        "&Paste",
        "Edit",
        (Key.Paste,),
        "Insert the clipboard at the cursor",
        icon="paste",
    ),
    ActionSpec("edit.delete", "&Delete", "Edit", (Key.Delete, "Backspace"), "Delete the selection"),
    ActionSpec(
        "edit.silence", "&Silence", "Edit", ("Ctrl+L",), "Replace the selection with silence"
    ),
    ActionSpec("edit.fade_in", "Fade &In", "Edit", ("Ctrl+Shift+I",), "Fade the selection in"),
    ActionSpec("edit.fade_out", "Fade &Out", "Edit", ("Ctrl+Shift+O",), "Fade the selection out"),
    ActionSpec("edit.gain", "&Gain…", "Edit", ("Ctrl+G",), "Change the level of the selection"),
    ActionSpec(
        "edit.normalize",
        "&Normalise…",
        "Edit",
        ("Ctrl+Shift+N",),
        "Scale the selection to a peak level",
    ),
    ActionSpec("edit.select_all", "Select &All", "Edit", (Key.SelectAll,), "Select the whole song"),
    ActionSpec(
        "edit.select_none",
        "Select &None",
        "Edit",
        ("Ctrl+Shift+A", "Escape"),
        "Clear the selection",
    ),
    ActionSpec(
        "edit.nudge_left", "Nudge Left", "Edit", ("Left",), "Move the selection (or cursor) earlier"
    ),
    ActionSpec(
        "edit.nudge_right",
        "Nudge Right",
        "Edit",
        ("Right",),
        "Move the selection (or cursor) later",
    ),
    ActionSpec(
        "edit.nudge_left_big",
        "Nudge Left (Large)",
        "Edit",
        ("Shift+Left",),
        "Move the selection earlier by a larger step",
    ),
    ActionSpec(
        "edit.nudge_right_big",
        "Nudge Right (Large)",
        "Edit",
        ("Shift+Right",),
        "Move the selection later by a larger step",
    ),
    ActionSpec(
        "edit.preferences",
        "Se&ttings…",
        "Edit",
        (Key.Preferences, "Ctrl+,"),
        "Models, audio output, crossfade and theme",
    ),
    # Regions
    ActionSpec(
        "region.add",
        "&Add Region from Selection",
        "Regions",
        ("Ctrl+B",),
        "Make a region of each selected span",
        icon="region",
    ),
    ActionSpec(
        "region.delete",
        "&Delete Region",
        "Regions",
        ("Ctrl+Shift+B",),
        "Delete the selected regions",
    ),
    ActionSpec(
        "region.next",
        "Select &Next Region",
        "Regions",
        ("Tab",),
        "Select the region after the cursor",
    ),
    ActionSpec(
        "region.previous",
        "Select &Previous Region",
        "Regions",
        ("Shift+Tab",),
        "Select the region before the cursor",
    ),
    # View
    ActionSpec("view.zoom_in", "Zoom &In", "View", ("Ctrl+=", "+", "="), "Zoom in", icon="zoom-in"),
    ActionSpec("view.zoom_out", "Zoom &Out", "View", ("Ctrl+-", "-"), "Zoom out", icon="zoom-out"),
    ActionSpec(
        "view.zoom_selection",
        "Zoom to &Selection",
        "View",
        ("Ctrl+E",),
        "Fit the selection in the window",
        icon="zoom-selection",
    ),
    ActionSpec(
        "view.zoom_fit", "Zoom to &Fit", "View", ("Ctrl+F",), "Show the whole song", icon="zoom-fit"
    ),
    ActionSpec(
        "view.spectrogram",
        "S&pectrogram",
        "View",
        ("Shift+G",),
        "Show a spectrogram under the waveform",
        checkable=True,
        icon="spectrogram",
    ),
    ActionSpec(
        "view.follow",
        "&Follow Playhead",
        "View",
        ("Ctrl+Shift+F",),
        "Scroll to keep the playhead in view",
        checkable=True,
        icon="follow",
    ),
    ActionSpec(
        "view.snap_latent",
        "Snap to &Latent Frames",
        "View",
        ("Shift+1",),
        "Snap edges to the model's latent frames (4096 samples)",
        checkable=True,
        icon="snap-latent",
    ),
    ActionSpec(
        "view.snap_beats",
        "Snap to &Beats",
        "View",
        ("Shift+2",),
        "Snap edges to beats (needs a tempo)",
        checkable=True,
        icon="snap-beats",
    ),
    ActionSpec(
        "view.snap_zero",
        "Snap to &Zero Crossings",
        "View",
        ("Shift+3",),
        "Snap edges to the nearest zero crossing",
        checkable=True,
        icon="snap-zero",
    ),
    ActionSpec(
        "view.tempo", "Set &Tempo…", "View", (), "Set the tempo for bars:beats and beat snapping"
    ),
    # Transport
    ActionSpec(
        "transport.play", "&Play / Pause", "Transport", ("Space",), "Play or pause", icon="play"
    ),
    ActionSpec(
        "transport.stop",
        "&Stop",
        "Transport",
        ("S",),
        "Stop and return to where playback started",
        icon="stop",
    ),
    ActionSpec(
        "transport.play_cursor",
        "Play from &Cursor",
        "Transport",
        ("Shift+Space",),
        "Play from the edit cursor",
        icon="play-cursor",
    ),
    ActionSpec(
        "transport.loop",
        "&Loop Selection",
        "Transport",
        ("L",),
        "Repeat the selection while playing",
        checkable=True,
        icon="loop",
    ),
    ActionSpec(
        "transport.start",
        "Go to &Start",
        "Transport",
        ("Home",),
        "Move the cursor to the start",
        icon="to-start",
    ),
    ActionSpec(
        "transport.end",
        "Go to &End",
        "Transport",
        ("End",),
        "Move the cursor to the end",
        icon="to-end",
    ),
    # Help
    ActionSpec(
        "help.shortcuts",
        "&Keyboard Shortcuts",
        "Help",
        (Key.HelpContents, "F1"),
        "List every keyboard shortcut",
    ),
    ActionSpec("help.about", "&About SA3 Studio", "Help", (), "Version and credits"),
)

MENU_ORDER = ("File", "Edit", "Regions", "View", "Transport", "Help")


def _sequences(spec: ActionSpec) -> list[QKeySequence]:
    seqs: list[QKeySequence] = []
    for s in spec.shortcuts:
        if isinstance(s, str):
            seqs.append(QKeySequence(s))
        else:
            seqs.extend(QKeySequence.keyBindings(s))
    # Keep the order, drop empties and repeats (a standard key may already hold "Ctrl+Q").
    out: list[QKeySequence] = []
    for q in seqs:
        if not q.isEmpty() and all(q != o for o in out):
            out.append(q)
    return out


def build_actions(parent: QObject, specs: Iterable[ActionSpec] = SPECS) -> dict[str, QAction]:
    """Create the window's actions (not yet connected to anything).

    Shortcuts work across the whole window (``WindowShortcut``); the tooltip shows them.
    """
    actions: dict[str, QAction] = {}
    for spec in specs:
        act = QAction(spec.text, parent)
        act.setObjectName(spec.id)
        seqs = _sequences(spec)
        if seqs:
            act.setShortcuts(seqs)
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setStatusTip(spec.tip)
        shortcut = seqs[0].toString(QKeySequence.SequenceFormat.NativeText) if seqs else ""
        plain = spec.text.replace("&", "").rstrip("…")
        act.setToolTip(f"{plain} ({shortcut})" if shortcut else plain)
        act.setCheckable(spec.checkable)
        if spec.icon:
            ic = icon(spec.icon)
            if not ic.isNull():
                act.setIcon(ic)
        actions[spec.id] = act
    return actions


def shortcut_table(specs: Iterable[ActionSpec] = SPECS) -> list[tuple[str, str, str]]:
    """``(group, command, shortcuts)`` rows for the Help list, in platform notation."""
    rows: list[tuple[str, str, str]] = []
    for spec in specs:
        seqs = _sequences(spec)
        if not seqs:
            continue
        keys = ", ".join(q.toString(QKeySequence.SequenceFormat.NativeText) for q in seqs)
        rows.append((spec.group, spec.text.replace("&", "").rstrip("…"), keys))
    return rows
