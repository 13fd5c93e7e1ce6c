"""Audio files: import (decode) any format libsndfile reads, export (encode) mixes and stems.

Import returns the project's layout, float32 ``(2, frames)`` at 44100 Hz: mono is copied to
both channels, more than two channels are downmixed, other rates are converted with soxr.
Decoding runs block by block (progress and cancel are checked per block), refuses files that
would not fit in memory before reading them, and imports what is readable of a truncated
file, saying so. Every failure is an :class:`~sa3_studio.errors.AudioFileError` whose
message names the file and says what to do.

Export writes WAV (16/24-bit, 32-bit float), FLAC (16/24), OGG Vorbis and MP3 (when this
libsndfile can encode it), with TPDF dither when reducing to 16 bits, tags (prompt, seed,
model) and, in WAV files, a Broadcast Wave ``bext`` chunk that places the file at its
position in the project. Writing goes to a temporary file in the same folder that replaces
the target only once complete, so a failed or cancelled export never leaves a half file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import io
import logging
import math
import os
import re
import secrets
import stat
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from sa3_studio import __version__
from sa3_studio.audio.bext import BextChunk, copy_with_bext, read_riff_layout
from sa3_studio.audio.resample import (
    MAX_CHUNK_OUT,
    MAX_RATE,
    MIN_RATE,
    Quality,
    StreamResampler,
    resampled_length,
)
from sa3_studio.errors import AudioFileError, Cancelled

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 44100
BLOCK_FRAMES = 1 << 16
# Without an explicit limit, a decoded file may use this share of the memory available now.
MEMORY_FRACTION = 0.75
# After a decoder error, re-read the damaged stretch in blocks this small to keep the most.
_SALVAGE_FRAMES = 1024
# MP3 lengths can be estimates: a shortfall this small is not called truncation.
_MP3_SLACK_FRAMES = 2 * 1152
_MP3_SLACK_FRACTION = 0.005
_LOUDNESS_MAX_S = 15 * 60
# A RIFF size is 32 bits; leave room for the header, tags and bext chunk.
_WAV_MAX_DATA = 0xFFFFFFFF - (1 << 20)
_MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
_INT16_SCALE = np.float32(1.0 / 32768.0)
_READABLE = "WAV, FLAC, OGG Vorbis, Opus, MP3 or AIFF"

ProgressCallback = Callable[[int, int], None]
"""Called with (frames done, frames expected) after each block."""
CancelCheck = Callable[[], bool]
"""Called before each block; returning True cancels (raises Cancelled)."""

FloatAudio = npt.NDArray[np.float32]
SampleBlock = npt.NDArray[Any]  # (frames, channels) int16 or float32, as decoded


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportInfo:
    """What :func:`import_audio` read and what it did to it.

    Attributes:
        path: The source file.
        original_rate: The file's sample rate in Hz.
        channels: The file's channel count.
        format: libsndfile's container name (``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``...).
        subtype: libsndfile's encoding name (``"PCM_24"``, ``"FLOAT"``, ``"VORBIS"``...).
        duration_s: The length the file declares, in seconds.
        readable_s: The length actually imported, in seconds of the source.
        truncated: True when less than the declared length could be read.
        sample_rate: Rate of the returned samples (the project rate).
        frames: Number of returned frames.
        notices: Sentences for the user about what import changed (rate conversion,
            channel handling, truncation); empty when the file was taken as it is.
    """

    path: Path
    original_rate: int
    channels: int
    format: str
    subtype: str
    duration_s: float
    readable_s: float
    truncated: bool
    sample_rate: int
    frames: int
    notices: tuple[str, ...] = ()


def import_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_bytes: int | None = None,
    quality: Quality = "HQ",
    block_frames: int = BLOCK_FRAMES,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> tuple[FloatAudio, ImportInfo]:
    """Decode an audio file into the project's layout.

    Args:
        path: The file to read.
        sample_rate: Rate of the result; other rates are converted with soxr.
        max_bytes: Refuse files whose decoded samples would need more memory than this;
            None means 75 % of the memory available when the import starts.
        quality: soxr preset for rate conversion (``"HQ"`` or ``"VHQ"``).
        block_frames: Frames decoded per block (progress and cancel granularity).
        on_progress: Called with (source frames read, source frames expected).
        cancel: Called before each block; returning True stops the import.

    Returns:
        ``(audio, info)``: ``audio`` is a read-only, C-contiguous float32 array of shape
        ``(2, frames)``; ``info`` says what was read and what was changed.

    Raises:
        AudioFileError: The file is missing, unreadable, not audio, empty, damaged beyond use
            or too large for memory.
        Cancelled: ``cancel`` returned True.
    """
    p = Path(path)
    if sample_rate <= 0 or block_frames <= 0:
        raise ValueError(
            f"need positive sample_rate and block_frames, got {sample_rate}, {block_frames}"
        )
    head = _check_readable_file(p)
    try:
        snd = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise _open_error(p, e, head) from e
    with snd:
        return _decode(p, snd, sample_rate, max_bytes, quality, block_frames, on_progress, cancel)


def import_memory_need(
    frames: int, channels: int, src_rate: int, rate: int, block_frames: int = BLOCK_FRAMES
) -> int:
    """Bytes an import holds at its peak: everything, not only the result.

    The ``(2, frames)`` float32 result at ``rate``, and for the block being decoded its
    samples, their downmix and, when the rate is converted, the resampled block (soxr's output
    per call is bounded by :data:`~sa3_studio.audio.resample.MAX_CHUNK_OUT`).
    """
    out = 2 * 4 * resampled_length(frames, src_rate, rate)
    block = min(block_frames, max(frames, 0))
    work = 4 * block * (channels + 2)
    if src_rate != rate:
        piece = min(resampled_length(block, src_rate, rate), MAX_CHUNK_OUT)
        work += 2 * 4 * (resampled_length(block, src_rate, rate) + piece)
    return out + work


def _check_readable_file(p: Path) -> bytes:
    """Fail with a sentence when ``p`` is not a readable, non-empty file; return its head."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioFileError(
            f"Cannot import '{p}': the file does not exist. Check the path, or choose another file."
        ) from None
    except PermissionError:
        raise AudioFileError(
            f"Cannot import '{p}': permission denied on its folder. Check the folder's "
            "permissions, or copy the file somewhere you can read."
        ) from None
    except OSError as e:
        raise AudioFileError(f"Cannot import '{p}': {e.strerror or e}.") from e
    if stat.S_ISDIR(st.st_mode):
        raise AudioFileError(
            f"Cannot import '{p}': it is a folder, not an audio file. Choose a file inside it."
        )
    if not stat.S_ISREG(st.st_mode):
        raise AudioFileError(
            f"Cannot import '{p}': it is not a regular file (a device, pipe or socket). "
            "Choose an audio file."
        )
    if st.st_size == 0:
        raise AudioFileError(
            f"Cannot import '{p}': the file is empty (0 bytes). It may not have been saved or "
            "copied completely; choose another file."
        )
    try:
        with p.open("rb") as f:
            return f.read(512)
    except PermissionError:
        raise AudioFileError(
            f"Cannot import '{p}': permission denied. Check the file's permissions, or copy it "
            "somewhere you can read."
        ) from None
    except OSError as e:
        raise AudioFileError(f"Cannot import '{p}': {e.strerror or e}.") from e


