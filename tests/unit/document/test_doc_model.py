"""The model types: AudioData, segments, clips, tracks, regions, takes and project invariants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from doc_builders import noise, ramp

from sa3_studio.document.audio_data import AudioData, content_id_of
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import (
    Segment,
    coalesce,
    render,
    replace_span,
    slice_segments,
    trim_silence,
)
from sa3_studio.document.take import GenerationSettings, Take, lineage
from sa3_studio.errors import EditError

# -- AudioData ---------------------------------------------------------------------------------


def test_audio_data_is_read_only_and_copied() -> None:
    source = np.zeros((2, 10), dtype=np.float64)
    audio = AudioData.from_array(source)
    assert audio.samples.dtype == np.float32
    assert not audio.samples.flags.writeable
    source[0, 0] = 1.0
    assert audio.samples[0, 0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        audio.samples[0, 0] = 1.0


def test_audio_data_adopts_without_copy_when_asked() -> None:
    source = np.ones((2, 8), dtype=np.float32)
    audio = AudioData.from_array(source, copy=False)
    assert np.shares_memory(audio.samples, source)
    assert not source.flags.writeable


def test_content_id_depends_on_bits_and_shape() -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert content_id_of(a) == AudioData.from_array(a).content_id
    assert content_id_of(a) != content_id_of(a.reshape(4, 2))
    b = a.copy()
    b[1, 3] = np.nextafter(b[1, 3], np.float32(100))
    assert content_id_of(a) != content_id_of(b)
    assert len(content_id_of(a)) == 32


def test_content_id_ignores_input_dtype_and_byte_order() -> None:
    ones = np.ones((2, 3), dtype=np.float32)
    first = content_id_of(ones)
    assert first == content_id_of(np.ones((2, 3), dtype=np.float64))
    assert first == content_id_of(ones.astype(">f4"))


def test_audio_data_equality_is_by_content() -> None:
    a = noise(100, seed=1)
    b = AudioData.from_array(a.samples.copy())
    assert a == b
    assert hash(a) == hash(b)
    assert a != noise(100, seed=2)
    assert "2x100" in repr(a)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 0)), np.zeros((0, 5)), np.zeros((1, 2, 3)), np.array([[np.nan, 0.0]])],
)
def test_audio_data_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        AudioData.from_array(bad)


def test_audio_data_mono_vector_becomes_one_channel() -> None:
    assert AudioData.from_array(np.zeros(5)).channels == 1


# -- segments ----------------------------------------------------------------------------------


def test_segment_bounds_and_silence() -> None:
    a = ramp(100)
    with pytest.raises(ValueError, match="outside"):
        Segment(a, 90, 20)
    with pytest.raises(ValueError, match="at least one frame"):
        Segment(a, 0, 0)
    with pytest.raises(ValueError, match="channels"):
        Segment(AudioData.from_array(np.zeros((1, 4))), 0, 4)
    s = Segment.silence(5)
    assert s.is_silent
    assert np.all(s.view(0, 5) == 0)


def test_slice_render_replace_and_coalesce() -> None:
    a = ramp(100)
    segs = (Segment(a, 0, 40), Segment.silence(10), Segment(a, 40, 60))
    whole = render(segs)
    assert whole.shape == (2, 110)
    np.testing.assert_array_equal(whole[:, :40], a.samples[:, :40])
    assert np.all(whole[:, 40:50] == 0)
    np.testing.assert_array_equal(whole[:, 50:], a.samples[:, 40:])
    np.testing.assert_array_equal(render(slice_segments(segs, 35, 55)), whole[:, 35:55])
    np.testing.assert_array_equal(render(segs, 35, 55), whole[:, 35:55])
    # removing the silence joins the two halves back into one segment of the buffer
    assert replace_span(segs, 40, 50, ()) == (Segment(a, 0, 100),)
    assert coalesce((Segment.silence(3), Segment.silence(4))) == (Segment.silence(7),)
    assert trim_silence(segs[1:2] + segs[2:] + segs[1:2]) == (10, (Segment(a, 40, 60),))
    with pytest.raises(ValueError, match="not inside"):
        slice_segments(segs, 100, 120)


# -- clips, tracks, regions, takes -------------------------------------------------------------


def test_clip_and_track_reads() -> None:
    a = ramp(50)
    clip = Clip.from_audio("c1", 10, a)
    assert (clip.start, clip.length, clip.end) == (10, 50, 60)
    track = Track("t1", "Track", (clip, Clip.from_audio("c2", 70, a)))
    out = track.read(0, 130)
    assert np.all(out[:, :10] == 0)
    assert np.all(out[:, 60:70] == 0)
    np.testing.assert_array_equal(out[:, 10:60], a.samples)
    np.testing.assert_array_equal(out[:, 70:120], a.samples)
    assert track.end == 120
    assert [c.id for c in track.clips_overlapping(55, 75)] == ["c1", "c2"]
    with pytest.raises(EditError, match="not on track"):
        track.clip("nope")


def test_track_rejects_overlapping_clips() -> None:
    a = ramp(50)
    with pytest.raises(ValueError, match="overlap"):
        Track("t", "", (Clip.from_audio("c1", 0, a), Clip.from_audio("c2", 49, a)))


def test_region_validation() -> None:
    with pytest.raises(ValueError, match="start < end"):
        Region("r", "t", 10, 10)
    r = Region("r", "t", 10, 20)
    assert r.length == 10
    assert r.overlaps(19, 30)
    assert not r.overlaps(20, 30)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="finite"):
        GenerationSettings(cfg_scale=float("nan"))
    with pytest.raises(ValueError, match="sorted"):
        GenerationSettings(extra=(("b", 1), ("a", 2)))
    s = GenerationSettings(extra=GenerationSettings.extra_from({"b": 1, "a": "x"}))
    assert s.extra == (("a", "x"), ("b", 1))


def _take(take_id: str, parent: str | None = None) -> Take:
    return Take(take_id, "r1", 1, noise(10), parent_take_id=parent)


def test_lineage_follows_parents_oldest_first() -> None:
    takes = [_take("k1"), _take("k2", "k1"), _take("k3", "k2"), _take("k4", "gone")]
    assert [t.id for t in lineage(takes, "k3")] == ["k1", "k2", "k3"]
    assert [t.id for t in lineage(takes, "k4")] == ["k4"]
    with pytest.raises(KeyError):
        lineage(takes, "k9")


def test_take_validation() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        Take("k", "r", 0, noise(4))
    with pytest.raises(ValueError, match="itself"):
        Take("k", "r", 1, noise(4), parent_take_id="k")


# -- project -----------------------------------------------------------------------------------


def test_project_from_audio_and_lookups() -> None:
    a = noise(1000)
    p = Project.from_audio(a, ProjectMeta(title="x", source_sample_rate=48000, source_channels=1))
    assert p.frames == 1000
    assert p.duration_s == pytest.approx(1000 / 44100)
    assert p.tracks[0].clips[0].segments == (Segment.of(a),)
    track, clip = p.find_clip("clip-1")
    assert track.id == "track-1"
    assert clip.length == 1000
    assert p.audio_buffers() == {a.content_id: a}
    assert p.ids() == {"track-1", "clip-1"}
    for lookup in (p.track, p.region, p.take, p.find_clip, p.track_index):
        with pytest.raises(EditError, match="not in the project"):
            lookup("nope")


def test_project_rejects_mono_audio() -> None:
    with pytest.raises(EditError, match="stereo"):
        Project.from_audio(AudioData.from_array(np.zeros((1, 4))))


def test_project_invariants() -> None:
    p = Project.from_audio(noise(100))
    with pytest.raises(ValueError, match="used twice"):
        Project(p.meta, (*p.tracks, dataclasses.replace(p.tracks[0], clips=())))
    with pytest.raises(ValueError, match="missing track"):
        dataclasses.replace(p, regions=(Region("r", "t-none", 0, 10),))
    r1, r2 = Region("r1", "track-1", 0, 10), Region("r2", "track-1", 5, 20)
    with pytest.raises(ValueError, match="overlap"):
        dataclasses.replace(p, regions=(r1, r2))
    with pytest.raises(ValueError, match="accepted take"):
        dataclasses.replace(p, regions=(dataclasses.replace(r1, accepted_take_id="k"),))
    orphan = Take("k", "gone", 1, noise(10))
    p2 = dataclasses.replace(p, regions=(r1,), takes=(orphan,))
    assert p2.orphan_takes() == (orphan,)
    assert p2.regions_on("track-1") == (r1,)
