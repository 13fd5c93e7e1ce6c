"""Seam score: low for smooth material, high for hard discontinuities."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from sa3_studio.audio.seam import SEAM_BAD_THRESHOLD, seam_scores
from sa3_studio.errors import EditError

SR = 44100
SECONDS = 4
T = np.arange(SECONDS * SR) / SR
B = 2 * SR + 123  # a boundary off the frame grid of any STFT


def stereo(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.stack([x, x]).astype(np.float32)


def vibrato() -> npt.NDArray[np.float64]:
    """A tone with vibrato and tremolo: its spectrum moves all the time, smoothly."""
    tone: npt.NDArray[np.float64] = np.sin(2 * np.pi * 440 * T + 3 * np.sin(2 * np.pi * 5 * T))
    return 0.5 * tone * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * T))


def noise(seed: int = 1) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).standard_normal(T.size) * 0.1


def splice(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.concatenate([a[:B], b[B:]])


@pytest.mark.parametrize(
    "signal",
    [
        0.5 * np.sin(2 * np.pi * 440 * T),
        vibrato(),
        noise(),
        # Spliced, but seamlessly: the same signal on both sides.
        splice(noise(2), noise(2)),
    ],
    ids=["sine", "vibrato", "noise", "seamless-splice"],
)
def test_smooth_material_scores_low(signal: npt.NDArray[np.float64]) -> None:
    boundaries = [B, SR + 777, int(1.5 * SR)]
    for score in seam_scores(stereo(signal), boundaries, SR):
        assert score.score < 0.75 * SEAM_BAD_THRESHOLD
        assert not score.bad


@pytest.mark.parametrize(
    ("signal", "minimum"),
    [
        (splice(0.5 * np.sin(2 * np.pi * 440 * T), 0.5 * np.sin(2 * np.pi * 440 * T + 2.0)), 50),
        (splice(0.5 * np.sin(2 * np.pi * 440 * T), 0.5 * np.sin(2 * np.pi * 1234 * T + 1.0)), 50),
        (vibrato() + 0.3 * (np.arange(T.size) == B), 2 * SEAM_BAD_THRESHOLD),
        (splice(noise(), 0.5 * np.sin(2 * np.pi * 440 * T)), 2 * SEAM_BAD_THRESHOLD),
        (splice(vibrato(), np.zeros(T.size)), 2 * SEAM_BAD_THRESHOLD),
    ],
    ids=["phase-jump", "note-change", "click", "noise-to-tone", "cut-to-silence"],
)
def test_hard_discontinuity_scores_high(signal: npt.NDArray[np.float64], minimum: float) -> None:
    seam, elsewhere = seam_scores(stereo(signal), [B, SR], SR)
    assert seam.score > minimum
    assert seam.bad
    assert seam.seam_flux > seam.context_flux
    # The same material one second away, where nothing was spliced, is not flagged.
    assert not elsewhere.bad


def test_results_follow_the_boundaries_given() -> None:
    signal = stereo(splice(0.5 * np.sin(2 * np.pi * 440 * T), 0.5 * np.sin(2 * np.pi * 880 * T)))
    scores = seam_scores(signal, [SR, B, 3 * SR], SR)
    assert [s.frame for s in scores] == [SR, B, 3 * SR]
    assert [s.bad for s in scores] == [False, True, False]


def test_mono_input_and_custom_threshold() -> None:
    signal = splice(noise(), 0.5 * np.sin(2 * np.pi * 440 * T))
    (score,) = seam_scores(signal.astype(np.float32), [B], SR)
    (strict,) = seam_scores(signal.astype(np.float32), [B], SR, threshold=score.score + 1)
    assert score.bad
    assert not strict.bad
    assert strict.score == score.score


def test_too_little_context_gives_nan_not_a_verdict() -> None:
    short = stereo(noise()[:1500])
    (score,) = seam_scores(short, [700], SR)
    assert math.isnan(score.score)
    assert not score.bad


def test_silence_everywhere_is_not_a_seam() -> None:
    (score,) = seam_scores(np.zeros((2, SR * 2), np.float32), [SR], SR)
    assert score.score == 1.0
    assert not score.bad


@pytest.mark.parametrize("boundary", [0, -5, SECONDS * SR, SECONDS * SR + 10])
def test_boundary_outside_the_audio(boundary: int) -> None:
    with pytest.raises(EditError, match="outside the audio"):
        seam_scores(stereo(noise()), [boundary], SR)
