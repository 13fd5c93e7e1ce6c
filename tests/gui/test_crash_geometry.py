"""Extreme zoom: every rectangle, line and text width given to Qt stays drawable."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
import pytest

from sa3_studio.document.region import Region
from sa3_studio.ui.timeline_items import (
    MAX_TEXT_PX,
    Layout,
    RegionsItem,
    SelectionItem,
    TakeOverlay,
    TakeOverlayItem,
    clip_span,
)

RATE = 48000
HALF_HOUR = 30 * 60 * RATE


def test_clip_span_keeps_one_view_width_each_side() -> None:
    assert clip_span(0.0, 1800.0, 900.0, 900.001) == (pytest.approx(899.999), 900.002)
    assert clip_span(900.0, 900.0005, 899.0, 901.0) == (900.0, 900.0005)  # inside: unchanged


def test_a_half_hour_region_zoomed_to_a_millisecond_paints(qtbot: Any) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(1200, 400)
    layout = Layout(sample_rate=RATE)
    regions = RegionsItem(layout)
    selection = SelectionItem(layout)
    overlays = TakeOverlayItem(layout)
    for item in (regions, selection, overlays):
        item.set_duration(HALF_HOUR / RATE)
        plot.addItem(item)
    long_name = "a region with a long name that must be elided " * 4
    regions.set_regions([Region("r1", "t1", 0, HALF_HOUR, name=long_name)])
    regions.set_selected(["r1"])
    selection.set_ranges([(0, HALF_HOUR)])
    overlays.set_overlays([TakeOverlay(0, HALF_HOUR, label="Take 1")])
    plot.show()
    qtbot.waitExposed(plot)
    middle = HALF_HOUR / RATE / 2
    empty = pg.PlotWidget()
    qtbot.addWidget(empty)
    empty.resize(1200, 400)
    background = empty.grab().toImage().pixelColor(600, 200)
    for span in (1.0, 0.01, 0.001, 1e-6):
        plot.getViewBox().setXRange(middle, middle + span, padding=0.0)
        image = plot.grab().toImage()  # paints every item at this zoom
        assert image.width() >= 1000
        # The region, selection and take cover the whole view: their tint is on screen.
        assert image.pixelColor(600, 200) != background


def test_a_label_box_is_never_wider_than_qt_can_measure() -> None:
    assert 2000 < MAX_TEXT_PX < 1 << 16