def _open_error(p: Path, e: Exception, head: bytes) -> AudioFileError:
    code = getattr(e, "code", None)
    if _looks_like_text(head):
        reason = "it is a text file, not audio"
    elif code == 1:  # SF_ERR_UNRECOGNISED_FORMAT
        reason = (
            f"its format is not recognised; it is not a {_READABLE} file, or its header is damaged"
        )
    elif code == 3:  # SF_ERR_MALFORMED_FILE
        reason = "the file is damaged (its header is malformed)"
    elif code == 4:  # SF_ERR_UNSUPPORTED_ENCODING
        reason = "it uses an audio encoding that cannot be decoded"
    else:
        detail = getattr(e, "error_string", "") or str(e)
        if "not a regular file" in detail:
            # libsndfile's words when a decoder (mpg123) finds no audio at all in a file that
            # is, as checked before, an ordinary readable file: it is not audio, or damaged.
            kind = p.suffix.lstrip(".").upper() or "audio"
            reason = (
                f"no {kind} audio could be found in it; it is damaged, or it is not an audio "
                "file at all"
            )
        else:
            reason = f"the decoder reported: {detail.strip().rstrip('.')}"
    return AudioFileError(f"Cannot import '{p}': {reason}. Choose a {_READABLE} file.")


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The 512-byte sample may cut a multi-byte character at its end.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def _decode(
    p: Path,
    snd: sf.SoundFile,
    rate: int,
    max_bytes: int | None,
    quality: Quality,
    block_frames: int,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> tuple[FloatAudio, ImportInfo]:
    channels, src_rate = snd.channels, snd.samplerate
    fmt, subtype = snd.format, snd.subtype
    if channels < 1 or src_rate < 1:
        raise AudioFileError(
            f"Cannot import '{p}': its header says {channels} channels at {src_rate} Hz, so "
            "the file is damaged. Choose another file."
        )
    if not MIN_RATE <= src_rate <= MAX_RATE:
        raise AudioFileError(
            f"Cannot import '{p}': its header says the sample rate is {src_rate} Hz, which is "
            f"not an audio rate (SA3 Studio reads {MIN_RATE} Hz to {MAX_RATE // 1000} kHz), so "
            "the header is damaged. Repair the file in another program, or choose another file."
        )
    reported = snd.frames if 0 <= snd.frames < 1 << 62 else None
    declared = _container_frames(p, fmt, reported)
    if declared == 0:
        raise AudioFileError(
            f"Cannot import '{p}': the file contains no audio (it has a header but no "
            "samples). Choose another file."
        )
    expected = declared if declared is not None else 0
    # What the decoder will deliver: a WAV cut short is read only up to the end of the file.
    deliverable = reported if reported is not None else expected
    notices: list[str] = []

    limit = max_bytes if max_bytes is not None else _default_memory_limit()
    out_frames = resampled_length(deliverable, src_rate, rate)
    need = import_memory_need(deliverable, channels, src_rate, rate, block_frames)
    if limit is not None and need > limit:
        raise AudioFileError(
            f"Cannot import '{p}': its {_duration(deliverable / src_rate)} of audio would need "
            f"about {_size(need)} of memory once decoded, more than the {_size(limit)} "
            "allowed. Split the file into shorter parts, or close other programs and try again."
        )

    mix = _Downmix.for_channels(channels)
    if channels == 1:
        notices.append("The file is mono; its channel was copied to left and right.")
    elif channels > 2:
        notices.append(
            f"The file has {channels} channels; they were downmixed to stereo ({mix.layout})."
        )
    if src_rate != rate:
        notices.append(f"The sample rate was converted from {src_rate} Hz to {rate} Hz.")

    work_channels = 1 if channels == 1 else 2
    resampler = (
        StreamResampler(src_rate, rate, work_channels, quality) if src_rate != rate else None
    )
    sink = _Sink(out_frames, work_channels, limit, p)
    # 16-bit sources: libsndfile's int16 reads are about twice as fast as its float ones and
    # numpy scales them (by 1/32768, as libsndfile does) while de-interleaving, in one pass.
    as_int16 = subtype == "PCM_16" and channels <= 2 and resampler is None
    reader = _BlockReader(p, snd, block_frames, "int16" if as_int16 else "float32")
    peak = 0.0
    float_source = subtype in ("FLOAT", "DOUBLE")
    bad_samples = 0
    for block in reader.blocks(cancel):  # (n, channels) int16 or float32
        if as_int16:
            sink.write(block, scale=_INT16_SCALE)
            if on_progress is not None:
                on_progress(reader.frames, max(expected, reader.frames))
            continue
        if float_source:
            # A float file can hold NaN or infinity; one would poison every mix and meter.
            invalid = ~np.isfinite(block)
            if invalid.any():
                block[invalid] = 0.0
                bad_samples += int(np.count_nonzero(invalid))
        mixed = mix.apply(block)  # (n, work_channels)
        if channels > 2:
            peak = max(peak, float(np.max(np.abs(mixed))))
        sink.write(resampler.process_interleaved(mixed) if resampler is not None else mixed)
        if on_progress is not None:
            on_progress(reader.frames, max(expected, reader.frames))
    if resampler is not None:
        sink.write(resampler.flush_interleaved())

    read = reader.frames
    if read == 0:
        raise AudioFileError(
            f"Cannot import '{p}': no audio could be decoded from it"
            + (f" ({reader.error})" if reader.error else "")
            + ". The file is damaged or truncated; choose another file."
        )
    short = _short(read, declared, fmt)
    truncated = reader.error is not None or short or (fmt == "OGG" and _ogg_end_missing(p))
    if truncated:
        total = max(expected, read)
        # An Ogg stream's length comes from its last page: when that is gone, so is the total.
        of_total = f" of {total / src_rate:.1f}" if total > read else ""
        notices.append(
            f"truncated: {read / src_rate:.1f}{of_total} seconds readable. The end of the "
            "file is missing or damaged; only the readable part was imported."
        )
        log.warning("import of %s truncated at %d of %d frames (%s)", p, read, total, reader.error)
    if bad_samples:
        notices.append(
            f"{bad_samples} invalid samples (NaN or infinity) in the file were replaced with "
            "silence."
        )
    if peak > 1.0:
        notices.append(
            f"The downmix peaks at {20 * math.log10(peak):+.1f} dBFS, above full scale; "
            "lower its gain before exporting to fixed-point formats."
        )
    audio = sink.finish(duplicate_mono=work_channels == 1)
    if on_progress is not None:
        on_progress(read, read)
    info = ImportInfo(
        path=p,
        original_rate=src_rate,
        channels=channels,
        format=fmt,
        subtype=subtype,
        duration_s=max(expected, read) / src_rate,
        readable_s=read / src_rate,
        truncated=truncated,
        sample_rate=rate,
        frames=audio.shape[1],
        notices=tuple(notices),
    )
    return audio, info


def _short(read: int, declared: int | None, fmt: str) -> bool:
    if declared is None or read >= declared:
        return False
    if fmt == "MP3":
        slack = max(_MP3_SLACK_FRAMES, round(_MP3_SLACK_FRACTION * declared))
        return declared - read > slack
    return True


class _BlockReader:
    """Decode blocks; after a decoder error, re-read the damaged stretch in small blocks."""

    def __init__(self, p: Path, snd: sf.SoundFile, block_frames: int, dtype: str) -> None:
        self._path = p
        self._dtype = dtype
        self._snd = snd
        self._block = block_frames
        self.frames = 0
        self.error: str | None = None
        self._salvage: sf.SoundFile | None = None

    def blocks(self, cancel: CancelCheck | None) -> Iterator[SampleBlock]:
        """Yield (n, channels) float32 blocks (views of a reused buffer) until the end."""
        buf = np.empty((self._block, self._snd.channels), dtype=self._dtype)
        try:
            yield from self._loop(buf, cancel)
        finally:
            if self._salvage is not None:
                self._salvage.close()

    def _loop(self, buf: SampleBlock, cancel: CancelCheck | None) -> Iterator[SampleBlock]:
        snd, salvaging = self._snd, False
        while True:
            if cancel is not None and cancel():
                raise Cancelled(f"Import of '{self._path.name}' was cancelled.")
            try:
                got = snd.read(buf.shape[0], dtype=self._dtype, always_2d=True, out=buf)
            except (sf.LibsndfileError, RuntimeError) as e:
                self.error = _decoder_message(e)
                if salvaging:
                    return
                # A failed block may hold good frames before the damage: reopen the file
                # and walk up to the damage in small blocks.
                salvaging = True
                self._salvage = self._reopen_at(self.frames)
                if self._salvage is None:
                    return
                snd = self._salvage
                buf = buf[:_SALVAGE_FRAMES]
                continue
            n = got.shape[0]
            if n == 0:
                break
            self.frames += n
            yield got

    def _reopen_at(self, frame: int) -> sf.SoundFile | None:
        try:
            snd = sf.SoundFile(str(self._path))
        except (sf.LibsndfileError, RuntimeError, OSError):
            return None
        try:
            snd.seek(frame)
        except (sf.LibsndfileError, RuntimeError, OSError):
            snd.close()
            return None
        return snd


def _decoder_message(e: Exception) -> str:
    detail = getattr(e, "error_string", "") or str(e)
    return detail.strip().rstrip(".") or type(e).__name__


class _Sink:
    """The growing (2, frames) result; written from interleaved (n, k) blocks."""

    def __init__(self, frames: int, work_channels: int, limit: int | None, p: Path) -> None:
        self._out = np.empty((2, max(frames, 0)), dtype=np.float32)
        self._used = 0
        self._k = work_channels
        self._limit = limit
        self._path = p

    def write(self, y: SampleBlock, scale: np.float32 | None = None) -> None:
        """Append (m, k) frames, multiplied by ``scale`` when given (integer samples)."""
        m = y.shape[0]
        if m == 0:
            return
        stop = self._used + m
        if stop > self._out.shape[1]:
            self._grow(stop)
        dst = self._out[:, self._used : stop]  # (2, m)
        src = y.T if self._k == 2 else y[:, 0]
        if scale is None:
            dst[: self._k] = src
        else:
            np.multiply(src, scale, out=dst[: self._k] if self._k == 2 else dst[0])
        self._used = stop

    def _grow(self, needed: int) -> None:
        # The declared length was low (an MP3 estimate, an unknown length): grow by 25 %.
        capacity = max(needed, self._out.shape[1] + self._out.shape[1] // 4, 1 << 16)
        if self._limit is not None and 2 * 4 * capacity > self._limit:
            raise AudioFileError(
                f"Cannot import '{self._path}': it holds more audio than its header says, and "
                f"decoding it would need more than the {_size(self._limit)} of memory allowed. "
                "Split the file into shorter parts, or close other programs and try again."
            )
        grown = np.empty((2, capacity), dtype=np.float32)
        grown[:, : self._used] = self._out[:, : self._used]
        self._out = grown

    def finish(self, *, duplicate_mono: bool) -> FloatAudio:
        out = self._out
        if self._used != out.shape[1]:
            # Only when the file was shorter than declared: one copy keeps the result compact.
            out = np.ascontiguousarray(out[:, : self._used])
        if duplicate_mono:
            out[1] = out[0]
        out.flags.writeable = False
        return out


@dataclass(frozen=True, slots=True)
class _Downmix:
    """How a source's channels become the 1 or 2 working channels."""

    layout: str
    matrix: FloatAudio | None  # (channels, 2), None when no mixing is needed

    @classmethod
    def for_channels(cls, channels: int) -> _Downmix:
        if channels <= 2:
            return cls("", None)
        g = 1.0 / math.sqrt(2.0)  # -3 dB, as in ITU-R BS.775 downmixing
        # Weights per channel as (left, right), in the WAVE default channel order.
        layouts: dict[int, tuple[str, list[tuple[float, float]]]] = {
            3: ("L, R, C", [(1, 0), (0, 1), (g, g)]),
            4: ("quad: L, R, Ls, Rs", [(1, 0), (0, 1), (g, 0), (0, g)]),
            5: ("5.0: L, R, C, Ls, Rs", [(1, 0), (0, 1), (g, g), (g, 0), (0, g)]),
            6: (
                "5.1: L, R, C, LFE, Ls, Rs; LFE left out",
                [(1, 0), (0, 1), (g, g), (0, 0), (g, 0), (0, g)],
            ),
            7: (
                "6.1: L, R, C, LFE, Cs, Ls, Rs; LFE left out",
                [(1, 0), (0, 1), (g, g), (0, 0), (g / 2, g / 2), (g, 0), (0, g)],
            ),
            8: (
                "7.1: L, R, C, LFE, Lb, Rb, Ls, Rs; LFE left out",
                [(1, 0), (0, 1), (g, g), (0, 0), (g, 0), (0, g), (g, 0), (0, g)],
            ),
        }
        if channels in layouts:
            layout, weights = layouts[channels]
        else:
            layout = "odd-numbered channels to the left, even-numbered to the right"
            per_side = (channels + 1) // 2
            weights = [
                (1 / per_side, 0.0) if i % 2 == 0 else (0.0, 1 / per_side) for i in range(channels)
            ]
        return cls(layout, np.asarray(weights, dtype=np.float32))

    def apply(self, block: FloatAudio) -> FloatAudio:
        """(n, channels) -> (n, 1 or 2)."""
        if self.matrix is None:
            return block
        return block @ self.matrix  # (n, C) @ (C, 2)


def _container_frames(p: Path, fmt: str, reported: int | None) -> int | None:
    """Frame count the container declares where libsndfile clamps it to what is present.

    libsndfile silently shortens a WAV or AIFF whose data chunk runs past the end of the file;
    the header still says how long it should be, which is how truncation shows.
    """
    declared: int | None = None
    try:
        if fmt in ("WAV", "WAVEX"):
            declared = _wav_declared_frames(p)
        elif fmt == "AIFF":
            declared = _aiff_declared_frames(p)
    except (OSError, struct.error):
        declared = None
    if declared is None:
        return reported
    return max(declared, reported or 0)


def _wav_declared_frames(p: Path) -> int | None:
    with p.open("rb") as f:
        layout = read_riff_layout(f)
        if layout is None:
            return None
        fmt_chunk, data = layout.find(b"fmt "), layout.find(b"data")
        if fmt_chunk is None or data is None or fmt_chunk.size < 14:
            return None
        f.seek(fmt_chunk.offset + 12)
        block_align = int(struct.unpack("<H", f.read(2))[0])
    # 0 and 0xFFFFFFFF are what streaming writers leave when they never came back to the header.
    if block_align == 0 or data.size in (0, 0xFFFFFFFF):
        return None
    return data.size // block_align


def _aiff_declared_frames(p: Path) -> int | None:
    with p.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
            return None
        size = f.seek(0, os.SEEK_END)
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, length = struct.unpack(">4sI", f.read(8))
            if chunk_id == b"COMM":
                return int(struct.unpack(">hI", f.read(6))[1])
            pos += 8 + length + (length & 1)
    return None


def _ogg_end_missing(p: Path) -> bool:
    """True when an Ogg file's last page is cut short or is not marked end-of-stream.

    libsndfile takes an Ogg file's length from the last page it finds, so a cut file looks
    complete to it; the page structure shows the cut. Walks the page headers only.
    """
    last_flags: int | None = None
    try:
        with p.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            pos = 0
            while pos < size:
                f.seek(pos)
                header = f.read(27)
                if len(header) < 27:
                    return True
                if header[:4] != b"OggS":
                    # Not a page boundary: damaged in the middle; the decoder reports that.
                    return False
                segments = f.read(header[26])
                if len(segments) < header[26]:
                    return True
                pos += 27 + header[26] + sum(segments)
                if pos > size:
                    return True
                last_flags = header[5]
    except OSError:
        return False
    # Flag 0x04 marks the last page of a logical stream.
    return last_flags is not None and not last_flags & 0x04


def _default_memory_limit() -> int | None:
    available = _available_memory()
    return None if available is None else int(available * MEMORY_FRACTION)


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux MemAvailable, else free pages), or None."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    return None


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


class ExportFormat(enum.StrEnum):
    """The formats export can write."""

    WAV_16 = "wav16"
    WAV_24 = "wav24"
    WAV_FLOAT = "wav32f"
    FLAC_16 = "flac16"
    FLAC_24 = "flac24"
    OGG_VORBIS = "ogg"
    MP3 = "mp3"

    @property
    def container(self) -> str:
        """libsndfile's major format name."""
        return _FORMAT_SPECS[self][0]

    @property
    def subtype(self) -> str:
        """libsndfile's subtype name."""
        return _FORMAT_SPECS[self][1]

    @property
    def extension(self) -> str:
        """File name extension, without the dot."""
        return _FORMAT_SPECS[self][2]

    @property
    def bits(self) -> int | None:
        """Bits per sample of a PCM format (32 for float WAV); None for lossy formats."""
        return _FORMAT_SPECS[self][3]

    @property
    def label(self) -> str:
        """A name for menus ("WAV 24-bit")."""
        return _FORMAT_SPECS[self][4]


_FORMAT_SPECS: dict[str, tuple[str, str, str, int | None, str]] = {
    "wav16": ("WAV", "PCM_16", "wav", 16, "WAV 16-bit"),
    "wav24": ("WAV", "PCM_24", "wav", 24, "WAV 24-bit"),
    "wav32f": ("WAV", "FLOAT", "wav", 32, "WAV 32-bit float"),
    "flac16": ("FLAC", "PCM_16", "flac", 16, "FLAC 16-bit"),
    "flac24": ("FLAC", "PCM_24", "flac", 24, "FLAC 24-bit"),
    "ogg": ("OGG", "VORBIS", "ogg", None, "OGG Vorbis"),
    "mp3": ("MP3", "MPEG_LAYER_III", "mp3", None, "MP3"),
}


@dataclass(frozen=True, slots=True)
class ExportTags:
    """Metadata written into exported files.

    ``prompt``, ``seed`` and ``model`` go into the comment (one ``key: value`` line each);
    the title defaults to the prompt.
    """

    title: str = ""
    artist: str = ""
    prompt: str = ""
    seed: int | None = None
    model: str = ""
    comment: str = ""

    def comment_text(self) -> str:
        """The comment as written: prompt, seed and model lines, then the free comment."""
        lines = []
        if self.prompt:
            lines.append(f"prompt: {self.prompt}")
        if self.seed is not None:
            lines.append(f"seed: {self.seed}")
        if self.model:
            lines.append(f"model: {self.model}")
        if self.comment:
            lines.append(self.comment)
        return "\n".join(lines)

    def title_text(self) -> str:
        """The title as written (the prompt, shortened, when no title was given)."""
        if self.title:
            return self.title
        return self.prompt if len(self.prompt) <= 120 else self.prompt[:119] + "…"


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How to write a file.

    Attributes:
        format: Container and encoding.
        sample_rate: Rate of the file; None keeps the audio's rate (pass the source's rate
            to convert back to it).
        dither: Add TPDF dither when reducing to 16 bits.
        dither_seed: Seed of the dither noise (None: fresh noise each export).
        tags: Metadata.
        position_frame: Where the exported audio starts in the project, in frames at the
            audio's rate; written as the ``bext`` TimeReference of WAV files.
        compression_level: libsndfile's compression level 0..1 for FLAC/OGG/MP3 (None:
            libsndfile's default). For OGG Vorbis it is ``1 - quality``; for MP3, 0 is the
            highest bitrate (320 kbps constant, or VBR quality V0).
        bitrate_mode: MP3's "CONSTANT", "AVERAGE" or "VARIABLE" (None: libsndfile's default).
        measure_loudness: Write the integrated loudness into the ``bext`` chunk of WAV files
            (files longer than 15 minutes are marked "not measured").
    """

    format: ExportFormat = ExportFormat.WAV_24
    sample_rate: int | None = None
    dither: bool = True
    dither_seed: int | None = None
    tags: ExportTags = field(default_factory=ExportTags)
    position_frame: int = 0
    compression_level: float | None = None
    bitrate_mode: str | None = None
    measure_loudness: bool = True


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_audio` wrote.

    Attributes:
        path: The file.
        format: Its format.
        sample_rate: Its rate.
        frames: Its length in frames.
        channels: Its channel count.
        clipped_samples: Samples beyond full scale that had to be clipped (0 for float WAV).
        notices: Sentences for the user (clipping, rate conversion).
    """

    path: Path
    format: ExportFormat
    sample_rate: int
    frames: int
    channels: int
    clipped_samples: int
    notices: tuple[str, ...] = ()


