"""The pure document model of SA3 Studio (stdlib + numpy only).

A :class:`Project` holds tracks of clips, regions to regenerate and the takes generated for
them, at 44.1 kHz stereo, with positions in integer frames. Everything is immutable: edits are
pure functions returning a new project (``edits``, ``arrange``, ``region_edits``) and
:class:`History` keeps snapshots for undo and redo that share their audio buffers.

Modules: ``audio_data`` (AudioData), ``segments``, ``project``, ``region``, ``take``,
``edits``, ``arrange``, ``region_edits``, ``history``, ``snapping``, ``grid``, ``context`` (the
window planner), ``crossfade``, ``loudness`` (BS.1770), ``timefmt``, ``serialize``.
"""

from __future__ import annotations

from sa3_studio.document.arrange import (
    add_track,
    delete_clip,
    delete_track,
    move_clip,
    move_track,
    place_clip,
    place_on_new_track,
    rename_clip,
    set_grid,
    set_meta,
    set_track,
    split_clip,
)
from sa3_studio.document.audio_data import AudioData, FloatArray, content_id_of
from sa3_studio.document.constants import CHANNELS, LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.document.context import (
    MEDIUM_MAX_CONTEXT_S,
    SMALL_MAX_CONTEXT_S,
    Window,
    WindowRegion,
    context_frames_for,
    plan_windows,
)
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
    trim_to_range,
)
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.history import History
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.region import Region
from sa3_studio.document.region_edits import (
    accept_label,
    accept_take,
    add_region,
    add_take,
    delete_region,
    delete_take,
    new_take,
    update_region,
)
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
    "MEDIUM_MAX_CONTEXT_S",
    "SAMPLE_RATE",
    "SMALL_MAX_CONTEXT_S",
    "AudioData",
    "BeatGrid",
    "Clip",
    "Clipboard",
    "FloatArray",
    "GenerationSettings",
    "History",
    "Project",
    "ProjectMeta",
    "Region",
    "Segment",
    "Take",
    "Track",
    "Window",
    "WindowRegion",
    "accept_label",
    "accept_take",
    "add_region",
    "add_take",
    "add_track",
    "apply_gain",
    "content_id_of",
    "context_frames_for",
    "copy_range",
    "cut_range",
    "delete_clip",
    "delete_range",
    "delete_region",
    "delete_take",
    "delete_track",
    "fade_in",
    "fade_out",
    "insert_silence",
    "lineage",
    "move_clip",
    "move_track",
    "new_take",
    "normalize_loudness",
    "normalize_peak",
    "paste",
    "place_clip",
    "place_on_new_track",
    "plan_windows",
    "project_from_manifest",
    "project_to_manifest",
    "rename_clip",
    "set_grid",
    "set_meta",
    "set_track",
    "split_clip",
    "trim_to_range",
    "update_region",
]
