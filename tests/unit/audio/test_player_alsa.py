"""The Player through the real sounddevice/PortAudio/ALSA path, recorded into a WAV file.

Each case runs in a fresh interpreter: PortAudio reads the ALSA configuration
(../shared/test-env/asound_test.conf) when sounddevice initialises, and the file device writes
whatever is played to $AUDIO_TEST_WAV as 16-bit PCM, faster than real time, after about 1,900
frames of silence. The recording is aligned with what was meant to be played by
cross-correlation and compared within 16-bit rounding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from sa3_studio.audio.player import NO_DEVICE_MESSAGE, Player, PlayerState, SoundDeviceBackend
from sa3_studio.errors import PlaybackError

REPO = Path(__file__).resolve().parents[3]
LSB = 1.0 / 32768.0

# Runs in the child interpreter. Writes what it meant to play (and facts about the run) to
# <out>/meant.npz and <out>/facts.json.
CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from sa3_studio.audio.player import Player, PlayerState, SoundDeviceBackend, Source

case, out = sys.argv[1], Path(sys.argv[2])
rate = 44100


def tone(frames, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    f1, f2 = rng.uniform(200, 900, size=2)
    left = 0.4 * np.sin(2 * np.pi * f1 * t) + 0.05 * rng.standard_normal(frames)
    right = 0.3 * np.sin(2 * np.pi * f2 * t + 1.0) + 0.05 * rng.standard_normal(frames)
    a = np.stack([left, right]).astype(np.float32)
    a.setflags(write=False)
    return a


def wait(cond, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the player")
        time.sleep(0.001)


facts = {}
# A generous transition delay: the file device runs far faster than real time, so half a
# second of audio passes in a few milliseconds.
player = Player(SoundDeviceBackend(), blocksize=512, transition_delay_s=2.0)
facts["devices"] = [d.name for d in player.output_devices()]
if case == "whole":
    song = tone(rate, 1)
    player.load(song, rate)
    player.play()
    facts["latency"] = player.output_latency_s
    wait(lambda: player.state is PlayerState.STOPPED)
    facts["position"] = player.position
    np.savez(out / "meant.npz", song=song)
elif case == "loop":
    song = tone(rate, 2)
    loop = (5000, 12345)
    player.load(song, rate)
    player.set_loop(*loop)
    player.play(1000)
    wait(lambda: player._progress[0] > 10 * rate)  # ten seconds of audio rendered
    player.stop()
    facts["loop"] = loop
    np.savez(out / "meant.npz", song=song)
elif case == "switch":
    # Long enough that the fast file device cannot reach the end before the switch.
    song, take = tone(40 * rate, 3), tone(40 * rate, 4)
    player.load(song, rate)
    player.set_take(take, 0, edge_crossfade_s=0)
    player.play()
    wait(lambda: player.position > 0)  # the audio thread has started
    player.select(Source.TAKE)
    wait(lambda: player.state is PlayerState.STOPPED)
    np.savez(out / "meant.npz", song=song, take=take)
player.close()
(out / "facts.json").write_text(json.dumps(facts))
"""


