"""Edits of regions and takes: add, change and delete regions; keep, delete and accept takes.

Like every edit these are pure and raise :class:`~sa3_studio.errors.EditError` with a sentence
for the user. Accepting a take splices its audio into the region's track with equal-power
crossfades *inside* the region, so every sample outside the region stays bit-identical.

How a finished generation enters the project (so that undo never loses it)::

    take = new_take(history.project, region_id, audio, prompt=..., seed=..., ...)
    history.amend_all(lambda p: add_take(p, take, require_region=False))
"""

from __future__ import annotations

import dataclasses
import math
import operator

import numpy as np

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import CHANNELS, SAMPLE_RATE
from sa3_studio.document.crossfade import crossfade, splice_frames
from sa3_studio.document.ids import new_id
from sa3_studio.document.project import Project
from sa3_studio.document.region import Region
from sa3_studio.document.segments import Segment
from sa3_studio.document.take import GenerationSettings, Take
from sa3_studio.document.timefmt import format_range, format_time
from sa3_studio.document.timeline import write_span
from sa3_studio.errors import EditError

DEFAULT_CROSSFADE_S = 0.025
"""Length of each equal-power crossfade when a take is accepted."""


def region_title(region: Region) -> str:
    """How messages name a region: its name in quotes, or its span."""
    return f"'{region.name}'" if region.name else format_range(region.start, region.end)


REGION_NAME_CHARS = 32
"""Longest name a region gets from its prompt."""


def default_region_name(project: Project, prompt: str = "") -> str:
    """The name a new region gets when none is given: the start of its prompt (a few words),
    else "Region N" with N one more than the highest such number in the project."""
    words = " ".join(prompt.split())
    if words:
        if len(words) <= REGION_NAME_CHARS:
            return words
        cut = words[: REGION_NAME_CHARS + 1].rsplit(" ", 1)[0] or words[:REGION_NAME_CHARS]
        return cut.rstrip(" ,;:.") + "…"
    highest = 0
    for region in project.regions:
        head, _, number = region.name.rpartition(" ")
        if head == "Region" and number.isdigit():
            highest = max(highest, int(number))
    return f"Region {highest + 1}"


def _check_span(project: Project, track_id: str, start: int, end: int, ignore: str | None) -> None:
    try:
        start, end = operator.index(start), operator.index(end)
    except TypeError:
        raise EditError("A region's start and end must be whole numbers of frames.") from None
    if start < 0:
        raise EditError("A region cannot start before the beginning of the project.")
    if end <= start:
        raise EditError("A region must be longer than zero; drag over the part to regenerate.")
    project.track(track_id)
    for other in project.regions_on(track_id):
        if other.id != ignore and other.overlaps(start, end):
            raise EditError(
                f"The region {format_range(start, end)} would overlap region "
                f"{region_title(other)}; regions on one track cannot overlap."
            )


def add_region(
    project: Project,
    track_id: str,
    start: int,
    end: int,
    *,
    name: str = "",
    prompt: str = "",
    negative_prompt: str = "",
    settings: GenerationSettings | None = None,
    region_id: str | None = None,
) -> tuple[Project, str]:
    """Add a region ``[start, end)`` to a track (named by :func:`default_region_name` when
    ``name`` is empty).

    Returns:
        ``(new project, the new region's id)``.

    Raises:
        EditError: the span is empty or negative, the track is missing, the region would
            overlap another region on the track, or ``region_id`` is taken.
    """
    _check_span(project, track_id, start, end, None)
    ids = project.ids()
    if region_id is None:
        region_id = new_id("region", ids)
    elif region_id in ids:
        raise EditError(f"The id {region_id} is already used in the project.")
    region = Region(
        region_id,
        track_id,
        int(start),
        int(end),
        name or default_region_name(project, prompt),
        prompt,
        negative_prompt,
        settings or GenerationSettings(),
    )
    return dataclasses.replace(project, regions=(*project.regions, region)), region_id


