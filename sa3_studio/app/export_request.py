"""What the export dialog asks for, as a plain value the file service carries out."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class ExportWhat(enum.StrEnum):
    """Which audio to export."""

    MIX = "mix"
    SELECTION = "selection"
    REGION = "region"
    STEMS = "stems"


@dataclass(frozen=True, slots=True)
class FormatChoice:
    """An export format the audio layer can write.

    Attributes:
        key: the format's value (``"wav24"``, ``"flac16"``...).
        label: what the menu shows ("WAV 24-bit").
        extension: file name extension without the dot.
        bits: bits per sample for PCM formats, ``None`` for lossy ones.
    """

    key: str
    label: str
    extension: str
    bits: int | None


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """One export.

    Attributes:
        what: mix, selection, region or stems.
        path: the file to write (a folder for stems).
        format_key: a :attr:`FormatChoice.key`.
        sample_rate: rate of the file (``None``: the project rate).
        dither: TPDF dither when reducing to 16 bits.
        region_id: the region (``what == REGION``).
        handles_ms: extra audio either side of a region.
        ranges: the selected spans in frames (``what == SELECTION``).
        true_peak_limit_dbtp: bring true peaks down to this ceiling with a look-ahead
            limiter before writing (``None``: write the audio as it is).
        mp3_mode: MP3 quality, :data:`MP3_MODES` ("v0": variable bitrate, quality V0;
            "cbr320": 320 kbps constant bitrate).
        vorbis_quality: OGG Vorbis quality, 0 (smallest) to 10 (best), as oggenc counts.
    """

    what: ExportWhat
    path: Path
    format_key: str = "wav24"
    sample_rate: int | None = None
    dither: bool = True
    region_id: str = ""
    handles_ms: float = 0.0
    ranges: tuple[tuple[int, int], ...] = ()
    true_peak_limit_dbtp: float | None = None
    mp3_mode: str = "v0"
    vorbis_quality: float = 6.0

    def __post_init__(self) -> None:
        if self.mp3_mode not in MP3_MODES:
            raise ValueError(
                f"MP3 quality {self.mp3_mode!r} is unknown; use one of {', '.join(MP3_MODES)}."
            )
        if not 0.0 <= self.vorbis_quality <= 10.0:
            raise ValueError(
                f"Vorbis quality {self.vorbis_quality} is outside 0 to 10; choose a value in "
                "between (6 is a good default)."
            )


MP3_MODES = {"v0": "Best variable bitrate (V0, about 245 kbps)", "cbr320": "320 kbps constant"}
"""The MP3 qualities offered, with what the export dialog shows."""

VORBIS_QUALITIES = (3.0, 5.0, 6.0, 8.0, 10.0)
"""The OGG Vorbis qualities offered (oggenc's scale: q3 about 112 kbps ... q10 about 500)."""
