"""History: undo/redo, labels, merging, the saved point, amending, and memory limits."""

from __future__ import annotations

import numpy as np
import pytest
from doc_builders import noise

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.edits import apply_gain, delete_range, fade_in, insert_silence
from sa3_studio.document.history import History, project_buffers
from sa3_studio.document.project import Project
from sa3_studio.document.region_edits import (
    accept_label,
    accept_take,
    add_region,
    add_take,
    new_take,
    update_region,
)
from sa3_studio.document.timefmt import range_label
from sa3_studio.errors import EditError

SR = 44100


def base(frames: int = 10_000) -> Project:
    return Project.from_audio(noise(frames))


def test_undo_redo_walk_the_snapshots() -> None:
    p0 = base()
    h = History(p0)
    assert (h.can_undo, h.can_redo, h.undo_label, h.redo_label) == (False, False, None, None)
    p1 = apply_gain(p0, 0, 100, 3.0)
    h.push(p1, range_label("Gain", 0, 100))
    p2 = delete_range(p1, 0, 50)
    h.push(p2, "Delete")
    assert h.project is p2
    assert h.undo_label == "Undo Delete"
    assert h.undo() is p1
    assert h.redo_label == "Redo Delete"
    assert h.undo_label == "Undo Gain 0:00\u20130:00"
    assert h.undo() is p0
    with pytest.raises(EditError, match="nothing to undo"):
        h.undo()
    assert h.redo() is p1
    assert h.redo() is p2
    with pytest.raises(EditError, match="nothing to redo"):
        h.redo()
    assert h.labels() == (("Gain 0:00\u20130:00", "Delete"), ())


def test_push_after_undo_discards_the_redo_steps() -> None:
    p0 = base()
    h = History(p0)
    h.push(apply_gain(p0, 0, 100, 3.0), "A")
    h.undo()
    h.push(apply_gain(p0, 0, 100, -3.0), "B")
    assert not h.can_redo
    assert h.labels() == (("B",), ())


def test_pushing_an_unchanged_project_does_nothing() -> None:
    p0 = base()
    h = History(p0)
    h.push(p0, "Nothing")
    h.push(update_region(*add_region(p0, "track-1", 0, 10)), "Region")
    h.push(h.project, "Nothing again")
    assert h.undo_steps == 1


def test_repeated_drags_merge_into_one_step() -> None:
    p0, rid = add_region(base(), "track-1", 100, 200)
    h = History(p0)
    for shift in (10, 20, 30):
        h.push(update_region(h.project, rid, start=100 + shift), "Move region", ("move", rid))
    assert h.undo_steps == 1
    assert h.project.region(rid).start == 130
    assert h.undo() is p0
    h.redo()
    h.push(update_region(h.project, rid, start=150), "Move region", ("move", rid))
    assert h.undo_steps == 2  # redo sealed the merge
    h.push(update_region(h.project, rid, end=300), "Resize region", ("resize", rid))
    assert h.undo_steps == 3  # another key does not merge
    h.seal()
    h.push(update_region(h.project, rid, end=310), "Resize region", ("resize", rid))
    assert h.undo_steps == 4


def test_saved_point_and_dirty_flag() -> None:
    p0 = base()
    h = History(p0)
    assert not h.is_dirty
    h.push(apply_gain(p0, 0, 100, 3.0), "Gain", "gain")
    assert h.is_dirty
    h.mark_saved()
    assert not h.is_dirty
    h.push(apply_gain(h.project, 0, 100, 3.0), "Gain", "gain")  # save seals: no merge
    assert h.undo_steps == 2
    h.undo()
    assert not h.is_dirty
    h.undo()
    assert h.is_dirty
    h.redo()
    h.redo()
    assert h.is_dirty
    h.undo()
    h.undo()
    h.push(insert_silence(h.project, 0, 10), "Insert silence")  # the saved step is discarded
    h.undo()
    assert h.is_dirty


def test_amend_all_keeps_a_new_take_through_undo() -> None:
    p0 = base()
    h = History(p0)
    p1, rid = add_region(p0, "track-1", 1000, 2000)
    h.push(p1, "Add region")
    take = new_take(p1, rid, noise(1000, 5), prompt="x", seed=1, model_name="m", weights_hash="h")
    h.amend_all(lambda p: add_take(p, take, require_region=False))
    assert h.is_dirty
    assert h.project.take(take.id) == take
    h.undo()
    assert h.project.orphan_takes() == (take,)  # the region is undone, the take is not lost
    h.redo()
    h.push(accept_take(h.project, rid, take.id), accept_label(h.project, rid, take.id))
    assert h.undo_label == "Undo Accept take 1 at 0:00.02\u20130:00.05"


