"""Tracks as lanes: each track a lane with its name, mute, solo, gain and remove; mute and solo
are heard in playback and in the export; the overview keeps the mix; a one-track project looks
as it always did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from gui_helpers import open_file, prompts_of

from sa3_studio.app.export_request import ExportRequest, ExportWhat
from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.tracks import TrackLanes
from sa3_studio.app.waveform_source import ProjectPeaks
from sa3_studio.document.constants import SAMPLE_RATE as SR
from sa3_studio.ui.main_window import MainWindow


def _played(window: MainWindow) -> np.ndarray:
    provider = window.services.transport._provider
    assert provider is not None
    audio, rate = provider()
    assert rate == SR
    return np.asarray(audio)


def _export_mix(qtbot: Any, window: MainWindow, path: Path) -> np.ndarray:
    """Export the mix to ``path`` (32-bit float WAV) through the window; the file's samples,
    ``(channels, frames)``."""
    prompts_of(window).export_answer = ExportRequest(ExportWhat.MIX, path, "wav32f")
    with qtbot.waitSignal(window.services.files.exported, timeout=20000):
        window.actions["file.export"].trigger()
    exported, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return exported.T


def test_a_one_track_project_looks_as_before(qtbot, window: MainWindow, song_file: Path):
    open_file(qtbot, window, song_file)
    assert not window.track_headers.isVisible()
    source = window.timeline.waveform.source()
    assert isinstance(source, ProjectPeaks)
    assert source.channels == 2  # the L and R lanes


def test_each_track_is_a_lane_with_its_header(qtbot, two_tracks):
    window, first, bells = two_tracks
    headers = window.track_headers
    assert headers.isVisible()
    assert [h.track_id for h in headers.headers] == [first, bells]
    assert headers.header(bells).name_edit.text() == "Bells"
    lanes = window.timeline.waveform.source()
    assert isinstance(lanes, TrackLanes)
    assert lanes.lane_names == ["song", "Bells"]
    # The overview keeps showing the mix.
    assert isinstance(window.timeline.overview._source, ProjectPeaks)
    # The bells lane is silent before 2 s and loud within its clip.
    _mins, maxs = lanes.envelope(0, 4 * SR, 4)
    assert maxs[1, 0] == 0.0
    assert maxs[1, 2] == pytest.approx(0.25, abs=0.01)
    # Each header sits beside its lane.
    qtbot.waitUntil(
        lambda: [(h.y(), h.height()) for h in headers.headers] == window.timeline.lane_spans()
    )


def test_mute_and_solo_are_heard_in_playback_and_export(qtbot, two_tracks, tmp_path: Path):
    window, first, bells = two_tracks
    doc = window.services.document
    song_only = doc.project.track(first).read(0, doc.project.frames)
    bells_only = doc.project.track(bells).read(0, doc.project.frames)
    both = render_mix(doc.project)
    np.testing.assert_allclose(_played(window), both, atol=1e-6)

    headers = window.track_headers
    headers.header(bells).mute.click()
    assert doc.project.track(bells).muted
    assert doc.undo_text() == "Undo Mute 'Bells'"
    assert 1 in window.timeline.waveform.source().dimmed_lanes
    np.testing.assert_allclose(_played(window), song_only, atol=1e-6)

    exported = _export_mix(qtbot, window, tmp_path / "muted.wav")
    np.testing.assert_allclose(exported, song_only, atol=1e-6)

    headers.header(bells).mute.click()
    headers.header(bells).solo.click()
    assert doc.project.track(bells).solo
    np.testing.assert_allclose(_played(window), bells_only, atol=1e-6)
    exported = _export_mix(qtbot, window, tmp_path / "solo.wav")
    np.testing.assert_allclose(exported, bells_only, atol=1e-6)


def test_gain_rename_and_remove_are_undoable(qtbot, two_tracks):
    window, first, bells = two_tracks
    doc = window.services.document
    header = window.track_headers.header(bells)
    header.gain.setValue(-6.0)
    header.gain.setValue(-12.0)
    assert doc.project.track(bells).gain_db == -12.0
    assert doc.undo_text() == "Undo Track Gain 'Bells'"
    doc.undo()  # the two steps of the box merged into one
    assert doc.project.track(bells).gain_db == 0.0
    header = window.track_headers.header(bells)
    assert header.gain.value() == 0.0
    header.name_edit.setText("Chimes")
    header.name_edit.editingFinished.emit()
    assert doc.project.track(bells).name == "Chimes"
    window.track_headers.header(bells).remove.click()
    assert [t.id for t in doc.project.tracks] == [first]
    assert not window.track_headers.isVisible()
    assert isinstance(window.timeline.waveform.source(), ProjectPeaks)
    doc.undo()
    assert [t.id for t in doc.project.tracks] == [first, bells]
    assert window.track_headers.isVisible()


def test_regions_and_takes_are_drawn_in_their_tracks_lane(qtbot, two_tracks):
    from PySide6.QtGui import QImage, QPainter

    from sa3_studio.document.region_edits import add_region
    from sa3_studio.ui.takes_panel import timeline_overlays

    window, first, bells = two_tracks
    doc = window.services.document
    assert doc.apply("Add Region", lambda p: add_region(p, bells, 3 * SR, 4 * SR)[0])
    layout = window.timeline._layout_info
    assert layout.lane(first) == (0.0, 0.5)
    assert layout.lane(bells) == (0.5, 1.0)
    (region,) = [r for r in doc.project.regions if r.track_id == bells]

    class Pending:
        start, end, label, active, key, bad_seam = 3 * SR, 4 * SR, "Take 1", False, "t1", False
        source = None

    (item,) = timeline_overlays([Pending()], track_of={"t1": region.track_id})  # type: ignore[list-item]
    assert item.track_id == bells
    window.timeline.set_take_overlays([item])
    image = QImage(window.timeline.plot.size(), QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    window.timeline.plot.render(painter)
    painter.end()
    assert not image.isNull()
    # One track again: everything is drawn over the whole height.
    window.track_headers.header(bells).remove.click()
    assert layout.lanes == {}
    assert layout.lane(first) == (0.0, 1.0)


def test_a_selection_in_a_lane_edits_that_track_and_makes_its_regions_there(
    qtbot, two_tracks, no_mouse_rate_limit
):
    from gui_helpers import drag

    window, first, bells = two_tracks
    doc, s = window.services.document, window.services.session
    tl = window.timeline
    vp = tl.plot.viewport()

    def pos(seconds: float, y: float):
        return tl.viewport_pos_of(round(seconds * SR), y)

    # A drag in the bells lane selects the span on that track only.
    drag(vp, pos(3.0, 0.75), pos(4.0, 0.75))
    assert s.selection_tracks() == (bells,)
    assert tl._layout_info.selection_lanes == (0.5, 1.0)
    before_song = doc.project.track(first).read(3 * SR, 4 * SR)
    window.actions["edit.silence"].trigger()
    ((a, b),) = s.selection()
    assert abs(a - 3 * SR) < SR // 20  # where the drag started (a pixel of slack)
    assert not doc.project.track(bells).read(a, b).any()
    np.testing.assert_array_equal(doc.project.track(first).read(3 * SR, 4 * SR), before_song)
    window.actions["region.add"].trigger()
    (region,) = doc.project.regions
    assert region.track_id == bells

    # A drag over both lanes covers both tracks; a click in the song's lane selects it alone.
    drag(vp, pos(5.0, 0.25), pos(6.0, 0.75))
    assert s.selection_tracks() == (first, bells)
    window.actions["region.add"].trigger()
    assert sorted(r.track_id for r in doc.project.regions if r.start >= 5 * SR - 1000) == sorted(
        [first, bells]
    )
