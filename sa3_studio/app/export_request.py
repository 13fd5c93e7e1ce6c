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
