"""Finding models: Get Models shows every place searched (the unset ones too), lets the user add
a folder, lists only folders that look like models (with the reason when one is incomplete), and
``sa3-studio models list`` searches the same places as the editor, its models folder included."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from test_generate_fakes import pad_bool_refcounts

from sa3_studio.app.settings import AppSettings, saved_models_folder
from sa3_studio.cli import main as cli_main
from sa3_studio.main import registry_catalog
from sa3_studio.ui.models_dialog import ModelsDialog


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    """A folder with one model folder (its weights missing) and one part that is no model."""
    root = tmp_path / "shelf"
    (root / "my-model").mkdir(parents=True)
    (root / "my-model" / "model_config.json").write_text(
        json.dumps({"model_type": "diffusion_cond", "sample_rate": 44100}), encoding="utf-8"
    )
    (root / "conditioner_tiny").mkdir()
    (root / "conditioner_tiny" / "model_config.json").write_text("{}", encoding="utf-8")
    (root / "conditioner_tiny" / "model.safetensors").write_bytes(b"\0" * 16)
    return root


@pytest.fixture
def user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppSettings]:
    """The editor's per-user settings, kept in a temporary folder for this test."""
    folder = tmp_path / "config"
    default = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("SA3_STUDIO_MODELS", "")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield AppSettings(QSettings("SA3 Studio", "SA3 Studio"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, default)


def test_get_models_shows_every_place_and_adds_a_folder(
    qtbot: Any, user_settings: AppSettings, shelf: Path, tmp_path: Path
) -> None:
    catalog = registry_catalog(lambda: user_settings.preferences().models_folder)

    def set_folder(path: str) -> None:
        user_settings.set_preferences(
            dataclasses.replace(user_settings.preferences(), models_folder=path)
        )

    dialog = ModelsDialog(catalog, "", set_models_folder=set_folder)
    qtbot.addWidget(dialog)
    text = dialog.places.text()
    assert "Models folder of the Settings: <i>not set</i>" in text
    assert "SA3_STUDIO_MODELS</code>: <i>not set</i>" in text
    # The per-user folder is a place; ./models of the current directory only when it exists.
    assert f"{tmp_path / 'data' / 'sa3-studio' / 'models'} (user folder)" in text
    assert "(./models)" not in text
    assert "(hf-cache)" in text
    assert "Edit › Settings… (Ctrl+,)" in text
    assert "No model folder was found" in text
    assert dialog.add_folder_button.isEnabled()

    with qtbot.waitSignal(dialog.models_changed):
        dialog.add_folder(str(shelf))
    assert user_settings.preferences().models_folder == str(shelf)
    text = dialog.places.text()
    assert f"{shelf} (settings)" in text
    assert "<b>my-model</b> — incomplete:" in text
    assert "model.safetensors" in text  # the reason
    assert "conditioner_tiny" not in text  # a part, not a model
    assert dialog.destination.findData(str(shelf)) >= 0


def test_the_command_line_searches_the_editors_places(
    capsys: pytest.CaptureFixture[str], user_settings: AppSettings, shelf: Path
) -> None:
    user_settings.set_preferences(
        dataclasses.replace(user_settings.preferences(), models_folder=str(shelf))
    )
    user_settings.sync()
    assert saved_models_folder() == str(shelf)
    code = cli_main(["models", "list"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{shelf} (settings)" in out
    assert any(line.startswith("my-model") and "INCOMPLETE" in line for line in out.splitlines())
    assert "conditioner_tiny" not in out
    assert f"{Path('data') / 'sa3-studio' / 'models'} (user folder)" in out
    assert "(./models)" not in out


def test_models_in_the_user_folder_are_listed_by_the_editor_and_the_command_line(
    qtbot: Any, capsys: pytest.CaptureFixture[str], user_settings: AppSettings, tmp_path: Path
) -> None:
    user = tmp_path / "data" / "sa3-studio" / "models" / "mine"
    user.mkdir(parents=True)
    (user / "model_config.json").write_text(
        json.dumps({"model_type": "diffusion_cond", "sample_rate": 44100}), encoding="utf-8"
    )
    dialog = ModelsDialog(registry_catalog(lambda: ""), "", set_models_folder=None)
    qtbot.addWidget(dialog)
    assert "<b>mine</b> — incomplete:" in dialog.places.text()
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("mine") and "[user folder]" in line for line in out.splitlines())
