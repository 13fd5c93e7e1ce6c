"""Resampling: lengths, quality (a sine stays a sine), streaming equals one shot."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sa3_studio.audio.resample import StreamResampler, resample, resampled_length


def sine(freq: float, rate: int, seconds: float, phase: float = 0.0) -> npt.NDArray[np.float64]:
    t = np.arange(round(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t + phase)


@pytest.mark.parametrize(
    ("frames", "src", "dst", "expected"),
    [
        (48000, 48000, 44100, 44100),
        (100001, 48000, 44100, 91876),  # 91875.92 rounds up
        (288007, 96000, 44100, 132303),  # 132303.22 rounds down
        (1000, 8000, 44100, 5513),  # 5512.5 rounds half up
        (0, 22050, 44100, 0),
    ],
)
def test_resampled_length(frames: int, src: int, dst: int, expected: int) -> None:
    assert resampled_length(frames, src, dst) == expected


@pytest.mark.parametrize(
    ("src", "dst"), [(48000, 44100), (22050, 44100), (96000, 44100), (44100, 48000)]
)
@pytest.mark.parametrize("quality", ["HQ", "VHQ"])
def test_a_sine_stays_a_sine(src: int, dst: int, quality: str) -> None:
    freq = 997.0
    x = np.stack([sine(freq, src, 0.5), sine(freq, src, 0.5, phase=1.0)]).astype(np.float32)
    y = resample(x, src, dst, quality=quality)  # type: ignore[arg-type]
    assert y.dtype == np.float32
    assert y.shape == (2, resampled_length(x.shape[1], src, dst))
    assert y.flags.c_contiguous
    expected = np.stack([sine(freq, dst, 0.5), sine(freq, dst, 0.5, phase=1.0)])[:, : y.shape[1]]
    middle = slice(dst // 20, y.shape[1] - dst // 20)  # away from the filter's edge effects
    error = np.abs(y[:, middle] - expected[:, middle]).max()
    assert error < (1e-4 if quality == "HQ" else 1e-5)


def test_one_dimensional_input_stays_one_dimensional() -> None:
    x = sine(440.0, 48000, 0.1).astype(np.float32)
    y = resample(x, 48000, 44100)
    assert y.shape == (resampled_length(x.size, 48000, 44100),)


def test_equal_rates_return_the_samples() -> None:
    x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    y = resample(x, 44100, 44100)
    np.testing.assert_array_equal(x, y)


def test_streaming_matches_one_shot() -> None:
    x = np.random.default_rng(1).standard_normal((2, 50_001)).astype(np.float32)
    whole = resample(x, 48000, 44100)
    stream = StreamResampler(48000, 44100, 2)
    pieces = [stream.process(x[:, i : i + 4096]) for i in range(0, x.shape[1], 4096)]
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_interleaved_stream_gives_the_same_samples() -> None:
    x = np.random.default_rng(2).standard_normal((2, 20_000)).astype(np.float32)
    a, b = StreamResampler(22050, 44100, 2), StreamResampler(22050, 44100, 2)
    first = np.concatenate([a.process(x[:, :7000]), a.process(x[:, 7000:]), a.flush()], axis=1)
    second = np.concatenate(
        [
            b.process_interleaved(x[:, :7000].T),
            b.process_interleaved(x[:, 7000:].T),
            b.flush_interleaved(),
        ]
    ).T
    np.testing.assert_array_equal(first, second)
    assert first.shape[1] == resampled_length(20_000, 22050, 44100)
    with pytest.raises(RuntimeError, match="already flushed"):
        a.process(x[:, :10])


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((44100, 0), "positive"),
        ((-1, 44100), "positive"),
    ],
)
def test_bad_rates(args: tuple[int, int], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        resample(np.zeros((2, 10), np.float32), *args)


def test_bad_quality_and_shape() -> None:
    with pytest.raises(ValueError, match="quality"):
        resample(np.zeros((2, 10), np.float32), 48000, 44100, quality="LQ")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels, frames"):
        resample(np.zeros((1, 2, 10), np.float32), 48000, 44100)
    with pytest.raises(ValueError, match="expected"):
        StreamResampler(48000, 44100, 2).process(np.zeros((3, 10), np.float32))


def test_an_extreme_ratio_is_streamed_in_bounded_pieces() -> None:
    from sa3_studio.audio import resample as resample_module

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 20_000)).astype(np.float32)
    src, dst = 1000, 768_000
    calls: list[int] = []
    stream = StreamResampler(src, dst, 2)
    real = stream._stream

    class Counting:
        def resample_chunk(self, block: npt.NDArray[np.float32], last: bool) -> object:
            out = real.resample_chunk(block, last=last)
            calls.append(len(out))
            return out

    stream._stream = Counting()  # type: ignore[assignment]
    y = np.concatenate([stream.process(x), stream.flush()], axis=1)
    assert y.shape == (2, resampled_length(20_000, src, dst))
    # soxr emits in bursts of its own block size times the ratio: bounded (a few MB), where
    # one call with the whole block would return all 15 M frames at once.
    assert max(calls) <= 4 * resample_module.MAX_CHUNK_OUT
    assert len(calls) > 10
    np.testing.assert_allclose(y, resample(x, src, dst), atol=2e-5)
