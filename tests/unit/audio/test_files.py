"""Import and export of audio files: every format, every bad input, atomic writes."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from sa3_studio.audio.bext import read_bext, read_riff_layout
from sa3_studio.audio.files import (
    DEFAULT_SAMPLE_RATE,
    ExportFormat,
    ExportOptions,
    ExportTags,
    available_export_formats,
    export_audio,
    export_stems,
    export_support,
    import_audio,
    import_memory_need,
    slice_with_handles,
)
from sa3_studio.audio.loudness import integrated_loudness
from sa3_studio.audio.resample import resampled_length
from sa3_studio.errors import AudioFileError, Cancelled

SR = DEFAULT_SAMPLE_RATE


def tone(
    seconds: float = 1.0,
    rate: int = SR,
    freqs: tuple[float, ...] = (440.0, 660.0),
    amp: float = 0.5,
) -> npt.NDArray[np.float32]:
    """(channels, frames): one sine per channel, distinct so channel swaps show."""
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([amp * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


def write_source(
    path: Path, audio: npt.NDArray[np.float32], rate: int, fmt: str, subtype: str
) -> Path:
    """Write a test input file with libsndfile directly (not through our exporter)."""
    sf.write(str(path), audio.T, rate, subtype=subtype, format=fmt)
    return path


def dominant_freq(x: npt.NDArray[np.floating], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])


def corr(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------- import


# (container, subtype, ext, max abs error after decoding; None: lossy, compare by correlation)
LOSSLESS = [
    ("WAV", "PCM_U8", "wav", 1 / 128),
    ("WAV", "PCM_16", "wav", 1 / 32768),
    ("WAV", "PCM_24", "wav", 1 / 2**23),
    ("WAV", "PCM_32", "wav", 1 / 2**31),
    ("WAV", "FLOAT", "wav", 0.0),
    ("FLAC", "PCM_16", "flac", 1 / 32768),
    ("FLAC", "PCM_24", "flac", 1 / 2**23),
    ("AIFF", "PCM_16", "aiff", 1 / 32768),
    ("AIFF", "PCM_24", "aiff", 1 / 2**23),
]


@pytest.mark.parametrize(("fmt", "subtype", "ext", "tol"), LOSSLESS)
def test_import_lossless_formats_match_the_source(
    tmp_path: Path, fmt: str, subtype: str, ext: str, tol: float
) -> None:
    src = tone(0.5)
    path = write_source(tmp_path / f"in.{ext}", src, SR, fmt, subtype)
    audio, info = import_audio(path)
    assert audio.dtype == np.float32
    assert audio.shape == src.shape
    assert audio.flags.c_contiguous
    assert not audio.flags.writeable
    np.testing.assert_allclose(audio, src, atol=tol * 1.01, rtol=0)
    assert (info.format, info.subtype) == (fmt, subtype)
    assert (info.original_rate, info.channels, info.sample_rate) == (SR, 2, SR)
    assert info.frames == src.shape[1]
    assert info.duration_s == pytest.approx(0.5)
    assert info.readable_s == pytest.approx(0.5)
    assert not info.truncated
    assert info.notices == ()
    assert info.path == path


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext", "rate"),
    [
        ("OGG", "VORBIS", "ogg", SR),
        ("OGG", "OPUS", "opus", 48000),
        ("MP3", "MPEG_LAYER_III", "mp3", SR),
    ],
)
def test_import_lossy_formats_keep_length_and_waveform(
    tmp_path: Path, fmt: str, subtype: str, ext: str, rate: int
) -> None:
    src = tone(1.0, rate)
    path = write_source(tmp_path / f"in.{ext}", src, rate, fmt, subtype)
    audio, info = import_audio(path)
    expected = resampled_length(src.shape[1], rate, SR)
    assert audio.shape == (2, expected)
    assert (info.format, info.subtype, info.original_rate) == (fmt, subtype, rate)
    assert not info.truncated
    ref = tone(1.0, SR)[:, :expected]
    # Codec delay is compensated by libsndfile; what remains is coding noise.
    middle = slice(SR // 10, expected - SR // 10)
    for ch in range(2):
        assert corr(audio[ch, middle], ref[ch, middle]) > 0.99


def test_import_mono_is_copied_to_both_channels(tmp_path: Path) -> None:
    src = tone(0.25, freqs=(440.0,))
    path = write_source(tmp_path / "mono.wav", src, SR, "WAV", "FLOAT")
    audio, info = import_audio(path)
    assert audio.shape == (2, src.shape[1])
    np.testing.assert_array_equal(audio[0], src[0])
    np.testing.assert_array_equal(audio[1], src[0])
    assert info.channels == 1
    assert any("mono" in n for n in info.notices)


def test_import_mono_16_bit_fast_path_matches_float_read(tmp_path: Path) -> None:
    src = tone(0.25, freqs=(440.0,))
    path = write_source(tmp_path / "mono16.wav", src, SR, "WAV", "PCM_16")
    audio, _ = import_audio(path, block_frames=1000)
    reference, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_array_equal(audio[0], reference)
    np.testing.assert_array_equal(audio[1], reference)


def test_import_51_is_downmixed_with_itu_weights_and_a_notice(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    src = (rng.standard_normal((6, 2000)) * 0.1).astype(np.float32)  # L R C LFE Ls Rs
    path = write_source(tmp_path / "surround.wav", src, SR, "WAV", "FLOAT")
    audio, info = import_audio(path)
    g = 1 / np.sqrt(2)
    left = src[0] + g * src[2] + g * src[4]
    right = src[1] + g * src[2] + g * src[5]
    np.testing.assert_allclose(audio[0], left, atol=1e-6)
    np.testing.assert_allclose(audio[1], right, atol=1e-6)
    assert info.channels == 6
    assert any("6 channels" in n and "downmixed" in n and "LFE" in n for n in info.notices)


@pytest.mark.parametrize("channels", [3, 4, 5, 7, 8, 11])
def test_import_any_channel_count_gives_stereo(tmp_path: Path, channels: int) -> None:
    src = np.full((channels, 500), 0.1, dtype=np.float32)
    path = write_source(tmp_path / f"c{channels}.wav", src, SR, "WAV", "FLOAT")
    audio, info = import_audio(path)
    assert audio.shape == (2, 500)
    # Every layout sends something to both sides and nothing is lost entirely.
    assert np.all(audio > 0.0)
    assert any(f"{channels} channels" in n for n in info.notices)


def test_import_float_file_with_nan_gets_silence_there_and_a_notice(tmp_path: Path) -> None:
    src = tone(0.1)
    src[0, 10] = np.nan
    src[1, 20:23] = np.inf
    path = write_source(tmp_path / "nan.wav", src, SR, "WAV", "FLOAT")
    audio, info = import_audio(path)
    assert np.isfinite(audio).all()
    assert audio[0, 10] == 0.0
    assert np.array_equal(audio[1, 20:23], np.zeros(3, np.float32))
    assert audio[0, 11] == src[0, 11]
    assert any(n.startswith("4 invalid samples") for n in info.notices)


def test_import_downmix_above_full_scale_says_so(tmp_path: Path) -> None:
    src = np.full((6, 500), 0.9, dtype=np.float32)
    path = write_source(tmp_path / "loud51.wav", src, SR, "WAV", "FLOAT")
    audio, info = import_audio(path)
    assert float(audio.max()) > 1.0  # float keeps it; the user is told
    assert any("above full scale" in n for n in info.notices)


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000])
def test_import_converts_any_rate_to_44100(tmp_path: Path, rate: int) -> None:
    src = tone(1.0, rate, freqs=(1000.0, 1000.0))
    path = write_source(tmp_path / f"r{rate}.wav", src, rate, "WAV", "FLOAT")
    audio, info = import_audio(path, block_frames=4096)
    assert audio.shape == (2, resampled_length(src.shape[1], rate, SR))
    assert info.original_rate == rate
    assert info.sample_rate == SR
    assert any(f"from {rate} Hz to 44100 Hz" in n for n in info.notices)
    middle = audio[0, SR // 4 : 3 * SR // 4]
    assert dominant_freq(middle, SR) == pytest.approx(1000.0, abs=2.0)
    expected = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(audio.shape[1]) / SR)
    np.testing.assert_allclose(middle, expected[SR // 4 : 3 * SR // 4], atol=2e-3)


def test_import_reports_progress_and_can_be_cancelled(tmp_path: Path) -> None:
    path = write_source(tmp_path / "p.wav", tone(1.0), SR, "WAV", "PCM_16")
    calls: list[tuple[int, int]] = []
    import_audio(path, block_frames=4096, on_progress=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (SR, SR)
    assert len(calls) >= SR // 4096

    checks = 0

    def cancel() -> bool:
        nonlocal checks
        checks += 1
        return checks > 3

    with pytest.raises(Cancelled, match=r"p\.wav"):
        import_audio(path, block_frames=4096, cancel=cancel)
    assert checks == 4  # checked once per block, stopped at once


# ---------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileError, match=r"nope\.wav.*does not exist"):
        import_audio(path)


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(AudioFileError, match=r"folder\.wav.*is a folder"):
        import_audio(path)


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioFileError, match=r"empty\.wav.*empty \(0 bytes\)"):
        import_audio(path)


def test_header_only_wav(tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    with sf.SoundFile(str(path), "w", SR, 2, "PCM_16"):
        pass  # libsndfile writes a complete header with an empty data chunk
    assert path.stat().st_size > 0
    with pytest.raises(AudioFileError, match=r"header\.wav.*contains no audio"):
        import_audio(path)


def test_header_declaring_data_that_is_missing(tmp_path: Path) -> None:
    good = write_source(tmp_path / "full.wav", tone(1.0), SR, "WAV", "PCM_16")
    raw = good.read_bytes()
    with good.open("rb") as f:
        layout = read_riff_layout(f)
    assert layout is not None
    data = layout.find(b"data")
    assert data is not None
    path = tmp_path / "nodata.wav"
    path.write_bytes(raw[: data.offset])  # the header promises 1 s; no sample follows
    with pytest.raises(AudioFileError, match=r"nodata\.wav.*no audio"):
        import_audio(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioFileError, match=r"noise\.wav.*format is not recognised"):
        import_audio(path)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("These are my notes for the session.\nBass louder in the chorus.\n" * 20)
    with pytest.raises(AudioFileError, match=r"notes\.wav.*text file, not audio"):
        import_audio(path)


def test_errors_are_sentences_that_say_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("hello")
    with pytest.raises(AudioFileError) as err:
        import_audio(path)
    message = str(err.value)
    assert message.endswith(".")
    assert "Choose" in message
    assert str(path) in message


def _cut(path: Path, fraction: float, out: Path) -> Path:
    raw = path.read_bytes()
    out.write_bytes(raw[: int(len(raw) * fraction)])
    return out


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("FLAC", "PCM_16", "flac"),
        ("FLAC", "PCM_24", "flac"),
        ("MP3", "MPEG_LAYER_III", "mp3"),
        ("WAV", "PCM_24", "wav"),
        ("AIFF", "PCM_16", "aiff"),
    ],
)
def test_truncated_file_imports_what_is_readable_and_says_so(
    tmp_path: Path, fmt: str, subtype: str, ext: str
) -> None:
    rng = np.random.default_rng(1)
    # Noise does not compress: cutting the bytes in half cuts the audio about in half.
    src = (rng.standard_normal((2, 4 * SR)) * 0.2).astype(np.float32)
    full = write_source(tmp_path / f"full.{ext}", src, SR, fmt, subtype)
    cut = _cut(full, 0.5, tmp_path / f"cut.{ext}")
    audio, info = import_audio(cut)
    assert info.truncated
    assert info.duration_s == pytest.approx(4.0, abs=0.01)
    assert 1.0 < info.readable_s < 3.0
    assert audio.shape == (2, round(info.readable_s * SR))
    note = next(n for n in info.notices if n.startswith("truncated"))
    assert f"truncated: {info.readable_s:.1f} of 4.0 seconds readable" in note
    # What was imported is the start of the real audio.
    reference, _ = import_audio(full)
    n = audio.shape[1] - SR // 10
    if fmt == "MP3":
        assert corr(audio[0, :n], reference[0, :n]) > 0.99
    else:
        np.testing.assert_array_equal(audio[:, :n], reference[:, :n])


@pytest.mark.parametrize(("subtype", "ext"), [("VORBIS", "ogg"), ("OPUS", "opus")])
def test_truncated_ogg_is_marked_although_its_length_is_unknown(
    tmp_path: Path, subtype: str, ext: str
) -> None:
    rng = np.random.default_rng(2)
    src = (rng.standard_normal((2, 4 * 48000)) * 0.2).astype(np.float32)
    full = write_source(tmp_path / f"full.{ext}", src, 48000, "OGG", subtype)
    _, complete = import_audio(full)
    assert not complete.truncated
    audio, info = import_audio(_cut(full, 0.5, tmp_path / f"cut.{ext}"))
    assert info.truncated
    assert 0 < audio.shape[1] < 3 * SR
    assert any(n.startswith(f"truncated: {info.readable_s:.1f} seconds") for n in info.notices)


def test_file_too_long_for_the_memory_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = write_source(tmp_path / "long.wav", tone(2.0), SR, "WAV", "PCM_16")
    progress: list[int] = []
    need = import_memory_need(2 * SR, 2, SR, SR)
    assert need > 2 * 4 * 2 * SR  # the decoded blocks count too, not only the result
    with pytest.raises(AudioFileError, match=r"long\.wav.*memory.*Split the file") as err:
        import_audio(path, max_bytes=need - 1, on_progress=lambda d, t: progress.append(d))
    assert "2.0 seconds" in str(err.value)
    assert progress == []  # refused from the header, nothing decoded
    audio, _ = import_audio(path, max_bytes=need)
    assert audio.shape == (2, 2 * SR)


def test_memory_estimate_uses_the_output_rate(tmp_path: Path) -> None:
    path = write_source(tmp_path / "8k.wav", tone(1.0, 8000), 8000, "WAV", "PCM_16")
    with pytest.raises(AudioFileError, match="memory"):
        import_audio(path, max_bytes=2 * 4 * SR - 1)  # 1 s at 8 kHz becomes 44100 frames


@pytest.fixture
def unreadable_file() -> Iterator[Path]:
    """A valid WAV nobody may read, in a folder everybody may enter."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    path = write_source(folder / "locked.wav", tone(0.1), SR, "WAV", "PCM_16")
    path.chmod(0)
    try:
        yield path
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        shutil.rmtree(folder)