def test_amend_all_that_fails_leaves_the_history_alone() -> None:
    p0 = base()
    h = History(p0)
    h.push(apply_gain(p0, 0, 100, 3.0), "Gain")

    def boom(p: Project) -> Project:
        raise EditError("no")

    with pytest.raises(EditError):
        h.amend_all(boom)
    assert not h.can_redo
    assert h.undo_steps == 1
    h.undo()
    assert h.project is p0


def test_memory_limit_drops_the_oldest_steps() -> None:
    p0 = base(1000)
    one_edit = 100 * 2 * 4  # bytes of the buffer a 100-frame gain edit makes
    h = History(p0, memory_limit=1000 * 2 * 4 + 3 * one_edit)
    project = p0
    for i in range(6):
        # The same span each time: every step replaces the previous step's buffer, so
        # dropping an old step frees that buffer.
        project = apply_gain(project, 0, 100, 1.0)
        h.push(project, f"Gain {i}")
    assert h.memory_bytes() <= h.memory_limit
    assert h.labels()[0] == ("Gain 4", "Gain 5")  # three snapshots, three edit buffers
    assert h.project is project


def test_memory_limit_never_drops_the_current_snapshot() -> None:
    p0 = base(1000)
    h = History(p0, memory_limit=0)
    p1 = apply_gain(p0, 0, 100, 1.0)
    h.push(p1, "Gain")
    assert h.project is p1
    assert h.undo_steps == 0


def test_max_steps() -> None:
    p0 = base(1000)
    h = History(p0, max_steps=2)
    for i in range(5):
        h.push(apply_gain(h.project, 0, 10, 1.0 + i), f"Gain {i}")
    assert h.labels()[0] == ("Gain 3", "Gain 4")


def test_snapshots_and_restore_round_trip() -> None:
    p0 = base(1000)
    h = History(p0)
    p1 = apply_gain(p0, 0, 10, 1.0)
    h.push(p1, "Gain")
    h.mark_saved()
    p2 = delete_range(p1, 0, 10)
    h.push(p2, "Delete")
    h.undo()
    assert h.snapshots() == (("", p0), ("Gain", p1), ("Delete", p2))
    assert (h.index, h.saved_index) == (1, 1)
    r = History.restore(h.snapshots(), h.index, h.saved_index)
    assert r.project is p1
    assert not r.is_dirty
    assert (r.undo_label, r.redo_label) == ("Undo Gain", "Redo Delete")
    assert r.redo() is p2
    assert r.is_dirty
    unsaved = History.restore(h.snapshots(), 2)
    assert (unsaved.is_dirty, unsaved.saved_index) == (True, None)
    with pytest.raises(ValueError, match="outside"):
        History.restore(h.snapshots(), 3)
    with pytest.raises(ValueError, match="at least one"):
        History.restore((), 0)


def test_clear_forgets_steps() -> None:
    p0 = base(1000)
    h = History(p0)
    h.push(apply_gain(p0, 0, 10, 1.0), "Gain")
    h.clear()
    assert (h.undo_steps, h.is_dirty) == (0, False)
    h.clear(p0, saved=False)
    assert h.project is p0
    assert h.is_dirty


def test_snapshots_share_buffers_on_a_six_minute_song() -> None:
    """100 small edits on a 6-minute stereo song cost far less than copies of it."""
    frames = 6 * 60 * SR
    samples = np.random.default_rng(0).standard_normal((2, frames), dtype=np.float32) * 0.1
    song = AudioData.from_array(samples, copy=False)
    project = Project.from_audio(song)
    h = History(project)
    for i in range(100):
        at = (i * 3 * SR + 1234) % (frames - 10 * SR)
        kind = i % 5
        if kind == 0:
            project = apply_gain(project, at, at + SR, -1.0)
        elif kind == 1:
            project = fade_in(project, at, at + SR // 2)
        elif kind == 2:
            project = insert_silence(project, at, SR // 10)
        elif kind == 3:
            project = delete_range(project, at, at + SR // 10)
        else:
            project, rid = add_region(project, "track-1", at, at + 5 * SR)
            take = new_take(
                project, rid, noise(5 * SR, i), prompt="", seed=i, model_name="m", weights_hash="h"
            )
            project = accept_take(add_take(project, take), rid, take.id)
        h.push(project, f"Edit {i}")
    assert h.undo_steps == 100
    audio_bytes = song.nbytes
    assert h.memory_bytes() < 1.5 * audio_bytes
    assert sum(a.nbytes for a in project_buffers(h.project).values()) < 1.5 * audio_bytes
    for _ in range(100):
        h.undo()
    assert h.project.tracks[0].clips[0].segments[0].audio is song
