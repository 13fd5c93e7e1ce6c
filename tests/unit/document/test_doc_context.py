"""The context-window planner."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sa3_studio.document.context import (
    MEDIUM_MAX_CONTEXT_S,
    SMALL_MAX_CONTEXT_S,
    Window,
    WindowRegion,
    context_frames_for,
    plan_windows,
)
from sa3_studio.document.region import Region
from sa3_studio.errors import EditError

SR = 44100
LATENT = 4096
SONG = 6 * 60 * SR
SMALL = context_frames_for(SMALL_MAX_CONTEXT_S)
MEDIUM = context_frames_for(MEDIUM_MAX_CONTEXT_S)
MIN_CTX = 5 * SR


def region(rid: str, start_s: float, end_s: float, name: str = "") -> Region:
    return Region(rid, "t", round(start_s * SR), round(end_s * SR), name)


def check_window(w: Window, song: int, context: int, regions: list[Region]) -> None:
    """Invariants every planned window must hold."""
    assert 0 <= w.start < w.end
    assert w.length <= context
    assert w.end <= max(song, max(r.end for r in regions))
    by_id = {r.id: r for r in regions}
    for wr in w.regions:
        r = by_id[wr.region_id]
        assert (w.to_song(wr.start), w.to_song(wr.end)) == (r.start, r.end)
        # context on both sides where the song has it
        assert wr.start >= min(MIN_CTX, r.start)
        assert w.length - wr.end >= min(MIN_CTX, max(0, song - r.end))


def test_context_lengths_are_whole_latents() -> None:
    assert SMALL % LATENT == 0
    assert SMALL <= 120 * SR
    assert SMALL > 120 * SR - LATENT
    assert MEDIUM <= 380 * SR


@pytest.mark.parametrize("context", [SMALL, MEDIUM])
def test_five_second_region_in_a_six_minute_song(context: int) -> None:
    r = region("r", 200.0, 205.0)
    windows = plan_windows(SONG, [r], context)
    assert len(windows) == 1
    w = windows[0]
    check_window(w, SONG, context, [r])
    assert w.length == min(context, SONG)
    if context < SONG:
        assert w.start % LATENT == 0
        # centred: the context on each side differs by less than a latent frame
        wr = w.regions[0]
        assert abs(wr.start - (w.length - wr.end)) < 2 * LATENT
    else:
        assert (w.start, w.end) == (0, SONG)
    lo, hi = w.inpaint_regions_s()[0]
    assert hi - lo == pytest.approx(5.0)


def test_close_regions_share_a_window_and_far_ones_do_not() -> None:
    a, b, c = region("a", 50, 55), region("b", 70, 80), region("c", 300, 305)
    windows = plan_windows(SONG, [c, a, b], SMALL)
    assert [[x.region_id for x in w.regions] for w in windows] == [["a", "b"], ["c"]]
    for w in windows:
        check_window(w, SONG, SMALL, [a, b, c])
    # the medium model sees the whole song at once
    (whole,) = plan_windows(SONG, [a, b, c], MEDIUM)
    assert (whole.start, whole.end) == (0, SONG)
    assert len(whole.regions) == 3


def test_regions_at_the_start_and_end_of_the_song() -> None:
    first, last = region("first", 0, 5), region("last", 355, 360)
    windows = plan_windows(SONG, [first, last], SMALL)
    assert windows[0].start == 0
    assert windows[0].regions[0].start == 0
    assert windows[1].end == SONG
    assert windows[1].regions[0].end == windows[1].length
    for w in windows:
        check_window(w, SONG, SMALL, [first, last])


def test_short_song_is_one_window() -> None:
    song = 30 * SR
    (w,) = plan_windows(song, [region("a", 1, 2), region("b", 20, 29)], SMALL)
    assert (w.start, w.end) == (0, song)


def test_continuation_past_the_end() -> None:
    song = 60 * SR
    r = region("more", 60, 90)
    (w,) = plan_windows(song, [r], SMALL)
    assert w.end == 90 * SR
    assert w.regions[0].end == w.length
    audio = np.ones((2, song), dtype=np.float32)
    source = w.source(audio)
    assert source.shape == (2, w.length)
    assert np.all(source[:, : song - w.start] == 1)
    assert np.all(source[:, song - w.start :] == 0)


def test_region_too_long_names_the_limit() -> None:
    with pytest.raises(EditError) as info:
        plan_windows(SONG, [region("big", 100, 230, name="Bridge")], SMALL)
    text = str(info.value)
    assert "Region 'Bridge' is 2:10.000 long" in text
    assert "at most 1:49.9" in text
    assert "choose a longer context" in text
    # the same region fits the medium model
    assert len(plan_windows(SONG, [region("big", 100, 230)], MEDIUM)) == 1


def test_planner_input_errors() -> None:
    with pytest.raises(EditError, match="no region"):
        plan_windows(SONG, [], SMALL)
    with pytest.raises(EditError, match="longer than zero"):
        plan_windows(SONG, [region("a", 1, 2)], 0)
    with pytest.raises(ValueError, match="unique"):
        plan_windows(SONG, [region("a", 1, 2), region("a", 3, 4)], SMALL)


def test_masks_and_mapping_back() -> None:
    w = Window(4096, 4096 * 11, (WindowRegion("r", 4096 * 2, 4096 * 4),))
    mask = w.mask()
    assert mask.shape == (4096 * 10,)
    assert mask.sum() == 4096 * 2
    assert mask[4096 * 2]
    assert not mask[4096 * 2 - 1]
    assert not mask[4096 * 4]
    assert w.latent_mask().tolist() == [False, False, True, True] + [False] * 6
    assert w.to_song(0) == 4096
    assert w.to_window(4096 * 3) == 4096 * 2
    generated = np.arange(2 * w.length, dtype=np.float32).reshape(2, w.length)
    part = w.region_audio(generated, "r")
    np.testing.assert_array_equal(part, generated[:, 4096 * 2 : 4096 * 4])
    tail = generated[:, 4096:]
    np.testing.assert_array_equal(w.region_audio(tail, "r", generated_start=4096), part)
    with pytest.raises(ValueError, match="does not cover"):
        w.region_audio(generated[:, :100], "r")
    with pytest.raises(KeyError):
        w.region_audio(generated, "other")


def test_overlapping_inpaint_regions_are_merged_in_seconds() -> None:
    w = Window(0, SR * 10, (WindowRegion("a", 0, SR), WindowRegion("b", SR // 2, 2 * SR)))
    assert w.inpaint_regions_s() == ((0.0, 2.0),)


@settings(max_examples=60, deadline=None)
@given(
    song_s=st.integers(10, 400),
    context=st.sampled_from([SMALL, MEDIUM, context_frames_for(30.0)]),
    spans=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.2, 8.0)), min_size=1, max_size=6),
)
def test_every_region_lands_in_exactly_one_valid_window(
    song_s: int, context: int, spans: list[tuple[float, float]]
) -> None:
    song = song_s * SR
    regions = []
    for i, (pos, length_s) in enumerate(spans):
        start = round(pos * (song - 9 * SR)) if song > 9 * SR else 0
        regions.append(Region(f"r{i}", "t", max(0, start), max(0, start) + round(length_s * SR)))
    windows = plan_windows(song, regions, context)
    placed = [wr.region_id for w in windows for wr in w.regions]
    assert sorted(placed) == sorted(r.id for r in regions)
    for w in windows:
        check_window(w, song, context, regions)
    assert [w.start for w in windows] == sorted(w.start for w in windows)
