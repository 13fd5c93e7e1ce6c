"""Positions beyond the longest timeline are refused when a project is built or opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sa3_studio.audio.store import ProjectSession, snapshot_of
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import MAX_FRAMES, SAMPLE_RATE
from sa3_studio.document.project import Clip, Project, Track
from sa3_studio.document.region import Region
from sa3_studio.document.region_edits import add_region
from sa3_studio.document.segments import Segment
from sa3_studio.document.serialize import project_from_manifest, project_to_manifest
from sa3_studio.errors import ProjectFileError


def _song() -> Project:
    rng = np.random.default_rng(3)
    return Project.from_audio(AudioData.from_array(0.1 * rng.standard_normal((2, SAMPLE_RATE))))


def test_a_region_ending_past_the_limit_cannot_be_built() -> None:
    p = _song()
    track = p.tracks[0].id
    far = Region("r-far", track, 0, 1 << 62)
    with pytest.raises(ValueError, match=r"ends at frame 4611686018427387904, beyond"):
        Project(p.meta, p.tracks, (far,))
    Project(p.meta, p.tracks, (Region("r-ok", track, 0, MAX_FRAMES),))  # the limit itself is fine


def test_a_silence_of_two_to_the_fifty_frames_cannot_be_built() -> None:
    p = _song()
    clip = Clip("c-silent", 0, (Segment.silence(1 << 50),))
    with pytest.raises(ValueError, match="beyond the longest timeline"):
        Project(p.meta, (Track("t-silent", clips=(clip,)),))


def test_a_manifest_with_a_region_at_two_to_the_62_is_damaged() -> None:
    p, _rid = add_region(_song(), _song().tracks[0].id, 0, SAMPLE_RATE // 2)
    manifest = project_to_manifest(p)
    manifest["regions"][0]["end"] = 1 << 62
    buffers = p.audio_buffers()
    with pytest.raises(ProjectFileError, match=r"damaged .*beyond the longest timeline"):
        project_from_manifest(json.loads(json.dumps(manifest)), lambda cid: buffers[cid])


def test_a_project_file_with_a_region_at_two_to_the_62_is_refused_at_open(
    tmp_path: Path,
) -> None:
    from sa3_studio.audio.store import HistoryRecord

    song = _song()
    p, _rid = add_region(song, song.tracks[0].id, 0, SAMPLE_RATE // 2)
    path = tmp_path / "far.sa3proj"
    session = ProjectSession.new(recovery_dir=tmp_path / "recovery")
    session.save_as(path, HistoryRecord((snapshot_of(p),), 0, 0))
    session.close()
    con = sqlite3.connect(str(path))
    [(digest, text)] = con.execute("SELECT digest, json FROM manifest").fetchall()
    manifest = json.loads(text)
    manifest["regions"][0]["end"] = 1 << 62
    con.execute("UPDATE manifest SET json = ? WHERE digest = ?", (json.dumps(manifest), digest))
    con.commit()
    con.close()
    opened = ProjectSession.open(path, recovery_dir=tmp_path / "recovery")
    try:
        state = opened.load()
        assert state is not None
        with pytest.raises(ProjectFileError, match=r"far\.sa3proj|damaged"):
            state.to_history()
    finally:
        opened.close()
