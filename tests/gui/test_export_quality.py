"""Export quality of the lossy formats: MP3 as VBR V0 or 320 kbps CBR, OGG Vorbis by quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from gui_helpers import open_file, prompts_of

from sa3_studio.app.export_request import ExportRequest, ExportWhat, FormatChoice
from sa3_studio.ui.export_dialog import ExportDialog
from sa3_studio.ui.main_window import MainWindow


def _export(qtbot: Any, win: MainWindow, req: ExportRequest) -> Path:
    prompts_of(win).export_answer = req
    with qtbot.waitSignal(win.services.files.exported, timeout=30000):
        win.actions["file.export"].trigger()
    return req.path


def test_mp3_and_vorbis_quality_reach_the_file(
    qtbot: Any, window: MainWindow, song_file: Path, tmp_path: Path
) -> None:
    open_file(qtbot, window, song_file)
    keys = {f.key for f in window.services.files.export_formats()}
    assert {"mp3", "ogg"} <= keys  # this libsndfile writes both
    seconds = window.services.document.project.frames / 44100
    cbr = _export(
        qtbot, window, ExportRequest(ExportWhat.MIX, tmp_path / "c.mp3", "mp3", mp3_mode="cbr320")
    )
    vbr = _export(qtbot, window, ExportRequest(ExportWhat.MIX, tmp_path / "v.mp3", "mp3"))
    # 320 kbps constant: the size is the bitrate times the length (frame padding aside).
    kbps = cbr.stat().st_size * 8 / seconds / 1000
    assert kbps == pytest.approx(320, rel=0.05)
    assert vbr.stat().st_size < cbr.stat().st_size
    assert sf.info(str(vbr)).format == "MP3"
    low = _export(
        qtbot, window, ExportRequest(ExportWhat.MIX, tmp_path / "q3.ogg", "ogg", vorbis_quality=3.0)
    )
    high = _export(
        qtbot,
        window,
        ExportRequest(ExportWhat.MIX, tmp_path / "q10.ogg", "ogg", vorbis_quality=10.0),
    )
    assert high.stat().st_size > 2 * low.stat().st_size
    assert sf.info(str(high)).subtype == "VORBIS"


def test_the_dialog_offers_the_quality_of_lossy_formats(qtbot: Any, tmp_path: Path) -> None:
    formats = [
        FormatChoice("wav24", "WAV 24-bit", "wav", 24),
        FormatChoice("mp3", "MP3", "mp3", None),
        FormatChoice("ogg", "OGG Vorbis", "ogg", None),
    ]
    dlg = ExportDialog(formats, default_dir=tmp_path, base_name="song")
    qtbot.addWidget(dlg)
    assert dlg.quality_combo.isHidden()  # WAV is lossless
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("mp3"))
    assert not dlg.quality_combo.isHidden()
    assert dlg.request().mp3_mode == "v0"
    dlg.quality_combo.setCurrentIndex(dlg.quality_combo.findData("cbr320"))
    assert dlg.request().mp3_mode == "cbr320"
    assert dlg.quality_combo.currentText() == "320 kbps constant"
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("ogg"))
    assert dlg.request().vorbis_quality == 6.0
    dlg.quality_combo.setCurrentIndex(dlg.quality_combo.findData(10.0))
    assert dlg.request().vorbis_quality == 10.0
    with pytest.raises(ValueError, match="Vorbis quality 11"):
        ExportRequest(ExportWhat.MIX, tmp_path / "x.ogg", "ogg", vorbis_quality=11.0)
    with pytest.raises(ValueError, match="MP3 quality 'v9'"):
        ExportRequest(ExportWhat.MIX, tmp_path / "x.mp3", "mp3", mp3_mode="v9")


def test_the_dialogs_boxes_take_the_wheel_only_when_focused(qtbot: Any, tmp_path: Path) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    dlg = ExportDialog([FormatChoice("wav24", "WAV 24-bit", "wav", 24)], default_dir=tmp_path)
    qtbot.addWidget(dlg)
    rate = dlg.rate_combo.currentData()
    pos = QPointF(dlg.rate_combo.rect().center())
    wheel = QWheelEvent(
        pos,
        QPointF(dlg.rate_combo.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(dlg.rate_combo, wheel)
    assert dlg.rate_combo.currentData() == rate
    assert dlg.rate_combo.focusPolicy() == Qt.FocusPolicy.StrongFocus
