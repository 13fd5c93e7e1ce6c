"""Takes survive undo, save and reopen; accepted takes are part of the song; stale results drop."""

from __future__ import annotations

import numpy as np
import pytest
from test_generate_fakes import (
    SR,
    FakeFactory,
    FakePipeline,
    StepGate,
    make_env,
    model_info,
    pad_bool_refcounts,
    project,
)

from sa3_studio.app.generation import GenerateOptions
from sa3_studio.audio.store import ProjectSession
from sa3_studio.document.region_edits import add_region

WAIT_MS = 10_000


@pytest.fixture(autouse=True)
def _pad_bools() -> None:
    pad_bool_refcounts()


def test_takes_and_the_accepted_take_survive_save_and_reopen(qtbot, tmp_path):
    env = make_env(model=model_info())
    try:
        p, rid = add_region(env.document.project, "track-1", 4 * SR, 6 * SR)
        env.document.set_project(p)
        env.session.set_selected_regions([rid])
        with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS):
            env.controller.generate(
                GenerateOptions(prompt="bells", seed=9, takes=2, tempo_bpm=90.0, key="F major")
            )
        takes = env.document.project.takes_for(rid)
        assert env.controller.accept(takes[1].id)
        saved = env.document.project
        session = ProjectSession.new(recovery_dir=tmp_path / "recovery")
        session.save_as(tmp_path / "song.sa3", env.document.history)
        session.close()
    finally:
        env.close()

    reopened = ProjectSession.open(tmp_path / "song.sa3", recovery_dir=tmp_path / "recovery")
    try:
        state = reopened.load()
        assert state is not None
        project_back = state.project()
        history = state.to_history()
    finally:
        reopened.close()
    back = project_back.takes_for(rid)
    assert [(t.id, t.number, t.seed) for t in back] == [(t.id, t.number, t.seed) for t in takes]
    for a, b in zip(back, takes, strict=True):
        assert a.audio == b.audio
        assert (
            a.prompt
            == b.prompt
            == "TrackType: Music, VocalType: Instrumental, bells, 90 BPM, F major"
        )
        assert a.settings == b.settings
        assert a.model_name == b.model_name
        assert a.elapsed_s == b.elapsed_s
    assert project_back.region(rid).accepted_take_id == takes[1].id
    np.testing.assert_array_equal(
        project_back.tracks[0].read(0, project_back.frames), saved.tracks[0].read(0, saved.frames)
    )
    # Undo after reopening takes the accept back, and the takes are still there.
    before_accept = history.undo()
    assert before_accept.region(rid).accepted_take_id is None
    assert len(before_accept.takes_for(rid)) == 2


def test_a_take_made_while_its_region_was_undone_is_kept_for_redo(qtbot):
    gate = StepGate(1)
    env = make_env(FakeFactory(FakePipeline(gate=gate)), model=model_info())
    try:
        env.session.set_selection([(2 * SR, 3 * SR)])
        job = env.controller.generate(GenerateOptions(prompt="x", takes=1))
        assert job is not None
        (rid,) = env.session.selected_region_ids()
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        env.document.undo()  # the region made from the selection goes away
        assert env.document.project.regions == ()
        with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS):
            gate.open()
        assert [t.region_id for t in env.document.project.orphan_takes()] == [rid]
        env.document.redo()
        assert len(env.document.project.takes_for(rid)) == 1
    finally:
        gate.open()
        env.close()


def test_results_for_a_document_that_was_replaced_are_dropped(qtbot):
    gate = StepGate(1)
    env = make_env(FakeFactory(FakePipeline(gate=gate)), model=model_info())
    try:
        env.session.set_selection([(2 * SR, 3 * SR)])
        env.controller.generate(GenerateOptions(prompt="x", takes=1))
        qtbot.waitUntil(gate.reached.is_set, timeout=WAIT_MS)
        with qtbot.waitSignal(env.engine.job_cancelled, timeout=WAIT_MS):
            env.document.set_project(project(12.0))  # another file was opened
            gate.open()
        assert env.document.project.takes == ()
        assert env.controller.pending_regions() == {}
    finally:
        gate.open()
        env.close()


def test_extend_after_continues_the_song_into_new_room(qtbot):
    env = make_env(model=model_info())
    try:
        before = env.document.project
        with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS) as added:
            env.controller.generate(
                GenerateOptions(mode="extend", extend_s=3.0, takes=1, prompt="outro")
            )
        p = env.document.project
        assert p.frames == before.frames + 3 * SR
        (region,) = p.regions
        assert (region.start, region.end) == (before.frames, before.frames + 3 * SR)
        assert env.document.undo_text() == "Undo Extend After by 0:03"
        (take_id,) = added.args[1]
        assert env.controller.accept(take_id)
        np.testing.assert_array_equal(
            env.document.project.tracks[0].read(0, before.frames),
            before.tracks[0].read(0, before.frames),
        )
    finally:
        env.close()


def test_new_audio_on_a_new_track_is_made_from_the_prompt_alone(qtbot):
    env = make_env(model=model_info())
    try:
        env.session.set_cursor(2 * SR)
        with qtbot.waitSignal(env.controller.takes_added, timeout=WAIT_MS):
            env.controller.generate(
                GenerateOptions(mode="new", new_place="track", new_s=2.0, takes=1, prompt="rain")
            )
        p = env.document.project
        assert len(p.tracks) == 2
        request = env.pipeline.requests[-1]
        assert request.inpaint_regions == ()
        assert request.source_latents is None
        (take,) = p.takes
        assert take.region_id == p.regions[0].id
        assert p.regions[0].track_id == p.tracks[1].id
    finally:
        env.close()
