"""Every command of the main window as a QAction, with platform-conventional shortcuts.

The table below is the single source of the menus' text, the shortcuts and the Help >
Keyboard Shortcuts list, so the three can never disagree. Standard keys (Open, Save, Undo,
Copy ...) use ``QKeySequence.StandardKey`` so they follow each platform's convention (Cmd on
macOS, Ctrl+Y or Ctrl+Shift+Z for Redo ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
        "edit.cut",
        "Cu&t",
        "Edit",
        (Key.Cut,),
        "Cut the selection to the clipboard; later audio on its tracks moves earlier",
        icon="cut",
    ),
    ActionSpec("edit.copy", "&Copy", "Edit", (Key.Copy,), "Copy the selection", icon="copy"),
    ActionSpec(
        "edit.paste",
        "&Paste",
        "Edit",
        (Key.Paste,),
        "Insert the clipboard at the cursor, in the lane clicked",
        icon="paste",
    ),
    ActionSpec(
        "edit.delete",
        "&Delete",
        "Edit",
        (Key.Delete, "Backspace"),
        "Delete the selection and close the gap on its tracks (Silence keeps the length)",
    ),
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
    ActionSpec(
        "region.make_loop",
        "Make Seamless &Loop",
        "Regions",
        (),
        "Regenerate where the selected region's end meets its start, so it repeats without a seam",
        icon="loop",
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
    # Generate (enabled once the window has its generation panels)
    ActionSpec(
        "take.generate",
        "&Generate",
        "Generate",
        ("Ctrl+Return", "Ctrl+Enter"),
        "Generate with the Generate panel's settings",
    ),
    ActionSpec(
        "take.cancel",
        "&Cancel Generation",
        "Generate",
        ("Ctrl+.",),
        "Cancel the running generation (queued ones stay)",
    ),
    ActionSpec(
        "take.accept",
        "&Accept Take",
        "Generate",
        ("Shift+Return", "Shift+Enter"),
        "Splice the chosen take into the song",
    ),
    ActionSpec("take.next", "&Next Take", "Generate", ("]",), "Choose the region's next take"),
    ActionSpec(
        "take.previous", "&Previous Take", "Generate", ("[",), "Choose the region's previous take"
    ),
    ActionSpec(
        "take.ab",
        "Switch A/&B",
        "Generate",
        ("A",),
        "While a take plays in place: hear the original (A) or the take (B)",
    ),
    ActionSpec(
        "take.reroll",
        "&Re-roll Take",
        "Generate",
        ("R",),
        "One more take of the region, same settings, new seed",
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

MENU_ORDER = ("File", "Edit", "Regions", "View", "Generate", "Transport", "Help")

GENERATE_ACTIONS = tuple(s.id for s in SPECS if s.group == "Generate")
"""Commands of the generation panels: disabled until a window installs them."""


def _first_key(q: QKeySequence) -> Qt.Key:
    combination: Any = q[0]  # type: ignore[index]  # the stubs lack QKeySequence.__getitem__
    return Qt.Key(combination.key())


def _printable(q: QKeySequence) -> bool:
    """Whether the sequence's key is one every keyboard has (a letter, digit, sign, arrow, …)."""
    key = _first_key(q)
    return int(Qt.Key.Key_Space) <= int(key) <= int(Qt.Key.Key_AsciiTilde) or key in _COMMON_KEYS


_COMMON_KEYS = {
    Qt.Key.Key_Escape,
    Qt.Key.Key_Tab,
    Qt.Key.Key_Backtab,
    Qt.Key.Key_Backspace,
    Qt.Key.Key_Return,
    Qt.Key.Key_Enter,
    Qt.Key.Key_Delete,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
    Qt.Key.Key_Left,
    Qt.Key.Key_Right,
    Qt.Key.Key_Up,
    Qt.Key.Key_Down,
    Qt.Key.Key_F1,
}


def _shown(spec: ActionSpec) -> list[QKeySequence]:
    """The shortcuts worth telling the user: of a standard key only its usual binding (not the
    dedicated Undo/Copy/F14 keys of some keyboards), and every portable one given by name."""
    seqs: list[QKeySequence] = []
    for s in spec.shortcuts:
        if isinstance(s, str):
            seqs.append(QKeySequence(s))
            continue
        bindings = [q for q in QKeySequence.keyBindings(s) if not q.isEmpty()]
        usual = [q for q in bindings if _printable(q)]
        if usual:
            seqs.append(usual[0])
    out: list[QKeySequence] = []
    for q in seqs:
        if not q.isEmpty() and _printable(q) and all(q != o for o in out):
            out.append(q)
    # Keypad twins (Ctrl+Enter next to Ctrl+Return) say nothing new.
    return [q for q in out if _first_key(q) != Qt.Key.Key_Enter or len(out) == 1]


def shortcut_text(spec_or_action: ActionSpec | QAction) -> str:
    """The shortcuts of a command as a person reads them ("Ctrl+Z", "Del or Backspace")."""
    if isinstance(spec_or_action, QAction):
        spec = _SPEC_BY_ID.get(spec_or_action.objectName())
        if spec is None:
            seqs = spec_or_action.shortcuts()[:1]
            return seqs[0].toString(QKeySequence.SequenceFormat.NativeText) if seqs else ""
        spec_or_action = spec
    return " or ".join(
        q.toString(QKeySequence.SequenceFormat.NativeText) for q in _shown(spec_or_action)
    )


def with_shortcut(tip: str, action: QAction) -> str:
    """``tip`` followed by the command's shortcut in brackets (when it has one)."""
    keys = shortcut_text(action)
    return f"{tip} ({keys})" if keys else tip


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
        shortcut = shortcut_text(spec)
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
        keys = shortcut_text(spec)
        if keys:
            rows.append((spec.group, spec.text.replace("&", "").rstrip("…"), keys))
    return rows


_SPEC_BY_ID = {spec.id: spec for spec in SPECS}