def export_support(fmt: ExportFormat) -> str | None:
    """Whether this libsndfile can write ``fmt``.

    Returns:
        None when it can; otherwise a sentence saying why not and what to use instead.
    """
    if fmt.container not in sf.available_formats():
        return (
            f"{fmt.label} export is not available: this build of libsndfile cannot write "
            f"{fmt.container} files. Export as WAV or FLAC instead."
        )
    try:
        # Listing the format is not proof of an encoder (MP3 needs LAME): write a few frames.
        with sf.SoundFile(io.BytesIO(), "w", 44100, 2, fmt.subtype, format=fmt.container) as probe:
            probe.write(np.zeros((2304, 2), dtype=np.float32))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        return (
            f"{fmt.label} export is not available: libsndfile could not encode it "
            f"({_decoder_message(e)}). Export as WAV or FLAC instead."
        )
    return None


def available_export_formats() -> list[ExportFormat]:
    """The formats :func:`export_audio` can write with this libsndfile."""
    return [fmt for fmt in ExportFormat if export_support(fmt) is None]


def export_audio(
    path: str | os.PathLike[str],
    audio: npt.ArrayLike,
    sample_rate: int,
    options: ExportOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ExportResult:
    """Write audio to a file, atomically.

    Args:
        path: The target file; replaced only when the new file is complete.
        audio: (channels, frames) float samples (a mix, a selection, a stem...).
        sample_rate: Rate of ``audio`` in Hz.
        options: Format, rate, dither, tags and project position (defaults: WAV 24-bit).
        on_progress: Called with (frames written, total frames), in frames of ``audio``.
        cancel: Called before each block; returning True stops and removes the partial file.

    Returns:
        What was written.

    Raises:
        AudioFileError: The audio is empty or not finite, the format cannot be written, or
            writing failed (the target is then left as it was).
        Cancelled: ``cancel`` returned True (the target is left as it was).
    """
    opts = options if options is not None else ExportOptions()
    p = Path(path)
    x = _check_export_audio(p, audio)
    channels, frames = x.shape
    fmt = opts.format
    out_rate = opts.sample_rate if opts.sample_rate is not None else sample_rate
    if sample_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rate} and {out_rate}")
    if opts.position_frame < 0:
        raise ValueError(f"position_frame must be >= 0, got {opts.position_frame}")
    _check_target(p)
    reason = export_support(fmt)
    if reason is not None:
        raise AudioFileError(f"Cannot export '{p.name}': {reason}")
    if fmt is ExportFormat.MP3 and out_rate not in _MP3_RATES:
        raise AudioFileError(
            f"Cannot export '{p.name}': MP3 cannot store {out_rate} Hz audio. Export at 44100 "
            "or 48000 Hz, or choose WAV or FLAC."
        )
    if fmt.container == "WAV":
        data_bytes = (
            resampled_length(frames, sample_rate, out_rate) * channels * (fmt.bits or 32) // 8
        )
        if data_bytes > _WAV_MAX_DATA:
            raise AudioFileError(
                f"Cannot export '{p.name}': it would be larger than the 4 GB a WAV file can hold. "
                "Export as FLAC, or export a shorter range."
            )
    notices: list[str] = []
    if out_rate != sample_rate:
        notices.append(f"The sample rate was converted from {sample_rate} Hz to {out_rate} Hz.")

    tmp = _temp_path(p)
    tmp_bext: Path | None = None
    try:
        clipped, written = _write_blocks(
            tmp, p.name, x, sample_rate, out_rate, opts, on_progress, cancel
        )
        final = tmp
        if fmt.container == "WAV":
            tmp_bext = _temp_path(p)
            copy_with_bext(tmp, tmp_bext, _bext_for(x, sample_rate, out_rate, opts))
            final = tmp_bext
        _fsync(final)
        os.replace(final, p)
        _fsync_dir(p.parent)
    except (Cancelled, AudioFileError):
        raise
    except (OSError, sf.LibsndfileError, RuntimeError) as e:
        detail = getattr(e, "strerror", None) or _decoder_message(e)
        raise AudioFileError(
            f"Cannot export '{p}': writing failed ({detail}). Nothing was written under that "
            "name; check the free space and permissions of the folder and try again."
        ) from e
    finally:
        for t in (tmp, tmp_bext):
            if t is not None:
                with contextlib.suppress(FileNotFoundError):
                    t.unlink()
    if clipped:
        notices.append(
            f"{clipped} samples were beyond full scale and were clipped; lower the gain, or "
            "export as 32-bit float WAV to keep them."
        )
    if on_progress is not None:
        on_progress(frames, frames)
    return ExportResult(p, fmt, out_rate, written, channels, clipped, tuple(notices))


