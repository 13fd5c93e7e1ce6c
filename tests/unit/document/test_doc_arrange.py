"""Tracks, clips, placing generated audio, and project facts."""

from __future__ import annotations

import numpy as np
import pytest
from doc_builders import noise, ramp

from sa3_studio.document.arrange import (
    add_track,
    delete_clip,
    delete_track,
    move_clip,
    move_track,
    place_clip,
    place_on_new_track,
    rename_clip,
    set_grid,
    set_track,
    split_clip,
)
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Project
from sa3_studio.document.region_edits import add_region, add_take, new_take
from sa3_studio.errors import EditError


def base() -> Project:
    return Project.from_audio(ramp(1000))


def test_add_move_and_delete_tracks() -> None:
    p = base()
    p, t2 = add_track(p, "Two")
    p, t0 = add_track(p, "Top", index=0)
    assert [t.name for t in p.tracks] == ["Top", "Track 1", "Two"]
    p = move_track(p, t0, 5)
    assert [t.id for t in p.tracks] == ["track-1", t2, t0]
    p, rid = add_region(p, t2, 0, 100)
    take = new_take(p, rid, noise(100), prompt="", seed=0, model_name="", weights_hash="")
    p = add_take(p, take)
    q = delete_track(p, t2)
    assert [t.id for t in q.tracks] == ["track-1", t0]
    assert q.regions == ()
    assert q.takes == ()
    with pytest.raises(EditError, match="already used"):
        add_track(p, track_id=t2)


def test_set_track_mix() -> None:
    p = base()
    q = set_track(p, "track-1", name="Lead", gain_db=-3.0, muted=True, solo=True)
    t = q.tracks[0]
    assert (t.name, t.gain_db, t.muted, t.solo) == ("Lead", -3.0, True, True)
    assert set_track(q, "track-1", muted=True) is q
    with pytest.raises(EditError, match="between -60 dB"):
        set_track(p, "track-1", gain_db=float("nan"))


def test_place_clip_and_overlap_error() -> None:
    p = base()
    gen = noise(500)
    p, cid = place_clip(p, "track-1", gen, 2000, name="Take 1")
    _, clip = p.find_clip(cid)
    assert (clip.start, clip.length, clip.name) == (2000, 500, "Take 1")
    np.testing.assert_array_equal(p.tracks[0].read(2000, 2500), gen.samples)
    with pytest.raises(EditError, match="would overlap clip"):
        place_clip(p, "track-1", gen, 900)
    with pytest.raises(EditError, match="before the beginning"):
        place_clip(p, "track-1", gen, -1)
    mono = AudioData.from_array(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(EditError, match="stereo"):
        place_clip(p, "track-1", mono, 5000)


def test_place_on_new_track() -> None:
    p = base()
    gen = noise(300)
    q, tid = place_on_new_track(p, gen, 100, track_name="Generated", clip_name="Take 2")
    assert [t.id for t in q.tracks] == ["track-1", tid]
    track = q.track(tid)
    assert track.name == "Generated"
    assert (track.clips[0].start, track.clips[0].name) == (100, "Take 2")


def test_move_clip_within_and_between_tracks() -> None:
    p = base()
    p, cid = place_clip(p, "track-1", noise(100), 2000)
    q = move_clip(p, cid, 1500)
    assert q.find_clip(cid)[1].start == 1500
    assert [c.id for c in q.tracks[0].clips] == ["clip-1", cid]
    p2, t2 = add_track(p)
    r = move_clip(p2, cid, 0, track_id=t2)
    assert r.find_clip(cid)[0].id == t2
    assert [c.id for c in r.tracks[0].clips] == ["clip-1"]
    with pytest.raises(EditError, match="would overlap"):
        move_clip(p, cid, 950)
    assert move_clip(p, "clip-1", 5).find_clip("clip-1")[1].start == 5  # may overlap itself


def test_split_delete_and_rename_clip() -> None:
    p = base()
    q, right = split_clip(p, "clip-1", 400)
    clips = q.tracks[0].clips
    assert [(c.id, c.start, c.length) for c in clips] == [("clip-1", 0, 400), (right, 400, 600)]
    np.testing.assert_array_equal(q.tracks[0].read(0, 1000), p.tracks[0].read(0, 1000))
    with pytest.raises(EditError, match="not inside the clip"):
        split_clip(p, "clip-1", 1000)
    r = delete_clip(q, right)
    assert r.frames == 400
    assert rename_clip(r, "clip-1", "Intro").tracks[0].clips[0].name == "Intro"
    with pytest.raises(EditError, match="not in the project"):
        delete_clip(r, right)


def test_set_grid() -> None:
    p = base()
    grid = BeatGrid(120.0)
    q = set_grid(p, grid)
    assert q.meta.grid == grid
    assert set_grid(q, grid) is q
    assert set_grid(q, None).meta.grid is None
