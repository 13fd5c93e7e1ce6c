"""Project <-> JSON-safe manifest, with audio referred to by content id.

The project store saves :func:`project_to_manifest`'s dict as JSON and each buffer of
``project.audio_buffers()`` once under its content id; it opens a project with
:func:`project_from_manifest`, giving it a function that loads a buffer by content id.

Format history:

- 1: first format.

A manifest with a newer format number raises :class:`~sa3_studio.errors.ProjectFileError` telling
the user to update; unknown keys in a manifest of a known format are ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import CHANNELS, SAMPLE_RATE
from sa3_studio.document.grid import BeatGrid
from sa3_studio.document.project import Clip, Project, ProjectMeta, Track
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment
from sa3_studio.document.take import (
    GenerationSettings,
    LoraUse,
    LoudnessReport,
    Provenance,
    SeamReport,
    SettingValue,
    Take,
)
from sa3_studio.errors import ProjectFileError

FORMAT_NAME = "sa3-studio-project"
"""Value of the manifest's ``"format"`` key."""

FORMAT_VERSION = 1
"""Format number written by this build; manifests up to this number can be read."""

AudioLookup = Callable[[str], AudioData]
"""Loads the buffer with a given content id (raises KeyError when it is missing)."""

_DAMAGED = "The project file is damaged ({}); open an autosave or a backup copy instead."


# -- writing -----------------------------------------------------------------------------------


def project_to_manifest(project: Project) -> dict[str, Any]:
    """Describe ``project`` as a JSON-safe dict (audio by content id).

    Args:
        project: the project to describe.

    Returns:
        A dict of str, int, float, bool, None, lists and dicts only; ``json.dumps`` accepts it
        as is. ``manifest["buffers"]`` maps every content id used to ``{"channels", "frames"}``.
    """
    buffers = project.audio_buffers()
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sample_rate": SAMPLE_RATE,
        "channels": CHANNELS,
        "meta": _meta_to_json(project.meta),
        "buffers": {
            cid: {"channels": a.channels, "frames": a.frames} for cid, a in sorted(buffers.items())
        },
        "tracks": [_track_to_json(t) for t in project.tracks],
        "regions": [_region_to_json(r) for r in project.regions],
        "takes": [_take_to_json(k) for k in project.takes],
    }


def _meta_to_json(meta: ProjectMeta) -> dict[str, Any]:
    grid = meta.grid
    return {
        "title": meta.title,
        "source_path": meta.source_path,
        "source_sample_rate": meta.source_sample_rate,
        "source_channels": meta.source_channels,
        "source_format": meta.source_format,
        "source_subtype": meta.source_subtype,
        "truncated_notice": meta.truncated_notice,
        "grid": None
        if grid is None
        else {"bpm": grid.bpm, "offset": grid.offset, "beats_per_bar": grid.beats_per_bar},
    }


def _track_to_json(track: Track) -> dict[str, Any]:
    return {
        "id": track.id,
        "name": track.name,
        "gain_db": track.gain_db,
        "muted": track.muted,
        "solo": track.solo,
        "clips": [
            {
                "id": c.id,
                "name": c.name,
                "start": c.start,
                "segments": [
                    {
                        "audio": None if s.audio is None else s.audio.content_id,
                        "offset": s.offset,
                        "length": s.length,
                    }
                    for s in c.segments
                ],
            }
            for c in track.clips
        ],
    }


def _settings_to_json(settings: GenerationSettings) -> dict[str, Any]:
    return {
        "steps": settings.steps,
        "cfg_scale": settings.cfg_scale,
        "apg_scale": settings.apg_scale,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "init_noise_level": settings.init_noise_level,
        "context_s": settings.context_s,
        "extra": dict(settings.extra),
    }


def _region_to_json(region: Region) -> dict[str, Any]:
    return {
        "id": region.id,
        "track_id": region.track_id,
        "start": region.start,
        "end": region.end,
        "name": region.name,
        "prompt": region.prompt,
        "negative_prompt": region.negative_prompt,
        "settings": _settings_to_json(region.settings),
        "accepted_take_id": region.accepted_take_id,
    }


