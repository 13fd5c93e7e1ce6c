"""Cut, copy, paste and delete act on the lanes the selection covers: the other tracks keep every
sample and their length; the edited track closes its gap (as in Audacity); undo restores. The
Regions panel names each region's track once there is more than one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gui_helpers import add_bells_track, click, drag, open_file

from sa3_studio.app.regions_model import COLUMNS, TRACK
from sa3_studio.document.constants import SAMPLE_RATE as SR
from sa3_studio.document.project import Project
from sa3_studio.document.timefmt import range_label
from sa3_studio.ui.main_window import MainWindow


def _span_text(a: int, b: int) -> str:
    return range_label("", a, b).strip()


def _whole(project: Project, track_id: str) -> np.ndarray:
    t = project.track(track_id)
    return t.read(0, t.end)


def test_cut_in_one_lane_cuts_only_that_track_and_paste_puts_it_back(
    qtbot, two_tracks, no_mouse_rate_limit
):
    window, song, bells = two_tracks
    doc, s, tl = window.services.document, window.services.session, window.timeline
    vp = tl.plot.viewport()
    before = doc.project
    song_audio, bells_audio = _whole(before, song), _whole(before, bells)
    song_end, bells_end = before.track(song).end, before.track(bells).end

    # A region on each track after the cut: only the bells' region moves with its audio.
    (on_song,) = doc.add_regions([(5 * SR, 6 * SR)], track_ids=[song])
    (on_bells,) = doc.add_regions([(5 * SR, 6 * SR)], track_ids=[bells])
    before = doc.project

    drag(vp, tl.viewport_pos_of(3 * SR, 0.75), tl.viewport_pos_of(4 * SR, 0.75))
    assert s.selection_tracks() == (bells,)
    ((a, b),) = s.selection()
    window.actions["edit.cut"].trigger()
    spans = {r.id: (r.start, r.end) for r in doc.project.regions}
    assert spans[on_song] == (5 * SR, 6 * SR)
    assert spans[on_bells] == (5 * SR - (b - a), 6 * SR - (b - a))
    assert doc.undo_text() == f"Undo Cut {_span_text(a, b)} on 'Bells'"

    after = doc.project
    # The song's track keeps every sample and its length.
    assert after.track(song).end == song_end
    np.testing.assert_array_equal(_whole(after, song), song_audio)
    # The bells track closed its gap: shorter by the cut, the rest moved earlier.
    assert after.track(bells).end == bells_end - (b - a)
    np.testing.assert_array_equal(_whole(after, bells)[:, :a], bells_audio[:, :a])
    np.testing.assert_array_equal(_whole(after, bells)[:, a:], bells_audio[:, b:])
    clip = doc.clipboard
    assert clip is not None
    assert clip.track_ids == (bells,)
    np.testing.assert_array_equal(clip.read(0), bells_audio[:, a:b])
    # The cursor stays in the bells lane, so a paste puts the audio back there.
    assert s.cursor == a
    assert s.selection_tracks() == (bells,)

    window.actions["edit.paste"].trigger()
    assert doc.undo_text() == f"Undo Paste {_span_text(a, b)} on 'Bells'"
    np.testing.assert_array_equal(_whole(doc.project, bells), bells_audio)
    np.testing.assert_array_equal(_whole(doc.project, song), song_audio)
    assert doc.project.track(song).end == song_end

    window.actions["edit.undo"].trigger()  # the paste
    window.actions["edit.undo"].trigger()  # the cut
    np.testing.assert_array_equal(_whole(doc.project, bells), bells_audio)
    np.testing.assert_array_equal(_whole(doc.project, song), song_audio)
    assert doc.project.track(bells).end == bells_end


def test_delete_in_the_songs_lane_leaves_the_other_track_alone(
    qtbot, two_tracks, no_mouse_rate_limit
):
    window, song, bells = two_tracks
    doc, s, tl = window.services.document, window.services.session, window.timeline
    vp = tl.plot.viewport()
    before = doc.project
    song_audio, bells_audio = _whole(before, song), _whole(before, bells)

    drag(vp, tl.viewport_pos_of(1 * SR, 0.25), tl.viewport_pos_of(3 * SR, 0.25))
    assert s.selection_tracks() == (song,)
    ((a, b),) = s.selection()
    window.actions["edit.delete"].trigger()

    after = doc.project
    np.testing.assert_array_equal(_whole(after, bells), bells_audio)
    assert after.track(bells).end == before.track(bells).end
    assert after.track(song).end == before.track(song).end - (b - a)
    np.testing.assert_array_equal(_whole(after, song)[:, a:], song_audio[:, b:])
    assert doc.undo_text() == f"Undo Delete {_span_text(a, b)} on 'song'"

    window.actions["edit.undo"].trigger()
    np.testing.assert_array_equal(_whole(doc.project, song), song_audio)
    assert doc.project.track(song).end == before.track(song).end


def test_copy_from_one_lane_pastes_into_the_lane_clicked(qtbot, two_tracks, no_mouse_rate_limit):
    window, song, bells = two_tracks
    doc, s, tl = window.services.document, window.services.session, window.timeline
    vp = tl.plot.viewport()
    before = doc.project
    song_audio, bells_audio = _whole(before, song), _whole(before, bells)

    drag(vp, tl.viewport_pos_of(3 * SR, 0.75), tl.viewport_pos_of(4 * SR, 0.75))
    ((a, b),) = s.selection()
    window.actions["edit.copy"].trigger()
    assert doc.project is before  # copying changes nothing

    click(vp, tl.viewport_pos_of(10 * SR, 0.25))
    assert s.selection_tracks() == (song,)
    assert not s.selection()
    at = s.cursor
    window.actions["edit.paste"].trigger()

    after = doc.project
    np.testing.assert_array_equal(_whole(after, bells), bells_audio)
    assert after.track(song).end == before.track(song).end + (b - a)
    np.testing.assert_array_equal(_whole(after, song)[:, at : at + b - a], bells_audio[:, a:b])
    np.testing.assert_array_equal(_whole(after, song)[:, :at], song_audio[:, :at])
    np.testing.assert_array_equal(_whole(after, song)[:, at + b - a :], song_audio[:, at:])


def test_a_selection_over_every_lane_cuts_every_track(qtbot, two_tracks, no_mouse_rate_limit):
    window, song, bells = two_tracks
    doc, s, tl = window.services.document, window.services.session, window.timeline
    vp = tl.plot.viewport()
    before = doc.project

    drag(vp, tl.viewport_pos_of(3 * SR, 0.25), tl.viewport_pos_of(4 * SR, 0.75))
    assert s.selection_tracks() == (song, bells)
    ((a, b),) = s.selection()
    window.actions["edit.cut"].trigger()
    assert doc.undo_text() == f"Undo Cut {_span_text(a, b)}"  # every track: no names
    assert doc.project.track(song).end == before.track(song).end - (b - a)
    assert doc.project.track(bells).end == before.track(bells).end - (b - a)
    clip = doc.clipboard
    assert clip is not None
    assert len(clip.tracks) == 2


def test_the_regions_panel_names_each_regions_track_with_two_tracks(
    qtbot, window: MainWindow, song_file: Path, no_mouse_rate_limit
):
    open_file(qtbot, window, song_file)
    s, tl = window.services.session, window.timeline
    model, table = window.regions_model, window.regions_panel.table
    assert COLUMNS[TRACK] == "Track"
    s.set_selection([(SR, 2 * SR)])
    window.actions["region.add"].trigger()
    assert model.rowCount() == 1
    # One track: the table looks as before, without a Track column.
    assert table.isColumnHidden(TRACK)
    add_bells_track(window)
    assert not table.isColumnHidden(TRACK)
    assert model.index(0, TRACK).data() == "song"

    vp = tl.plot.viewport()
    drag(vp, tl.viewport_pos_of(3 * SR, 0.75), tl.viewport_pos_of(4 * SR, 0.75))
    window.actions["region.add"].trigger()
    assert [model.index(i, TRACK).data() for i in range(model.rowCount())] == ["song", "Bells"]

    window.actions["edit.undo"].trigger()  # the region
    window.actions["edit.undo"].trigger()  # the track
    assert table.isColumnHidden(TRACK)
