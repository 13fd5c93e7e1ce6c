"""Get Models: what to download, gated models explained, download with progress, errors."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from test_generate_fakes import GATE_TIMEOUT_S, catalog, model_info, pad_bool_refcounts

from sa3_studio.engine.api import ModelInfo
from sa3_studio.errors import Sa3Error
from sa3_studio.ui.models_dialog import HF_CACHE_CHOICE, ModelsDialog

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


class FakeDownload:
    """Reports progress in three steps, can wait on a gate, fail, or add the model."""

    def __init__(self, found: list[ModelInfo], error: Exception | None = None) -> None:
        self.found = found
        self.error = error
        self.calls: list[tuple[str, str | None, str | None]] = []
        self.gate: threading.Event | None = None

    def __call__(
        self, name: str, dest: str | None, *, progress: Any, token: str | None
    ) -> ModelInfo:
        self.calls.append((name, dest, token))
        for done in (0, 500_000_000, 1_000_000_000):
            progress(done, 2_000_000_000)
            if self.gate is not None:
                self.gate.wait(GATE_TIMEOUT_S)
        if self.error is not None:
            raise self.error
        progress(2_000_000_000, 2_000_000_000)
        info = model_info(name, f"/hub/{name}", source="hf-cache")
        self.found.append(info)
        return info


def make(qtbot, found: list[ModelInfo], download: Any, folder: str = "") -> ModelsDialog:
    dialog = ModelsDialog(catalog(found, download), folder)
    qtbot.addWidget(dialog)
    return dialog


def rows(dialog: ModelsDialog) -> list[list[str]]:
    out = []
    for i in range(dialog.table.topLevelItemCount()):
        item = dialog.table.topLevelItem(i)
        out.append([item.text(c) for c in range(dialog.table.columnCount())])
    return out


def test_with_no_model_it_explains_what_to_download_and_where_it_looks(qtbot):
    dialog = make(qtbot, [], FakeDownload([]))
    intro = dialog.intro.text() + dialog.places.text()
    assert "No Stable Audio 3 model was found" in intro
    assert "small-music" in intro
    assert "./models" in intro
    assert "huggingface" in intro
    table = rows(dialog)
    assert table[0][:4] == ["small-music", "small music, post-trained", "2:00", "Token + licence"]
    assert table[1][3] == "Open"
    assert table[0][4] == "Not downloaded"
    note = dialog.gated_note.text()
    assert "accept its licence" in note
    assert "access token" in note
    assert "hf auth login" in note
    # Nothing happens without the explicit click.
    assert not dialog.downloading


def test_found_models_are_marked_installed(qtbot):
    found = [model_info("small-music", "/models/small-music", source="./models")]
    dialog = make(qtbot, found, FakeDownload(found))
    assert "1 model(s) found" in dialog.intro.text()
    assert rows(dialog)[0][4] == "Installed (./models)"


def test_download_runs_in_the_background_with_byte_progress(qtbot):
    found: list[ModelInfo] = []
    download = FakeDownload(found)
    download.gate = threading.Event()
    dialog = make(qtbot, found, download, folder="/my/models")
    dialog.select("small-music-base")
    dialog.token.setText("  hf_secret  ")
    dialog.destination.setCurrentIndex(1)
    assert dialog.destination.itemText(0) == HF_CACHE_CHOICE
    changed: list[int] = []
    dialog.models_changed.connect(lambda: changed.append(1))
    job = dialog.start_download()
    assert job is not None
    assert dialog.downloading
    assert not dialog.download_button.isEnabled()
    assert dialog.cancel_button.isVisibleTo(dialog)
    qtbot.waitUntil(lambda: "of 2.0 GB" in dialog.progress_label.text(), timeout=WAIT_MS)
    download.gate.set()
    qtbot.waitUntil(lambda: changed == [1], timeout=WAIT_MS)
    assert download.calls == [("small-music-base", "/my/models", "hf_secret")]
    assert not dialog.downloading
    assert dialog.progress_label.text() == "Downloaded to /hub/small-music-base."
    assert rows(dialog)[1][4] == "Installed (hf-cache)"
    dialog.close()


def test_a_gated_model_without_access_shows_what_to_do(qtbot):
    message = (
        "The model small-music is gated: accept its licence at "
        "https://huggingface.co/stabilityai/stable-audio-3-small-music and log in with "
        "`hf auth login` (or `huggingface-cli login`) or set HF_TOKEN, then download again."
    )
    download = FakeDownload([], Sa3Error(message))
    dialog = make(qtbot, [], download)
    dialog.select("small-music")
    dialog.start_download()
    assert "gated" in dialog.progress_label.text()
    qtbot.waitUntil(lambda: dialog.error_label.text() == message, timeout=WAIT_MS)
    assert not dialog.downloading
    assert dialog.download_button.isEnabled()
    dialog.close()


def test_cancel_stops_the_download(qtbot):
    download = FakeDownload([])
    download.gate = threading.Event()
    dialog = make(qtbot, [], download)
    dialog.start_download()
    qtbot.waitUntil(lambda: len(download.calls) == 1, timeout=WAIT_MS)
    dialog.cancel_download()
    download.gate.set()
    qtbot.waitUntil(lambda: not dialog.downloading, timeout=WAIT_MS)
    assert "cancelled" in dialog.progress_label.text()
    dialog.close()


def test_without_a_downloader_the_button_says_why(qtbot):
    dialog = make(qtbot, [], None)
    assert not dialog.download_button.isEnabled()
    assert "not available" in dialog.download_button.toolTip()
    assert dialog.start_download() is None