def export_stems(
    directory: str | os.PathLike[str],
    stems: Mapping[str, npt.ArrayLike],
    sample_rate: int,
    options: ExportOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> list[ExportResult]:
    """Write one file per stem, ``<directory>/<name>.<extension>``.

    Names are made safe for file systems (path separators and control characters become
    ``_``). Every stem gets the same options (so the same project position).

    Args:
        directory: An existing folder.
        stems: Stem name -> (channels, frames) audio.
        sample_rate: Rate of the stems in Hz.
        options: As for :func:`export_audio`.
        on_progress: Called with (frames done, total frames) over all stems.
        cancel: Checked per block; a cancelled export keeps the stems already finished.

    Returns:
        One result per stem, in the order given.

    Raises:
        AudioFileError: The folder is missing, two stems map to the same file name, or a
            stem cannot be written.
    """
    opts = options if options is not None else ExportOptions()
    d = Path(directory)
    if not d.is_dir():
        raise AudioFileError(
            f"Cannot export stems to '{d}': the folder does not exist. Choose a folder."
        )
    names: dict[str, str] = {}
    for name in stems:
        safe = _safe_name(name)
        if safe.lower() in names:
            raise AudioFileError(
                f"Cannot export stems: '{name}' and '{names[safe.lower()]}' would both be written "
                f"as '{safe}.{opts.format.extension}'. Rename one of them."
            )
        names[safe.lower()] = name
    arrays = {name: np.asarray(a) for name, a in stems.items()}
    total = sum(a.shape[-1] for a in arrays.values())
    results: list[ExportResult] = []
    done = 0
    for name, a in arrays.items():
        target = d / f"{_safe_name(name)}.{opts.format.extension}"

        def progress(n: int, _total: int, base: int = done) -> None:
            if on_progress is not None:
                on_progress(base + n, total)

        results.append(
            export_audio(target, a, sample_rate, opts, on_progress=progress, cancel=cancel)
        )
        done += a.shape[-1]
    return results


def slice_with_handles(
    audio: npt.ArrayLike, start_frame: int, end_frame: int, handle_frames: int
) -> tuple[npt.NDArray[np.floating], int]:
    """A region plus handles (extra audio each side, clamped to the buffer) for export.

    Args:
        audio: (channels, frames) buffer.
        start_frame: Region start.
        end_frame: Region end (exclusive).
        handle_frames: Frames to add before and after.

    Returns:
        ``(view, first_frame)``: the samples (a view, no copy) and the frame of ``audio`` they
        start at; pass ``first_frame`` plus the buffer's project offset as
        :attr:`ExportOptions.position_frame`.
    """
    a = np.asarray(audio)
    if a.ndim != 2:
        raise ValueError(f"audio must be (channels, frames), got {a.shape}")
    if not 0 <= start_frame < end_frame <= a.shape[1] or handle_frames < 0:
        raise ValueError(
            f"need 0 <= start < end <= {a.shape[1]} and handles >= 0, "
            f"got {start_frame}, {end_frame}, {handle_frames}"
        )
    lo = max(0, start_frame - handle_frames)
    hi = min(a.shape[1], end_frame + handle_frames)
    return a[:, lo:hi], lo


def _check_export_audio(p: Path, audio: npt.ArrayLike) -> npt.NDArray[np.floating]:
    # Only the shape here: samples are converted and checked block by block while writing,
    # so a long float64 mix is never copied whole.
    x = np.asarray(audio)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"audio must be a float (channels, frames) array, got {x.dtype} {x.shape}")
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise AudioFileError(
            f"Cannot export '{p.name}': there is no audio to write (the range is empty)."
        )
    return x