def _take_to_json(take: Take) -> dict[str, Any]:
    return {
        "id": take.id,
        "region_id": take.region_id,
        "number": take.number,
        "audio": take.audio.content_id,
        "prompt": take.prompt,
        "negative_prompt": take.negative_prompt,
        "seed": take.seed,
        "model_name": take.model_name,
        "weights_hash": take.weights_hash,
        "settings": _settings_to_json(take.settings),
        "created_at": take.created_at,
        "elapsed_s": take.elapsed_s,
        "parent_take_id": take.parent_take_id,
        "provenance": _provenance_to_json(take.provenance),
    }


def _provenance_to_json(p: Provenance) -> dict[str, Any]:
    return {
        "mode": p.mode,
        "prefix": p.prefix,
        "user_prompt": p.user_prompt,
        "tempo_bpm": p.tempo_bpm,
        "key": p.key,
        "window_start": p.window_start,
        "window_end": p.window_end,
        "model_rate": p.model_rate,
        "text_only": p.text_only,
        "loras": [
            {"path": lora.path, "strength": lora.strength, "file_hash": lora.file_hash}
            for lora in p.loras
        ],
        "seam": None
        if p.seam is None
        else {"seam_in": p.seam.seam_in, "seam_out": p.seam.seam_out, "bad": p.seam.bad},
        "loudness": None
        if p.loudness is None
        else {"gain_db": p.loudness.gain_db, "note": p.loudness.note},
    }


# -- reading -----------------------------------------------------------------------------------


def manifest_version(manifest: Mapping[str, Any]) -> int:
    """The format number of a manifest, checked to be one this build can read.

    Raises:
        ProjectFileError: not an SA3 Studio manifest, or saved by a newer version.
    """
    if not isinstance(manifest, Mapping) or manifest.get("format") != FORMAT_NAME:
        raise ProjectFileError(
            "This file is not an SA3 Studio project; open a project saved by SA3 Studio."
        )
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectFileError(_DAMAGED.format("its format number is missing"))
    if version > FORMAT_VERSION:
        raise ProjectFileError(
            f"This project was saved by a newer SA3 Studio (format {version}); "
            "update SA3 Studio to open it."
        )
    return version


def manifest_audio_ids(manifest: Mapping[str, Any]) -> frozenset[str]:
    """Content ids of every buffer the manifest refers to (from its ``"buffers"`` table).

    Raises:
        ProjectFileError: the manifest is not readable by this build.
    """
    manifest_version(manifest)
    buffers = manifest.get("buffers")
    if not isinstance(buffers, Mapping):
        raise ProjectFileError(_DAMAGED.format("its list of audio buffers is missing"))
    return frozenset(str(k) for k in buffers)


def project_from_manifest(manifest: Mapping[str, Any], audio_lookup: AudioLookup) -> Project:
    """Rebuild a project from :func:`project_to_manifest`'s dict.

    Args:
        manifest: the parsed JSON.
        audio_lookup: returns the buffer for a content id; called once per distinct id.

    Returns:
        The project.

    Raises:
        ProjectFileError: the manifest is from a newer version, damaged, inconsistent, or
            refers to audio that ``audio_lookup`` cannot find.
    """
    manifest_version(manifest)
    root = _Node(manifest, "project")
    if root.get_int("sample_rate") != SAMPLE_RATE or root.get_int("channels") != CHANNELS:
        raise ProjectFileError(_DAMAGED.format("it is not a 44.1 kHz stereo project"))
    shapes = {cid: _Node(v, f"buffers[{cid}]") for cid, v in root.mapping("buffers").items()}
    cache: dict[str, AudioData] = {}

    def audio(cid: str, where: str) -> AudioData:
        if cid in cache:
            return cache[cid]
        if cid not in shapes:
            raise ProjectFileError(_DAMAGED.format(f"{where} uses audio not listed in the file"))
        try:
            data = audio_lookup(cid)
        except LookupError:
            raise ProjectFileError(
                f"The project's audio {cid[:12]} is missing from the project file; "
                "open an autosave or a backup copy instead."
            ) from None
        if data.content_id != cid:
            raise ProjectFileError(_DAMAGED.format(f"audio {cid[:12]} does not match its id"))
        shape = shapes[cid]
        if (data.channels, data.frames) != (shape.get_int("channels"), shape.get_int("frames")):
            raise ProjectFileError(_DAMAGED.format(f"audio {cid[:12]} has the wrong length"))
        cache[cid] = data
        return data

    try:
        meta = _meta_from(root.node("meta"))
        tracks = tuple(_track_from(t, audio) for t in root.nodes("tracks"))
        regions = tuple(_region_from(r) for r in root.nodes("regions"))
        takes = tuple(_take_from(k, audio) for k in root.nodes("takes"))
        return Project(meta, tracks, regions, takes)
    except (ValueError, TypeError) as exc:
        raise ProjectFileError(_DAMAGED.format(str(exc))) from exc