def run_case(case: str, tmp_path: Path, test_env_dir: Path) -> tuple[np.ndarray, dict, dict]:
    wav = tmp_path / "played.wav"
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(test_env_dir / "asound_test.conf")
    env["AUDIO_TEST_WAV"] = str(wav)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(tmp_path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads((tmp_path / "facts.json").read_text())
    with np.load(tmp_path / "meant.npz") as npz:
        meant = {k: npz[k] for k in npz.files}
    with wave.open(str(wav), "rb") as w:
        assert w.getsampwidth() == 2
        assert w.getframerate() == 44100
        assert w.getnchannels() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    played = pcm.reshape(-1, 2).astype(np.float64) / 32768.0  # (frames, 2)
    return played, meant, facts


def find_offset(played: np.ndarray, meant: np.ndarray, search: int = 20000) -> int:
    """Lag of ``meant`` inside ``played`` by FFT cross-correlation of the first channel."""
    probe = meant[:8192, 0]
    window = played[: search + len(probe), 0]
    n = 1 << int(np.ceil(np.log2(len(window) + len(probe))))
    corr = np.fft.irfft(np.fft.rfft(window, n) * np.conj(np.fft.rfft(probe, n)), n)
    return int(np.argmax(corr[: len(window) - len(probe) + 1]))


def loop_indices(start: int, loop: tuple[int, int], count: int) -> np.ndarray:
    idx = np.arange(count) + start
    first = loop[1] - start  # frames before the first wrap
    tail = idx[first:] - loop[1]
    idx[first:] = loop[0] + tail % (loop[1] - loop[0])
    return idx


def test_the_whole_song_is_played_exactly(tmp_path: Path, test_env_dir: Path) -> None:
    played, meant, facts = run_case("whole", tmp_path, test_env_dir)
    song = meant["song"].T.astype(np.float64)  # (frames, 2)
    assert facts["devices"], "the test ALSA configuration should provide a device"
    assert facts["position"] == len(song)
    assert 0.0 < facts["latency"] < 2.0
    offset = find_offset(played, song)
    assert 0 < offset < 20000  # PortAudio's leading silence
    assert np.abs(played[:offset]).max() == 0.0
    got = played[offset : offset + len(song)]
    assert got.shape == song.shape
    assert np.abs(got - song).max() <= 1.5 * LSB
    assert np.abs(played[offset + len(song) :]).max(initial=0.0) == 0.0


def test_a_loop_wraps_exactly_on_the_real_device(tmp_path: Path, test_env_dir: Path) -> None:
    played, meant, facts = run_case("loop", tmp_path, test_env_dir)
    song = meant["song"].T.astype(np.float64)
    loop = tuple(facts["loop"])
    offset = find_offset(played, song[1000:])
    got = played[offset:]
    # Ten seconds at least: the 7,345-frame loop wrapped dozens of times.
    assert len(got) > 10 * 44100
    expected = song[loop_indices(1000, loop, len(got))]
    assert np.abs(got - expected).max() <= 1.5 * LSB


def test_switching_to_the_take_crossfades_on_the_real_device(
    tmp_path: Path, test_env_dir: Path
) -> None:
    played, meant, _ = run_case("switch", tmp_path, test_env_dir)
    song = meant["song"].T.astype(np.float64)
    take = meant["take"].T.astype(np.float64)
    offset = find_offset(played, song)
    got = played[offset : offset + len(song)]
    assert got.shape == song.shape
    differs = np.abs(got - song).max(axis=1) > 1.5 * LSB
    switch = int(np.argmax(differs))
    assert 2 * 44100 <= switch < len(song) - 44100
    fade = round(0.010 * 44100)
    assert np.abs(got[:switch] - song[:switch]).max() <= 1.5 * LSB
    assert np.abs(got[switch + fade :] - take[switch + fade :]).max() <= 1.5 * LSB
    # No step inside the crossfade is larger than the sources' own steps allow.
    step = np.abs(np.diff(got, axis=0)).max()
    own = max(np.abs(np.diff(song, axis=0)).max(), np.abs(np.diff(take, axis=0)).max())
    gap = np.abs(song - take).max()
    assert step <= own + np.pi / (2 * fade) * gap + 3 * LSB


def test_without_portaudio_the_real_backend_reports_no_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without PortAudio
    player = Player(SoundDeviceBackend())
    assert player.output_devices() == []
    assert player.state is PlayerState.UNAVAILABLE
    assert player.status.message == NO_DEVICE_MESSAGE
    player.load(np.zeros((2, 100), dtype=np.float32), 44100)
    with pytest.raises(PlaybackError) as err:
        player.play()
    assert str(err.value) == NO_DEVICE_MESSAGE
