"""Edits on many tracks that share one buffer store each result once, not once per track."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import SAMPLE_RATE
from sa3_studio.document.edits import apply_gain, fade_in, insert_silence, normalize_peak
from sa3_studio.document.project import Clip, Project, Track
from sa3_studio.document.segments import Segment
from sa3_studio.errors import EditError

TRACKS = 3000


def _shared(seconds: float = 1.0) -> tuple[Project, AudioData]:
    rng = np.random.default_rng(11)
    audio = AudioData.from_array(0.2 * rng.standard_normal((2, round(seconds * SAMPLE_RATE))))
    tracks = tuple(
        Track(f"t{i}", clips=(Clip(f"c{i}", 0, (Segment.of(audio),)),)) for i in range(TRACKS)
    )
    return Project(tracks=tracks), audio


def test_normalise_all_on_3000_tracks_sharing_one_buffer_stores_one_result() -> None:
    project, audio = _shared()
    tracemalloc.start()
    try:
        out = normalize_peak(project, 0, project.frames, target_dbfs=-1.0)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    buffers = out.audio_buffers()
    assert len(buffers) == 1  # one normalised buffer, shared by every track
    [result] = buffers.values()
    assert result.content_id != audio.content_id
    np.testing.assert_allclose(np.abs(result.samples).max(), 10 ** (-1 / 20), rtol=1e-6)
    # 3000 copies would be 3000 x 353 KB = 1 GB; a handful of buffers is all it may take.
    assert peak < 10 * audio.nbytes


def test_gain_and_fade_on_shared_tracks_share_their_results() -> None:
    project, _audio = _shared(0.5)
    half = project.frames // 2
    gained = apply_gain(project, 0, half, -6.0)
    assert len(gained.audio_buffers()) == 2  # the changed half once, the untouched half once
    faded = fade_in(gained, 0, half)
    assert len(faded.audio_buffers()) == 2


def test_inserting_silence_past_the_longest_timeline_is_an_edit_error() -> None:
    project, _audio = _shared(0.1)
    with pytest.raises(EditError, match="longer than SA3 Studio can hold"):
        insert_silence(project, 0, 1 << 50, ["t0"])
