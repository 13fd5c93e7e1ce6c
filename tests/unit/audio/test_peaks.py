"""Peak pyramid: exact against brute force, incremental, a few values per pixel."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sa3_studio.audio.peaks import BASE_BLOCK, FACTOR, PeakPyramid


def noise(channels: int, frames: int, seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).uniform(-1, 1, (channels, frames)).astype(np.float32)


def assert_exact(
    pyramid: PeakPyramid, audio: npt.NDArray[np.float32], start: int, end: int, n: int
) -> None:
    """Every pixel equals the brute-force min/max of the range the pyramid says it covers."""
    mins, maxs = pyramid.query(start, end, n)
    starts, stops = pyramid.pixel_ranges(start, end, n)
    assert mins.shape == maxs.shape == (audio.shape[0], n)
    for i in range(n):
        if stops[i] > starts[i]:
            seg = audio[:, starts[i] : stops[i]]
            np.testing.assert_array_equal(mins[:, i], seg.min(axis=1))
            np.testing.assert_array_equal(maxs[:, i], seg.max(axis=1))
        else:
            assert np.isnan(mins[:, i]).all()
            assert np.isnan(maxs[:, i]).all()


def assert_ranges_follow_the_view(pyramid: PeakPyramid, start: int, end: int, n: int) -> None:
    """Ranges tile the view without gaps, each within one pixel of where it should be."""
    starts, stops = pyramid.pixel_ranges(start, end, n)
    frames = pyramid.frames
    per_pixel = (end - start) / n
    ideal = start + (np.arange(n) * (end - start)) // n
    live = stops > starts
    assert np.all(live[: int(live.sum())])  # the non-empty pixels come first
    for i in np.flatnonzero(live):
        assert abs(int(starts[i]) - int(ideal[i])) <= max(per_pixel, 1)
    if per_pixel >= 1:
        live_idx = np.flatnonzero(live)
        assert np.array_equal(stops[live_idx[:-1]], starts[live_idx[1:]])  # no gaps, no overlap
        if live_idx.size:
            assert stops[live_idx[-1]] >= min(end, frames)  # the view is covered to its end


@st.composite
def scenario(draw: st.DrawFn) -> tuple[npt.NDArray[np.float32], list[int], int, int, int]:
    channels = draw(st.integers(1, 2))
    frames = draw(st.integers(1, 70_000))
    audio = noise(channels, frames, draw(st.integers(0, 2**16)))
    # Append in random pieces: incremental building must give the same answers.
    cuts = sorted(set(draw(st.lists(st.integers(1, max(frames - 1, 1)), max_size=6))))
    cuts = [c for c in cuts if 0 < c < frames]
    start = draw(st.integers(0, frames + 100))
    end = draw(st.integers(start + 1, start + 2 * frames + 200))
    n = draw(st.integers(1, 800))
    return audio, cuts, start, end, n


@settings(max_examples=120, deadline=None)
@given(scenario())
def test_query_is_exact_against_brute_force(
    case: tuple[npt.NDArray[np.float32], list[int], int, int, int],
) -> None:
    audio, cuts, start, end, n = case
    pyramid = PeakPyramid(audio.shape[0])
    for a, b in zip([0, *cuts], [*cuts, audio.shape[1]]):
        pyramid.append(audio[:, a:b])
    assert pyramid.frames == audio.shape[1]
    assert_exact(pyramid, audio, start, end, n)
    assert_ranges_follow_the_view(pyramid, start, end, n)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40_000), st.lists(st.integers(1, 9000), min_size=1, max_size=8))
def test_incremental_levels_equal_one_shot_levels(frames: int, pieces: list[int]) -> None:
    audio = noise(2, frames, frames)
    whole = PeakPyramid.from_audio(audio)
    grown = PeakPyramid(2)
    pos = 0
    for size in [*pieces, frames]:  # the given pieces (tiny ones too), then the rest
        grown.append(audio[:, pos : pos + size])
        pos += size
    assert grown.block_sizes == whole.block_sizes
    for k in range(len(whole.block_sizes)):
        for a, b in zip(whole.level(k), grown.level(k)):
            np.testing.assert_array_equal(a, b)


def test_levels_are_64_256_1024_and_summarise_blocks() -> None:
    audio = noise(2, 10_000, 1)
    pyramid = PeakPyramid.from_audio(audio)
    assert pyramid.block_sizes[:3] == (BASE_BLOCK, BASE_BLOCK * FACTOR, BASE_BLOCK * FACTOR**2)
    assert pyramid.block_sizes == (64, 256, 1024, 4096, 16384)
    mins, maxs = pyramid.level(1)
    assert mins.shape == (2, -(-10_000 // 256))
    np.testing.assert_array_equal(maxs[:, 3], audio[:, 768:1024].max(axis=1))
    np.testing.assert_array_equal(mins[:, -1], audio[:, 9984:].min(axis=1))  # partial block
    assert not mins.flags.writeable


def test_append_computes_only_new_blocks() -> None:
    audio = noise(2, 50_000, 2)
    pyramid = PeakPyramid.from_audio(audio[:, :40_000])
    before = pyramid.level(0)[0].copy()
    # Blocks before the old partial block are left as they were (no recomputation needed).
    pyramid.append(audio[:, 40_000:])
    after = pyramid.level(0)[0]
    full_before = 40_000 // 64
    np.testing.assert_array_equal(after[:, :full_before], before[:, :full_before])
    assert_exact(pyramid, audio, 0, 50_000, 700)


def test_ten_minutes_read_a_few_thousand_values_per_pixel_row() -> None:
    """Whatever the zoom, a query reduces fewer than 4 blocks per pixel."""
    frames = 10 * 60 * 44100
    pyramid = PeakPyramid(2)
    # A long buffer in pieces (summaries only matter here, values need not be random).
    piece = np.linspace(-1, 1, 44100 * 30, dtype=np.float32)[np.newaxis].repeat(2, axis=0)
    for _ in range(frames // piece.shape[1]):
        pyramid.append(piece)
    assert pyramid.frames == frames
    n = 2000
    for start, view in (
        (0, frames),
        (12345, frames // 7),
        (44100 * 60, 44100 * 10),
        (999, 200_000),
    ):
        starts, stops = pyramid.pixel_ranges(start, start + view, n)
        # The documented rule: the coarsest level with at least one block per pixel.
        block = max(b for b in pyramid.block_sizes if b <= view / n)
        assert np.all(starts % block == 0)  # pixels are whole blocks of that level
        values_read = -(-int(stops.max() - starts.min()) // block)
        assert values_read < 4 * n + 2


def test_zoomed_in_beyond_one_frame_per_pixel() -> None:
    audio = noise(1, 300, 3)
    pyramid = PeakPyramid.from_audio(audio)
    mins, maxs = pyramid.query(100, 110, 40)
    starts, _ = pyramid.pixel_ranges(100, 110, 40)
    np.testing.assert_array_equal(mins[0], audio[0, starts])
    np.testing.assert_array_equal(maxs[0], audio[0, starts])
    assert list(starts[:8]) == [100, 100, 100, 100, 101, 101, 101, 101]


def test_past_the_end_is_nan_and_empty_pyramid_is_all_nan() -> None:
    audio = noise(2, 1000, 4)
    pyramid = PeakPyramid.from_audio(audio)
    mins, _ = pyramid.query(0, 2000, 10)
    assert not np.isnan(mins[:, :5]).any()
    assert np.isnan(mins[:, 6:]).all()
    mins, maxs = PeakPyramid(2).query(0, 100, 5)
    assert np.isnan(mins).all()
    assert np.isnan(maxs).all()


@pytest.mark.parametrize(
    ("start", "end", "n"),
    [(-1, 10, 5), (10, 10, 5), (0, 10, 0)],
)
def test_invalid_queries(start: int, end: int, n: int) -> None:
    pyramid = PeakPyramid.from_audio(noise(1, 100, 5))
    with pytest.raises(ValueError, match=r"must be|need"):
        pyramid.query(start, end, n)


def test_append_checks_channels() -> None:
    pyramid = PeakPyramid(2)
    with pytest.raises(ValueError, match="expected 2 channels"):
        pyramid.append(np.zeros((1, 10), np.float32))
