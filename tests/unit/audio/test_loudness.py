"""Loudness (BS.1770-4), true peak, and matching new material to its surroundings."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from sa3_studio.audio.loudness import integrated_loudness, match_gain, true_peak

SR = 44100


def sine(
    amp: float, seconds: float = 3.0, freq: float = 997.0, phase: float = 0.0
) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * freq * t + phase)


def stereo(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.stack([x, x])


def test_known_sine_loudness() -> None:
    # BS.1770: a 997 Hz sine of peak A in both channels reads 20 log10(A) LUFS (the
    # K-filter's +0.69 dB at 997 Hz cancels the -0.691 offset); in one channel, 3 dB less.
    for amp in (1.0, 0.5, 0.1):
        expected = 20 * math.log10(amp)
        assert integrated_loudness(stereo(sine(amp)), SR) == pytest.approx(expected, abs=0.1)
        one = np.stack([sine(amp), np.zeros(3 * SR)])
        assert integrated_loudness(one, SR) == pytest.approx(expected - 3.01, abs=0.1)


def test_silence_and_too_short() -> None:
    assert integrated_loudness(np.zeros((2, SR)), SR) == -math.inf
    assert integrated_loudness(stereo(sine(0.5, seconds=0.3)), SR) is None


def test_true_peak_sees_between_samples() -> None:
    # A sine at a quarter of the rate, 45 degrees off: every sample is at 0.707 of the peak.
    x = sine(0.8, seconds=0.5, freq=SR / 4, phase=math.pi / 4)
    assert float(np.abs(x).max()) == pytest.approx(0.8 / math.sqrt(2), rel=1e-3)
    assert true_peak(x, SR) == pytest.approx(0.8, abs=0.01)


def test_match_gain_brings_new_audio_to_the_surroundings() -> None:
    new = stereo(sine(0.1, freq=440.0))
    context = stereo(sine(0.4, freq=997.0))
    result = match_gain(new, context, sample_rate=SR)
    assert not result.limited
    assert result.new_lufs is not None
    assert result.reference_lufs is not None
    assert result.gain_db == pytest.approx(result.reference_lufs - result.new_lufs)
    assert result.gain == pytest.approx(10 ** (result.gain_db / 20))
    matched = integrated_loudness(new * result.gain, SR)
    assert matched == pytest.approx(result.reference_lufs, abs=0.05)
    assert "Matched" in result.reason


def test_match_gain_accepts_audio_before_and_after() -> None:
    new = stereo(sine(0.1))
    before, after = stereo(sine(0.3, seconds=2.0)), stereo(sine(0.3, seconds=2.0, phase=0.3))
    joined = match_gain(new, [before, after], sample_rate=SR)
    single = match_gain(new, np.concatenate([before, after], axis=1), sample_rate=SR)
    assert joined.gain == pytest.approx(single.gain)
    assert joined.gain_db == pytest.approx(20 * math.log10(3), abs=0.1)


def test_true_peak_ceiling_limits_the_gain() -> None:
    # Peaky new material (a quiet sine plus sparse full-height spikes) in loud surroundings.
    new = stereo(sine(0.05))
    new[:, :: SR // 4] = 0.6
    context = stereo(sine(0.9, freq=200.0))
    result = match_gain(new, context, -1.0, sample_rate=SR)
    assert result.limited
    assert result.reference_lufs is not None
    assert result.new_lufs is not None
    assert result.gain_db < result.reference_lufs - result.new_lufs
    assert 20 * math.log10(true_peak(new * result.gain, SR)) <= -1.0 + 0.01
    assert "true peak" in result.reason
    # A lower ceiling gives a lower gain.
    lower = match_gain(new, context, -6.0, sample_rate=SR)
    assert lower.gain_db == pytest.approx(result.gain_db - 5.0, abs=0.01)


def test_gain_is_bounded() -> None:
    result = match_gain(
        stereo(sine(0.001)), stereo(sine(0.5)), 0.0, sample_rate=SR, max_gain_db=12.0
    )
    assert result.gain_db == pytest.approx(12.0)
    assert result.limited
    assert "the most this allows" in result.reason


@pytest.mark.parametrize(
    ("new", "context", "phrase"),
    [
        (stereo(sine(0.5, seconds=0.2)), stereo(sine(0.5)), "too short"),
        (np.zeros((2, 2 * SR)), stereo(sine(0.5)), "silent"),
        (stereo(sine(0.5)), stereo(sine(0.5, seconds=0.1)), "too short"),
        (stereo(sine(0.5)), np.zeros((2, 2 * SR)), "silent"),
    ],
)
def test_unmeasurable_input_leaves_the_gain_at_one_with_a_reason(
    new: npt.NDArray[np.float64], context: npt.NDArray[np.float64], phrase: str
) -> None:
    result = match_gain(new, context, sample_rate=SR)
    assert result.gain == 1.0
    assert result.gain_db == 0.0
    assert phrase in result.reason
    assert result.reason.endswith(".")


def test_bad_arrays() -> None:
    with pytest.raises(ValueError, match="channels"):
        match_gain(np.zeros((2, SR)), np.zeros((1, SR)), sample_rate=SR)
    with pytest.raises(ValueError, match="NaN"):
        integrated_loudness(np.full((2, SR), np.nan), SR)
