"""Export with a true-peak limit: the dialog's option and what the file service writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from sa3_studio.app.export_request import ExportRequest, ExportWhat, FormatChoice
from sa3_studio.app.file_service import run_export
from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.document import AudioData, Project
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.engine.api import CancelToken
from sa3_studio.ui.export_dialog import ExportDialog

SR = SAMPLE_RATE


def test_the_dialog_offers_a_minus_1_dbtp_limit(qtbot, tmp_path: Path) -> None:
    dlg = ExportDialog(
        [FormatChoice("wav24", "WAV 24-bit", "wav", 24)], [], default_dir=tmp_path, base_name="s"
    )
    qtbot.addWidget(dlg)
    assert not dlg.limit.isChecked()
    assert dlg.request().true_peak_limit_dbtp is None
    dlg.limit.setChecked(True)
    assert dlg.request().true_peak_limit_dbtp == -1.0


def _loud_project() -> tuple[Project, np.ndarray]:
    """Quiet noise, then an fs/4 tone whose samples stay at 0.99 but whose waveform reaches
    +2.9 dBTP between them."""
    rng = np.random.default_rng(1)
    quiet = 0.05 * rng.standard_normal((2, SR))
    n = np.arange(SR)
    tone = 0.99 * np.sqrt(2) * np.sin(np.pi / 2 * n + np.pi / 4)
    audio = np.concatenate([quiet, np.stack([tone, tone])], axis=1).astype(np.float32)
    return Project.from_audio(AudioData.from_array(audio)), audio


def _export(
    project: Project, path: Path, limit: float | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    request = ExportRequest(
        what=ExportWhat.MIX, path=path, format_key="wav32f", true_peak_limit_dbtp=limit
    )
    summary = run_export(project, request, lambda *_: None, CancelToken())
    data, rate = sf.read(str(summary.paths[0]), dtype="float32", always_2d=True)
    assert rate == SR
    return data.T, summary.notices


def test_export_limits_true_peaks_only_when_asked(tmp_path: Path) -> None:
    project, audio = _loud_project()
    plain, notices = _export(project, tmp_path / "plain.wav", None)
    np.testing.assert_array_equal(plain, audio)
    assert not any("limited" in n for n in notices)
    limited, notices = _export(project, tmp_path / "limited.wav", -1.0)
    assert true_peak_dbtp(limited) <= -1.0 + 0.01
    before = f"{true_peak_dbtp(audio):+.1f}"
    assert float(before) > 2.5
    assert any(f"limited from {before} to -1.0 dBTP" in n for n in notices), notices
    # The quiet part, far from the loud one, is written unchanged.
    np.testing.assert_array_equal(limited[:, : SR - SR // 100], audio[:, : SR - SR // 100])
