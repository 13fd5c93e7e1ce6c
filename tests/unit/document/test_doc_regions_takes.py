"""Regions, takes and accepting a take (the splice)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from doc_builders import noise
from hypothesis import given, settings
from hypothesis import strategies as st

from sa3_studio.document.arrange import place_clip
from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.crossfade import crossfade, equal_power_weights, splice, splice_frames
from sa3_studio.document.project import Project
from sa3_studio.document.region_edits import (
    accept_label,
    accept_take,
    add_region,
    add_take,
    delete_region,
    delete_take,
    new_take,
    next_take_number,
    update_region,
)
from sa3_studio.document.take import GenerationSettings, Take, lineage
from sa3_studio.errors import EditError

SR = 44100


def with_region(start: int = 1000, end: int = 3000, frames: int = 8000) -> tuple[Project, str]:
    p = Project.from_audio(noise(frames, seed=11))
    return add_region(p, "track-1", start, end, name="Chorus", prompt="drums")


def make_take(p: Project, rid: str, seed: int = 1, parent: str | None = None) -> Take:
    length = p.region(rid).length
    return new_take(
        p,
        rid,
        noise(length, seed=seed),
        prompt="drums",
        seed=seed,
        model_name="small-music",
        weights_hash="abc",
        settings=GenerationSettings(steps=8),
        created_at=1.7e9,
        elapsed_s=2.5,
        parent_take_id=parent,
    )


# -- regions -----------------------------------------------------------------------------------


def test_add_update_delete_region() -> None:
    p, rid = with_region()
    r = p.region(rid)
    assert (r.start, r.end, r.name, r.prompt, r.track_id) == (
        1000,
        3000,
        "Chorus",
        "drums",
        "track-1",
    )
    q = update_region(p, rid, start=500, prompt="bass", settings=GenerationSettings(seed=3))
    r2 = q.region(rid)
    assert (r2.start, r2.end, r2.prompt, r2.settings.seed) == (500, 3000, "bass", 3)
    assert update_region(p, rid, name="Chorus") is p  # no change, same project
    assert delete_region(q, rid).regions == ()


def test_region_errors() -> None:
    p, rid = with_region()
    with pytest.raises(EditError, match="overlap region 'Chorus'"):
        add_region(p, "track-1", 2500, 4000)
    with pytest.raises(EditError, match="longer than zero"):
        add_region(p, "track-1", 10, 10)
    with pytest.raises(EditError, match="before the beginning"):
        add_region(p, "track-1", -10, 10)
    with pytest.raises(EditError, match="not in the project"):
        add_region(p, "nope", 10, 20)
    with pytest.raises(EditError, match="already used"):
        add_region(p, "track-1", 5000, 6000, region_id=rid)
    q, other = add_region(p, "track-1", 4000, 5000)
    with pytest.raises(EditError, match="overlap"):
        update_region(q, other, start=2000)
    with pytest.raises(EditError, match="not in the project"):
        delete_region(p, "nope")


# -- takes -------------------------------------------------------------------------------------


def test_takes_are_numbered_kept_and_deleted() -> None:
    p, rid = with_region()
    k1 = make_take(p, rid)
    assert k1.number == 1
    p = add_take(p, k1)
    k2 = make_take(p, rid, seed=2, parent=k1.id)
    assert k2.number == 2 == next_take_number(p, rid)
    p = add_take(p, k2)
    assert p.takes_for(rid) == (k1, k2)
    assert lineage(p.takes, k2.id) == (k1, k2)
    assert (k2.seed, k2.model_name, k2.weights_hash, k2.elapsed_s) == (2, "small-music", "abc", 2.5)
    q = delete_take(p, k1.id)
    assert q.takes == (k2,)
    with pytest.raises(EditError, match="already used"):
        add_take(p, k1)


def test_new_take_checks_the_audio() -> None:
    p, rid = with_region()
    with pytest.raises(EditError, match="generate it again"):
        new_take(p, rid, noise(10), prompt="", seed=0, model_name="", weights_hash="")
    mono = AudioData.from_array(np.zeros((1, 2000), dtype=np.float32))
    with pytest.raises(EditError, match="must be stereo"):
        new_take(p, rid, mono, prompt="", seed=0, model_name="", weights_hash="")


def test_orphan_takes_need_permission() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    bare = delete_region(p, rid)
    with pytest.raises(EditError, match="not in the project"):
        add_take(bare, take)
    kept = add_take(bare, take, require_region=False)
    assert kept.orphan_takes() == (take,)


def test_deleting_a_region_deletes_its_takes() -> None:
    p, rid = with_region()
    p = add_take(p, make_take(p, rid))
    assert delete_region(p, rid).takes == ()


# -- accept ------------------------------------------------------------------------------------


def test_accept_splices_inside_the_region_only() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = add_take(p, take)
    q = accept_take(p, rid, take.id, crossfade_s=100 / SR)
    before, after = p.tracks[0].read(0, 8000), q.tracks[0].read(0, 8000)
    assert np.array_equal(before[:, :1000], after[:, :1000])
    assert np.array_equal(before[:, 3000:], after[:, 3000:])
    expected = splice(before[:, 1000:3000], take.audio.samples, 100)
    np.testing.assert_array_equal(after[:, 1000:3000], expected)
    np.testing.assert_array_equal(after[:, 1100:2900], take.audio.samples[:, 100:1900])
    assert q.region(rid).accepted_take_id == take.id
    assert len(q.tracks[0].clips) == 1
    # only the two fades are new audio; the middle shares the take's buffer
    new = set(q.audio_buffers()) - set(p.audio_buffers())
    assert sorted(q.audio_buffers()[c].frames for c in new) == [100, 100]


def test_accept_without_crossfade_shares_the_take_buffer() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = add_take(p, take)
    q = accept_take(p, rid, take.id, crossfade_s=0.0)
    np.testing.assert_array_equal(q.tracks[0].read(1000, 3000), take.audio.samples)
    assert set(q.audio_buffers()) == set(p.audio_buffers())


def test_accept_applies_gain_to_the_take() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = add_take(p, take)
    q = accept_take(p, rid, take.id, crossfade_s=0.0, gain_db=-6.0)
    np.testing.assert_allclose(
        q.tracks[0].read(1000, 3000), take.audio.samples * 10 ** (-6 / 20), rtol=1e-6
    )


def test_accept_splices_the_given_body_instead_of_the_take() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = add_take(p, take)
    body = AudioData.from_array(take.audio.samples * np.float32(0.25))
    q = accept_take(p, rid, take.id, crossfade_s=100 / SR, body=body)
    before, after = p.tracks[0].read(0, 8000), q.tracks[0].read(0, 8000)
    assert np.array_equal(before[:, :1000], after[:, :1000])
    assert np.array_equal(before[:, 3000:], after[:, 3000:])
    expected = splice(before[:, 1000:3000], body.samples, 100)
    np.testing.assert_array_equal(after[:, 1000:3000], expected)
    assert q.region(rid).accepted_take_id == take.id
    short = AudioData.from_array(take.audio.samples[:, :-1])
    with pytest.raises(EditError, match=r"shaped \(2, 1999\), the take \(2, 2000\)"):
        accept_take(p, rid, take.id, body=short)


def test_accept_in_a_gap_creates_a_clip_and_over_two_clips_merges_them() -> None:
    p = Project.from_audio(noise(1000))
    p, _ = place_clip(p, "track-1", noise(1000, seed=3), 3000)
    p, gap_region = add_region(p, "track-1", 1500, 2500)
    p, span_region = add_region(p, "track-1", 500, 1200)
    k1 = make_take(p, gap_region)
    p = add_take(p, k1)
    q = accept_take(p, gap_region, k1.id)
    assert [(c.start, c.end) for c in q.tracks[0].clips] == [(0, 1000), (1500, 2500), (3000, 4000)]
    # the region in the gap fades in from silence
    assert q.tracks[0].read(1500, 1501)[0, 0] == pytest.approx(
        k1.audio.samples[0, 0] * equal_power_weights(splice_frames(1000, 1102))[0][0]
    )
    # with the gap region gone, widen the other region over clip 1 and the new clip
    r = update_region(delete_region(q, gap_region), span_region, end=1600)
    k2 = make_take(r, span_region, seed=9)
    r = add_take(r, k2)
    s = accept_take(r, span_region, k2.id)
    assert [(c.start, c.end) for c in s.tracks[0].clips] == [(0, 2500), (3000, 4000)]
    assert np.array_equal(s.tracks[0].read(0, 500), r.tracks[0].read(0, 500))
    assert np.array_equal(s.tracks[0].read(1600, 4000), r.tracks[0].read(1600, 4000))


def test_accept_errors() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = add_take(p, take)
    p, other = add_region(p, "track-1", 4000, 5000)
    with pytest.raises(EditError, match="belongs to another region"):
        accept_take(p, other, take.id)
    resized = update_region(p, rid, end=3500)
    with pytest.raises(EditError, match="old length back"):
        accept_take(resized, rid, take.id)
    with pytest.raises(EditError, match="crossfade"):
        accept_take(p, rid, take.id, crossfade_s=-1.0)
    with pytest.raises(EditError, match="gain"):
        accept_take(p, rid, take.id, gain_db=float("inf"))
    with pytest.raises(EditError, match="not in the project"):
        accept_take(p, rid, "take-none")


def test_accept_label_names_take_and_span() -> None:
    p = Project.from_audio(noise(SR * 20))
    p, rid = add_region(p, "track-1", 12 * SR, 16 * SR)
    take = make_take(p, rid)
    take = dataclasses.replace(take, number=3)
    p = add_take(p, take)
    assert accept_label(p, rid, take.id) == "Accept take 3 at 0:12\u20130:16"


def test_deleting_the_accepted_take_clears_the_mark_but_keeps_the_audio() -> None:
    p, rid = with_region()
    take = make_take(p, rid)
    p = accept_take(add_take(p, take), rid, take.id)
    q = delete_take(p, take.id)
    assert q.region(rid).accepted_take_id is None
    assert np.array_equal(q.tracks[0].read(0, 8000), p.tracks[0].read(0, 8000))


@settings(max_examples=40, deadline=None)
@given(
    start=st.integers(0, 3000),
    length=st.integers(1, 2000),
    fade_frames=st.integers(0, 1500),
    gain=st.sampled_from([0.0, -3.0, 4.5]),
)
def test_accept_keeps_outside_samples_bit_identical(
    start: int, length: int, fade_frames: int, gain: float
) -> None:
    p = Project.from_audio(noise(4000, seed=5))
    p, rid = add_region(p, "track-1", start, start + length)
    take = make_take(p, rid, seed=start)
    p = add_take(p, take)
    q = accept_take(p, rid, take.id, crossfade_s=fade_frames / SR, gain_db=gain)
    end = max(p.frames, q.frames)
    before, after = p.tracks[0].read(0, end), q.tracks[0].read(0, end)
    assert np.array_equal(before[:, :start], after[:, :start])
    assert np.array_equal(before[:, start + length :], after[:, start + length :])


# -- crossfade maths ---------------------------------------------------------------------------


def test_equal_power_weights_keep_power_and_mirror() -> None:
    rise, fall = equal_power_weights(257)
    np.testing.assert_allclose(rise**2 + fall**2, 1.0, atol=1e-15)
    np.testing.assert_allclose(rise, fall[::-1], atol=1e-15)


def test_crossfade_and_splice_edges() -> None:
    a = np.ones((2, 10), dtype=np.float32)
    b = np.zeros((2, 10), dtype=np.float32)
    x = crossfade(a, b)
    assert x[0, 0] > 0.99
    assert x[0, -1] < 0.1
    assert splice_frames(50, 100) == 25
    out = splice(a, b, 3)
    assert np.all(out[:, 3:7] == 0)
    with pytest.raises(ValueError, match="cannot splice"):
        splice(a, b[:, :5], 3)
