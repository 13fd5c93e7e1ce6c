"""The timeline with real mouse events: selecting, region edges, snapping, zoom and drawing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gui_helpers import click, drag, open_file, wheel
from PySide6.QtCore import QPointF, Qt

from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.ui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_mouse_rate_limit")

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def win(qtbot: Any, window: MainWindow, song_file: Path) -> MainWindow:
    open_file(qtbot, window, song_file)
    window.services.session.set_view(0.0, 8.0)
    return window


def _pos(win: MainWindow, seconds: float, lane_y: float = 0.5) -> QPointF:
    return win.timeline.viewport_pos_of(round(seconds * SAMPLE_RATE), lane_y)


def _frames_per_px(win: MainWindow) -> float:
    return win.timeline.frames_per_pixel()


def test_dragging_selects_a_span_without_an_undo_step(win: MainWindow) -> None:
    s, doc = win.services.session, win.services.document
    steps = doc.history.undo_steps
    drag(win.timeline.plot.viewport(), _pos(win, 1.0), _pos(win, 3.0))
    [(a, b)] = s.selection()
    tol = 2 * _frames_per_px(win)
    assert abs(a - SAMPLE_RATE) <= tol
    assert abs(b - 3 * SAMPLE_RATE) <= tol
    assert doc.history.undo_steps == steps
    assert s.cursor == a


def test_ctrl_drag_adds_a_second_span(win: MainWindow) -> None:
    vp = win.timeline.plot.viewport()
    drag(vp, _pos(win, 1.0), _pos(win, 2.0))
    drag(vp, _pos(win, 4.0), _pos(win, 5.0), modifiers=CTRL)
    spans = win.services.session.selection()
    assert len(spans) == 2
    assert spans[0][1] < spans[1][0]
    # A plain drag replaces both.
    drag(vp, _pos(win, 6.0), _pos(win, 7.0))
    assert len(win.services.session.selection()) == 1


def test_click_puts_the_cursor_and_shift_click_extends(win: MainWindow) -> None:
    s = win.services.session
    vp = win.timeline.plot.viewport()
    drag(vp, _pos(win, 1.0), _pos(win, 2.0))
    click(vp, _pos(win, 4.0))
    assert s.selection() == []
    assert abs(s.cursor - 4 * SAMPLE_RATE) <= 2 * _frames_per_px(win)
    click(vp, _pos(win, 6.0), modifiers=SHIFT)
    [(a, b)] = s.selection()
    assert abs(a - 4 * SAMPLE_RATE) <= 2 * _frames_per_px(win)
    assert abs(b - 6 * SAMPLE_RATE) <= 2 * _frames_per_px(win)


def test_region_edge_drag_commits_one_history_entry_on_release(win: MainWindow) -> None:
    doc = win.services.document
    [rid] = doc.add_regions([(2 * SAMPLE_RATE, 3 * SAMPLE_RATE)])
    steps = doc.history.undo_steps
    preview: list[int] = []

    def during(_i: int) -> None:
        # Nothing reaches the document while the mouse button is down.
        assert doc.history.undo_steps == steps
        assert doc.project.region(rid).end == 3 * SAMPLE_RATE
        r = win.timeline.regions_item.regions()[0]
        preview.append(win.timeline.regions_item.span(r)[1])

    drag(win.timeline.plot.viewport(), _pos(win, 3.0), _pos(win, 4.0), on_step=during)
    assert preview[-1] > 3 * SAMPLE_RATE  # the region followed the mouse
    assert doc.history.undo_steps == steps + 1
    region = doc.project.region(rid)
    assert abs(region.end - 4 * SAMPLE_RATE) <= 2 * _frames_per_px(win)
    assert region.start == 2 * SAMPLE_RATE
    assert doc.undo_text().startswith("Undo Move Region")
    doc.undo()
    assert doc.project.region(rid).end == 3 * SAMPLE_RATE


def test_region_header_click_selects_the_region(win: MainWindow) -> None:
    doc, s = win.services.document, win.services.session
    [rid] = doc.add_regions([(5 * SAMPLE_RATE, 6 * SAMPLE_RATE)])
    s.set_selected_regions(())
    s.clear_selection()
    header_y = win.timeline._layout_info.header_top / 2
    click(win.timeline.plot.viewport(), _pos(win, 5.5, header_y))
    assert s.selected_region_ids() == (rid,)
    assert s.selection() == [(5 * SAMPLE_RATE, 6 * SAMPLE_RATE)]


def test_snap_to_latent_frames(win: MainWindow) -> None:
    win.actions["view.snap_latent"].setChecked(True)
    drag(win.timeline.plot.viewport(), _pos(win, 1.03), _pos(win, 2.51))
    [(a, b)] = win.services.session.selection()
    assert a % LATENT_FRAMES == 0
    assert b % LATENT_FRAMES == 0
    assert abs(a - 1.03 * SAMPLE_RATE) <= LATENT_FRAMES


def test_snap_to_beats_uses_the_tempo(win: MainWindow) -> None:
    win.services.document.set_tempo(120.0)
    win.actions["view.snap_beats"].setChecked(True)
    drag(win.timeline.plot.viewport(), _pos(win, 1.1), _pos(win, 2.9))
    beat = SAMPLE_RATE // 2
    assert win.services.session.selection() == [(1 * SAMPLE_RATE, 3 * SAMPLE_RATE)]
    assert all(f % beat == 0 for span in win.services.session.selection() for f in span)


def test_snap_to_zero_crossings(win: MainWindow) -> None:
    win.actions["view.snap_zero"].setChecked(True)
    win.services.session.set_view(1.0, 1.2)
    drag(win.timeline.plot.viewport(), _pos(win, 1.05), _pos(win, 1.15))
    [(a, b)] = win.services.session.selection()
    mix = win.services.document.project.tracks[0].read(0, 2 * SAMPLE_RATE).sum(axis=0)
    for f in (a, b):
        # A sign change (or silence) right at the snapped frame.
        assert mix[f] == 0 or mix[f - 1] * mix[f + 1] <= 0 or mix[f] * mix[f + 1] <= 0


def test_ctrl_wheel_zooms_around_the_mouse_and_wheel_scrolls(win: MainWindow) -> None:
    s = win.services.session
    vp = win.timeline.plot.viewport()
    pos = _pos(win, 2.0)
    wheel(vp, pos, 2, CTRL)
    start, end = s.view_range()
    assert end - start == pytest.approx(8.0 / 1.25**2, rel=1e-3)
    # The time under the mouse stayed under the mouse.
    x = win.timeline.view_box.mapSceneToView(win.timeline.plot.mapToScene(pos.toPoint())).x()
    assert x == pytest.approx(2.0, abs=2 * (end - start) / win.timeline.view_box.width())
    wheel(vp, pos, -1)
    start2, end2 = s.view_range()
    assert end2 - start2 == pytest.approx(end - start)
    assert start2 > start


def test_zoom_keys_and_fit(win: MainWindow) -> None:
    s = win.services.session
    span = s.view_span
    win.actions["view.zoom_in"].trigger()
    assert s.view_span == pytest.approx(span / 2)
    win.actions["view.zoom_out"].trigger()
    assert s.view_span == pytest.approx(span)
    win.actions["view.zoom_fit"].trigger()
    assert s.view_range() == (0.0, pytest.approx(s.duration))
    s.set_selection([(SAMPLE_RATE, 2 * SAMPLE_RATE)])
    win.actions["view.zoom_selection"].trigger()
    start, end = s.view_range()
    assert start < 1.0
    assert end > 2.0
    assert end - start < 1.2


def test_waveform_asks_the_pyramid_for_one_column_per_pixel(win: MainWindow) -> None:
    source = win.timeline.waveform.source()
    assert source is not None
    asked: list[int] = []
    original = source.envelope

    def spy(start: int, end: int, n: int) -> Any:
        asked.append(n)
        return original(start, end, n)

    source.envelope = spy  # type: ignore[method-assign]
    win.services.session.zoom_fit()
    win.timeline.plot.viewport().repaint()
    win.services.session.zoom(3.0)
    win.timeline.plot.viewport().repaint()
    assert asked, "the waveform was not drawn from the pyramid"
    width = win.timeline.view_box.width()
    assert max(asked) <= width + 2


def test_deep_zoom_draws_samples(win: MainWindow) -> None:
    win.services.session.set_view(1.0, 1.0 + 200 / SAMPLE_RATE)
    win.timeline.plot.viewport().repaint()
    kinds = {k for k, _ in win.timeline.waveform._cache}
    assert "line" in kinds
