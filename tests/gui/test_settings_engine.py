"""Settings > Engine: this computer or a server (URL, token, Test), and what the editor does when
the server cannot be reached (a clear entry and message, no hang)."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from sa3_studio.app.engine_client import ModelCatalog
from sa3_studio.app.remote_engine import (
    describe_server,
    engine_catalog,
    engine_factory,
    parse_server_path,
    server_path,
)
from sa3_studio.app.settings import AppSettings, Preferences
from sa3_studio.engine.api import ModelInfo
from sa3_studio.remote.client import RemoteError
from sa3_studio.ui.settings_dialog import SettingsDialog


def _settings(tmp_path: Path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def _closed_port() -> int:
    """A localhost port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_engine_preferences_survive_a_restart(tmp_path: Path) -> None:
    prefs = Preferences(engine="server", server_url="http://gpu:8000", server_token="t0k3n")
    _settings(tmp_path).set_preferences(prefs)
    again = _settings(tmp_path).preferences()
    assert (again.engine, again.server_url, again.server_token) == (
        "server",
        "http://gpu:8000",
        "t0k3n",
    )
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("prefs/engine", "quantum")
    store.sync()
    assert _settings(tmp_path).preferences().engine == "local"


def test_the_settings_file_holding_a_token_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.set_preferences(Preferences(theme="light"))
    path = tmp_path / "s.ini"
    path.chmod(0o644)  # as a umask of 022 leaves a new file
    settings.set_preferences(Preferences(theme="light", engine="server", server_token="t0k3n"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings.set_preferences(Preferences(theme="dark", engine="server", server_token="t0k3n"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # and it stays so across later saves
    assert _settings(tmp_path).preferences().server_token == "t0k3n"


def test_engine_tab_edits_the_server_and_tests_it(qtbot: Any) -> None:
    asked: list[tuple[str, str]] = []

    def fake_test(url: str, token: str) -> tuple[bool, str]:
        asked.append((url, token))
        return True, "Connected. Models: small-music."

    dlg = SettingsDialog(Preferences(), [], test_server=fake_test)
    qtbot.addWidget(dlg)
    assert dlg.engine_local.isChecked()
    assert not dlg.server_url.isEnabled()
    assert not dlg.test_button.isEnabled()
    dlg.engine_server.setChecked(True)
    assert dlg.server_url.isEnabled()
    assert dlg.test_button.isEnabled()
    dlg.server_url.setText("  http://gpu-box:8000 ")
    dlg.server_token.setText("secret-token")
    dlg.test_button.click()
    assert asked == [("http://gpu-box:8000", "secret-token")]
    assert dlg.server_status.text() == "Connected. Models: small-music."
    prefs = dlg.preferences()
    assert (prefs.engine, prefs.server_url, prefs.server_token) == (
        "server",
        "http://gpu-box:8000",
        "secret-token",
    )


def test_test_button_against_an_unreachable_server_says_so(qtbot: Any) -> None:
    dlg = SettingsDialog(Preferences(engine="server"), [])
    qtbot.addWidget(dlg)
    dlg.server_url.setText(f"http://127.0.0.1:{_closed_port()}")
    t0 = time.monotonic()
    dlg.test_button.click()
    assert time.monotonic() - t0 < 10
    assert "Cannot reach the SA3 Studio server" in dlg.server_status.text()


def test_describe_server_needs_an_address() -> None:
    ok, text = describe_server("", "")
    assert not ok
    assert "address" in text


def test_server_paths_round_trip() -> None:
    path = server_path("small-music", "http://gpu:8000")
    assert parse_server_path(path) == ("small-music", "http://gpu:8000")
    assert parse_server_path("/models/small-music") is None


def test_unreachable_server_is_one_disabled_model_entry_that_says_why(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    local = ModelInfo("tiny", "/m/tiny", "tiny", "rf_denoiser", 44100, 120.0, True)
    catalog = engine_catalog(settings, ModelCatalog(discover=lambda: [local]))
    assert catalog.discover() == [local]  # "This computer"
    url = f"http://127.0.0.1:{_closed_port()}"
    settings.set_preferences(Preferences(engine="server", server_url=url))
    (entry,) = catalog.discover()
    assert not entry.complete
    assert entry.name == "Server not reachable"
    assert "Cannot reach the SA3 Studio server" in entry.missing[0]
    assert catalog.search_places() == (f"{url} (server)",)


def test_loading_from_an_unreachable_server_fails_fast_with_a_message(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.set_preferences(Preferences(engine="server", server_token="x" * 20))
    loaded: list[str] = []

    def local(path: Any, **kwargs: Any) -> Any:
        loaded.append(str(path))
        return object()

    factory = engine_factory(settings, local)
    factory("/models/tiny", device="cpu", dtype="float32")
    assert loaded == ["/models/tiny"]  # folders still load locally
    url = f"http://127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match="Cannot reach") as info:
        factory(server_path("tiny", url), device="cpu", dtype="float32")
    assert info.value.code == "unreachable"
    assert time.monotonic() - t0 < 10