def update_region(
    project: Project,
    region_id: str,
    *,
    start: int | None = None,
    end: int | None = None,
    name: str | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    settings: GenerationSettings | None = None,
) -> Project:
    """Change a region's span, name, prompts or settings (arguments left ``None`` stay).

    Its takes are kept; a take whose length no longer matches the region cannot be accepted
    until the region has its old length again.

    Raises:
        EditError: the region is missing, or the new span is empty or overlaps another region.
    """
    region = project.region(region_id)
    new_start = region.start if start is None else start
    new_end = region.end if end is None else end
    _check_span(project, region.track_id, new_start, new_end, region_id)
    changed = dataclasses.replace(
        region,
        start=int(new_start),
        end=int(new_end),
        name=region.name if name is None else name,
        prompt=region.prompt if prompt is None else prompt,
        negative_prompt=region.negative_prompt if negative_prompt is None else negative_prompt,
        settings=region.settings if settings is None else settings,
    )
    if changed == region:
        return project
    regions = tuple(changed if r.id == region_id else r for r in project.regions)
    return dataclasses.replace(project, regions=regions)


def delete_region(project: Project, region_id: str) -> Project:
    """Remove a region and all its takes (the audio already accepted stays in the track).

    Raises:
        EditError: the region is missing.
    """
    project.region(region_id)
    return dataclasses.replace(
        project,
        regions=tuple(r for r in project.regions if r.id != region_id),
        takes=tuple(k for k in project.takes if k.region_id != region_id),
    )


# -- takes -------------------------------------------------------------------------------------


def next_take_number(project: Project, region_id: str) -> int:
    """The number the next take of a region gets (1 for the first)."""
    return 1 + max((k.number for k in project.takes if k.region_id == region_id), default=0)


def new_take(
    project: Project,
    region_id: str,
    audio: AudioData,
    *,
    prompt: str,
    seed: int,
    model_name: str,
    weights_hash: str,
    negative_prompt: str = "",
    settings: GenerationSettings | None = None,
    created_at: float = 0.0,
    elapsed_s: float = 0.0,
    parent_take_id: str | None = None,
    take_id: str | None = None,
) -> Take:
    """Build a take for a region, with a fresh id and the region's next take number.

    The project is not changed; add the take with :func:`add_take`.

    Args:
        project: the project the take is for (ids and numbers are chosen against it).
        region_id: the region it was generated for.
        audio: ``(2, region frames)`` generated audio at the project rate.
        prompt: prompt used.
        seed: seed actually used.
        model_name: model id.
        weights_hash: hash of the weights used.
        negative_prompt: negative prompt used.
        settings: generation settings used.
        created_at: Unix time it was made.
        elapsed_s: seconds it took.
        parent_take_id: the take it was derived from.
        take_id: an explicit id (default: a fresh one).

    Raises:
        EditError: the region is missing, or the audio is not stereo or not the region's length.
    """
    region = project.region(region_id)
    if audio.channels != CHANNELS:
        raise EditError(f"A take must be stereo, but this one has {audio.channels} channel(s).")
    if audio.frames != region.length:
        raise EditError(
            f"The generated audio is {format_time(audio.frames)} long but region "
            f"{region_title(region)} is {format_time(region.length)}; generate it again."
        )
    return Take(
        id=take_id or new_id("take", project.ids()),
        region_id=region_id,
        number=next_take_number(project, region_id),
        audio=audio,
        prompt=prompt,
        negative_prompt=negative_prompt,
        seed=seed,
        model_name=model_name,
        weights_hash=weights_hash,
        settings=settings or GenerationSettings(),
        created_at=created_at,
        elapsed_s=elapsed_s,
        parent_take_id=parent_take_id,
    )


def add_take(project: Project, take: Take, *, require_region: bool = True) -> Project:
    """Keep a take in the project (it stays until :func:`delete_take`).

    Args:
        project: the project.
        take: a take from :func:`new_take`.
        require_region: when False, a take whose region is not in ``project`` is kept anyway
            (as an orphan), which is what adding it to every undo snapshot needs.

    Raises:
        EditError: the take's id is already used, or its region is missing and required.
    """
    if take.id in project.ids():
        raise EditError(f"The take id {take.id} is already used in the project.")
    if require_region:
        project.region(take.region_id)
    if take.audio.channels != CHANNELS:
        raise EditError(
            f"A take must be stereo, but this one has {take.audio.channels} channel(s)."
        )
    return dataclasses.replace(project, takes=(*project.takes, take))


