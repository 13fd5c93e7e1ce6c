"""Transport: play, pause, stop, loop and follow with a manual sound card, the no-device state,
and the real PortAudio/ALSA path recorded into a file (in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gui_helpers import ScriptedPrompts, open_file

from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.services import EditorServices
from sa3_studio.app.transport import TransportState
from sa3_studio.audio.player import ManualBackend
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]
BLOCK = 512


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Path) -> MainWindow:
    open_file(qtbot, window, song_file)
    return window


def _pull(backend: ManualBackend, frames: int) -> np.ndarray:
    return backend.stream.render(frames, BLOCK).T  # (C, frames)


def test_space_plays_from_the_cursor_and_the_playhead_follows(
    qtbot: Any, win: MainWindow, backend: ManualBackend
) -> None:
    s: EditorServices = win.services
    s.session.set_cursor(3 * SAMPLE_RATE)
    win.actions["transport.play"].trigger()
    assert s.transport.state is TransportState.PLAYING
    heard = _pull(backend, 8 * BLOCK)
    mix = render_mix(s.document.project)
    np.testing.assert_array_equal(heard, mix[:, 3 * SAMPLE_RATE : 3 * SAMPLE_RATE + 8 * BLOCK])
    qtbot.waitUntil(lambda: s.session.playhead >= 3 * SAMPLE_RATE + 8 * BLOCK, timeout=2000)
    assert win.timeline.playhead_line.isVisible()


def test_pause_resume_and_stop(qtbot: Any, win: MainWindow, backend: ManualBackend) -> None:
    t = win.services.transport
    t.play_pause()
    _pull(backend, 10 * BLOCK)
    t.play_pause()
    assert t.state is TransportState.PAUSED
    t.play_pause()
    assert t.state is TransportState.PLAYING
    _pull(backend, 10 * BLOCK)
    win.actions["transport.stop"].trigger()
    assert t.state is TransportState.STOPPED
    # Stop returns to where playback started.
    assert win.services.session.playhead == 0
    assert not win.timeline.playhead_line.isVisible()


def test_selection_plays_once_or_loops(qtbot: Any, win: MainWindow, backend: ManualBackend) -> None:
    s = win.services
    a, b = SAMPLE_RATE, SAMPLE_RATE + 4 * BLOCK
    s.session.set_selection([(a, b)])
    mix = render_mix(s.document.project)
    win.actions["transport.loop"].setChecked(True)
    s.transport.play_pause()
    heard = _pull(backend, 10 * BLOCK)
    expected = np.concatenate([mix[:, a:b], mix[:, a:b], mix[:, a : a + 2 * BLOCK]], axis=1)
    np.testing.assert_array_equal(heard, expected)
    s.transport.stop()
    win.actions["transport.loop"].setChecked(False)
    s.transport.play_pause()
    heard = _pull(backend, 6 * BLOCK)
    np.testing.assert_array_equal(heard[:, : 4 * BLOCK], mix[:, a:b])
    assert not heard[:, 4 * BLOCK :].any()  # the selection ended: silence
    qtbot.waitUntil(lambda: s.transport.state is TransportState.STOPPED, timeout=2000)


def test_follow_scrolls_the_view_with_the_playhead(
    qtbot: Any, win: MainWindow, backend: ManualBackend
) -> None:
    s = win.services
    win.actions["view.follow"].setChecked(True)
    s.session.set_view(0.0, 0.5)
    s.transport.play_pause()
    _pull(backend, SAMPLE_RATE)  # one second: past the visible half second
    qtbot.waitUntil(lambda: s.session.view_range()[0] > 0.5, timeout=2000)
    start, end = s.session.view_range()
    assert start <= s.session.playhead / SAMPLE_RATE <= end


def test_edits_while_playing_are_heard(qtbot: Any, win: MainWindow, backend: ManualBackend) -> None:
    s = win.services
    s.transport.play_pause()
    _pull(backend, 4 * BLOCK)
    s.document.silence([(0, 4 * SAMPLE_RATE)])
    _pull(backend, 64 * BLOCK)  # past the crossfade into the new audio
    assert not _pull(backend, 8 * BLOCK).any()


def test_no_output_device_is_a_status_not_a_crash(
    qtbot: Any, tmp_path: Path, song_file: Path
) -> None:
    from PySide6.QtCore import QSettings

    from sa3_studio.app.services import build_services

    services = build_services(
        settings_store=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
        audio_backend=ManualBackend([]),
        recovery_dir=tmp_path / "recovery",
    )
    prompts = ScriptedPrompts()
    w = MainWindow(services, prompts)
    try:
        w.show()
        open_file(qtbot, w, song_file)
        qtbot.waitUntil(lambda: w.device_label.isVisible(), timeout=2000)
        assert "No audio output device" in w.device_label.text()
        assert not w.actions["transport.play"].isEnabled()
        # Asked anyway (a script, a stale shortcut): a sentence, no exception.
        errors: list[str] = []
        services.transport.error.connect(errors.append)
        services.transport.play_pause()
        assert errors
        assert "No audio output device" in errors[0]
        # Editing and export still work.
        assert services.document.silence([(0, SAMPLE_RATE)])
    finally:
        w.close()
        w.deleteLater()


CHILD = r"""
import json, os, sys
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
import soundfile as sf
from PySide6.QtCore import QCoreApplication, QTimer
from sa3_studio.app.qt_workarounds import guard_refcounts
from sa3_studio.app.session import Session
from sa3_studio.app.transport import Transport, TransportState
from sa3_studio.audio.player import Player, SoundDeviceBackend

