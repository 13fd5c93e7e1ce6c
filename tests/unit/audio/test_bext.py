"""The Broadcast Wave bext chunk: byte layout, insertion into libsndfile WAVs, parse-back."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa3_studio.audio.bext import (
    BEXT_FIXED_SIZE,
    LOUDNESS_UNKNOWN,
    BextChunk,
    copy_with_bext,
    read_bext,
    read_riff_layout,
)
from sa3_studio.errors import AudioFileError


def make_wav(path: Path, subtype: str = "PCM_24", frames: int = 1001) -> np.ndarray:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (frames, 2)).astype(np.float32)
    with sf.SoundFile(str(path), "w", 44100, 2, subtype, format="WAV") as f:
        f.title = "a title"  # a LIST chunk, so more than fmt and data must survive
        f.write(audio)
    return audio


def test_fixed_layout_offsets() -> None:
    chunk = BextChunk(
        description="D",
        originator="O",
        originator_reference="R",
        origination_date="2024-05-06",
        origination_time="07:08:09",
        time_reference=(3 << 32) + 5,
        loudness_value=-23.0,
        max_true_peak_level=-1.5,
        coding_history="A=PCM,F=44100,W=24,M=stereo,T=test",
    )
    raw = chunk.to_bytes()
    assert raw[0:1] == b"D"
    assert raw[1:256] == b"\0" * 255
    assert raw[256:257] == b"O"
    assert raw[288:289] == b"R"
    assert raw[320:330] == b"2024-05-06"
    assert raw[330:338] == b"07:08:09"
    assert struct.unpack_from("<II", raw, 338) == (5, 3)  # TimeReference low, high
    assert struct.unpack_from("<H", raw, 346)[0] == 2  # version
    assert raw[348:412] == b"\0" * 64  # UMID
    loud = struct.unpack_from("<5h", raw, 412)
    assert loud == (-2300, LOUDNESS_UNKNOWN, -150, LOUDNESS_UNKNOWN, LOUDNESS_UNKNOWN)
    assert raw[422:602] == b"\0" * 180
    assert raw[BEXT_FIXED_SIZE:] == b"A=PCM,F=44100,W=24,M=stereo,T=test\r\n"


def test_round_trip_of_every_field() -> None:
    chunk = BextChunk(
        description="x" * 300,  # longer than its field: cut to 256
        originator="SA3 Studio",
        originator_reference="seed 42",
        origination_date="2025-01-02",
        origination_time="03:04:05",
        time_reference=2**40 + 12345,
        umid=b"\x01\x02",
        loudness_value=-14.25,
        loudness_range=7.5,
        max_true_peak_level=-0.99,
        max_momentary_loudness=-9.0,
        max_short_term_loudness=-11.0,
        coding_history="A=PCM,F=48000\r\n",
    )
    back = BextChunk.from_bytes(chunk.to_bytes())
    assert back.description == "x" * 256
    assert back.time_reference == chunk.time_reference
    assert back.umid == b"\x01\x02"
    assert (back.loudness_value, back.loudness_range, back.max_true_peak_level) == (
        -14.25,
        7.5,
        -0.99,
    )
    assert back.coding_history == "A=PCM,F=48000\r\n"
    assert back.originator_reference == "seed 42"


def test_silence_loudness_is_stored_as_unknown() -> None:
    back = BextChunk.from_bytes(BextChunk(loudness_value=float("-inf")).to_bytes())
    assert back.loudness_value is None


def test_non_ascii_text_is_replaced_not_fatal() -> None:
    back = BextChunk.from_bytes(BextChunk(description="café – pad").to_bytes())
    assert back.description == "caf? ? pad"


def test_invalid_fields() -> None:
    with pytest.raises(ValueError, match="64 bits"):
        BextChunk(time_reference=-1)
    with pytest.raises(ValueError, match="64 bytes"):
        BextChunk(umid=b"\0" * 65)
    with pytest.raises(AudioFileError, match="shorter than the 602 bytes"):
        BextChunk.from_bytes(b"\0" * 100)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
@pytest.mark.parametrize("history", ["", "odd"])  # odd payload length needs a pad byte
def test_insert_into_a_libsndfile_wav_and_parse_back(
    tmp_path: Path, subtype: str, history: str
) -> None:
    src, dst = tmp_path / "plain.wav", tmp_path / "bwf.wav"
    audio = make_wav(src, subtype)
    assert read_bext(src) is None
    chunk = BextChunk(description="region 1", time_reference=441000, coding_history=history)
    copy_with_bext(src, dst, chunk)

    raw = dst.read_bytes()
    assert raw[:4] == b"RIFF"
    assert raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8  # RIFF size fixed
    with dst.open("rb") as f:
        layout = read_riff_layout(f)
    assert layout is not None
    ids = [c.chunk_id for c in layout.chunks]
    assert ids.index(b"bext") == ids.index(b"data") - 1
    assert b"LIST" in ids  # the tags survived
    assert layout.chunks[-1].end == len(raw)

    back = read_bext(dst)
    assert back is not None
    assert back.description == "region 1"
    assert back.time_reference == 441000
    # Other readers still see the same audio and tags.
    data, rate = sf.read(str(dst), dtype="float32")
    expected, _ = sf.read(str(src), dtype="float32")
    assert rate == 44100
    np.testing.assert_array_equal(data, expected)
    assert data.shape == audio.shape
    with sf.SoundFile(str(dst)) as f:
        assert f.title == "a title"


def test_existing_bext_is_replaced(tmp_path: Path) -> None:
    src, mid, dst = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    make_wav(src)
    copy_with_bext(src, mid, BextChunk(time_reference=1))
    copy_with_bext(mid, dst, BextChunk(time_reference=2))
    with dst.open("rb") as f:
        layout = read_riff_layout(f)
    assert layout is not None
    assert [c.chunk_id for c in layout.chunks].count(b"bext") == 1
    back = read_bext(dst)
    assert back is not None
    assert back.time_reference == 2


def test_not_a_wav(tmp_path: Path) -> None:
    flac = tmp_path / "x.flac"
    sf.write(str(flac), np.zeros((100, 2), np.float32), 44100, format="FLAC")
    with pytest.raises(AudioFileError, match="not a WAV file"):
        read_bext(flac)
    with pytest.raises(AudioFileError, match="not a WAV file"):
        copy_with_bext(flac, tmp_path / "y.wav", BextChunk())


def test_truncated_wav_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    make_wav(src, frames=5000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(src.read_bytes()[:-3000])
    with pytest.raises(AudioFileError, match="truncated"):
        copy_with_bext(cut, tmp_path / "b.wav", BextChunk())


def test_missing_file_is_an_audio_file_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="Cannot read"):
        read_bext(tmp_path / "none.wav")