def _import_error_as_nobody(path: Path) -> str:
    """Run import_audio in a child process that has dropped root (root reads anything)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        message = b"no error"
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            try:
                import_audio(path)
            except AudioFileError as e:
                message = str(e).encode()
            os.write(write_end, message)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out.decode()


def test_unreadable_permissions(unreadable_file: Path) -> None:
    if os.geteuid() == 0:
        message = _import_error_as_nobody(unreadable_file)
    else:
        with pytest.raises(AudioFileError) as err:
            import_audio(unreadable_file)
        message = str(err.value)
    assert "locked.wav" in message
    assert "permission denied" in message


# ---------------------------------------------------------------------------------- export

LOSSLESS_EXPORTS = [
    (ExportFormat.WAV_16, 1.5 / 32768),  # TPDF dither: error within +/- 1.5 LSB
    (ExportFormat.WAV_24, 0.5 / 2**23),
    (ExportFormat.WAV_FLOAT, 0.0),
    (ExportFormat.FLAC_16, 1.5 / 32768),
    (ExportFormat.FLAC_24, 0.5 / 2**23),
]


@pytest.mark.parametrize(("fmt", "tol"), LOSSLESS_EXPORTS)
def test_export_round_trip_lossless(tmp_path: Path, fmt: ExportFormat, tol: float) -> None:
    src = tone(0.5)
    path = tmp_path / f"out.{fmt.extension}"
    result = export_audio(path, src, SR, ExportOptions(format=fmt, dither_seed=1))
    assert result.path == path
    assert (result.frames, result.channels, result.sample_rate) == (src.shape[1], 2, SR)
    info = sf.info(str(path))
    assert (info.format, info.subtype) == (fmt.container, fmt.subtype)
    back, _ = import_audio(path)
    np.testing.assert_allclose(back, src, atol=tol * 1.0001, rtol=0)


@pytest.mark.parametrize("fmt", [ExportFormat.OGG_VORBIS, ExportFormat.MP3])
def test_export_round_trip_lossy(tmp_path: Path, fmt: ExportFormat) -> None:
    if fmt is ExportFormat.MP3:
        # This libsndfile encodes MP3; a build without LAME must say so (tested below).
        assert export_support(fmt) is None
    src = tone(1.0)
    path = tmp_path / f"out.{fmt.extension}"
    export_audio(path, src, SR, ExportOptions(format=fmt))
    back, info = import_audio(path)
    assert back.shape == src.shape
    assert info.format == fmt.container
    middle = slice(SR // 10, SR - SR // 10)
    for ch in range(2):
        assert corr(back[ch, middle], src[ch, middle]) > 0.99


def test_export_support_lists_the_formats_and_explains_a_missing_one() -> None:
    formats = available_export_formats()
    assert ExportFormat.WAV_24 in formats
    assert ExportFormat.FLAC_16 in formats
    for fmt in ExportFormat:
        reason = export_support(fmt)
        assert (reason is None) == (fmt in formats)


def test_export_16_bit_dither_is_tpdf_and_reproducible(tmp_path: Path) -> None:
    # A constant between two 16-bit steps: without dither it would quantise to one value.
    level = 0.25 + 0.3 / 32768
    src = np.full((2, 20000), level, dtype=np.float32)
    a = export_audio(tmp_path / "a.wav", src, SR, ExportOptions(ExportFormat.WAV_16, dither_seed=7))
    b = export_audio(tmp_path / "b.wav", src, SR, ExportOptions(ExportFormat.WAV_16, dither_seed=7))
    plain = export_audio(
        tmp_path / "c.wav", src, SR, ExportOptions(ExportFormat.WAV_16, dither=False)
    )
    qa, _ = sf.read(str(a.path), dtype="int16")
    qb, _ = sf.read(str(b.path), dtype="int16")
    qc, _ = sf.read(str(plain.path), dtype="int16")
    np.testing.assert_array_equal(qa, qb)
    assert set(np.unique(qc)) == {8192}
    error = qa.astype(np.float64) - level * 32768  # in LSB
    assert set(np.unique(qa)) <= {8191, 8192, 8193}
    assert abs(float(error.mean())) < 0.02  # dither removes the quantisation bias
    # TPDF (+/- 1 LSB triangular) added to a 0.3 LSB offset: rounding noise power is
    # 1/12 + 1/6 = 0.25 LSB^2 at any offset, the signature of TPDF.
    assert float(error.var()) == pytest.approx(0.25, rel=0.05)


def test_export_24_bit_clips_and_counts_float_keeps(tmp_path: Path) -> None:
    src = tone(0.1, amp=1.5)
    over = int(np.count_nonzero(np.abs(src) > 1.0))
    clipped = export_audio(tmp_path / "c.wav", src, SR, ExportOptions(ExportFormat.WAV_24))
    assert clipped.clipped_samples == over
    assert any("clipped" in n for n in clipped.notices)
    back, _ = import_audio(clipped.path)
    assert float(np.abs(back).max()) <= 1.0
    kept = export_audio(tmp_path / "f.wav", src, SR, ExportOptions(ExportFormat.WAV_FLOAT))
    assert kept.clipped_samples == 0
    back, _ = import_audio(kept.path)
    np.testing.assert_array_equal(back, src)


def test_export_converts_back_to_the_source_rate(tmp_path: Path) -> None:
    src = tone(1.0, freqs=(1000.0, 1000.0))
    result = export_audio(
        tmp_path / "48k.flac", src, SR, ExportOptions(ExportFormat.FLAC_24, sample_rate=48000)
    )
    assert result.sample_rate == 48000
    assert result.frames == resampled_length(SR, SR, 48000)
    back, _ = sf.read(str(result.path), dtype="float32")
    assert sf.info(str(result.path)).samplerate == 48000
    assert back.shape == (48000, 2)
    assert dominant_freq(back[12000:36000, 0], 48000) == pytest.approx(1000.0, abs=2.0)
    assert any("from 44100 Hz to 48000 Hz" in n for n in result.notices)


def test_export_tags_carry_prompt_seed_and_model(tmp_path: Path) -> None:
    tags = ExportTags(prompt="warm analog pad", seed=1234, model="sa3-medium", artist="Me")
    for fmt in (ExportFormat.WAV_24, ExportFormat.FLAC_16, ExportFormat.OGG_VORBIS):
        path = tmp_path / f"tagged.{fmt.extension}"
        export_audio(path, tone(0.5), SR, ExportOptions(format=fmt, tags=tags))
        with sf.SoundFile(str(path)) as f:
            meta = f.copy_metadata()
        assert meta["title"] == "warm analog pad"
        assert meta["artist"] == "Me"
        assert meta["comment"] == "prompt: warm analog pad\nseed: 1234\nmodel: sa3-medium"
        assert meta["software"].startswith("SA3 Studio")
    mp3 = tmp_path / "tagged.mp3"
    export_audio(mp3, tone(0.5), SR, ExportOptions(format=ExportFormat.MP3, tags=tags))
    with sf.SoundFile(str(mp3)) as f:
        assert f.copy_metadata()["title"] == "warm analog pad"


def test_export_wav_carries_bext_at_the_project_position(tmp_path: Path) -> None:
    path = tmp_path / "region.wav"
    options = ExportOptions(
        ExportFormat.WAV_24, tags=ExportTags(prompt="drum fill", seed=9), position_frame=5 * SR
    )
    export_audio(path, tone(1.0), SR, options)
    bext = read_bext(path)
    assert bext is not None
    assert bext.time_reference == 5 * SR
    assert bext.description == "drum fill"
    assert bext.originator == "SA3 Studio"
    assert bext.originator_reference == "seed 9"
    assert bext.loudness_value == round(integrated_loudness(tone(1.0), SR) or 0.0, 2)
    assert "F=44100,W=24,M=stereo" in bext.coding_history
    with path.open("rb") as f:
        layout = read_riff_layout(f)
    assert layout is not None
    ids = [c.chunk_id for c in layout.chunks]
    assert ids.index(b"bext") == ids.index(b"data") - 1
    # At another rate the time reference counts that rate's samples.
    export_audio(
        path,
        tone(1.0),
        SR,
        ExportOptions(ExportFormat.WAV_16, sample_rate=48000, position_frame=SR),
    )
    moved = read_bext(path)
    assert moved is not None
    assert moved.time_reference == 48000


def test_export_is_atomic_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "mix.wav"
    path.write_bytes(b"the user's previous export")
    checks = 0

    def cancel_at_third_block() -> bool:
        nonlocal checks
        checks += 1
        return checks > 2

    with pytest.raises(Cancelled, match=r"mix\.wav"):
        export_audio(path, tone(5.0), SR, cancel=cancel_at_third_block)
    assert checks == 3
    assert path.read_bytes() == b"the user's previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mix.wav"]


def test_exported_file_gets_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        result = export_audio(
            tmp_path / "shared.flac", tone(0.1), SR, ExportOptions(ExportFormat.FLAC_16)
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o644


def test_export_failure_leaves_no_half_file(tmp_path: Path) -> None:
    path = tmp_path / "mix.mp3"
    with pytest.raises(AudioFileError, match=r"mix\.mp3.*MP3 cannot store 96000 Hz"):
        export_audio(path, tone(0.2), SR, ExportOptions(ExportFormat.MP3, sample_rate=96000))
    assert list(tmp_path.iterdir()) == []


def test_export_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    frames = 3 * 65536 + 100
    export_audio(
        tmp_path / "p.flac",
        np.zeros((2, frames), np.float32),
        SR,
        ExportOptions(ExportFormat.FLAC_16),
        on_progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (frames, frames)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) >= 4


@pytest.mark.parametrize(
    ("audio", "pattern"),
    [
        (np.zeros((2, 0), np.float32), "no audio to write"),
        (np.full((2, 10), np.nan, np.float32), "NaN or infinity"),
        (np.concatenate([np.zeros((2, 70_000)), np.full((2, 5), np.inf)], axis=1), "NaN or inf"),
    ],
)
def test_export_bad_audio(tmp_path: Path, audio: npt.NDArray[np.float32], pattern: str) -> None:
    with pytest.raises(AudioFileError, match=pattern):
        export_audio(tmp_path / "x.wav", audio, SR)
    assert list(tmp_path.iterdir()) == []


def test_export_wav_over_4_gb_is_refused_before_writing(tmp_path: Path) -> None:
    # A zero-stride view: 2**29 float frames (4 GB as 32-bit stereo) without the memory.
    huge = np.broadcast_to(np.float32(0.0), (2, 2**29))
    with pytest.raises(AudioFileError, match=r"huge\.wav.*4 GB a WAV file can hold.*FLAC"):
        export_audio(tmp_path / "huge.wav", huge, SR, ExportOptions(ExportFormat.WAV_FLOAT))
    assert list(tmp_path.iterdir()) == []


def test_export_float64_input_is_converted(tmp_path: Path) -> None:
    src = tone(0.2).astype(np.float64)
    result = export_audio(tmp_path / "d.wav", src, SR, ExportOptions(ExportFormat.WAV_FLOAT))
    back, _ = import_audio(result.path)
    np.testing.assert_array_equal(back, src.astype(np.float32))


def test_export_to_missing_folder_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="does not exist"):
        export_audio(tmp_path / "missing" / "x.wav", tone(0.1), SR)
    with pytest.raises(AudioFileError, match="is a folder"):
        export_audio(tmp_path, tone(0.1), SR)


def test_export_mono_stem(tmp_path: Path) -> None:
    mono = tone(0.2, freqs=(300.0,))
    result = export_audio(tmp_path / "m.wav", mono, SR, ExportOptions(ExportFormat.WAV_FLOAT))
    assert result.channels == 1
    assert sf.info(str(result.path)).channels == 1
    bext = read_bext(result.path)
    assert bext is not None
    assert "M=mono" in bext.coding_history


def test_export_stems(tmp_path: Path) -> None:
    stems = {"drums": tone(0.2), "bass/low": tone(0.3)}
    results = export_stems(
        tmp_path, stems, SR, ExportOptions(ExportFormat.FLAC_24, position_frame=100)
    )
    assert [r.path.name for r in results] == ["drums.flac", "bass_low.flac"]
    assert [r.frames for r in results] == [round(0.2 * SR), round(0.3 * SR)]
    with pytest.raises(AudioFileError, match="Rename one"):
        export_stems(tmp_path, {"a/b": tone(0.1), "a:b": tone(0.1)}, SR)


def test_slice_with_handles_clamps_to_the_buffer() -> None:
    audio = np.arange(2 * 100, dtype=np.float32).reshape(2, 100)
    view, first = slice_with_handles(audio, 10, 20, 5)
    assert first == 5
    np.testing.assert_array_equal(view, audio[:, 5:25])
    view, first = slice_with_handles(audio, 2, 98, 5)
    assert first == 0
    assert view.shape == (2, 100)
    with pytest.raises(ValueError, match="start < end"):
        slice_with_handles(audio, 20, 10, 0)


def test_riff_size_of_an_exported_wav_is_consistent(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    export_audio(
        path, tone(0.3), SR, ExportOptions(ExportFormat.WAV_16, tags=ExportTags(prompt="odd"))
    )
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8


def _wav_claiming_rate(path: Path, rate: int, seconds: float = 2.0) -> Path:
    """A 16-bit stereo WAV written at 44.1 kHz whose header then claims ``rate`` Hz."""
    write_source(path, tone(seconds), SR, "WAV", "PCM_16")
    raw = bytearray(path.read_bytes())
    fmt = raw.index(b"fmt ")
    struct.pack_into("<II", raw, fmt + 12, rate, rate * 4)  # sample rate, byte rate
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("rate", [1, 2, 3, 999, 768_001, 4_000_000])
def test_a_header_with_an_absurd_rate_is_a_clear_error(tmp_path: Path, rate: int) -> None:
    bad = _wav_claiming_rate(tmp_path / f"claims-{rate}.wav", rate, seconds=1.0)
    assert sf.info(str(bad)).samplerate == rate  # the decoder believes the header
    with pytest.raises(AudioFileError, match=rf"{rate} Hz, which is not an audio rate") as info:
        import_audio(bad)
    assert f"claims-{rate}.wav" in str(info.value)


@pytest.mark.parametrize("rate", [1000, 768_000])
def test_the_extreme_accepted_rates_import(tmp_path: Path, rate: int) -> None:
    ok = _wav_claiming_rate(tmp_path / f"edge-{rate}.wav", rate, seconds=0.05)
    frames = sf.info(str(ok)).frames
    audio, info = import_audio(ok)
    assert info.original_rate == rate
    assert audio.shape == (2, resampled_length(frames, rate, SR))


def test_the_memory_check_counts_the_working_blocks(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(str(path), tone(0.01, rate=48000), 48000, subtype="PCM_16")
    out_bytes = 2 * 4 * resampled_length(sf.info(str(path)).frames, 48000, SR)
    # Enough for the result alone, not for the result and the blocks decoded on the way.
    with pytest.raises(AudioFileError, match="memory"):
        import_audio(path, max_bytes=out_bytes + 1024)


def test_random_bytes_named_mp3_get_a_sensible_message(tmp_path: Path) -> None:
    junk = tmp_path / "song.mp3"
    junk.write_bytes(np.random.default_rng(9).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioFileError) as info:
        import_audio(junk)
    message = str(info.value)
    assert "song.mp3" in message
    assert "no MP3 audio could be found in it" in message
    assert "pipe" not in message
    assert "does not exist" not in message