def _check_target(p: Path) -> None:
    if p.is_dir():
        raise AudioFileError(f"Cannot export to '{p}': it is a folder. Choose a file name.")
    if not p.parent.is_dir():
        raise AudioFileError(
            f"Cannot export '{p.name}': the folder '{p.parent}' does not exist. "
            "Choose another folder."
        )


def _temp_path(p: Path) -> Path:
    """A new, empty, hidden file next to ``p``.

    Created with mode 0o666 so the umask applies as for any new file (mkstemp would make the
    export private to its owner once renamed).
    """
    for _ in range(100):
        candidate = p.with_name(f".{p.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise AudioFileError(
                f"Cannot export '{p}': cannot write in '{p.parent}' ({e.strerror or e}). "
                "Check the folder's permissions, or choose another folder."
            ) from e
        os.close(fd)
        return candidate
    raise AudioFileError(
        f"Cannot export '{p}': cannot create a temporary file in '{p.parent}'. "
        "Remove old .part files there and try again."
    )


def _write_blocks(
    tmp: Path,
    name: str,
    x: npt.NDArray[np.floating],
    in_rate: int,
    out_rate: int,
    opts: ExportOptions,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
) -> tuple[int, int]:
    """Encode ``x`` (C, N) into ``tmp``; returns (clipped samples, frames written)."""
    fmt = opts.format
    channels, frames = x.shape
    resampler = StreamResampler(in_rate, out_rate, channels, "VHQ") if out_rate != in_rate else None
    quantise = _Quantiser(fmt, opts.dither, opts.dither_seed)
    written = 0
    with sf.SoundFile(
        str(tmp),
        "w",
        out_rate,
        channels,
        fmt.subtype,
        format=fmt.container,
        compression_level=opts.compression_level,
        bitrate_mode=opts.bitrate_mode,
    ) as out:
        _set_tags(out, opts.tags)
        for start in range(0, frames, BLOCK_FRAMES):
            if cancel is not None and cancel():
                raise Cancelled(f"Export of '{name}' was cancelled; no file was written.")
            block = np.asarray(x[:, start : start + BLOCK_FRAMES].T, dtype=np.float32)  # (n, C)
            if not np.isfinite(block).all():
                raise AudioFileError(
                    f"Cannot export '{name}': the audio contains invalid samples (NaN or "
                    "infinity). Undo the last processing step, or regenerate the region, and "
                    "try again."
                )
            if resampler is not None:
                block = resampler.process_interleaved(block)
            written += _write(out, quantise(block))
            if on_progress is not None:
                on_progress(min(start + BLOCK_FRAMES, frames), frames)
        if resampler is not None:
            written += _write(out, quantise(resampler.flush_interleaved()))
    return quantise.clipped, written