class _Node:
    """Typed access to one JSON object, with the path for error messages."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ProjectFileError(_DAMAGED.format(f"{path} is not an object"))
        self.value: Mapping[str, Any] = value
        self.path = path

    def _bad(self, key: str, what: str) -> ProjectFileError:
        return ProjectFileError(_DAMAGED.format(f"{self.path}.{key} should be {what}"))

    def get(self, key: str) -> Any:
        if key not in self.value:
            raise ProjectFileError(_DAMAGED.format(f"{self.path}.{key} is missing"))
        return self.value[key]

    def get_int(self, key: str, default: int | None = None) -> int:
        v = self.value.get(key, default) if default is not None else self.get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "a whole number")
        return v

    def opt_int(self, key: str) -> int | None:
        v = self.value.get(key)
        return None if v is None else self.get_int(key)

    def get_float(self, key: str, default: float | None = None) -> float:
        v = self.value.get(key, default) if default is not None else self.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self._bad(key, "a number")
        return float(v)

    def opt_float(self, key: str) -> float | None:
        v = self.value.get(key)
        return None if v is None else self.get_float(key)

    def get_str(self, key: str, default: str | None = None) -> str:
        v = self.value.get(key, default) if default is not None else self.get(key)
        if not isinstance(v, str):
            raise self._bad(key, "text")
        return v

    def opt_str(self, key: str) -> str | None:
        v = self.value.get(key)
        return None if v is None else self.get_str(key)

    def get_bool(self, key: str, default: bool) -> bool:
        v = self.value.get(key, default)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false")
        return v

    def mapping(self, key: str) -> Mapping[str, Any]:
        v = self.get(key)
        if not isinstance(v, Mapping):
            raise self._bad(key, "an object")
        return v

    def node(self, key: str) -> _Node:
        return _Node(self.get(key), f"{self.path}.{key}")

    def nodes(self, key: str) -> list[_Node]:
        v = self.get(key)
        if not isinstance(v, list):
            raise self._bad(key, "a list")
        return [_Node(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(v)]


def _meta_from(n: _Node) -> ProjectMeta:
    grid_value = n.value.get("grid")
    grid = None
    if grid_value is not None:
        g = _Node(grid_value, f"{n.path}.grid")
        grid = BeatGrid(g.get_float("bpm"), g.get_int("offset"), g.get_int("beats_per_bar"))
    return ProjectMeta(
        title=n.get_str("title", ""),
        source_path=n.opt_str("source_path"),
        source_sample_rate=n.get_int("source_sample_rate", SAMPLE_RATE),
        source_channels=n.get_int("source_channels", CHANNELS),
        source_format=n.get_str("source_format", ""),
        source_subtype=n.get_str("source_subtype", ""),
        truncated_notice=n.opt_str("truncated_notice"),
        grid=grid,
    )


def _track_from(n: _Node, audio: Callable[[str, str], AudioData]) -> Track:
    clips = []
    for c in n.nodes("clips"):
        segments = []
        for s in c.nodes("segments"):
            cid = s.opt_str("audio")
            data = None if cid is None else audio(cid, s.path)
            segments.append(Segment(data, s.get_int("offset"), s.get_int("length")))
        clips.append(
            Clip(c.get_str("id"), c.get_int("start"), tuple(segments), c.get_str("name", ""))
        )
    return Track(
        n.get_str("id"),
        n.get_str("name", ""),
        tuple(clips),
        n.get_float("gain_db", 0.0),
        n.get_bool("muted", False),
        n.get_bool("solo", False),
    )


def _settings_from(n: _Node) -> GenerationSettings:
    extra_value = n.value.get("extra", {})
    if not isinstance(extra_value, Mapping):
        raise ProjectFileError(_DAMAGED.format(f"{n.path}.extra should be an object"))
    extra: dict[str, SettingValue] = {}
    for key, value in extra_value.items():
        if not isinstance(value, str | int | float | bool | type(None)):
            raise ProjectFileError(_DAMAGED.format(f"{n.path}.extra.{key} is not a plain value"))
        extra[str(key)] = value
    return GenerationSettings(
        steps=n.opt_int("steps"),
        cfg_scale=n.opt_float("cfg_scale"),
        apg_scale=n.get_float("apg_scale", 1.0),
        sampler=n.opt_str("sampler"),
        seed=n.opt_int("seed"),
        init_noise_level=n.get_float("init_noise_level", 1.0),
        context_s=n.opt_float("context_s"),
        extra=GenerationSettings.extra_from(extra),
    )


def _region_from(n: _Node) -> Region:
    return Region(
        id=n.get_str("id"),
        track_id=n.get_str("track_id"),
        start=n.get_int("start"),
        end=n.get_int("end"),
        name=n.get_str("name", ""),
        prompt=n.get_str("prompt", ""),
        negative_prompt=n.get_str("negative_prompt", ""),
        settings=_settings_from(n.node("settings")),
        accepted_take_id=n.opt_str("accepted_take_id"),
    )


def _take_from(n: _Node, audio: Callable[[str, str], AudioData]) -> Take:
    settings = _settings_from(n.node("settings"))
    if "provenance" in n.value:
        provenance = _provenance_from(n.node("provenance"))
    else:  # saved before the typed record: it was kept in the settings' extra pairs
        provenance, rest = Provenance.from_extra(settings.extra)
        settings = dataclasses.replace(settings, extra=rest)
    return Take(
        id=n.get_str("id"),
        region_id=n.get_str("region_id"),
        number=n.get_int("number"),
        audio=audio(n.get_str("audio"), n.path),
        prompt=n.get_str("prompt", ""),
        negative_prompt=n.get_str("negative_prompt", ""),
        seed=n.get_int("seed"),
        model_name=n.get_str("model_name", ""),
        weights_hash=n.get_str("weights_hash", ""),
        settings=settings,
        created_at=n.get_float("created_at", 0.0),
        elapsed_s=n.get_float("elapsed_s", 0.0),
        parent_take_id=n.opt_str("parent_take_id"),
        provenance=provenance,
    )


def _provenance_from(n: _Node) -> Provenance:
    seam_value = n.value.get("seam")
    seam = None
    if seam_value is not None:
        sn = _Node(seam_value, f"{n.path}.seam")
        seam = SeamReport(
            sn.opt_float("seam_in"), sn.opt_float("seam_out"), sn.get_bool("bad", False)
        )
    loud_value = n.value.get("loudness")
    loudness = None
    if loud_value is not None:
        ln = _Node(loud_value, f"{n.path}.loudness")
        loudness = LoudnessReport(ln.get_float("gain_db", 0.0), ln.get_str("note", ""))
    loras = tuple(
        LoraUse(m.get_str("path"), m.get_float("strength"), m.get_str("file_hash", ""))
        for m in (n.nodes("loras") if "loras" in n.value else [])
    )
    return Provenance(
        mode=n.get_str("mode", ""),
        prefix=n.get_str("prefix", ""),
        user_prompt=n.get_str("user_prompt", ""),
        tempo_bpm=n.opt_float("tempo_bpm"),
        key=n.get_str("key", ""),
        window_start=n.opt_int("window_start"),
        window_end=n.opt_int("window_end"),
        model_rate=n.opt_int("model_rate"),
        text_only=n.get_bool("text_only", False),
        loras=loras,
        seam=seam,
        loudness=loudness,
    )


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "AudioLookup",
    "manifest_audio_ids",
    "manifest_version",
    "project_from_manifest",
    "project_to_manifest",
]
