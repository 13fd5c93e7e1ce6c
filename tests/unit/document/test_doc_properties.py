"""Property tests: random edit sequences, undo all, redo all, and serialisation of the results."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from doc_builders import noise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sa3_studio.document import arrange, edits, region_edits
from sa3_studio.document.history import History
from sa3_studio.document.project import Project
from sa3_studio.document.serialize import project_from_manifest, project_to_manifest
from sa3_studio.errors import EditError

FRAMES = 6000


def start_project() -> Project:
    p = Project.from_audio(noise(FRAMES, seed=1))
    p, _ = arrange.place_on_new_track(p, noise(2000, seed=2), 1500, track_name="Two")
    return p


def render_all(p: Project) -> list[np.ndarray]:
    end = max(p.frames, 1)
    return [t.read(0, end).copy() for t in p.tracks]


Edit = Callable[[Project], tuple[Project, str]]


class _NotApplicableError(Exception):
    """The drawn edit needs something the project does not have (a region, a clip)."""


@st.composite
def edit_steps(draw: st.DrawFn) -> Edit:
    """One random edit, resolved against whatever project it is applied to."""
    kind = draw(
        st.sampled_from(
            [
                "gain",
                "delete",
                "insert",
                "cut_paste",
                "fade_in",
                "fade_out",
                "normalize",
                "trim",
                "add_region",
                "generate_accept",
                "move_region",
                "split",
                "move_clip",
                "place",
                "delete_region",
                "track",
            ]
        )
    )
    a = draw(st.integers(0, FRAMES + 500))
    b = draw(st.integers(0, FRAMES + 500))
    n = draw(st.integers(1, 800))
    seed = draw(st.integers(0, 1000))
    pick = draw(st.integers(0, 10))
    lo, hi = min(a, b), max(a, b)

    def apply(p: Project) -> tuple[Project, str]:
        track_ids = [t.id for t in p.tracks]
        one = [track_ids[pick % len(track_ids)]] if track_ids else None
        if kind == "gain":
            return edits.apply_gain(p, lo, hi, (seed % 24) - 12.0, one), "Gain"
        if kind == "delete":
            return edits.delete_range(p, lo, hi, one if pick % 2 else None), "Delete"
        if kind == "insert":
            return edits.insert_silence(p, lo, n, one), "Insert silence"
        if kind == "cut_paste":
            q, clip = edits.cut_range(p, lo, hi)
            return edits.paste(q, clip, min(b, q.frames)), "Move audio"
        if kind == "fade_in":
            return edits.fade_in(p, lo, hi, shape="equal_power", track_ids=one), "Fade in"
        if kind == "fade_out":
            return edits.fade_out(p, lo, hi, track_ids=one), "Fade out"
        if kind == "normalize":
            return edits.normalize_peak(p, lo, hi, target_dbfs=-(seed % 10)), "Normalise"
        if kind == "trim":
            return edits.trim_to_range(p, lo, hi), "Trim"
        if kind == "add_region":
            if one is None:
                raise _NotApplicableError
            return region_edits.add_region(p, one[0], lo, hi, prompt=str(seed))[0], "Region"
        if kind == "generate_accept":
            if not p.regions:
                raise _NotApplicableError
            r = p.regions[pick % len(p.regions)]
            take = region_edits.new_take(
                p,
                r.id,
                noise(r.length, seed),
                prompt="",
                seed=seed,
                model_name="m",
                weights_hash="h",
            )
            q = region_edits.add_take(p, take)
            return region_edits.accept_take(q, r.id, take.id, crossfade_s=n / 44100), "Accept"
        if kind == "move_region":
            if not p.regions:
                raise _NotApplicableError
            r = p.regions[pick % len(p.regions)]
            return region_edits.update_region(p, r.id, start=lo, end=max(hi, lo + 1)), "Move"
        if kind == "split":
            clips = [c for t in p.tracks for c in t.clips]
            if not clips:
                raise _NotApplicableError
            return arrange.split_clip(p, clips[pick % len(clips)].id, a)[0], "Split"
        if kind == "move_clip":
            clips = [c for t in p.tracks for c in t.clips]
            if not clips:
                raise _NotApplicableError
            return arrange.move_clip(
                p, clips[pick % len(clips)].id, a, track_id=one and one[0]
            ), "Move clip"
        if kind == "place":
            if one is None:
                raise _NotApplicableError
            return arrange.place_clip(p, one[0], noise(n, seed), a)[0], "Place"
        if kind == "delete_region":
            if not p.regions:
                raise _NotApplicableError
            return region_edits.delete_region(
                p, p.regions[pick % len(p.regions)].id
            ), "Delete region"
        return arrange.add_track(p, f"T{seed}")[0], "Add track"

    return apply


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(edit_steps(), min_size=3, max_size=25))
def test_undo_all_and_redo_all(steps: list[Edit]) -> None:
    initial = start_project()
    history = History(initial)
    snapshots = [initial]
    renders = [render_all(initial)]
    messages = []
    for step in steps:
        try:
            project, label = step(history.project)
        except _NotApplicableError:
            continue
        except EditError as exc:
            messages.append(str(exc))
            continue
        history.push(project, label)
        if history.project is project:
            snapshots.append(project)
            renders.append(render_all(project))
    final = history.project
    assert all(m[0].isupper() and m.endswith(".") for m in messages)  # sentences for the user

    while history.can_undo:
        history.undo()
    assert history.project is initial
    assert [np.array_equal(a, b) for a, b in zip(render_all(initial), renders[0])] == [True] * 2
    while history.can_redo:
        history.redo()
    assert history.project is final
    assert not history.can_redo

    # No edit changed audio that an earlier snapshot still shows.
    for snapshot, render in zip(snapshots, renders):
        for now, then in zip(render_all(snapshot), render):
            assert np.array_equal(now, then)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(edit_steps(), min_size=1, max_size=15))
def test_edited_projects_survive_serialisation(steps: list[Edit]) -> None:
    project = start_project()
    for step in steps:
        try:
            project = step(project)[0]
        except (EditError, _NotApplicableError):
            continue
    buffers = project.audio_buffers()
    back = project_from_manifest(project_to_manifest(project), buffers.__getitem__)
    assert back == project
    for a, b in zip(render_all(back), render_all(project)):
        assert np.array_equal(a, b)