def _write(out: sf.SoundFile, block: npt.NDArray[np.generic]) -> int:
    if block.shape[0]:
        out.write(block)
    return int(block.shape[0])


class _Quantiser:
    """Float (n, C) blocks -> what the encoder is given, counting clipped samples."""

    def __init__(self, fmt: ExportFormat, dither: bool, seed: int | None) -> None:
        self._fmt = fmt
        self._rng = np.random.default_rng(seed) if dither and fmt.bits == 16 else None
        self.clipped = 0

    def __call__(self, block: FloatAudio) -> npt.NDArray[np.generic]:
        fmt = self._fmt
        if fmt is ExportFormat.WAV_FLOAT:
            return np.ascontiguousarray(block, dtype=np.float32)
        self.clipped += int(np.count_nonzero(np.abs(block) > 1.0))
        if fmt.bits is None:  # lossy encoders take float in [-1, 1]
            return np.clip(block, -1.0, 1.0).astype(np.float32)
        scale = float(1 << (fmt.bits - 1))  # full scale as libsndfile reads it back
        y = block.astype(np.float64) * scale
        if self._rng is not None:
            # TPDF: the difference of two uniform variables spans +/- 1 LSB, triangular.
            y += self._rng.random(y.shape) - self._rng.random(y.shape)
        q = np.clip(np.rint(y), -scale, scale - 1)
        if fmt.bits == 16:
            return q.astype(np.int16)
        # libsndfile stores the top 24 bits of an int32 in a 24-bit file.
        return (q.astype(np.int32) << 8).astype(np.int32)


