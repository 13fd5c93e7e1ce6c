"""Player with a manual stream: exact frames, loops, seeks, pause, A/B crossfades, no device."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sa3_studio.audio.player import (
    NO_DEVICE_MESSAGE,
    ManualBackend,
    OutputDevice,
    Player,
    PlayerState,
    Source,
    StreamCallback,
    StreamSettings,
)
from sa3_studio.errors import PlaybackError

RATE = 44100


def noise(frames: int, seed: int, channels: int = 2, amp: float = 0.5) -> np.ndarray:
    """Read-only float32 ``(channels, frames)`` noise, as the document holds audio."""
    rng = np.random.default_rng(seed)
    a = (amp * rng.standard_normal((channels, frames))).astype(np.float32)
    a.setflags(write=False)
    return a


def sine(frames: int, hz: float, phase: float = 0.0, amp: float = 0.8) -> np.ndarray:
    t = np.arange(frames) / RATE
    s = (amp * np.sin(2 * np.pi * hz * t + phase)).astype(np.float32)
    a = np.stack([s, -s])
    a.setflags(write=False)
    return a


def make_player(**kwargs: float) -> tuple[Player, ManualBackend]:
    backend = ManualBackend()
    return Player(backend, **kwargs), backend  # type: ignore[arg-type]


def pull_blocks(backend: ManualBackend, sizes: list[int]) -> np.ndarray:
    return np.concatenate([backend.stream.pull(n).copy() for n in sizes])


def test_plays_the_whole_buffer_exactly_then_silence_and_reports_stopped() -> None:
    audio = noise(5000, 1)
    player, backend = make_player()
    player.load(audio, RATE)
    assert player.state is PlayerState.STOPPED
    player.play()
    assert player.state is PlayerState.PLAYING
    out = backend.stream.render(6000, 512)
    np.testing.assert_array_equal(out[:5000], audio.T)
    assert not out[5000:].any()
    assert player.position == 5000
    assert player.state is PlayerState.STOPPED
    # Play again from the end: it starts over.
    player.play()
    np.testing.assert_array_equal(backend.stream.render(700, 512), audio.T[:700])


def test_mono_audio_plays_on_both_channels() -> None:
    audio = noise(1000, 2, channels=1)
    player, backend = make_player()
    player.load(audio, RATE)
    player.play()
    out = backend.stream.render(1000, 300)
    assert backend.stream.settings.channels == 2
    np.testing.assert_array_equal(out[:, 0], audio[0])
    np.testing.assert_array_equal(out[:, 1], audio[0])


def loop_indices(start: int, loop: tuple[int, int], count: int) -> np.ndarray:
    idx = []
    pos = start
    for _ in range(count):
        idx.append(pos)
        pos += 1
        if pos == loop[1]:
            pos = loop[0]
    return np.array(idx)


@pytest.mark.parametrize("blocks", ["fixed", "ragged"])
def test_loop_wraps_around_exactly(blocks: str) -> None:
    audio = noise(6000, 3)
    player, backend = make_player()
    player.load(audio, RATE)
    loop = (1000, 2337)  # 1337 frames: no block size divides it
    player.set_loop(*loop)
    player.play(200)
    if blocks == "fixed":
        sizes = [512] * 30
    else:
        rng = np.random.default_rng(0)
        sizes = [int(n) for n in rng.integers(1, 700, size=40)]
    out = pull_blocks(backend, sizes)
    expected = audio.T[loop_indices(200, loop, len(out))]
    np.testing.assert_array_equal(out, expected)
    assert player.position == loop_indices(200, loop, len(out) + 1)[-1]


def test_loop_is_left_when_playback_starts_after_it_and_cleared_loop_runs_on() -> None:
    audio = noise(4000, 4)
    player, backend = make_player()
    player.load(audio, RATE)
    player.set_loop(500, 1000)
    player.play(1500)
    np.testing.assert_array_equal(backend.stream.render(2500, 256), audio.T[1500:4000])
    player.play(0)
    backend.stream.render(1200, 256)  # wrapped once: now at 700
    assert player.position == 700
    player.clear_loop()
    np.testing.assert_array_equal(backend.stream.render(1000, 256), audio.T[700:1700])


def test_seek_while_playing_jumps_at_the_next_block() -> None:
    audio = noise(8000, 5)
    player, backend = make_player()
    player.load(audio, RATE)
    player.play()
    np.testing.assert_array_equal(backend.stream.render(1024, 512), audio.T[:1024])
    player.seek(6000)
    assert player.position == 6000  # readable before the audio thread has seen it
    np.testing.assert_array_equal(backend.stream.render(700, 512), audio.T[6000:6700])
    assert player.position == 6700


def test_after_the_end_seek_moves_the_playhead_without_playing_and_play_starts_there() -> None:
    audio = noise(8000, 24)
    player, backend = make_player()
    player.load(audio, RATE)
    player.play(1000, 3000)
    backend.stream.render(2500, 512)
    assert player.state is PlayerState.STOPPED
    player.play()  # the same range again
    np.testing.assert_array_equal(backend.stream.render(2000, 512), audio.T[1000:3000])
    backend.stream.render(512)
    player.seek(5000)
    assert player.state is PlayerState.STOPPED
    assert not backend.stream.render(1024, 512).any()
    assert player.position == 5000
    player.play()
    assert player.state is PlayerState.PLAYING
    np.testing.assert_array_equal(backend.stream.render(3000, 512), audio.T[5000:8000])


def test_play_range_stops_at_its_end_and_stop_returns_to_its_start() -> None:
    audio = noise(8000, 6)
    player, backend = make_player()
    player.load(audio, RATE)
    player.play(1000, 3000)
    out = backend.stream.render(2500, 512)
    np.testing.assert_array_equal(out[:2000], audio.T[1000:3000])
    assert not out[2000:].any()
    assert player.state is PlayerState.STOPPED
    player.play(1000, 3000)
    backend.stream.render(512)
    player.stop()
    assert player.state is PlayerState.STOPPED
    assert not backend.stream.active
    assert player.position == 1000


def test_pause_fades_out_holds_the_playhead_and_resume_fades_in_where_it_left() -> None:
    audio = noise(20000, 7, amp=0.3)
    player, backend = make_player(crossfade_s=0.005)
    fade = round(0.005 * RATE)
    player.load(audio, RATE)
    player.play()
    head = backend.stream.render(1024, 256)
    player.pause()
    assert player.state is PlayerState.PAUSED
    tail = backend.stream.render(8192, 256)
    out = np.concatenate([head, tail])
    held = player.position
    # Exact audio up to the fade, a fade that only attenuates, then silence.
    start = held - fade
    np.testing.assert_array_equal(out[:start], audio.T[:start])
    ramp = out[start:held] / np.where(audio.T[start:held] == 0, 1, audio.T[start:held])
    assert np.all(np.diff(ramp[:, 0]) <= 1e-6)
    assert 0.9 < ramp[0, 0] <= 1.0
    assert 0.0 <= ramp[-1, 0] < 0.1
    assert not out[held:].any()
    backend.stream.render(4096, 256)
    assert player.position == held  # the playhead waits while paused

    player.resume()
    assert player.state is PlayerState.PLAYING
    after = backend.stream.render(4096, 256)
    ramp_in = after[:fade] / audio.T[held : held + fade]
    assert np.all(np.diff(ramp_in[:, 0]) >= -1e-6)
    assert ramp_in[0, 0] < 0.1
    assert ramp_in[-1, 0] > 0.9
    np.testing.assert_array_equal(after[fade:], audio.T[held + fade : held + 4096])


def test_pause_then_play_resumes_and_toggle_pauses() -> None:
    audio = noise(20000, 8)
    player, backend = make_player()
    player.load(audio, RATE)
    player.toggle()
    assert player.state is PlayerState.PLAYING
    backend.stream.render(1024)
    player.toggle()
    assert player.state is PlayerState.PAUSED
    backend.stream.render(8192)
    held = player.position
    player.play()
    assert player.state is PlayerState.PLAYING
    backend.stream.render(2048)
    assert player.position == held + 2048


def max_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=0)).max())


def test_switching_original_and_take_crossfades_without_a_click() -> None:
    n = 40000
    original = sine(n, 220.0)
    take = sine(n, 330.0, phase=2.0)
    player, backend = make_player(crossfade_s=0.01)
    fade = round(0.01 * RATE)
    player.load(original, RATE)
    player.set_take(take, 0, edge_crossfade_s=0)
    player.play()
    head = backend.stream.render(3000, 512)
    player.select(Source.TAKE)
    assert player.source is Source.TAKE
    tail = backend.stream.render(10000, 512)
    out = np.concatenate([head, tail])
    a, b = original.T[: len(out)], take.T[: len(out)]

    # Exactly the original before the switch, exactly the take after it.
    switch = int(np.argmax(np.any(out != a, axis=1)))
    assert 3000 <= switch <= 3000 + round(0.06 * RATE)
    np.testing.assert_array_equal(out[:switch], a[:switch])
    np.testing.assert_array_equal(out[switch + fade :], b[switch + fade :])
    # In between a crossfade: its steps are bounded by the sources' own steps plus the
    # largest change of the fade curve times the gap between the sources.
    du = np.pi / (2 * fade)
    bound = max(max_step(a), max_step(b)) + du * float(np.abs(a - b).max()) + 1e-6
    assert max_step(out) <= bound
    # A hard cut at the same frame would have clicked.
    hard = np.concatenate([a[:switch], b[switch:]])
    assert max_step(hard) > 3 * bound

    # And back again.
    player.select(Source.ORIGINAL)
    back = backend.stream.render(10000, 512)
    whole = np.concatenate([out, back])
    assert max_step(whole) <= bound
    np.testing.assert_array_equal(back[-4000:], original.T[len(whole) - 4000 : len(whole)])


def test_crossfade_across_a_loop_wrap_follows_the_loop() -> None:
    n = 20000
    original = noise(n, 9)
    take = noise(n, 10)
    player, backend = make_player(crossfade_s=0.01)
    fade = round(0.01 * RATE)
    delay = round(0.05 * RATE)
    player.load(original, RATE)
    player.set_take(take, 0, edge_crossfade_s=0)
    loop = (1000, 1000 + delay + 3000 + fade // 2)  # the fade will straddle the loop end
    player.set_loop(*loop)
    player.play(1000)
    head = backend.stream.render(3000, 500)
    player.select(Source.TAKE)
    out = np.concatenate([head, backend.stream.render(8000, 500)])
    idx = loop_indices(1000, loop, len(out))
    at = 3000 + delay
    down = np.zeros(len(out))
    down[:at] = 1.0
    k = (np.arange(fade) + 0.5) / fade
    down[at : at + fade] = 1.0 - np.sin(0.5 * np.pi * k) ** 2
    expected = original.T[idx] * down[:, None] + take.T[idx] * (1.0 - down[:, None])
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert idx[at + fade // 2 - 1] == loop[1] - 1
    assert idx[at + fade // 2] == loop[0]


def test_take_in_context_plays_preroll_take_postroll() -> None:
    song = noise(RATE * 3, 11)
    take = noise(RATE // 2, 12)
    region = (RATE, RATE + RATE // 2)
    player, backend = make_player()
    player.load(song, RATE)
    player.set_take(take, region[0], edge_crossfade_s=0)
    player.play_in_context(*region, pre_roll_s=0.25, post_roll_s=0.125)
    a, b = region[0] - RATE // 4, region[1] + round(0.125 * RATE)
    out = backend.stream.render(b - a + 1000, 512)
    expected = np.concatenate([song.T[a : region[0]], take.T, song.T[region[1] : b]])
    np.testing.assert_array_equal(out[: b - a], expected)
    assert not out[b - a :].any()
    assert player.state is PlayerState.STOPPED
    # The same span from the original.
    player.play_in_context(*region, pre_roll_s=0.25, post_roll_s=0.125, source=Source.ORIGINAL)
    np.testing.assert_array_equal(backend.stream.render(b - a, 512), song.T[a:b])


def test_take_edges_are_crossfaded_into_the_song() -> None:
    song = sine(RATE, 200.0)
    take = sine(RATE // 4, 450.0, phase=1.0)
    player, backend = make_player()
    player.load(song, RATE)
    player.set_take(take, RATE // 2, edge_crossfade_s=0.005)
    player.play_in_context(RATE // 2, RATE // 2 + RATE // 4, pre_roll_s=0.1, post_roll_s=0.1)
    out = backend.stream.render(round(0.45 * RATE), 512)
    bound = max_step(song.T) + max_step(take.T) + 1e-6
    assert max_step(out) <= bound
    hard = np.concatenate([song.T[: RATE // 2], take.T])
    assert max_step(hard) > 3 * bound


def test_looped_audition_repeats_the_context() -> None:
    song = noise(RATE, 13)
    take = noise(2000, 14)
    player, backend = make_player()
    player.load(song, RATE)
    player.set_take(take, 10000, edge_crossfade_s=0)
    player.play_in_context(10000, 12000, pre_roll_s=0.01, post_roll_s=0.01, loop=True)
    span = 2000 + 2 * 441
    out = backend.stream.render(3 * span, 512)
    np.testing.assert_array_equal(out[:span], out[span : 2 * span])
    np.testing.assert_array_equal(out[441 : 441 + 2000], take.T)


def test_load_while_playing_crossfades_to_the_new_audio_and_keeps_the_playhead() -> None:
    first, second = sine(30000, 220.0), sine(30000, 220.0, phase=1.5)
    player, backend = make_player()
    player.load(first, RATE)
    player.play()
    head = backend.stream.render(2048, 512)
    player.load(second, RATE)
    assert player.state is PlayerState.PLAYING
    out = np.concatenate([head, backend.stream.render(8192, 512)])
    np.testing.assert_array_equal(out[-1000:], second.T[len(out) - 1000 : len(out)])
    bound = max_step(first.T) + np.pi / (2 * 441) * 1.6 + 1e-6
    assert max_step(out) <= bound


def test_no_output_device_is_a_state_with_a_clear_message() -> None:
    player = Player(ManualBackend(devices=[]))
    assert not player.available
    assert player.state is PlayerState.UNAVAILABLE
    assert player.status.message == NO_DEVICE_MESSAGE
    player.load(noise(1000, 15), RATE)  # editing goes on: load, seek, loop
    player.seek(500)
    player.set_loop(0, 800)
    with pytest.raises(PlaybackError) as err:
        player.play()
    assert str(err.value) == NO_DEVICE_MESSAGE
    assert player.status.state is PlayerState.UNAVAILABLE
    assert player.position == 500
    player.close()


def test_a_device_that_cannot_open_gives_a_playback_error_and_a_message() -> None:
    class Refusing(ManualBackend):
        def open_output(self, settings: StreamSettings, callback: StreamCallback) -> object:  # type: ignore[override]
            raise PlaybackError("The audio output could not be opened (busy). Choose another.")

    player = Player(Refusing())
    player.load(noise(1000, 16), RATE)
    with pytest.raises(PlaybackError, match="could not be opened"):
        player.play()
    assert player.available
    assert player.status.state is PlayerState.STOPPED
    assert "could not be opened" in player.status.message


def test_nothing_loaded_or_no_take_is_a_clear_error() -> None:
    player, _ = make_player()
    with pytest.raises(PlaybackError, match="Nothing is loaded"):
        player.play()
    player.load(noise(1000, 17), RATE)
    with pytest.raises(PlaybackError, match="no take"):
        player.select(Source.TAKE)
    with pytest.raises(ValueError, match="does not fit"):
        player.set_take(noise(500, 18), 800)
    with pytest.raises(ValueError, match=r"\(channels, frames\)"):
        player.load(np.zeros((1000, 2), dtype=np.float32), RATE)


def test_devices_are_listed_and_chosen_and_playback_moves_to_the_new_one() -> None:
    devices = [
        OutputDevice(0, "Speakers", "Manual", 2, 48000.0, True),
        OutputDevice(3, "Headphones", "Manual", 2, 44100.0, False),
    ]
    backend = ManualBackend(devices)
    player = Player(backend)
    assert [d.name for d in player.output_devices()] == ["Speakers", "Headphones"]
    audio = noise(10000, 19)
    player.load(audio, RATE)
    player.play()
    assert backend.stream.settings.device is None
    backend.stream.render(1024, 512)
    player.set_device("Headphones")
    assert player.device == 3
    assert player.status.device_name == "Headphones"
    assert len(backend.streams) == 2
    assert backend.streams[0].closed
    assert backend.stream.settings.device == 3
    assert backend.stream.active
    np.testing.assert_array_equal(backend.stream.render(512, 512), audio.T[1024:1536])
    with pytest.raises(PlaybackError, match="not connected"):
        player.set_device("Bluetooth")
    player.set_device(None)
    assert backend.stream.settings.device is None
    backend.devices = []
    assert player.refresh_devices() == []
    assert player.state is PlayerState.UNAVAILABLE
    player.close()


def test_the_callback_allocates_no_sample_buffers() -> None:
    block = 4096  # one block of stereo float32 is 32 KiB
    song = noise(RATE * 4, 20)
    player, backend = make_player()
    player.load(song, RATE)
    player.set_take(noise(RATE, 21), RATE, edge_crossfade_s=0)
    player.set_loop(0, RATE * 3 + 123)
    player.play()
    stream = backend.stream
    out = np.empty((block, 2), dtype=np.float32)
    stream.pull(block, out)
    player.select(Source.TAKE)  # a crossfade happens inside the measured blocks
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(200):  # wraps the loop several times
            stream.pull(block, out)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 4096, f"the callback allocated {peak} bytes"
    assert player.position != 0


def test_status_reports_state_position_and_source() -> None:
    player, backend = make_player()
    player.load(noise(5000, 22), RATE)
    player.set_take(noise(1000, 23), 0, edge_crossfade_s=0)
    player.play_in_context(0, 1000, pre_roll_s=0, post_roll_s=0)
    backend.stream.render(512)
    backend.stream.latency = 0.05
    assert player.output_latency_s == 0.05
    status = player.status
    assert status.state is PlayerState.PLAYING
    assert status.position == 512
    assert status.source is Source.TAKE
    assert status.message == ""
