"""Project <-> manifest round trips, version checks and damaged manifests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from doc_builders import noise

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment
from sa3_studio.document.serialize import (
    FORMAT_VERSION,
    manifest_audio_ids,
    project_from_manifest,
    project_to_manifest,
)
from sa3_studio.document.take import GenerationSettings, Take
from sa3_studio.errors import ProjectFileError


def rich_project() -> Project:
    """A project using every field: two tracks, split segments, silence, regions, takes."""
    a, b, k1, k2 = noise(1000, 1), noise(500, 2), noise(100, 3), noise(100, 4)
    clip1 = Clip("c1", 0, (Segment(a, 0, 300), Segment.silence(50), Segment(a, 400, 600)), "x")
    clip2 = Clip.from_audio("c2", 2000, b, "generated")
    tracks = (
        Track("t1", "Main", (clip1, clip2), gain_db=-3.5, muted=True),
        Track("t2", "Other", (), solo=True),
    )
    settings = GenerationSettings(
        steps=8,
        cfg_scale=1.5,
        apg_scale=0.5,
        sampler="euler",
        seed=7,
        init_noise_level=0.8,
        context_s=60.0,
        extra=(("future_knob", 0.25), ("mode", "fast"), ("off", None), ("on", True)),
    )
    regions = (
        Region("r1", "t1", 100, 200, "Chorus", "drums", "vocals", settings, "k2"),
        Region("r2", "t2", 0, 50),
    )
    takes = (
        Take("k1", "r1", 1, k1, "drums", "", 42, "small-music", "abc123", settings, 1.7e9, 3.5),
        Take(
            "k2", "r1", 2, k2, "drums", "x", 43, "small-music", "abc123", settings, 1.7e9, 3.2, "k1"
        ),
        Take("k3", "r-gone", 1, k1),
    )
    meta = ProjectMeta(
        title="Song",
        source_path="/music/song.flac",
        source_sample_rate=48000,
        source_channels=1,
        source_format="FLAC",
        source_subtype="PCM_24",
        truncated_notice="Only the first 3:00 could be read.",
        grid=BeatGrid(123.5, -200, 3),
    )
    return Project(meta, tracks, regions, takes)


def lookup_from(project: Project) -> Any:
    buffers = project.audio_buffers()
    calls: list[str] = []

    def lookup(cid: str) -> AudioData:
        calls.append(cid)
        return buffers[cid]

    lookup.calls = calls  # type: ignore[attr-defined]
    return lookup


def test_round_trip_through_json_is_identical() -> None:
    p = rich_project()
    manifest = project_to_manifest(p)
    text = json.dumps(manifest, allow_nan=False)
    lookup = lookup_from(p)
    back = project_from_manifest(json.loads(text), lookup)
    assert back == p
    # each buffer is loaded once even when several segments and takes use it
    assert sorted(lookup.calls) == sorted(set(lookup.calls)) == sorted(p.audio_buffers())
    assert manifest_audio_ids(manifest) == frozenset(p.audio_buffers())
    assert manifest["version"] == FORMAT_VERSION


def test_round_trip_of_an_empty_project() -> None:
    p = Project()
    assert project_from_manifest(project_to_manifest(p), lookup_from(p)) == p


def test_newer_format_is_refused_with_advice() -> None:
    manifest = project_to_manifest(rich_project())
    manifest["version"] = FORMAT_VERSION + 1
    with pytest.raises(ProjectFileError) as info:
        project_from_manifest(manifest, lookup_from(rich_project()))
    assert str(info.value) == (
        f"This project was saved by a newer SA3 Studio (format {FORMAT_VERSION + 1}); "
        "update SA3 Studio to open it."
    )


def test_not_a_project() -> None:
    with pytest.raises(ProjectFileError, match="not an SA3 Studio project"):
        project_from_manifest({"format": "something else"}, lookup_from(Project()))


def _damaged(mutate: Any) -> str:
    p = rich_project()
    manifest = copy.deepcopy(project_to_manifest(p))
    mutate(manifest)
    with pytest.raises(ProjectFileError) as info:
        project_from_manifest(manifest, lookup_from(p))
    return str(info.value)


def test_damaged_manifests_name_the_problem() -> None:
    def del_start(m: dict[str, Any]) -> None:
        del m["tracks"][0]["clips"][0]["start"]

    assert "tracks[0].clips[0].start is missing" in _damaged(del_start)

    def bad_type(m: dict[str, Any]) -> None:
        m["regions"][0]["end"] = "late"

    assert "regions[0].end should be a whole number" in _damaged(bad_type)

    def overlap(m: dict[str, Any]) -> None:
        m["tracks"][0]["clips"][1]["start"] = 10

    assert "overlap" in _damaged(overlap)

    def bad_version(m: dict[str, Any]) -> None:
        m["version"] = "one"

    assert "format number" in _damaged(bad_version)

    def unlisted(m: dict[str, Any]) -> None:
        m["buffers"].pop(m["takes"][2]["audio"])

    assert "not listed" in _damaged(unlisted)

    def wrong_length(m: dict[str, Any]) -> None:
        cid = m["takes"][0]["audio"]
        m["buffers"][cid]["frames"] = 99

    assert "wrong length" in _damaged(wrong_length)


def test_missing_audio_is_a_project_file_error() -> None:
    p = rich_project()

    def lookup(cid: str) -> AudioData:
        raise KeyError(cid)

    with pytest.raises(ProjectFileError, match="missing from the project file"):
        project_from_manifest(project_to_manifest(p), lookup)


def test_lookup_returning_other_audio_is_caught() -> None:
    p = rich_project()
    other = noise(1000, seed=99)
    with pytest.raises(ProjectFileError, match="does not match"):
        project_from_manifest(project_to_manifest(p), lambda cid: other)


def test_unknown_keys_are_ignored() -> None:
    p = rich_project()
    manifest = project_to_manifest(p)
    manifest["added_later"] = {"x": 1}
    manifest["tracks"][0]["colour"] = "red"
    assert project_from_manifest(manifest, lookup_from(p)) == p
