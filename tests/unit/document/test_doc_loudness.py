"""BS.1770-4 loudness: filter design, exact filtering, gating, and the standard's test signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from sa3_studio.document.loudness import (
    iir_filter,
    integrated_loudness,
    k_weight,
    k_weighting,
    peak_dbfs,
)

SR = 44100


def sine(freq: float, seconds: float, dbfs: float, rate: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)


def test_48k_coefficients_are_the_standards() -> None:
    (sb, sa), (hb, ha) = k_weighting(48000)
    # ITU-R BS.1770-4, tables 1 and 2.
    np.testing.assert_allclose(sb, [1.53512485958697, -2.69169618940638, 1.19839281085285], 1e-12)
    np.testing.assert_allclose(sa, [1.0, -1.69065929318241, 0.73248077421585], 1e-12)
    np.testing.assert_allclose(hb, [1.0, -2.0, 1.0], 1e-12)
    np.testing.assert_allclose(ha, [1.0, -1.99004745483398, 0.99007225036621], 1e-12)


def _prewarp(a: np.ndarray) -> float:
    """K = tan(pi f0 / fs) of a bilinear biquad, read from its denominator."""
    return math.sqrt((1 + a[1] + a[2]) / (1 - a[1] + a[2]))


def test_44k1_filters_have_the_same_analogue_response() -> None:
    # Both rates come from one analogue prototype, so the response at f (44.1 kHz) equals the
    # response at the 48 kHz frequency that the bilinear transform maps to the same s.
    for (b44, a44), (b48, a48) in zip(k_weighting(44100), k_weighting(48000)):
        ratio = _prewarp(a48) / _prewarp(a44)
        for f in (20.0, 100.0, 1000.0, 4000.0, 15000.0):
            f48 = math.atan(math.tan(math.pi * f / 44100) * ratio) * 48000 / math.pi
            _, h44 = scipy.signal.freqz(b44, a44, worN=[f], fs=44100)
            _, h48 = scipy.signal.freqz(b48, a48, worN=[f48], fs=48000)
            assert abs(h44[0]) == pytest.approx(abs(h48[0]), rel=1e-9)


@pytest.mark.parametrize("frames", [1, 3, 4095, 4096, 4097, 70_000, 300_001])
def test_block_filter_equals_direct_form(frames: int) -> None:
    x = np.random.default_rng(frames).standard_normal((2, frames))
    for b, a in k_weighting(SR):
        np.testing.assert_allclose(
            iir_filter(x, b, a), scipy.signal.lfilter(b, a, x, axis=-1), rtol=0, atol=1e-9
        )


def test_k_weight_over_chunk_boundaries_equals_the_cascade() -> None:
    x = np.random.default_rng(0).standard_normal((2, 600_000))  # more than two chunks
    (sb, sa), (hb, ha) = k_weighting(SR)
    expected = scipy.signal.lfilter(hb, ha, scipy.signal.lfilter(sb, sa, x, axis=-1), axis=-1)
    np.testing.assert_allclose(k_weight(x), expected, rtol=0, atol=1e-9)


def test_full_scale_1khz_sine_in_one_channel_reads_minus_3_01() -> None:
    # BS.1770-4: "a 0 dB FS 1 kHz sine wave ... applied to the left, centre or right channel
    # ... will equal -3.01 LKFS" (quoted to two decimals).
    s = sine(1000, 10, 0.0)
    assert integrated_loudness(np.stack([s, np.zeros_like(s)])) == pytest.approx(-3.01, abs=0.01)
    assert integrated_loudness(np.stack([s, s])) == pytest.approx(0.0, abs=0.01)


def test_ebu_3341_stereo_sine_at_minus_23() -> None:
    # EBU Tech 3341 case 1: stereo 1 kHz sine at -23 dBFS per channel reads -23.0 +/- 0.1 LUFS.
    s = sine(1000, 20, -23.0)
    assert integrated_loudness(np.stack([s, s])) == pytest.approx(-23.0, abs=0.1)


def test_ebu_3341_relative_gate() -> None:
    # EBU Tech 3341 case 3: -36 / -23 / -36 dBFS for 10 / 60 / 10 s reads -23.0 +/- 0.1 LUFS;
    # the quiet parts fall below the relative gate.
    s = np.concatenate([sine(1000, 10, -36), sine(1000, 60, -23), sine(1000, 10, -36)])
    assert integrated_loudness(np.stack([s, s])) == pytest.approx(-23.0, abs=0.1)


def test_ebu_3341_absolute_gate() -> None:
    # EBU Tech 3341 case 4: -72 / -36 / -23 / -36 / -72 dBFS, 10 / 10 / 60 / 10 / 10 s.
    parts = [(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)]
    s = np.concatenate([sine(1000, secs, db) for db, secs in parts])
    assert integrated_loudness(np.stack([s, s])) == pytest.approx(-23.0, abs=0.1)


def test_silence_and_short_audio() -> None:
    assert integrated_loudness(np.zeros((2, SR))) == -math.inf
    with pytest.raises(ValueError, match=r"at least 0\.4 s"):
        integrated_loudness(np.zeros((2, 1000)))
    with pytest.raises(ValueError, match="one weight per channel"):
        integrated_loudness(np.zeros((2, SR)), channel_weights=[1.0])


def test_loudness_scales_with_gain() -> None:
    x = np.random.default_rng(1).standard_normal((2, SR * 2)) * 0.1
    base = integrated_loudness(x)
    assert integrated_loudness(x * 2) == pytest.approx(base + 20 * math.log10(2), abs=1e-9)


def test_peak_dbfs() -> None:
    assert peak_dbfs(np.array([[0.5, -1.0]])) == pytest.approx(0.0)
    assert peak_dbfs(np.zeros((2, 3))) == -math.inf
