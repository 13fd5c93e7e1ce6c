"""True-peak meter and -1 dBTP limiter against signals whose true peak is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sa3_studio.audio.true_peak import (
    gain_to_ceiling,
    limit_true_peak,
    true_peak_dbtp,
    true_peak_envelope,
)

RATE = 48000


def _quarter_rate_sine(frames: int = 4800, amplitude: float = 1.0) -> np.ndarray:
    """fs/4 at 45 degrees: every sample is +-0.707 amplitude, the waveform peaks at amplitude."""
    n = np.arange(frames)
    return amplitude * np.sin(np.pi / 2 * n + np.pi / 4)


def test_intersample_peak_of_a_quarter_rate_sine_at_45_degrees() -> None:
    x = _quarter_rate_sine()
    assert 20 * math.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x) == pytest.approx(0.0, abs=0.01)
    assert true_peak_dbtp(_quarter_rate_sine(amplitude=2.0)) == pytest.approx(6.02, abs=0.01)


@pytest.mark.parametrize("freq", [50.0, 997.0, 5000.0, 12000.0])
def test_sines_read_their_amplitude(freq: float) -> None:
    n = np.arange(RATE // 2)
    x = 0.5 * np.sin(2 * np.pi * freq / RATE * n + 0.3)
    # 4x oversampling may miss the crest by up to 1/8 sample: at most 0.2 dB under near fs/4
    # (BS.1770 allows more), never over.
    error = true_peak_dbtp(x) - 20 * math.log10(0.5)
    assert -0.2 < error < 0.01
    assert abs(error) < 0.02 or freq > 10000


def test_channels_and_silence() -> None:
    quiet = np.zeros((2, 1000))
    assert true_peak_dbtp(quiet) == -200.0
    stereo = np.stack([np.zeros(4800), _quarter_rate_sine(amplitude=0.5)])
    assert true_peak_dbtp(stereo) == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert true_peak_envelope(stereo).shape == (4800,)
    short = np.array([0.25, -0.5, 0.1])
    assert true_peak_dbtp(short) == pytest.approx(20 * math.log10(0.5))
    with pytest.raises(ValueError, match="channels, frames"):
        true_peak_dbtp(np.zeros((1, 2, 3)))


def test_gain_to_ceiling() -> None:
    x = _quarter_rate_sine(amplitude=1.5)
    gain = gain_to_ceiling(x, -1.0)
    assert true_peak_dbtp(x * gain) == pytest.approx(-1.0, abs=0.01)
    assert gain_to_ceiling(x * 0.1, -1.0) == 1.0


def test_limiter_holds_the_ceiling_and_leaves_quiet_parts_alone() -> None:
    rng = np.random.default_rng(0)
    quiet = 0.1 * rng.standard_normal((2, RATE))
    loud = np.stack([_quarter_rate_sine(RATE, 1.4), _quarter_rate_sine(RATE, 1.2)])
    audio = np.concatenate([quiet, loud, quiet], axis=1).astype(np.float32)
    out = limit_true_peak(audio, RATE, ceiling_dbtp=-1.0)
    assert out.dtype == np.float32
    assert out.shape == audio.shape
    assert true_peak_dbtp(out) <= -1.0 + 0.01
    assert true_peak_dbtp(audio) > 2.0
    # Far from the loud part, nothing changes.
    margin = RATE // 100
    np.testing.assert_array_equal(out[:, : RATE - margin], audio[:, : RATE - margin])
    np.testing.assert_array_equal(out[:, 2 * RATE + margin :], audio[:, 2 * RATE + margin :])
    # The loud part is turned down, not clipped: its shape is kept (a scaled sine).
    mid = out[0, RATE + margin : 2 * RATE - margin]
    ratio = mid / audio[0, RATE + margin : 2 * RATE - margin]
    assert float(ratio.std()) < 1e-3
    # Under the ceiling already: returned unchanged.
    np.testing.assert_array_equal(limit_true_peak(quiet, RATE), quiet.astype(np.float32))
    # Mono in, mono out.
    assert limit_true_peak(loud[0], RATE).shape == (RATE,)
