"""Broadcast Wave Format: the ``bext`` chunk (EBU Tech 3285) and RIFF chunk walking.

libsndfile writes plain RIFF/WAVE files; a DAW places a file on its timeline by the
``TimeReference`` field of the ``bext`` chunk (a sample count from the timeline's origin).
This module writes that chunk into an existing WAV file and parses it back.

Layout of the chunk payload (little endian, 602 fixed bytes then the coding history)::

    Description           256  ASCII, NUL padded
    Originator             32  ASCII
    OriginatorReference    32  ASCII
    OriginationDate        10  "yyyy-mm-dd"
    OriginationTime         8  "hh:mm:ss"
    TimeReferenceLow        4  uint32 } together one uint64: samples since the origin
    TimeReferenceHigh       4  uint32 }
    Version                 2  uint16 (2 here)
    UMID                   64  bytes (zero: none)
    LoudnessValue           2  int16, LUFS x 100           } version 2; 0x7FFF = not measured
    LoudnessRange           2  int16, LU x 100             }
    MaxTruePeakLevel        2  int16, dBTP x 100           }
    MaxMomentaryLoudness    2  int16, LUFS x 100           }
    MaxShortTermLoudness    2  int16, LUFS x 100           }
    Reserved              180  zero
    CodingHistory           *  ASCII lines ending in CR LF
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sa3_studio.errors import AudioFileError

BEXT_ID = b"bext"
BEXT_FIXED_SIZE = 602
_FIXED = struct.Struct("<256s32s32s10s8sIIH64s5h180s")  # BEXT_FIXED_SIZE bytes

# EBU Tech 3285 v2: a loudness field that was not measured holds 0x7FFF.
LOUDNESS_UNKNOWN = 0x7FFF
_RIFF_MAX = 0xFFFFFFFF
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class BextChunk:
    """The fields of a ``bext`` chunk.

    Text is ASCII (other characters become ``?``) and is cut to its field's length when
    written. Loudness fields are in LUFS / LU / dBTP, or None when not measured.
    """

    description: str = ""
    originator: str = ""
    originator_reference: str = ""
    origination_date: str = ""
    origination_time: str = ""
    time_reference: int = 0
    version: int = 2
    umid: bytes = b""
    loudness_value: float | None = None
    loudness_range: float | None = None
    max_true_peak_level: float | None = None
    max_momentary_loudness: float | None = None
    max_short_term_loudness: float | None = None
    coding_history: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.time_reference < 1 << 64:
            raise ValueError(f"time_reference must fit in 64 bits, got {self.time_reference}")
        if not 0 <= self.version < 1 << 16:
            raise ValueError(f"version must fit in 16 bits, got {self.version}")
        if len(self.umid) > 64:
            raise ValueError(f"umid is at most 64 bytes, got {len(self.umid)}")

    def to_bytes(self) -> bytes:
        """Serialise the chunk payload (without the 8-byte chunk header or pad byte)."""
        low = self.time_reference & 0xFFFFFFFF
        high = self.time_reference >> 32
        fixed = _FIXED.pack(
            _ascii(self.description, 256),
            _ascii(self.originator, 32),
            _ascii(self.originator_reference, 32),
            _ascii(self.origination_date, 10),
            _ascii(self.origination_time, 8),
            low,
            high,
            self.version,
            self.umid.ljust(64, b"\0"),
            _centi(self.loudness_value),
            _centi(self.loudness_range),
            _centi(self.max_true_peak_level),
            _centi(self.max_momentary_loudness),
            _centi(self.max_short_term_loudness),
            b"\0" * 180,
        )
        history = self.coding_history
        if history and not history.endswith("\r\n"):
            history += "\r\n"
        return fixed + history.encode("ascii", errors="replace")

    @classmethod
    def from_bytes(cls, payload: bytes) -> BextChunk:
        """Parse a chunk payload.

        Raises:
            AudioFileError: The payload is shorter than the fixed part of the chunk.
        """
        if len(payload) < BEXT_FIXED_SIZE:
            raise AudioFileError(
                f"The bext chunk is {len(payload)} bytes, shorter than the {BEXT_FIXED_SIZE} "
                "bytes the Broadcast Wave format requires; the file's header is damaged."
            )
        f = _FIXED.unpack_from(payload)
        version = int(f[7])
        loud = [_from_centi(v) if version >= 2 else None for v in f[9:14]]
        return cls(
            description=_text(f[0]),
            originator=_text(f[1]),
            originator_reference=_text(f[2]),
            origination_date=_text(f[3]),
            origination_time=_text(f[4]),
            time_reference=int(f[5]) | (int(f[6]) << 32),
            version=version,
            umid=bytes(f[8]).rstrip(b"\0"),
            loudness_value=loud[0],
            loudness_range=loud[1],
            max_true_peak_level=loud[2],
            max_momentary_loudness=loud[3],
            max_short_term_loudness=loud[4],
            coding_history=_text(payload[BEXT_FIXED_SIZE:]),
        )


@dataclass(frozen=True, slots=True)
class RiffChunk:
    """One chunk of a RIFF file: its id, where its payload starts and its declared size."""

    chunk_id: bytes
    offset: int
    size: int

    @property
    def end(self) -> int:
        """File offset after the payload and its pad byte (chunks are word aligned)."""
        return self.offset + self.size + (self.size & 1)


@dataclass(frozen=True, slots=True)
class RiffLayout:
    """The top of a RIFF file: its form type (``WAVE``), declared size and chunks."""

    form_type: bytes
    riff_size: int
    file_size: int
    chunks: tuple[RiffChunk, ...]

    def find(self, chunk_id: bytes) -> RiffChunk | None:
        """The first chunk with this id, or None."""
        return next((c for c in self.chunks if c.chunk_id == chunk_id), None)


def read_riff_layout(stream: BinaryIO) -> RiffLayout | None:
    """Walk the chunks of a RIFF file without reading their payloads.

    Args:
        stream: A binary file opened for reading, positioned anywhere.

    Returns:
        The layout, or None when the stream is not a little-endian RIFF file. A chunk whose
        declared size runs past the end of the file is listed with its declared size (that is
        how a truncated file shows) and ends the walk.
    """
    stream.seek(0, os.SEEK_END)
    file_size = stream.tell()
    stream.seek(0)
    head = stream.read(12)
    if len(head) < 12 or head[:4] != b"RIFF":
        return None
    riff_size = struct.unpack_from("<I", head, 4)[0]
    chunks: list[RiffChunk] = []
    pos = 12
    while pos + 8 <= file_size:
        stream.seek(pos)
        header = stream.read(8)
        chunk_id, size = header[:4], struct.unpack_from("<I", header, 4)[0]
        chunk = RiffChunk(chunk_id, pos + 8, size)
        chunks.append(chunk)
        pos = chunk.end
    return RiffLayout(head[8:12], riff_size, file_size, tuple(chunks))


def read_bext(path: str | os.PathLike[str]) -> BextChunk | None:
    """Read the ``bext`` chunk of a WAV file.

    Args:
        path: The WAV file.

    Returns:
        The parsed chunk, or None when the file has none.

    Raises:
        AudioFileError: The file cannot be opened or is not a RIFF/WAVE file.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            layout = read_riff_layout(f)
            if layout is None or layout.form_type != b"WAVE":
                raise AudioFileError(f"'{p}' is not a WAV file, so it has no bext chunk.")
            chunk = layout.find(BEXT_ID)
            if chunk is None:
                return None
            f.seek(chunk.offset)
            payload = f.read(chunk.size)
    except OSError as e:
        raise AudioFileError(f"Cannot read '{p}': {e.strerror or e}.") from e
    return BextChunk.from_bytes(payload)