def delete_take(project: Project, take_id: str) -> Project:
    """Delete a take. Audio it left in the track when accepted stays there.

    Raises:
        EditError: the take is missing.
    """
    project.take(take_id)
    regions = tuple(
        dataclasses.replace(r, accepted_take_id=None) if r.accepted_take_id == take_id else r
        for r in project.regions
    )
    takes = tuple(k for k in project.takes if k.id != take_id)
    return dataclasses.replace(project, regions=regions, takes=takes)


def accept_take(
    project: Project,
    region_id: str,
    take_id: str,
    *,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
    gain_db: float = 0.0,
    body: AudioData | None = None,
) -> Project:
    """Splice a take into its region's track and mark it accepted.

    The take replaces the track's audio inside ``[region.start, region.end)``: an equal-power
    crossfade from the current audio into the take over the first ``crossfade_s`` seconds,
    the take, and a crossfade back over the last ``crossfade_s`` seconds. Fades are shortened to
    half the region for very short regions. Samples outside the region are not touched, and the
    take's own buffer is shared (only the two fades are new audio) unless ``gain_db`` is set.

    Args:
        project: the project.
        region_id: the region.
        take_id: one of the region's takes.
        crossfade_s: length of each crossfade in seconds (0 for a hard cut).
        gain_db: gain applied to the take first (e.g. a loudness match computed by the caller).
        body: audio spliced instead of the take's own, shaped like it (e.g. the take through a
            true-peak limiter, made by the caller); ``gain_db`` applies to it.

    Raises:
        EditError: missing region or take, a take of another region, a take whose length no
            longer matches the region, a body of another shape, or a bad crossfade or gain.
    """
    region = project.region(region_id)
    take = project.take(take_id)
    if take.region_id != region_id:
        raise EditError(
            f"Take {take.number} belongs to another region; pick a take of region "
            f"{region_title(region)}."
        )
    if take.frames != region.length:
        raise EditError(
            f"Take {take.number} is {format_time(take.frames)} long but region "
            f"{region_title(region)} is now {format_time(region.length)}; give the region its "
            "old length back or generate a new take."
        )
    if not math.isfinite(crossfade_s) or crossfade_s < 0:
        raise EditError("The crossfade must be zero or more seconds.")
    if not math.isfinite(gain_db) or abs(gain_db) > 60.0:
        raise EditError("The take's gain must be between -60 dB and +60 dB.")
    track = project.track(region.track_id)
    length = region.length
    if body is None:
        body = take.audio
    elif body.samples.shape != take.audio.samples.shape:
        raise EditError(
            f"The audio given for take {take.number} is shaped {body.samples.shape}, the take "
            f"{take.audio.samples.shape}; splice audio of the take's own length and channels."
        )
    if gain_db != 0.0:
        scaled = body.samples.astype(np.float64) * 10.0 ** (gain_db / 20.0)
        body = AudioData.from_array(scaled.astype(np.float32), copy=False)
    fade = splice_frames(length, round(crossfade_s * SAMPLE_RATE))
    if fade == 0:
        segments: tuple[Segment, ...] = (Segment.of(body),)
    else:
        head_old = track.read(region.start, region.start + fade)
        tail_old = track.read(region.end - fade, region.end)
        head = crossfade(head_old, body.samples[:, :fade])
        tail = crossfade(body.samples[:, length - fade :], tail_old)
        middle = (Segment(body, fade, length - 2 * fade),) if length > 2 * fade else ()
        segments = (
            Segment.of(AudioData.from_array(head, copy=False)),
            *middle,
            Segment.of(AudioData.from_array(tail, copy=False)),
        )
    taken = set(project.ids())
    new_track = write_span(track, region.start, segments, lambda prefix: new_id(prefix, taken))
    regions = tuple(
        dataclasses.replace(r, accepted_take_id=take_id) if r.id == region_id else r
        for r in project.regions
    )
    tracks = tuple(new_track if t.id == track.id else t for t in project.tracks)
    return dataclasses.replace(project, tracks=tracks, regions=regions)


def accept_label(project: Project, region_id: str, take_id: str) -> str:
    """History label of :func:`accept_take`: ``Accept take 3 at 0:12–0:16``."""
    region = project.region(region_id)
    take = project.take(take_id)
    return f"Accept take {take.number} at {format_range(region.start, region.end)}"