def _set_tags(out: sf.SoundFile, tags: ExportTags) -> None:
    values = {
        "title": tags.title_text(),
        "artist": tags.artist,
        "comment": tags.comment_text(),
        "software": f"SA3 Studio {__version__}",
        "date": _dt.date.today().isoformat(),
    }
    for key, value in values.items():
        if not value:
            continue
        try:
            setattr(out, key, value)
        except (sf.LibsndfileError, RuntimeError) as e:
            # Some containers have no slot for some tags (MP3 has no "software"); not fatal.
            log.info("tag %s not written to %s: %s", key, out.name, e)


def _bext_for(
    x: npt.NDArray[np.floating], in_rate: int, out_rate: int, opts: ExportOptions
) -> BextChunk:
    position = opts.position_frame
    # TimeReference counts samples at the file's own rate.
    time_reference = position * out_rate // in_rate if out_rate != in_rate else position
    loudness: float | None = None
    # The loudness meter works on a float64 copy of the whole signal: past 15 minutes that
    # costs gigabytes, so long files get "not measured" (0x7FFF) instead.
    short_enough = x.shape[1] <= _LOUDNESS_MAX_S * in_rate
    if opts.measure_loudness and x.shape[0] <= 5 and short_enough:
        from sa3_studio.audio.loudness import integrated_loudness

        loudness = integrated_loudness(x, in_rate)
    now = _dt.datetime.now()
    tags = opts.tags
    bits = opts.format.bits
    mode = {1: "mono", 2: "stereo"}.get(x.shape[0], "multichannel")
    encoding = "PCM" if opts.format is not ExportFormat.WAV_FLOAT else "PCM;FLOAT"
    return BextChunk(
        description=tags.title_text(),
        originator="SA3 Studio",
        originator_reference=(f"seed {tags.seed}" if tags.seed is not None else "")[:32],
        origination_date=now.strftime("%Y-%m-%d"),
        origination_time=now.strftime("%H:%M:%S"),
        time_reference=time_reference,
        loudness_value=loudness,
        coding_history=f"A={encoding},F={out_rate},W={bits},M={mode},T=SA3 Studio {__version__}",
    )


def _safe_name(name: str) -> str:
    safe = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", name).strip().strip(".")
    return safe or "stem"


def _fsync(p: Path) -> None:
    with p.open("rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(d: Path) -> None:
    # Makes the rename durable on POSIX; directories cannot be opened this way on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.1f} seconds"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