def copy_with_bext(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], bext: BextChunk
) -> None:
    """Copy a WAV file, putting ``bext`` just before its ``data`` chunk.

    An existing ``bext`` chunk is dropped; every other chunk is copied unchanged and in
    order, and the RIFF size is rewritten. ``dst`` is overwritten.

    Args:
        src: A complete RIFF/WAVE file (for example, what libsndfile just wrote).
        dst: Where to write the result (must differ from ``src``).
        bext: The chunk to insert.

    Raises:
        AudioFileError: ``src`` is not a complete WAV file, or the result would exceed the
            4 GiB limit of a RIFF file.
        OSError: Reading or writing failed (for example, the disk is full).
    """
    s, d = Path(src), Path(dst)
    payload = bext.to_bytes()
    with s.open("rb") as fin:
        layout = read_riff_layout(fin)
        if layout is None or layout.form_type != b"WAVE":
            raise AudioFileError(f"'{s}' is not a WAV file; cannot add a bext chunk.")
        kept = [c for c in layout.chunks if c.chunk_id != BEXT_ID]
        if not any(c.chunk_id == b"data" for c in kept):
            raise AudioFileError(f"'{s}' has no data chunk; cannot add a bext chunk.")
        if any(c.offset + c.size > layout.file_size for c in kept):
            raise AudioFileError(f"'{s}' is truncated; cannot add a bext chunk.")
        bext_total = 8 + len(payload) + (len(payload) & 1)
        riff_size = 4 + bext_total + sum(8 + c.size + (c.size & 1) for c in kept)
        if riff_size > _RIFF_MAX:
            raise AudioFileError(
                "The WAV file would be larger than the 4 GB a RIFF file can hold; "
                "export as FLAC, or export a shorter range."
            )
        with d.open("wb") as fout:
            fout.write(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE")
            for chunk in kept:
                if chunk.chunk_id == b"data":
                    fout.write(_chunk_bytes(BEXT_ID, payload))
                fout.write(chunk.chunk_id + struct.pack("<I", chunk.size))
                fin.seek(chunk.offset)
                for block in _read_blocks(fin, chunk.size + (chunk.size & 1)):
                    fout.write(block)


def _chunk_bytes(chunk_id: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) & 1 else b""
    return chunk_id + struct.pack("<I", len(payload)) + payload + pad


def _read_blocks(fin: BinaryIO, count: int) -> Iterator[bytes]:
    left = count
    while left > 0:
        block = fin.read(min(left, _COPY_BLOCK))
        if not block:
            # Only a missing pad byte at the very end can get here (sizes were checked).
            yield b"\0" * left
            return
        left -= len(block)
        yield block


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", errors="replace")[:size].ljust(size, b"\0")


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _centi(value: float | None) -> int:
    if value is None or not math.isfinite(value):  # silence measures -inf: not a value
        return LOUDNESS_UNKNOWN
    return max(-0x7FFF, min(0x7FFE, round(value * 100)))


def _from_centi(raw: int) -> float | None:
    return None if raw == LOUDNESS_UNKNOWN else raw / 100.0
