"""Regions: spans of a track the user wants regenerated, with their prompt and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sa3_studio.document.take import GenerationSettings


@dataclass(frozen=True, slots=True)
class Region:
    """A span ``[start, end)`` of one track, in project frames, to regenerate.

    Attributes:
        id: unique in the project.
        track_id: the track whose audio the region replaces.
        start: first frame (inclusive).
        end: last frame (exclusive).
        name: optional display name ("Chorus").
        prompt: what should be there.
        negative_prompt: what should not (used by -base models).
        settings: generation settings for this region.
        accepted_take_id: the take last accepted into this region, if any.
    """

    id: str
    track_id: str
    start: int
    end: int
    name: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    accepted_take_id: str | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.track_id:
            raise ValueError("a region needs an id and a track id")
        if not 0 <= self.start < self.end:
            raise ValueError(f"a region needs 0 <= start < end, got [{self.start}, {self.end})")

    @property
    def length(self) -> int:
        """Length in frames."""
        return self.end - self.start

    def overlaps(self, start: int, end: int) -> bool:
        """True when the region shares at least one frame with ``[start, end)``."""
        return self.start < end and start < self.end
