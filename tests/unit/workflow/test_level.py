"""New audio levelled to -1 dBTP before the splice: a limiter or one gain, only when over."""

from __future__ import annotations

import numpy as np
import pytest

from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.workflow.level import Level, level_audio

SR = 44100


def _envelope() -> np.ndarray:
    return 0.5 + 0.5 * np.sin(2 * np.pi * 2 * np.arange(SR) / SR)


def _tone(amplitude: float) -> np.ndarray:
    x = amplitude * np.sin(2 * np.pi * 997 * np.arange(SR) / SR) * _envelope()
    return np.stack([x, 0.7 * x]).astype(np.float32)


def test_keep_and_quiet_audio_come_back_unchanged() -> None:
    loud, quiet = _tone(1.6), _tone(0.5)
    assert level_audio(loud, SR, Level.KEEP) is loud
    for level in Level:
        assert np.array_equal(level_audio(quiet, SR, level), quiet)


def test_limit_brings_the_true_peak_to_minus_1_dbtp_and_leaves_quiet_frames() -> None:
    loud = _tone(1.6)
    assert true_peak_dbtp(loud) > 4.0
    out = level_audio(loud, SR, Level.LIMIT)
    assert -1.2 < true_peak_dbtp(out) <= -0.99
    quiet = _envelope() < 0.4  # well under the ceiling, and more than 2 ms from any loud frame
    assert np.array_equal(out[:, quiet], loud[:, quiet])
    assert not np.array_equal(out[:, ~quiet], loud[:, ~quiet])


def test_gain_turns_the_whole_clip_down_to_minus_1_dbtp() -> None:
    loud = _tone(1.6)
    out = level_audio(loud, SR, Level.GAIN)
    assert true_peak_dbtp(out) == pytest.approx(-1.0, abs=0.01)
    ratio = out[0, 1000] / loud[0, 1000]
    np.testing.assert_allclose(out, loud * ratio, atol=1e-6)
