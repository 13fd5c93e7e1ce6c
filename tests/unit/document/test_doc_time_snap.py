"""Time formatting and parsing, bars:beats, and the snapping helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Clip, Track
from sa3_studio.document.snapping import (
    nearest_zero_crossing,
    snap_span_to_latent,
    snap_to_bar,
    snap_to_beat,
    snap_to_latent,
    snap_to_zero_crossing,
)
from sa3_studio.document.timefmt import (
    format_bars_beats,
    format_range,
    format_time,
    format_time_compact,
    parse_bars_beats,
    parse_time,
    range_label,
)
from sa3_studio.errors import EditError

SR = 44100

# -- clock times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        (0, "0:00.000"),
        (12 * SR + 15435, "0:12.350"),
        (SR // 2000, "0:00.000"),  # 22 frames = 0.000499 s
        (SR // 2000 + 1, "0:00.001"),  # 23 frames = 0.000522 s
        (SR * 59 + SR - 1, "1:00.000"),  # rounds up across the minute
        (SR * (3600 + 2 * 60 + 3) + SR // 2, "1:02:03.500"),
        (-SR, "-0:01.000"),
        (-5, "0:00.000"),  # no "-0:00.000"
    ],
)
def test_format_time(frames: int, text: str) -> None:
    assert format_time(frames) == text


def test_format_variants() -> None:
    assert format_time(SR * 75, decimals=0) == "1:15"
    assert format_time_compact(12 * SR) == "0:12"
    assert format_time_compact(12 * SR + SR // 2) == "0:12.5"
    assert format_time_compact(12 * SR + SR // 4) == "0:12.25"
    assert format_range(12 * SR, 16 * SR) == "0:12\u20130:16"
    assert range_label("Gain", SR, 2 * SR) == "Gain 0:01\u20130:02"


@pytest.mark.parametrize(
    ("text", "frames"),
    [
        ("12", 12 * SR),
        ("12.5", 12 * SR + SR // 2),
        (" 12.5 s ", 12 * SR + SR // 2),
        ("250ms", SR // 4),
        ("1:02.5", 62 * SR + SR // 2),
        ("1:02:03.25", (3723 * 4 + 1) * SR // 4),
        (".5", SR // 2),
        ("0:00.0000113", 0),  # rounds to the nearest frame
        ("0:00.0000114", 1),
    ],
)
def test_parse_time(text: str, frames: int) -> None:
    assert parse_time(text) == frames


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "1:75", "1:70:00", "-3", "1:02ms"])
def test_parse_time_rejects_nonsense(text: str) -> None:
    with pytest.raises(EditError, match=r"time|seconds|minutes"):
        parse_time(text)


@given(st.integers(0, 10 * 3600 * SR))
def test_format_parse_round_trip_within_half_a_millisecond(frames: int) -> None:
    back = parse_time(format_time(frames))
    assert abs(back - frames) <= SR // 2000 + 1


# -- bars and beats ----------------------------------------------------------------------------


def test_bars_beats_format_and_parse() -> None:
    grid = BeatGrid(120.0, offset=1000)  # a beat is 22050 frames
    assert format_bars_beats(1000, grid) == "1.1.00"
    assert format_bars_beats(1000 + 22050 * 6 + 22050 // 4, grid) == "2.3.25"
    assert format_bars_beats(1000 - 22050, grid) == "0.4.00"
    assert parse_bars_beats("2.3.25", grid) == 1000 + 22050 * 6 + round(22050 * 0.25)
    assert parse_bars_beats("2:3", grid) == 1000 + 22050 * 6
    assert parse_bars_beats("3", grid) == 1000 + 22050 * 8
    with pytest.raises(EditError, match="Beat 5 does not exist"):
        parse_bars_beats("1.5", grid)
    with pytest.raises(EditError, match="not a bar position"):
        parse_bars_beats("x", grid)


@given(bar=st.integers(-3, 400), beat=st.integers(1, 3), hundredths=st.integers(0, 99))
def test_bars_beats_round_trip(bar: int, beat: int, hundredths: int) -> None:
    grid = BeatGrid(97.3, offset=-500, beats_per_bar=3)
    text = f"{bar}.{beat}.{hundredths:02d}"
    assert format_bars_beats(parse_bars_beats(text, grid), grid) == text


def test_grid_validation() -> None:
    with pytest.raises(ValueError, match="between 1 and 999"):
        BeatGrid(0.0)
    with pytest.raises(ValueError, match="1 to 64 beats"):
        BeatGrid(120.0, beats_per_bar=0)


# -- snapping ----------------------------------------------------------------------------------


def test_snap_to_latent() -> None:
    assert snap_to_latent(2047) == 0
    assert snap_to_latent(2048) == 4096
    assert snap_to_latent(4097, mode="floor") == 4096
    assert snap_to_latent(4097, mode="ceil") == 8192
    assert snap_span_to_latent(100, 4097) == (0, 8192)
    assert snap_span_to_latent(4096, 8192) == (4096, 8192)
    with pytest.raises(ValueError, match="unknown snap mode"):
        snap_to_latent(1, mode="sideways")  # type: ignore[arg-type]


def test_snap_to_beat_and_bar() -> None:
    grid = BeatGrid(120.0, offset=100)  # beats every 22050 frames from 100
    assert snap_to_beat(100 + 22050 + 11000, grid) == 100 + 22050
    assert snap_to_beat(100 + 22050 + 11100, grid) == 100 + 44100
    assert snap_to_beat(100 + 22050 + 5600, grid, division=4) == 100 + 22050 + 5512
    assert snap_to_beat(100 + 1, grid, mode="ceil") == 100 + 22050
    assert snap_to_beat(50, grid, mode="floor") == 100 - 22050
    assert snap_to_bar(100 + 22050 * 3, grid) == 100 + 88200
    assert snap_to_bar(100 + 22050, grid) == 100


def test_nearest_zero_crossing() -> None:
    t = np.arange(2000)
    wave = np.sin(2 * np.pi * t / 400 + 0.1).astype(np.float32)  # crossings near 200k - 6.4
    samples = np.stack([wave, wave])
    found = nearest_zero_crossing(samples, 590)
    mono = samples.sum(axis=0)
    assert np.sign(mono[found - 1]) != np.sign(mono[found + 1]) or mono[found] == 0
    assert found == 594
    assert nearest_zero_crossing(samples, 590, limit=2) == 590
    assert nearest_zero_crossing(np.ones((2, 50), dtype=np.float32), 10) == 10


def test_snap_to_zero_crossing_on_a_track() -> None:
    t = np.arange(4000)
    wave = np.sin(2 * np.pi * t / 400 + 0.1).astype(np.float32)
    track = Track(
        "t", "", (Clip.from_audio("c", 1000, AudioData.from_array(np.stack([wave, wave]))),)
    )
    assert snap_to_zero_crossing(track, 1000 + 590, radius=20) == 1000 + 594
    assert snap_to_zero_crossing(track, 500) == 500  # a gap is silence: already a crossing
