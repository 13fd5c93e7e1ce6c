"""View state: zoom, scroll, selection and nudging (no widgets)."""

from __future__ import annotations

import pytest

from sa3_studio.app.session import MIN_VIEW_SAMPLES, Session, normalize_ranges

RATE = 44100


@pytest.fixture
def session() -> Session:
    s = Session()
    s.set_timeline(RATE, 600 * RATE, fit=True)  # a 10-minute song
    return s


def test_fit_shows_the_whole_song(session: Session) -> None:
    assert session.view_range() == (0.0, 600.0)


def test_zoom_keeps_the_anchor_in_place(session: Session) -> None:
    session.set_view(100.0, 200.0)
    session.zoom(4.0, anchor=125.0)
    start, end = session.view_range()
    assert end - start == pytest.approx(25.0)
    # 125 s was a quarter into the view and still is.
    assert (125.0 - start) / (end - start) == pytest.approx(0.25)


def test_zoom_is_clamped_to_the_song_and_to_a_few_samples(session: Session) -> None:
    session.zoom(1e9, anchor=300.0)
    start, end = session.view_range()
    assert end - start == pytest.approx(MIN_VIEW_SAMPLES / RATE)
    session.zoom(1e-9)
    assert session.view_range() == (0.0, 600.0)


def test_scrolling_stops_at_the_ends(session: Session) -> None:
    session.set_view(10.0, 20.0)
    session.scroll(-5.0)
    assert session.view_range() == (0.0, 10.0)
    session.scroll(1000.0)
    assert session.view_range() == (590.0, 600.0)


def test_zoom_to_selection(session: Session) -> None:
    session.set_selection([(10 * RATE, 20 * RATE)])
    session.zoom_to_selection()
    start, end = session.view_range()
    assert start < 10.0 < 20.0 < end
    assert end - start == pytest.approx(11.0)


def test_view_changes_are_signalled_once_per_change(session: Session) -> None:
    seen: list[tuple[float, float]] = []
    session.view_changed.connect(lambda a, b: seen.append((a, b)))
    session.set_view(1.0, 2.0)
    session.set_view(1.0, 2.0)
    assert seen == [(1.0, 2.0)]


def test_ranges_are_sorted_merged_and_clipped() -> None:
    assert normalize_ranges([(50, 40), (0, 10), (5, 20), (30, 30), (-5, 2)], 45) == [
        (0, 20),
        (40, 45),
    ]


def test_add_selection_keeps_spans_apart_and_merges_overlaps(session: Session) -> None:
    session.set_selection([(100, 200)])
    session.add_selection((300, 400))
    assert session.selection() == [(100, 200), (300, 400)]
    session.add_selection((150, 350))
    assert session.selection() == [(100, 400)]


def test_nudge_moves_all_spans_and_stops_at_the_start(session: Session) -> None:
    session.set_selection([(1000, 2000), (5000, 6000)])
    session.nudge_selection(500)
    assert session.selection() == [(1500, 2500), (5500, 6500)]
    session.nudge_selection(-10_000)
    assert session.selection() == [(0, 1000), (4000, 5000)]


def test_shorter_timeline_clips_selection_and_cursor(session: Session) -> None:
    session.set_selection([(10 * RATE, 20 * RATE)])
    session.set_cursor(30 * RATE)
    session.set_timeline(RATE, 15 * RATE)
    assert session.selection() == [(10 * RATE, 15 * RATE)]
    assert session.cursor == 15 * RATE


def test_follow_pages_when_the_playhead_leaves_the_view(session: Session) -> None:
    session.set_view(0.0, 10.0)
    session.ensure_visible(5.0)
    assert session.view_range() == (0.0, 10.0)
    session.ensure_visible(12.0)
    assert session.view_range() == (12.0, 22.0)
