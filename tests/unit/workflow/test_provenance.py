"""The typed record of how a take was made: saved, reopened, and read from older projects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.project import Project
from sa3_studio.document.region import Region
from sa3_studio.document.serialize import project_from_manifest, project_to_manifest
from sa3_studio.document.take import (
    GenerationSettings,
    LoraUse,
    LoudnessReport,
    Provenance,
    SeamReport,
    Take,
)
from sa3_studio.workflow.loras import lora_file_hash

FULL = Provenance(
    mode="regenerate",
    prefix="Music",
    user_prompt="brushed drums",
    tempo_bpm=96.0,
    key="D minor",
    window_start=44100,
    window_end=44100 * 31,
    model_rate=44100,
    loras=(LoraUse("/l/drums.safetensors", 0.8, "0123456789ab"),),
    seam=SeamReport(1.25, None, False),
    loudness=LoudnessReport(-1.5, "The take is 1.5 dB louder than the song around it."),
)


def _project(take: Take) -> Project:
    audio = AudioData.from_array(np.zeros((2, 100), np.float32))
    base = Project.from_audio(audio)
    track_id = base.tracks[0].id
    region = Region("r1", track_id, 0, 100)
    return Project(base.meta, base.tracks, (region,), (take,))


def _take(provenance: Provenance, extra: tuple = ()) -> Take:
    audio = AudioData.from_array(np.ones((2, 100), np.float32) * 0.1)
    settings = GenerationSettings(steps=8, seed=3, extra=extra)
    return Take("k1", "r1", 1, audio, "p", "", 3, "small-music", "abc", settings, 1.0, 2.0, None,
                provenance)  # fmt: skip


def test_provenance_survives_save_and_reopen() -> None:
    project = _project(_take(FULL))
    text = json.dumps(project_to_manifest(project), allow_nan=False)
    back = project_from_manifest(json.loads(text), project.audio_buffers().__getitem__)
    assert back == project
    assert back.takes[0].provenance == FULL
    assert back.takes[0].provenance.loras_text == "drums 0.8"


def test_a_project_saved_before_the_record_still_opens_with_its_details() -> None:
    # How the previous version wrote a take: everything in the settings' string-keyed pairs.
    old_extra = (
        ("future_knob", 2),
        ("key", "D minor"),
        ("loras", "drums 0.8, keys 1"),
        ("loudness_gain_db", -1.5),
        ("loudness_note", "quieter"),
        ("mode", "vary"),
        ("model_rate", 44100),
        ("prefix", "SFX"),
        ("seam_bad", True),
        ("seam_in", 4.5),
        ("seam_out", None),
        ("tempo_bpm", 96.0),
        ("user_prompt", "door slam"),
        ("window_end", 441000),
        ("window_start", 0),
    )
    project = _project(_take(Provenance(), old_extra))
    manifest = project_to_manifest(project)
    del manifest["takes"][0]["provenance"]  # the old format had no such key
    back = project_from_manifest(manifest, project.audio_buffers().__getitem__)
    (take,) = back.takes
    made = take.provenance
    assert (made.mode, made.prefix, made.user_prompt, made.key) == (
        "vary", "SFX", "door slam", "D minor",
    )  # fmt: skip
    assert (made.tempo_bpm, made.window_start, made.window_end, made.model_rate) == (
        96.0, 0, 441000, 44100,
    )  # fmt: skip
    assert made.seam == SeamReport(4.5, None, True)
    assert made.loudness == LoudnessReport(-1.5, "quieter")
    assert [(lo.name, lo.strength) for lo in made.loras] == [("drums", 0.8), ("keys", 1.0)]
    # What the record does not know stays in the pairs, so it is not lost.
    assert take.settings.extra == (("future_knob", 2),)


def test_bad_provenance_values_are_refused() -> None:
    with pytest.raises(ValueError, match="tempo_bpm must be a finite number"):
        Provenance(tempo_bpm=float("nan"))
    with pytest.raises(ValueError, match="window ends before it starts"):
        Provenance(window_start=10, window_end=5)


def test_lora_file_hash_follows_the_file(tmp_path: Path) -> None:
    f = tmp_path / "style.safetensors"
    f.write_bytes(b"a" * 1000)
    first = lora_file_hash(str(f))
    assert len(first) == 12
    f.write_bytes(b"b" * 1001)
    assert lora_file_hash(str(f)) != first
    assert lora_file_hash(str(tmp_path / "missing.safetensors")) == ""
