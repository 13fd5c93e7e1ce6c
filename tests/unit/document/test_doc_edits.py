"""Span edits: copy, cut, paste, delete, insert silence, trim, gain, fades and normalising."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from doc_builders import noise, ramp

from sa3_studio.document.arrange import add_track, place_clip
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.crossfade import fade_in_curve, fade_out_curve
from sa3_studio.document.edits import (
    Clipboard,
    apply_gain,
    copy_range,
    cut_range,
    delete_range,
    fade_in,
    fade_out,
    insert_silence,
    normalize_loudness,
    normalize_peak,
    paste,
    paste_targets,
    trim_to_range,
)
from sa3_studio.document.loudness import integrated_loudness
from sa3_studio.document.project import Clip, Project, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment
from sa3_studio.document.take import Take
from sa3_studio.errors import EditError

SR = 44100


def one_clip(frames: int = 1000) -> tuple[Project, AudioData]:
    audio = ramp(frames)
    return Project.from_audio(audio), audio


def read(p: Project, track: int = 0) -> np.ndarray:
    return p.tracks[track].read(0, p.frames)


# -- copy / cut / delete / paste ---------------------------------------------------------------


def test_copy_shares_audio_and_reads_back() -> None:
    p, a = one_clip()
    cb = copy_range(p, 100, 250)
    assert cb.length == 150
    assert cb.track_ids == ("track-1",)
    assert cb.tracks[0] == (Segment(a, 100, 150),)  # a view of the same buffer, no copy
    np.testing.assert_array_equal(cb.read(), a.samples[:, 100:250])


def test_copy_clips_to_song_end_and_fills_gaps_with_silence() -> None:
    p, a = one_clip(100)
    p, _ = place_clip(p, "track-1", a, 150)
    cb = copy_range(p, 50, 10_000)
    assert cb.length == 200  # the song ends at 250
    out = cb.read()
    np.testing.assert_array_equal(out[:, :50], a.samples[:, 50:])
    assert np.all(out[:, 50:100] == 0)
    np.testing.assert_array_equal(out[:, 100:], a.samples)


def test_delete_closes_the_gap_and_keeps_one_clip() -> None:
    p, a = one_clip()
    q = delete_range(p, 200, 300)
    assert q.frames == 900
    assert len(q.tracks[0].clips) == 1
    expected = np.concatenate([a.samples[:, :200], a.samples[:, 300:]], axis=1)
    np.testing.assert_array_equal(read(q), expected)
    assert p.frames == 1000  # the input is untouched


def test_delete_moves_later_clips_and_removes_inner_clips() -> None:
    p, _a = one_clip(100)
    p, _c2 = place_clip(p, "track-1", noise(50), 200)
    p, c3 = place_clip(p, "track-1", noise(50, 2), 400)
    q = delete_range(p, 150, 300)  # c2 lies inside the cut
    assert [c.id for c in q.tracks[0].clips] == ["clip-1", c3]
    assert q.find_clip(c3)[1].start == 250


def test_delete_ripples_regions_and_drops_inner_regions_with_takes() -> None:
    p, _ = one_clip(1000)
    regions = (
        Region("before", "track-1", 0, 100),
        Region("head", "track-1", 150, 210),
        Region("inside", "track-1", 220, 280),
        Region("tail", "track-1", 290, 450),
        Region("after", "track-1", 500, 600),
    )
    inner_take = Take("k1", "inside", 1, noise(60))
    p = dataclasses.replace(p, regions=regions, takes=(inner_take,))
    q = delete_range(p, 200, 300)
    spans = {r.id: (r.start, r.end) for r in q.regions}
    assert spans == {
        "before": (0, 100),
        "head": (150, 200),
        "tail": (200, 350),
        "after": (400, 500),
    }
    assert q.takes == ()


def test_cut_then_paste_back_restores_the_audio() -> None:
    p, a = one_clip()
    q, cb = cut_range(p, 300, 500)
    assert q.frames == 800
    r = paste(q, cb, 300)
    np.testing.assert_array_equal(read(r), a.samples)
    assert r.tracks[0].clips[0].segments == (Segment(a, 0, 1000),)  # segments re-join


def test_paste_inside_a_clip_moves_the_rest_right() -> None:
    p, a = one_clip()
    cb = copy_range(p, 0, 100)
    q = paste(p, cb, 500)
    assert q.frames == 1100
    out = read(q)
    np.testing.assert_array_equal(out[:, 500:600], a.samples[:, :100])
    np.testing.assert_array_equal(out[:, 600:], a.samples[:, 500:])


def test_paste_in_a_gap_makes_a_new_clip() -> None:
    p, a = one_clip(100)
    p, c2 = place_clip(p, "track-1", a, 500)
    cb = copy_range(p, 0, 50)
    q = paste(p, cb, 300)
    starts = [(c.start, c.length) for c in q.tracks[0].clips]
    assert starts == [(0, 100), (300, 50), (550, 100)]
    assert q.tracks[0].clips[2].id == c2


def test_paste_of_silence_only_shifts() -> None:
    p, a = one_clip(100)
    p, _ = place_clip(p, "track-1", a, 300)
    cb = copy_range(p, 120, 200)  # a gap
    q = paste(p, cb, 110)
    assert [(c.start, c.length) for c in q.tracks[0].clips] == [(0, 100), (380, 100)]


def test_paste_ripples_regions() -> None:
    p, _ = one_clip()
    p = dataclasses.replace(
        p, regions=(Region("a", "track-1", 100, 200), Region("b", "track-1", 400, 500))
    )
    q = paste(p, copy_range(p, 0, 50), 150)
    assert [(r.start, r.end) for r in q.regions] == [(100, 250), (450, 550)]


def test_paste_into_two_tracks_and_track_count_errors() -> None:
    p, a = one_clip()
    p, t2 = add_track(p, "Two")
    p, _ = place_clip(p, t2, noise(1000), 0)
    cb = copy_range(p, 0, 100)
    assert len(cb.tracks) == 2
    q = paste(p, cb, 0)
    assert [t.end for t in q.tracks] == [1100, 1100]
    with pytest.raises(EditError, match="holds 2 track"):
        paste(p, cb, 0, track_ids=["track-1"])
    single = copy_range(p, 0, 100, ["track-1"])
    with pytest.raises(EditError, match="holds 2 tracks but the project has 1"):
        paste(Project.from_audio(a), cb, 0)
    assert paste(p, single, 0, track_ids=[t2]).tracks[1].end == 1100


def test_a_cut_on_one_track_keeps_the_other_and_pastes_back_where_it_came_from() -> None:
    p, a = one_clip()
    p, t2 = add_track(p, "Two")
    p, _ = place_clip(p, t2, noise(600), 0)
    q, cb = cut_range(p, 100, 200, [t2])
    # The other track keeps every sample and its length; the cut one is 100 frames shorter.
    assert q.tracks[0] == p.tracks[0]
    assert q.tracks[1].end == 500
    np.testing.assert_array_equal(q.tracks[1].read(100, 500), p.tracks[1].read(200, 600))
    # Where a paste goes: the chosen lanes if they fit, else where it came from, else the top.
    assert paste_targets(q, cb, ["track-1"]) == ("track-1",)
    assert paste_targets(q, cb, None) == (t2,)
    assert paste_targets(q, cb, ["track-1", t2]) == (t2,)
    assert paste_targets(Project.from_audio(a), cb, None) is None
    # A span past the end of the chosen track is refused with a sentence, not ignored.
    with pytest.raises(EditError, match=r"after the end of 'Two' \(0:00\.011\)"):
        delete_range(q, 700, 900, [t2])
    r = paste(q, cb, 100, paste_targets(q, cb, None))
    assert r.tracks[0] == p.tracks[0]
    np.testing.assert_array_equal(r.tracks[1].read(0, 600), p.tracks[1].read(0, 600))


def test_selection_errors_are_sentences() -> None:
    p, _ = one_clip()
    with pytest.raises(EditError, match="selection is empty"):
        delete_range(p, 10, 10)
    with pytest.raises(EditError, match="before the beginning"):
        copy_range(p, -5, 10)
    with pytest.raises(EditError, match="after the end of the song"):
        apply_gain(p, 2000, 3000, 3.0)
    with pytest.raises(EditError, match="not in the project"):
        delete_range(p, 0, 10, ["nope"])
    with pytest.raises(EditError, match="No track is selected"):
        delete_range(p, 0, 10, [])
    with pytest.raises(EditError, match="chosen twice"):
        delete_range(p, 0, 10, ["track-1", "track-1"])
    assert delete_range(p, 0, 10, "track-1") == delete_range(p, 0, 10, ["track-1"])
    with pytest.raises(EditError, match="no tracks"):
        delete_range(Project(), 0, 10)
    with pytest.raises(EditError, match="whole number"):
        delete_range(p, 0.5, 10)  # type: ignore[arg-type]
    with pytest.raises(EditError, match="before the beginning"):
        paste(p, copy_range(p, 0, 10), -1)


def test_clipboard_validation() -> None:
    with pytest.raises(ValueError, match="exactly"):
        Clipboard(10, ((Segment.silence(5),),))


# -- insert silence and trim -------------------------------------------------------------------


def test_insert_silence_inside_a_clip() -> None:
    p, a = one_clip()
    q = insert_silence(p, 400, 100)
    assert q.frames == 1100
    assert len(q.tracks[0].clips) == 1
    out = read(q)
    assert np.all(out[:, 400:500] == 0)
    np.testing.assert_array_equal(out[:, 500:], a.samples[:, 400:])
    assert q.audio_buffers() == p.audio_buffers()  # silence costs no buffer


def test_insert_silence_at_the_end_lengthens_the_song() -> None:
    p, _ = one_clip()
    assert insert_silence(p, 1000, 500).frames == 1500
    with pytest.raises(EditError, match=r"between 0:00\.000 and the end"):
        insert_silence(p, 1001, 5)
    with pytest.raises(EditError, match="longer than zero"):
        insert_silence(p, 10, 0)


def test_insert_silence_moves_and_grows_regions() -> None:
    p, _ = one_clip()
    p = dataclasses.replace(
        p,
        regions=(
            Region("a", "track-1", 0, 100),
            Region("b", "track-1", 150, 300),
            Region("c", "track-1", 500, 600),
        ),
    )
    q = insert_silence(p, 200, 50)
    assert [(r.start, r.end) for r in q.regions] == [(0, 100), (150, 350), (550, 650)]


def test_trim_keeps_the_selection_from_zero() -> None:
    p, a = one_clip()
    p = dataclasses.replace(p, regions=(Region("r", "track-1", 300, 400),))
    q = trim_to_range(p, 250, 750)
    assert q.frames == 500
    np.testing.assert_array_equal(read(q), a.samples[:, 250:750])
    assert (q.regions[0].start, q.regions[0].end) == (50, 150)
    with pytest.raises(EditError, match="whole song"):
        trim_to_range(p, 0, 1000)


# -- gain, fades, normalising ------------------------------------------------------------------


def test_gain_changes_only_the_selection_and_allocates_only_it() -> None:
    p, a = one_clip()
    q = apply_gain(p, 100, 200, 6.0)
    out = read(q)
    factor = 10 ** (6 / 20)
    np.testing.assert_array_equal(out[:, :100], a.samples[:, :100])
    np.testing.assert_array_equal(out[:, 200:], a.samples[:, 200:])
    np.testing.assert_allclose(out[:, 100:200], a.samples[:, 100:200] * factor, rtol=1e-6)
    new = set(q.audio_buffers()) - set(p.audio_buffers())
    assert [q.audio_buffers()[cid].frames for cid in new] == [100]


def test_gain_errors() -> None:
    p, a = one_clip(100)
    p, _ = place_clip(p, "track-1", a, 500)
    with pytest.raises(EditError, match="no audio in"):
        apply_gain(p, 200, 400, 3.0)  # only a gap
    with pytest.raises(EditError, match="between -60 dB"):
        apply_gain(p, 0, 10, 100.0)
    with pytest.raises(EditError, match="number of decibels"):
        apply_gain(p, 0, 10, math.nan)


def test_gain_across_a_gap_changes_both_clips() -> None:
    p, a = one_clip(100)
    p, _ = place_clip(p, "track-1", a, 200)
    q = apply_gain(p, 50, 250, -6.0)
    factor = 10 ** (-6 / 20)
    np.testing.assert_allclose(q.tracks[0].read(50, 100), a.samples[:, 50:] * factor, rtol=1e-6)
    np.testing.assert_allclose(q.tracks[0].read(200, 250), a.samples[:, :50] * factor, rtol=1e-6)


@pytest.mark.parametrize("shape", ["linear", "equal_power", "s_curve"])
def test_fades_follow_their_curves(shape: str) -> None:
    p = Project.from_audio(AudioData.from_array(np.ones((2, 1000), dtype=np.float32)))
    q = fade_in(p, 100, 300, shape=shape)  # type: ignore[arg-type]
    out = read(q)
    assert np.all(out[:, :100] == 1)
    assert np.all(out[:, 300:] == 1)
    np.testing.assert_allclose(out[0, 100:300], fade_in_curve(200, shape), atol=1e-7)  # type: ignore[arg-type]
    assert out[0, 100] == 0.0
    r = fade_out(p, 800, 1000, shape=shape)  # type: ignore[arg-type]
    out = read(r)
    np.testing.assert_allclose(out[0, 800:], fade_out_curve(200, shape), atol=1e-7)  # type: ignore[arg-type]
    assert out[0, -1] == 0.0
    assert np.all(out[:, :800] == 1)


def test_fade_curve_is_laid_over_the_whole_selection_across_gaps() -> None:
    ones = AudioData.from_array(np.ones((2, 100), dtype=np.float32))
    p = Project.from_audio(ones)
    p, _ = place_clip(p, "track-1", ones, 200)
    q = fade_in(p, 0, 300)
    curve = fade_in_curve(300)
    np.testing.assert_allclose(q.tracks[0].read(200, 300)[0], curve[200:], atol=1e-7)
    with pytest.raises(EditError, match="not a fade shape"):
        fade_in(p, 0, 10, shape="zigzag")  # type: ignore[arg-type]


def test_normalize_peak() -> None:
    p, _ = one_clip()
    q = normalize_peak(p, 0, 1000, target_dbfs=-1.0)
    peak = float(np.max(np.abs(read(q))))
    assert 20 * math.log10(peak) == pytest.approx(-1.0, abs=1e-4)
    with pytest.raises(EditError, match="0 dBFS or lower"):
        normalize_peak(p, 0, 1000, target_dbfs=1.0)
    silent = Project.from_audio(AudioData.from_array(np.zeros((2, 100), dtype=np.float32)))
    with pytest.raises(EditError, match="silent"):
        normalize_peak(silent, 0, 100)


def test_normalize_peak_treats_tracks_separately() -> None:
    p = Project.from_audio(noise(1000, level=0.1))
    p, t2 = add_track(p)
    p, _ = place_clip(p, t2, noise(1000, seed=5, level=0.5), 0)
    q = normalize_peak(p, 0, 1000, target_dbfs=-6.0)
    for track in q.tracks:
        assert 20 * math.log10(float(np.max(np.abs(track.read(0, 1000))))) == pytest.approx(
            -6.0, abs=1e-4
        )


def test_normalize_loudness_hits_the_target() -> None:
    rng = np.random.default_rng(3)
    audio = AudioData.from_array((rng.standard_normal((2, SR * 3)) * 0.05).astype(np.float32))
    p = Project.from_audio(audio)
    q = normalize_loudness(p, 0, SR * 3, target_lufs=-18.0)
    assert integrated_loudness(read(q)) == pytest.approx(-18.0, abs=1e-3)


def test_normalize_loudness_respects_a_peak_limit() -> None:
    rng = np.random.default_rng(4)
    audio = AudioData.from_array((rng.standard_normal((2, SR)) * 0.2).astype(np.float32))
    p = Project.from_audio(audio)
    q = normalize_loudness(p, 0, SR, target_lufs=-3.0, max_peak_dbfs=-1.0)
    peak_db = 20 * math.log10(float(np.max(np.abs(read(q)))))
    assert peak_db == pytest.approx(-1.0, abs=1e-4)
    assert integrated_loudness(read(q)) < -3.0


def test_normalize_loudness_errors() -> None:
    p = Project.from_audio(noise(SR))
    with pytest.raises(EditError, match=r"shorter than 0\.4 s"):
        normalize_loudness(p, 0, SR // 4)
    with pytest.raises(EditError, match="between -70 LUFS and 0 LUFS"):
        normalize_loudness(p, 0, SR, target_lufs=3.0)
    with pytest.raises(EditError, match="peak limit"):
        normalize_loudness(p, 0, SR, max_peak_dbfs=2.0)
    quiet = Project.from_audio(noise(SR, level=1e-5))
    with pytest.raises(EditError, match="below -70 LUFS"):
        normalize_loudness(quiet, 0, SR)


def test_edits_never_change_their_input() -> None:
    p, _ = one_clip()
    before = Track(p.tracks[0].id, p.tracks[0].name, p.tracks[0].clips)
    for q in (
        apply_gain(p, 0, 100, 3.0),
        delete_range(p, 0, 100),
        insert_silence(p, 50, 10),
        fade_out(p, 0, 500),
        normalize_peak(p, 0, 500),
    ):
        assert q != p
    assert p.tracks[0] == before
    assert p.tracks[0].clips == (Clip("clip-1", 0, p.tracks[0].clips[0].segments, "Track 1"),)