song_path, out = sys.argv[1], Path(sys.argv[2])
app = QCoreApplication([])
guard_refcounts()
audio, rate = sf.read(song_path, dtype="float32", always_2d=True)
audio = np.ascontiguousarray(audio.T[:, : 2 * rate])
audio.setflags(write=False)
session = Session()
session.set_timeline(rate, audio.shape[1])
transport = Transport(Player(SoundDeviceBackend()), session)
transport.set_audio_provider(lambda: (audio, rate))
facts = {"available": transport.check_devices(), "states": []}
transport.state_changed.connect(lambda st: facts["states"].append(st))
transport.state_changed.connect(lambda st: st == "stopped" and app.quit())
start, end = rate // 2, rate // 2 + rate
transport.play_range(start, end)
QTimer.singleShot(20000, app.quit)
if transport.state is not TransportState.STOPPED:  # the file device may already be done
    app.exec()
facts["playhead"] = session.playhead
transport.shutdown()
np.save(out / "meant.npy", audio[:, start:end])
(out / "facts.json").write_text(json.dumps(facts))
"""


def test_real_device_plays_the_range_through_alsa(
    tmp_path: Path, song_file: Path, test_env_dir: Path
) -> None:
    recorded = tmp_path / "played.wav"
    env = {
        **os.environ,
        "ALSA_CONFIG_PATH": str(test_env_dir / "asound_test.conf"),
        "AUDIO_TEST_WAV": str(recorded),
        "QT_QPA_PLATFORM": "offscreen",
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(song_file), str(tmp_path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert facts["available"]
    assert facts["states"][0] == "playing"
    assert facts["states"][-1] == "stopped"
    meant = np.load(tmp_path / "meant.npy")  # (2, n)
    with wave.open(str(recorded)) as f:
        assert f.getnchannels() == 2
        data = f.readframes(f.getnframes())
    # The file device may leave a partial last frame; keep whole stereo 16-bit frames.
    pcm = np.frombuffer(data[: len(data) // 4 * 4], dtype="<i2")
    got = pcm.reshape(-1, 2).T.astype(np.float64) / 32768.0
    # PortAudio adds some leading silence: find where the sound starts by cross-correlation.
    probe = meant[0, :4096].astype(np.float64)
    corr = np.correlate(got[0, : 20000 + probe.size], probe, mode="valid")
    lag = int(np.argmax(corr))
    assert lag < 20000
    aligned = got[:, lag : lag + meant.shape[1]]
    assert aligned.shape == meant.shape
    np.testing.assert_allclose(aligned, meant, atol=2.0 / 32768.0)
