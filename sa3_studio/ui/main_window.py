"""The editor's main window: menus, toolbar, timeline, panels and status bar.

The window is a view of :class:`~sa3_studio.app.services.EditorServices`; it turns user
gestures into controller calls and controller signals into drawing. It asks the user questions
only through its :class:`~sa3_studio.ui.dialogs.Prompts` (tests replace them).

Extension points for the generation workflow:

- :meth:`MainWindow.set_generate_panel` / :meth:`MainWindow.set_takes_panel` /
  :meth:`MainWindow.add_panel` dock a panel (the View > Panels menu gets a toggle for it);
- ``window.timeline.set_take_overlays([...])`` draws pending takes over their regions;
- :meth:`MainWindow.target_ranges` and :meth:`MainWindow.selected_regions` say what the user
  selected; ``services.document`` commits takes; ``services.transport`` auditions them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sa3_studio.app.jobs import Job
from sa3_studio.app.regions_model import RegionsModel
from sa3_studio.app.services import EditorServices
from sa3_studio.app.session import FrameRange
from sa3_studio.app.settings import Preferences
from sa3_studio.app.snapper import make_snapper
from sa3_studio.app.spectrogram import Spectrogram, compute_spectrogram
from sa3_studio.app.tracks import TrackLanes
from sa3_studio.app.transport import TransportState
from sa3_studio.app.waveform_source import ProjectPeaks
from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.document.project import Project
from sa3_studio.document.region import Region
from sa3_studio.document.timefmt import format_time
from sa3_studio.errors import Sa3Error
from sa3_studio.ui.actions import (
    GENERATE_ACTIONS,
    MENU_ORDER,
    SPECS,
    build_actions,
    shortcut_table,
)
from sa3_studio.ui.dialogs import Prompts, UnsavedChoice
from sa3_studio.ui.focus import FocusGuard
from sa3_studio.ui.icons import icon
from sa3_studio.ui.regions_panel import RegionsPanel
from sa3_studio.ui.ruler import Tempo
from sa3_studio.ui.theme import Theme, apply_theme, theme_named
from sa3_studio.ui.timeline import TimelineWidget
from sa3_studio.ui.track_headers import TrackHeaders
from sa3_studio.ui.transport_bar import SelectionDisplay, TimeDisplay
from sa3_studio.ui.window_edits import EditCommands
from sa3_studio.ui.window_files import FileCommands

log = logging.getLogger(__name__)

APP_NAME = "SA3 Studio"
SPECTROGRAM_DELAY_MS = 90
TAKES_HEIGHT = 210
REGIONS_WIDTH = 440
GENERATE_SHARE = 440
REGIONS_SHARE = 260

_SELECTION_ACTIONS = (
    "edit.cut",
    "edit.copy",
    "edit.delete",
    "edit.silence",
    "edit.fade_in",
    "edit.fade_out",
    "edit.gain",
    "edit.normalize",
    "region.add",
    "view.zoom_selection",
)
_DOCUMENT_ACTIONS = (
    "file.save",
    "file.save_as",
    "file.export",
    "file.close",
    "edit.paste",
    "edit.select_all",
    "edit.select_none",
    "edit.nudge_left",
    "edit.nudge_right",
    "edit.nudge_left_big",
    "edit.nudge_right_big",
    "region.next",
    "region.previous",
    "view.zoom_in",
    "view.zoom_out",
    "view.zoom_fit",
    "view.tempo",
    "transport.play",
    "transport.stop",
    "transport.play_cursor",
    "transport.start",
    "transport.end",
)


class WelcomePage(QWidget):
    """Shown before a file is open: how to start, and the recent files."""

    def __init__(self, open_action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        title = QLabel(APP_NAME)
        title.setObjectName("welcomeTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "Open an audio file or a project, or drop one here.\n"
            "Select spans of the song, describe what should be there, and regenerate them."
        )
        text.setObjectName("hint")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton("Open…")
        button.setObjectName("welcomeOpen")
        button.clicked.connect(open_action.trigger)
        button.setFixedWidth(160)
        self.recent = QListWidget()
        self.recent.setObjectName("welcomeRecent")
        self.recent.setMaximumWidth(720)
        self.recent.setMinimumWidth(360)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.recent.setMaximumHeight(180)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(title)
        lay.addWidget(text)
        lay.addSpacing(16)
        lay.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addSpacing(16)
        lay.addWidget(self.recent, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(3)


class MainWindow(FileCommands, EditCommands, QMainWindow):
    """The editor window.

    Args:
        services: the controllers (see :func:`~sa3_studio.app.services.build_services`).
        prompts: the user-facing questions (default: modal dialogs).
        parent: parent widget.
    """

    def __init__(
        self,
        services: EditorServices,
        prompts: Prompts | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.services = services
        self.prompts = prompts or Prompts(self)
        prefs = services.settings.preferences()
        self._theme: Theme = theme_named(prefs.theme)
        self._fit_next = True
        self._closing = False
        self._after_save: Callable[[], None] | None = None
        self._discard_on_adopt = False
        self._recovery_checked = False
        self._open_after_recovery: Path | None = None
        self._saving_project: Project | None = None
        self._spec_job: Job | None = None
        self.panels: dict[str, QDockWidget] = {}

        s = services
        self.actions = build_actions(self)
        self.timeline = TimelineWidget(s.session, self._theme)
        self.timeline.plot.setAcceptDrops(False)
        self.timeline.set_snapper(make_snapper(lambda: s.document.project, s.session))
        self.track_headers = TrackHeaders(s.document, self.timeline)
        self.welcome = WelcomePage(self.actions["file.open"])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.timeline)
        self.setCentralWidget(self.stack)
        self.regions_model = RegionsModel(s.document, self)

        self._build_menus()
        self._build_toolbar()
        self._build_docks()
        self._build_status_bar()
        self._connect()
        self._restore_view_flags()
        self.focus_guard = FocusGuard(self, self._focus_home)

        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.timeout.connect(self._on_autosave_timer)
        self._apply_autosave_interval(prefs.autosave_seconds)
        self._spec_timer = QTimer(self)
        self._spec_timer.setSingleShot(True)
        self._spec_timer.setInterval(SPECTROGRAM_DELAY_MS)
        self._spec_timer.timeout.connect(self._request_spectrogram)

        self.setAcceptDrops(True)
        # The first start fits the screen (a 1366x768 laptop included); later starts restore.
        screen = self.screen() or QApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        self.resize(
            min(1400, room.width()) if room is not None else 1400,
            min(860, room.height()) if room is not None else 860,
        )
        self.setMinimumSize(QSize(900, 560))
        geometry, state = s.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._on_project(s.document.project)
        self._on_history()
        self._update_actions()
        self._refresh_recent()
        self._update_title()
        QTimer.singleShot(0, self._check_audio_devices)
        QTimer.singleShot(0, self.offer_recovery)

    # ---------------------------------------------------------------- building

    def _build_menus(self) -> None:
        bar = self.menuBar()
        menus: dict[str, QMenu] = {name: bar.addMenu(f"&{name}") for name in MENU_ORDER}
        self.menus = menus
        a = self.actions
        file_menu = menus["File"]
        file_menu.addAction(a["file.open"])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        for key in ("file.save", "file.save_as"):
            file_menu.addAction(a[key])
        file_menu.addSeparator()
        file_menu.addAction(a["file.export"])
        file_menu.addSeparator()
        file_menu.addAction(a["file.close"])
        file_menu.addAction(a["file.quit"])
        a["file.quit"].setMenuRole(QAction.MenuRole.QuitRole)

        edit = menus["Edit"]
        groups = (
            ("edit.undo", "edit.redo"),
            ("edit.cut", "edit.copy", "edit.paste", "edit.delete"),
            ("edit.silence", "edit.fade_in", "edit.fade_out", "edit.gain", "edit.normalize"),
            ("edit.select_all", "edit.select_none"),
            ("edit.preferences",),
        )
        for i, group in enumerate(groups):
            if i:
                edit.addSeparator()
            for key in group:
                edit.addAction(a[key])
        nudge = edit.addMenu("&Nudge")
        for key in (
            "edit.nudge_left",
            "edit.nudge_right",
            "edit.nudge_left_big",
            "edit.nudge_right_big",
        ):
            nudge.addAction(a[key])
        a["edit.preferences"].setMenuRole(QAction.MenuRole.PreferencesRole)

        regions = menus["Regions"]
        for key in ("region.add", "region.delete"):
            regions.addAction(a[key])
        regions.addSeparator()
        for key in ("region.next", "region.previous"):
            regions.addAction(a[key])
        regions.addSeparator()
        regions.addAction(a["region.make_loop"])
        a["region.make_loop"].setEnabled(False)  # until the generation panels are installed

        view = menus["View"]
        for key in ("view.zoom_in", "view.zoom_out", "view.zoom_selection", "view.zoom_fit"):
            view.addAction(a[key])
        view.addSeparator()
        view.addAction(a["view.spectrogram"])
        view.addAction(a["view.follow"])
        view.addSeparator()
        for key in ("view.snap_latent", "view.snap_beats", "view.snap_zero"):
            view.addAction(a[key])
        view.addAction(a["view.tempo"])
        view.addSeparator()
        self.panels_menu = view.addMenu("&Panels")

        generate = menus["Generate"]
        for key in GENERATE_ACTIONS:
            generate.addAction(a[key])
            a[key].setEnabled(False)  # until the generation panels are installed
            if key == "take.cancel":
                generate.addSeparator()

        transport = menus["Transport"]
        for key in ("transport.play", "transport.stop", "transport.play_cursor", "transport.loop"):
            transport.addAction(a[key])
        transport.addSeparator()
        for key in ("transport.start", "transport.end"):
            transport.addAction(a[key])

        help_menu = menus["Help"]
        help_menu.addAction(a["help.shortcuts"])
        help_menu.addAction(a["help.about"])
        a["help.about"].setMenuRole(QAction.MenuRole.AboutRole)

        # Every action also lives on the window, so its shortcut works with menus hidden.
        self.addActions(list(a.values()))

    def _tool_button(self, action: QAction) -> QToolButton:
        b = QToolButton()
        b.setDefaultAction(action)
        b.setAutoRaise(True)
        return b

    def _build_toolbar(self) -> None:
        a = self.actions
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for key in ("file.open", "file.save", "file.export"):
            tb.addAction(a[key])
        tb.addSeparator()
        for key in ("edit.undo", "edit.redo"):
            tb.addAction(a[key])
        tb.addSeparator()
        for key in ("transport.start", "transport.play", "transport.stop", "transport.end"):
            tb.addAction(a[key])
        tb.addAction(a["transport.loop"])
        play_button = tb.widgetForAction(a["transport.play"])
        if play_button is not None:
            play_button.setObjectName("playButton")
        self.time_display = TimeDisplay(self.services.session)
        tb.addWidget(self.time_display)
        self.selection_display = SelectionDisplay(self.services.session)
        tb.addWidget(self.selection_display)
        tb.addSeparator()
        tb.addAction(a["transport.play_cursor"])
        tb.addAction(a["view.follow"])
        tb.addSeparator()
        snap_label = QLabel("Snap")
        snap_label.setObjectName("toolbarLabel")
        tb.addWidget(snap_label)
        for key in ("view.snap_latent", "view.snap_beats", "view.snap_zero"):
            tb.addAction(a[key])
        tb.addSeparator()
        for key in ("view.zoom_in", "view.zoom_out", "view.zoom_selection", "view.zoom_fit"):
            tb.addAction(a[key])
        tb.addSeparator()
        tb.addAction(a["view.spectrogram"])
        tb.addAction(a["region.add"])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_docks(self) -> None:
        a = self.actions
        self.regions_panel = RegionsPanel(
            self.regions_model, self.services.session, a["region.add"], a["region.delete"]
        )
        self.add_panel(
            self.regions_panel, "Regions", Qt.DockWidgetArea.RightDockWidgetArea, "regions"
        )
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setObjectName("statusBar")
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("progressLabel")
        self.progress = QProgressBar()
        self.progress.setObjectName("jobProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelJob")
        self.cancel_button.clicked.connect(lambda: self.services.files.cancel())
        for w in (self.progress_label, self.progress, self.cancel_button):
            w.setVisible(False)
            sb.addPermanentWidget(w)
        self.format_label = QLabel("")
        self.format_label.setObjectName("formatLabel")
        sb.addPermanentWidget(self.format_label)
        self.device_label = QLabel("")
        self.device_label.setObjectName("deviceLabel")
        self.device_label.setVisible(False)
        sb.addPermanentWidget(self.device_label)

    # ---------------------------------------------------------------- public API

    def add_panel(
        self,
        widget: QWidget,
        title: str,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        name: str = "",
        *,
        tabify_with: str = "",
    ) -> QDockWidget:
        """Dock ``widget`` as a panel; View > Panels gets a toggle for it.

        Args:
            widget: the panel.
            title: the dock's title.
            area: where it docks.
            name: a stable name (saved with the window layout); defaults to the title.
            tabify_with: the name of a panel to share tabs with.

        Returns:
            The dock widget.
        """
        key = name or title.lower()
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{key}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        if tabify_with and tabify_with in self.panels:
            self.tabifyDockWidget(self.panels[tabify_with], dock)
        self.panels[key] = dock
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def set_generate_panel(self, widget: QWidget) -> QDockWidget:
        """Dock the generation panel (right, above the regions list)."""
        dock = self.add_panel(widget, "Generate", Qt.DockWidgetArea.RightDockWidgetArea, "generate")
        self.splitDockWidget(dock, self.panels["regions"], Qt.Orientation.Vertical)
        # Room for several regions under the (scrollable) Generate panel, also at 768 px.
        self.resizeDocks(
            [dock, self.panels["regions"]], [GENERATE_SHARE, REGIONS_SHARE], Qt.Orientation.Vertical
        )
        return dock

    def set_takes_panel(self, widget: QWidget) -> QDockWidget:
        """Dock the takes panel (below the timeline, leaving the timeline most of the height)."""
        dock = self.add_panel(widget, "Takes", Qt.DockWidgetArea.BottomDockWidgetArea, "takes")
        self.resizeDocks([dock], [TAKES_HEIGHT], Qt.Orientation.Vertical)
        return dock

    def selected_regions(self) -> list[Region]:
        """The document regions the user selected (in the timeline or the regions list)."""
        project = self.services.document.project
        ids = set(self.services.session.selected_region_ids())
        return [r for r in project.regions if r.id in ids]

    def target_ranges(self) -> list[FrameRange]:
        """What an action on "the selection" should act on: the selected regions' spans, else
        the time selection."""
        regions = self.selected_regions()
        if regions:
            return sorted((r.start, r.end) for r in regions)
        return self.services.session.selection()

    def _focus_home(self) -> QWidget | None:
        """Where the keyboard belongs when no field was picked: the waveform."""
        return self.timeline.plot if self.stack.currentWidget() is self.timeline else None

    def target_tracks(self) -> list[str] | None:
        """The tracks an action on "the selection" acts on: the selected regions' tracks, else
        the lanes the selection covers; ``None``: every track."""
        regions = self.selected_regions()
        if regions:
            return sorted({r.track_id for r in regions})
        return list(self.services.session.selection_tracks()) or None

    def show_error(self, title: str, message: str) -> None:
        """Show an error dialog (the message says what happened and what to do)."""
        self.prompts.error(title, message)

    def status(self, message: str, ms: int = 5000) -> None:
        """Show a short message in the status bar."""
        self.statusBar().showMessage(message, ms)

    # ---------------------------------------------------------------- wiring

    def _connect(self) -> None:
        s = self.services
        a = self.actions
        doc, session, transport, files = s.document, s.session, s.transport, s.files
        handlers: dict[str, Callable[[], object]] = {
            "file.open": self._open_dialog,
            "file.save": self.save,
            "file.save_as": self.save_as,
            "file.export": self.export,
            "file.close": self._close_project,
            "file.quit": self.close,
            "edit.undo": self._undo,
            "edit.redo": self._redo,
            "edit.cut": self._cut,
            "edit.copy": self._copy,
            "edit.paste": self._paste,
            "edit.delete": self._delete,
            "edit.silence": lambda: doc.silence(
                self.target_ranges(), track_ids=self.target_tracks()
            ),
            "edit.fade_in": lambda: doc.fade_in(
                self.target_ranges(), track_ids=self.target_tracks()
            ),
            "edit.fade_out": lambda: doc.fade_out(
                self.target_ranges(), track_ids=self.target_tracks()
            ),
            "edit.gain": self._gain,
            "edit.normalize": self._normalize,
            "edit.select_all": self._select_all,
            "edit.select_none": self._select_none,
            "edit.nudge_left": lambda: self._nudge(-1, big=False),
            "edit.nudge_right": lambda: self._nudge(1, big=False),
            "edit.nudge_left_big": lambda: self._nudge(-1, big=True),
            "edit.nudge_right_big": lambda: self._nudge(1, big=True),
            "edit.preferences": self._preferences,
            "region.add": self._add_regions,
            "region.delete": self._delete_regions,
            "region.next": lambda: self._step_region(1),
            "region.previous": lambda: self._step_region(-1),
            "view.zoom_in": session.zoom_in,
            "view.zoom_out": session.zoom_out,
            "view.zoom_selection": self._zoom_selection,
            "view.zoom_fit": session.zoom_fit,
            "view.tempo": self._tempo,
            "transport.play": transport.play_pause,
            "transport.stop": transport.stop,
            "transport.play_cursor": transport.play_from_cursor,
            "transport.start": lambda: self._go_to(0),
            "transport.end": lambda: self._go_to(session.length),
            "help.shortcuts": lambda: self.prompts.shortcuts(shortcut_table(SPECS)),
            "help.about": self.prompts.about,
        }
        for key, fn in handlers.items():
            a[key].triggered.connect(lambda _checked=False, fn=fn: self._guarded(fn))
        a["view.spectrogram"].toggled.connect(self._set_spectrogram)
        a["view.follow"].toggled.connect(self._set_follow)
        a["view.snap_latent"].toggled.connect(lambda on: self._set_snap("latent", on))
        a["view.snap_beats"].toggled.connect(lambda on: self._set_snap("beats", on))
        a["view.snap_zero"].toggled.connect(lambda on: self._set_snap("zero_crossings", on))
        a["transport.loop"].toggled.connect(transport.set_loop_enabled)

        doc.project_changed.connect(self._on_project)
        doc.project_changed.connect(lambda *_: self._schedule_autosave())
        doc.history_changed.connect(self._on_history)
        doc.path_changed.connect(lambda *_: self._update_title())
        doc.error.connect(lambda msg: self.show_error("Cannot do that", msg))
        session.selection_changed.connect(self._update_actions)
        session.selected_regions_changed.connect(self._update_actions)
        session.cursor_changed.connect(self._on_cursor)
        session.view_changed.connect(self._on_view_changed)
        transport.state_changed.connect(self._on_transport_state)
        transport.availability_changed.connect(self._on_availability)
        transport.error.connect(lambda msg: self.show_error("Playback failed", msg))
        files.opened.connect(self._on_opened)
        # The keyboard goes to the waveform, so that Space, = and - work at once.
        files.opened.connect(lambda *_: self.focus_guard.go_home_soon())
        files.saved.connect(self._on_saved)
        files.autosaved.connect(lambda: self.status("Autosaved.", 1500))
        files.exported.connect(self._on_exported)
        files.failed.connect(self._on_file_failed)
        files.cancelled.connect(lambda label: self.status(f"{label} cancelled."))
        files.progress.connect(self._on_progress)
        files.busy_changed.connect(self._on_busy)
        s.view_runner.finished.connect(self._on_view_job)
        s.settings.recent_files_changed.connect(lambda *_: self._refresh_recent())
        s.settings.preferences_changed.connect(self._apply_preferences)
        self.timeline.region_edge_committed.connect(self._on_region_edge)
        self.timeline.region_drag_out.connect(self._drag_region_out)
        self.timeline.region_activated.connect(lambda *_: None)
        self.timeline.context_menu_requested.connect(self._context_menu)
        self.regions_panel.drag_out.connect(self._drag_region_out)
        self.regions_panel.activated.connect(self._zoom_to_region)
        self.welcome.recent.itemActivated.connect(
            lambda item: self.open_path(item.data(Qt.ItemDataRole.UserRole))
        )

    def _guarded(self, fn: Callable[[], object]) -> None:
        # Nothing escapes a slot: an unexpected error becomes a dialog, the document stays.
        try:
            fn()
        except Sa3Error as exc:
            self.show_error("Cannot do that", str(exc))
        except Exception as exc:
            log.exception("command failed")
            self.show_error(
                "Something went wrong",
                f"The command failed because of an internal error ({type(exc).__name__}: "
                f"{exc}). Your project is unchanged; please try again.",
            )

    def _restore_view_flags(self) -> None:
        st = self.services.settings
        a = self.actions
        a["view.follow"].setChecked(st.flag("follow", True))
        self.services.transport.set_follow(a["view.follow"].isChecked())
        for key, flag in (
            ("view.snap_latent", "snap_latent"),
            ("view.snap_beats", "snap_beats"),
            ("view.snap_zero", "snap_zero"),
        ):
            a[key].setChecked(st.flag(flag, False))
        a["view.spectrogram"].setChecked(st.flag("spectrogram", False))

    # ---------------------------------------------------------------- document -> view

    def _on_project(self, project: Project) -> None:
        s = self.services
        if not s.document.has_document and (project.frames > 0 or project.regions):
            # Audio was generated into the empty editor: that is a new, untitled project.
            s.files.start_untitled()
            s.document.adopt_untitled()
            return
        has_doc = s.document.has_document
        self.stack.setCurrentWidget(self.timeline if has_doc else self.welcome)
        peaks = ProjectPeaks(project, s.pyramids)
        # Several tracks: one lane each (the overview keeps the mix); one track: as always.
        lanes = TrackLanes(project, s.pyramids) if has_doc and len(project.tracks) > 1 else None
        self.timeline.set_source(peaks if has_doc else None, lanes)
        self.timeline.set_lanes([t.id for t in project.tracks] if lanes is not None else [])
        # A region whose take was accepted says so: that audio is in the mix.
        numbers = {k.id: k.number for k in project.takes}
        notes = {
            r.id: f"Take {numbers[r.accepted_take_id]} in the mix"
            for r in project.regions
            if r.accepted_take_id in numbers
        }
        self.timeline.set_regions(project.regions, notes)
        # Regions past the end (a pending extension, new audio) are part of what is shown.
        shown = max([project.frames, *(r.end for r in project.regions)])
        # When the song grows at its end (an extension) while the view shows that end, the
        # view follows, so that the new part is seen; a view of the whole song stays whole.
        old = s.session.length
        start_s, end_s = s.session.view_range()
        grew_in_view = 0 < old < shown and end_s * SAMPLE_RATE >= old - 1
        whole = grew_in_view and start_s <= 0.0
        s.session.set_timeline(SAMPLE_RATE, shown, fit=self._fit_next or whole)
        if grew_in_view and not whole:
            s.session.ensure_visible(shown / SAMPLE_RATE)
        self._fit_next = False
        s.pyramids.retain(project.audio_buffers().keys())
        live = {r.id for r in project.regions}
        kept = [rid for rid in s.session.selected_region_ids() if rid in live]
        s.session.set_selected_regions(kept)
        grid = project.meta.grid
        tempo = (
            Tempo(grid.bpm, grid.offset / grid.sample_rate, grid.beats_per_bar) if grid else None
        )
        self.timeline.set_tempo(tempo)
        self.time_display.set_grid(grid)
        self._update_grid_lines()
        s.transport.set_audio_provider(self._mix_provider(project))
        self._update_format_label(project)
        self._update_actions()
        self._update_title()
        if self.actions["view.spectrogram"].isChecked():
            self._spec_timer.start()

    def _mix_provider(self, project: Project) -> Callable[[], tuple[object, int]]:
        from sa3_studio.app.mixdown import render_mix

        return lambda: (render_mix(project), SAMPLE_RATE)

    def _on_history(self) -> None:
        doc = self.services.document
        a = self.actions
        a["edit.undo"].setText(doc.undo_text())
        a["edit.redo"].setText(doc.redo_text())
        a["edit.undo"].setEnabled(doc.history.can_undo)
        a["edit.redo"].setEnabled(doc.history.can_redo)
        self._update_title()

    def _update_title(self) -> None:
        doc = self.services.document
        if doc.has_document:
            # "[*]" is where Qt shows the unsaved mark; without it setWindowModified warns.
            self.setWindowTitle(f"{doc.title()}[*] — {APP_NAME}")
            self.setWindowModified(doc.is_dirty)
        else:
            self.setWindowModified(False)
            self.setWindowTitle(APP_NAME)

    def _update_format_label(self, project: Project) -> None:
        if not self.services.document.has_document:
            self.format_label.setText("")
            return
        meta = project.meta
        source = ""
        if meta.source_format:
            kind = meta.source_subtype.replace("PCM_", "").replace("_", " ")
            source = (
                f"  ·  source {meta.source_sample_rate / 1000:g} kHz {meta.source_format} {kind}"
            )
        self.format_label.setText(
            f"{SAMPLE_RATE / 1000:g} kHz · Stereo · {format_time(project.frames)}{source}"
        )

    def _update_actions(self) -> None:
        s = self.services
        a = self.actions
        has_doc = s.document.has_document and s.document.project.frames > 0
        has_sel = has_doc and bool(self.target_ranges())
        for key in _SELECTION_ACTIONS:
            a[key].setEnabled(has_sel)
        for key in _DOCUMENT_ACTIONS:
            a[key].setEnabled(has_doc or (key in ("file.close",) and s.document.has_document))
        a["edit.paste"].setEnabled(has_doc and s.document.clipboard is not None)
        a["region.delete"].setEnabled(bool(s.session.selected_region_ids()))
        available = s.transport.known_available
        for key in ("transport.play", "transport.play_cursor"):
            a[key].setEnabled(has_doc and available)

    def _update_grid_lines(self) -> None:
        snap = self.services.session.snap
        grid = self.services.document.project.meta.grid
        if snap.beats and grid is not None:
            self.timeline.set_grid(
                grid.beat_frames / SAMPLE_RATE, grid.offset / SAMPLE_RATE, grid.beats_per_bar
            )
        elif snap.latent:
            self.timeline.set_grid(LATENT_FRAMES / SAMPLE_RATE)
        else:
            self.timeline.set_grid(0.0)

    # ---------------------------------------------------------------- view

    def _set_snap(self, mode: str, on: bool) -> None:
        self.services.session.set_snap(**{mode: on})
        flag = {"latent": "snap_latent", "beats": "snap_beats", "zero_crossings": "snap_zero"}[mode]
        self.services.settings.set_flag(flag, on)
        doc = self.services.document
        if mode == "beats" and on and doc.has_document and doc.project.meta.grid is None:
            # Beats need a tempo: ask for it; without one the snap goes back off.
            self._tempo()
            if doc.project.meta.grid is None:
                self.status("Snap to beats needs a tempo: set one with View > Set Tempo.")
                self.actions["view.snap_beats"].setChecked(False)
                return
        self._update_grid_lines()

    def _set_follow(self, on: bool) -> None:
        self.services.transport.set_follow(on)
        self.services.settings.set_flag("follow", on)

    def _set_spectrogram(self, on: bool) -> None:
        self.timeline.set_spectrogram_visible(on)
        self.services.settings.set_flag("spectrogram", on)
        if on:
            self._spec_timer.start()
        else:
            self.timeline.set_spectrogram(None)

    def _on_view_changed(self, *_: float) -> None:
        if self.actions["view.spectrogram"].isChecked():
            self._spec_timer.start()

    def _request_spectrogram(self) -> None:
        s = self.services
        project = s.document.project
        if not s.document.has_document or project.frames == 0:
            return
        start_s, end_s = s.session.view_range()
        a = max(int(start_s * SAMPLE_RATE), 0)
        b = min(int(end_s * SAMPLE_RATE), project.frames)
        if b <= a:
            return
        columns = max(int(self.timeline.view_box.width()), 64)
        peaks = ProjectPeaks(project, s.pyramids)
        frames = project.frames

        def work(progress: object, token: object) -> Spectrogram:
            return compute_spectrogram(peaks.samples, frames, SAMPLE_RATE, a, b, columns)

        self._spec_job = s.view_runner.submit("spectrogram", work, "Spectrogram")

    def _on_view_job(self, job: Job, result: object) -> None:
        if (
            job is self._spec_job
            and isinstance(result, Spectrogram)
            and self.actions["view.spectrogram"].isChecked()
        ):
            self.timeline.set_spectrogram(result)

    def _go_to(self, frame: int) -> None:
        s = self.services
        s.session.set_cursor(frame)
        s.session.ensure_visible(frame / SAMPLE_RATE)
        if s.transport.is_playing:
            s.transport.seek(frame)

    def _on_cursor(self, frame: int) -> None:
        t = self.services.transport
        if t.state in (TransportState.PLAYING, TransportState.PAUSED):
            t.seek(frame)

    # ---------------------------------------------------------------- transport

    def _check_audio_devices(self) -> None:
        try:
            self.services.transport.check_devices()
        except Exception:  # a broken audio system must not stop the editor
            log.exception("checking audio devices failed")
            self._on_availability("The audio system could not be queried.")
        device = self.services.settings.preferences().output_device
        if device and self.services.transport.available:
            self.services.transport.set_output_device(device)

    def _on_transport_state(self, state: str) -> None:
        playing = state == TransportState.PLAYING.value
        a = self.actions["transport.play"]
        a.setIcon(icon("pause" if playing else "play", self._theme.text))
        a.setText("&Pause" if playing else "&Play")
        self.time_display.set_playing(
            state in (TransportState.PLAYING.value, TransportState.PAUSED.value)
        )
        self.timeline.set_playhead_visible(state != TransportState.STOPPED.value)

    def _on_availability(self, message: str) -> None:
        available = not message
        self.device_label.setVisible(not available)
        self.device_label.setText("" if available else "No audio output device")
        self.device_label.setToolTip(message)
        if not available:
            self.status(message, 10000)
        self._update_actions()

    # ---------------------------------------------------------------- settings

    def _preferences(self) -> None:
        s = self.services
        prefs = self.prompts.settings(s.settings.preferences(), s.transport.output_device_names())
        if prefs is not None:
            s.settings.set_preferences(prefs)

    def _apply_preferences(self, prefs: Preferences) -> None:
        theme = theme_named(prefs.theme)
        if theme.name != self._theme.name:
            self.set_theme(theme)
        self.services.transport.set_output_device(prefs.output_device)
        self._apply_autosave_interval(prefs.autosave_seconds)

    def set_theme(self, theme: Theme) -> None:
        """Switch every colour of the window to ``theme``."""
        self._theme = theme
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)
        self.timeline.set_theme(theme)
        for spec in SPECS:
            if spec.icon:
                self.actions[spec.id].setIcon(icon(spec.icon, theme.text, theme.dim_text))
        self._on_transport_state(self.services.transport.state.value)

    @property
    def theme(self) -> Theme:
        """The current theme."""
        return self._theme

    # ---------------------------------------------------------------- closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        doc = self.services.document
        discard = False
        if not self._closing and doc.has_document and doc.is_dirty:
            choice = self.prompts.ask_unsaved(doc.title())
            if choice is UnsavedChoice.CANCEL:
                event.ignore()
                return
            if choice is UnsavedChoice.SAVE:
                event.ignore()
                self._after_save = self._close_after_save
                self.save()
                return
            discard = True
        self._closing = True
        self.shutdown(discard_unsaved=discard)
        event.accept()

    def _close_after_save(self) -> None:
        self._closing = True
        self.close()

    def shutdown(self, *, discard_unsaved: bool = False) -> None:
        """Stop playback and background work, close the project, remember the layout.

        Args:
            discard_unsaved: the user chose to drop unsaved changes (their autosave goes too);
                otherwise unsaved work stays recoverable.
        """
        s = self.services
        self._autosave.stop()
        self._spec_timer.stop()
        doc = s.document
        if not discard_unsaved and doc.has_document and doc.is_dirty:
            # Quitting with unsaved work the user did not drop: make sure it is on disk.
            s.files.autosave(doc.history)
        s.settings.set_window_state(self.saveGeometry(), self.saveState())
        s.settings.sync()
        s.shutdown(discard_unsaved=discard_unsaved)
