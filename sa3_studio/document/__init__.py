"""The pure document model of SA3 Studio (stdlib + numpy only).

A :class:`Project` holds tracks of clips, regions to regenerate and the takes generated for them.
Everything is immutable; edits are pure functions returning a new project, and
:class:`History` keeps snapshots for undo and redo. See ``docs`` in each module.
"""

from __future__ import annotations

from sa3_studio.document.audio_data import AudioData, FloatArray, content_id_of
from sa3_studio.document.constants import CHANNELS, LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment
from sa3_studio.document.serialize import (
    FORMAT_VERSION,
    project_from_manifest,
    project_to_manifest,
)
from sa3_studio.document.take import GenerationSettings, Take, lineage

__all__ = [
    "CHANNELS",
    "FORMAT_VERSION",
    "LATENT_FRAMES",
    "SAMPLE_RATE",
    "AudioData",
    "BeatGrid",
    "Clip",
    "FloatArray",
    "GenerationSettings",
    "Project",
    "ProjectMeta",
    "Region",
    "Segment",
    "Take",
    "Track",
    "content_id_of",
    "lineage",
    "project_from_manifest",
    "project_to_manifest",
]
