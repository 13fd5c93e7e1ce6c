"""Preferences and remembered state in QSettings, the settings and export dialogs, themes, the
start-up paths of the composition root and the Qt bindings workaround."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import open_file, prompts_of
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import QApplication

from sa3_studio.app.export_request import ExportWhat, FormatChoice
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.settings import MAX_RECENT_FILES, AppSettings, Preferences
from sa3_studio.ui.export_dialog import ExportDialog
from sa3_studio.ui.main_window import MainWindow
from sa3_studio.ui.settings_dialog import SettingsDialog
from sa3_studio.ui.theme import DARK, LIGHT

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def test_preferences_survive_a_restart(tmp_path: Path) -> None:
    prefs = Preferences(
        models_folder="/data/models",
        compute_device="cuda:1",
        precision="bfloat16",
        output_device="USB Audio",
        crossfade_ms=40.0,
        theme="light",
        autosave_seconds=10,
    )
    first = _settings(tmp_path)
    seen: list[object] = []
    first.preferences_changed.connect(seen.append)
    first.set_preferences(prefs)
    assert seen == [prefs]
    assert _settings(tmp_path).preferences() == prefs


def test_bad_stored_values_fall_back_to_defaults(tmp_path: Path) -> None:
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("prefs/theme", "purple")
    store.setValue("prefs/crossfade_ms", "lots")
    store.setValue("prefs/precision", "float8")
    prefs = AppSettings(store).preferences()
    assert (prefs.theme, prefs.crossfade_ms, prefs.precision) == ("dark", 25.0, "auto")


def test_recent_files_most_recent_first_and_bounded(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    for i in range(MAX_RECENT_FILES + 3):
        s.add_recent_file(tmp_path / f"f{i}.wav")
    s.add_recent_file(tmp_path / "f5.wav")
    files = s.recent_files()
    assert len(files) == MAX_RECENT_FILES
    assert files[0].endswith("f5.wav")
    assert files[1].endswith(f"f{MAX_RECENT_FILES + 2}.wav")
    assert sum(f.endswith("f5.wav") for f in files) == 1


def test_settings_dialog_edits_every_preference(qtbot: Any) -> None:
    dlg = SettingsDialog(Preferences(), ["Built-in Output", "USB Audio"])
    qtbot.addWidget(dlg)
    dlg.models_folder.setText("/m")
    dlg.compute_device.setCurrentIndex(dlg.compute_device.findData("cpu"))
    dlg.precision.setCurrentIndex(dlg.precision.findData("float32"))
    dlg.output_device.setCurrentIndex(dlg.output_device.findData("USB Audio"))
    dlg.crossfade.setValue(12.5)
    dlg.theme.setCurrentIndex(dlg.theme.findData("light"))
    dlg.autosave.setChecked(False)
    assert dlg.preferences() == Preferences("/m", "cpu", "float32", "USB Audio", 12.5, "light", 0)


def test_a_remembered_device_that_is_gone_stays_selectable(qtbot: Any) -> None:
    dlg = SettingsDialog(Preferences(output_device="Old Card"), [])
    qtbot.addWidget(dlg)
    assert dlg.preferences().output_device == "Old Card"
    assert "not connected" in dlg.output_device.currentText()


def test_export_dialog_builds_the_request(qtbot: Any, tmp_path: Path) -> None:
    formats = [
        FormatChoice("wav24", "WAV 24-bit", "wav", 24),
        FormatChoice("flac16", "FLAC 16-bit", "flac", 16),
    ]
    dlg = ExportDialog(
        formats,
        [("region-1", "Fill 0:01–0:02")],
        has_selection=True,
        selection=[(100, 200)],
        source_rate=48000,
        default_dir=tmp_path,
        base_name="song",
    )
    qtbot.addWidget(dlg)
    req = dlg.request()
    assert req.what is ExportWhat.SELECTION
    assert req.ranges == ((100, 200),)
    assert req.sample_rate == 48000  # the source file's rate is offered first
    assert req.path == tmp_path / "song (selection).wav"
    dlg.set_what(ExportWhat.REGION)
    dlg.handles.setValue(500)
    dlg.format_combo.setCurrentIndex(1)
    req = dlg.request()
    assert (req.what, req.region_id, req.handles_ms, req.format_key) == (
        ExportWhat.REGION,
        "region-1",
        500.0,
        "flac16",
    )
    assert req.path.suffix == ".flac"
    assert dlg.dither.isEnabled()  # 16-bit: dither applies


def test_settings_from_the_menu_apply_at_once(qtbot: Any, window: MainWindow) -> None:
    prompts_of(window).settings_answer = Preferences(theme="light", autosave_seconds=0)
    window.actions["edit.preferences"].trigger()
    assert window.theme is LIGHT
    assert window.timeline.waveform._colors == LIGHT.waveform
    palette_window = QApplication.palette().window().color()
    assert palette_window == LIGHT.window
    assert window.services.settings.preferences().theme == "light"
    window.set_theme(DARK)


def test_settings_is_where_users_look_with_the_usual_key(
    qtbot: Any, window: MainWindow, song_file: Path
) -> None:
    """Settings… sits in the Edit menu, answers Ctrl+, (even from the waveform) and is in the
    F1 list."""
    act = window.actions["edit.preferences"]
    assert act.text().replace("&", "") == "Settings…"
    assert act in window.menus["Edit"].actions()
    assert act.toolTip() == "Settings (Ctrl+,)"
    window.actions["help.shortcuts"].trigger()
    rows = {c: k for _, c, k in prompts_of(window).shortcut_rows}
    assert rows["Settings"] == "Ctrl+,"

    open_file(qtbot, window, song_file)
    asked: list[Preferences] = []
    prompts = prompts_of(window)
    prompts.settings = lambda prefs, _devices: asked.append(prefs)  # type: ignore[method-assign]
    window.activateWindow()
    window.timeline.plot.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.keyClick(window.timeline.plot, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert asked == [window.services.settings.preferences()]


def test_view_toggles_are_remembered(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    window.actions["view.snap_latent"].setChecked(True)
    window.actions["view.follow"].setChecked(False)
    st = window.services.settings
    assert st.flag("snap_latent") is True
    assert st.flag("follow", True) is False
    again = MainWindow(window.services, prompts_of(window))
    try:
        assert again.actions["view.snap_latent"].isChecked()
        assert not again.actions["view.follow"].isChecked()
        assert again.services.session.snap.latent
    finally:
        again.deleteLater()


def test_recent_menu_reopens(qtbot: Any, window: MainWindow, song_file: Path) -> None:
    open_file(qtbot, window, song_file)
    entries = [a for a in window.recent_menu.actions() if a.text().startswith("&1")]
    assert entries
    assert song_file.name in entries[0].text()
    assert window.welcome.recent.count() == 1


def test_no_display_is_a_message_not_a_crash() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    code = "import sys; from sa3_studio.main import run_gui; sys.exit(run_gui([]))"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "no display found" in proc.stderr


def test_the_window_starts_and_quits_without_loading_torch(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SA3_STUDIO_EXIT_AFTER_START": "1",
        "SA3_STUDIO_DATA_DIR": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    code = (
        "import sys; from sa3_studio.main import run_gui; rc = run_gui([]); "
        "sys.exit(rc if 'torch' not in sys.modules else 99)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


class _Emitter(QObject):
    ping = Signal()


def test_refcount_guard_keeps_singletons_alive() -> None:
    guard_refcounts()
    guard_refcounts()  # idempotent
    e = _Emitter()
    before = (sys.getrefcount(None), sys.getrefcount(True))
    for _ in range(5000):
        e.ping.emit()
        e.setObjectName("x")
    after = (sys.getrefcount(None), sys.getrefcount(True))
    # Whatever the bindings lose, the singletons keep far more than any program spends.
    assert min(after) > 1_000_000 or after == pytest.approx(before, abs=100)


def test_autosave_is_on_or_off(qtbot: Any) -> None:
    """Every change is autosaved as it is made: the dialog offers on or off, not a delay."""
    dlg = SettingsDialog(Preferences(autosave_seconds=0), [])
    qtbot.addWidget(dlg)
    assert not dlg.autosave.isChecked()
    assert dlg.preferences().autosave_seconds == 0
    dlg.autosave.setChecked(True)
    assert dlg.preferences().autosave_seconds > 0
