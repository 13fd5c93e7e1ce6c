"""What the timeline draws from: peaks and RMS across edited segments against brute force,
the mix, snapping and the spectrogram."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sa3_studio.app.mixdown import render_mix
from sa3_studio.app.session import Session
from sa3_studio.app.snapper import snap_frame
from sa3_studio.app.spectrogram import compute_spectrogram
from sa3_studio.app.waveform_source import EnergyIndex, ProjectPeaks, PyramidCache
from sa3_studio.document import AudioData, Project, edits
from sa3_studio.document.constants import LATENT_FRAMES, SAMPLE_RATE
from sa3_studio.document.grid import BeatGrid

SR = SAMPLE_RATE


def _project() -> Project:
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((2, 5 * SR)) * 0.2).astype(np.float32)
    p = Project.from_audio(AudioData.from_array(audio))
    # Edits leave the track made of several segments of several buffers, and a silent one.
    p = edits.apply_gain(p, SR, SR + 3000, 6.0)
    p = edits.delete_range(p, 2 * SR, 2 * SR + 777)
    p = edits.insert_silence(p, 3 * SR, 5000)
    return p


def _extremes(audio: np.ndarray, edges: np.ndarray, grow: int) -> tuple[np.ndarray, ...]:
    """Per column: max over the column grown by ``grow`` frames each side, and the max over
    it shrunk by ``grow`` (NaN when nothing is left), and the same for the minimum."""
    n = edges.shape[0] - 1
    out = np.full((4, audio.shape[0], n), np.nan)
    for i in range(n):
        a, b = max(edges[i] - grow, 0), min(edges[i + 1] + grow, audio.shape[1])
        out[0, :, i], out[1, :, i] = audio[:, a:b].max(axis=1), audio[:, a:b].min(axis=1)
        a, b = edges[i] + grow, edges[i + 1] - grow
        if b > a:
            out[2, :, i], out[3, :, i] = audio[:, a:b].max(axis=1), audio[:, a:b].min(axis=1)
    return tuple(out)


@pytest.mark.parametrize(("start", "end", "n"), [(0, -1, 800), (SR - 5000, SR + 9000, 300)])
def test_peaks_across_segments_match_brute_force(start: int, end: int, n: int) -> None:
    project = _project()
    assert len(project.tracks[0].clips[0].segments) >= 4
    peaks = ProjectPeaks(project, PyramidCache())
    end = project.frames if end < 0 else end
    mix = render_mix(project)
    mins, maxs = peaks.envelope(start, end, n)
    assert mins.shape == (2, n)
    # Columns snap to pyramid blocks (never more than a column's width), so each extreme lies
    # between the extreme of the column shrunk and grown by one column width.
    edges = start + (np.arange(n + 1) * (end - start)) // n
    width = -(-(end - start) // n)
    grown_max, grown_min, shrunk_max, shrunk_min = _extremes(mix, edges, width)
    assert np.all(maxs <= grown_max + 1e-7)
    assert np.all(mins >= grown_min - 1e-7)
    inner = ~np.isnan(shrunk_max)
    assert np.all(maxs[inner] >= shrunk_max[inner] - 1e-7)
    assert np.all(mins[inner] <= shrunk_min[inner] + 1e-7)
    np.testing.assert_array_equal(peaks.samples(start, end), mix[:, start:end])


def test_rms_matches_brute_force() -> None:
    project = _project()
    peaks = ProjectPeaks(project, PyramidCache())
    mix = render_mix(project)
    n = 100
    edges = (np.arange(n + 1) * project.frames) // n
    brute = np.stack(
        [
            np.sqrt(np.mean(mix[:, a:b].astype(np.float64) ** 2, axis=1))
            for a, b in itertools.pairwise(edges)
        ],
        axis=1,
    )
    got = peaks.rms(0, project.frames, n)
    # Columns snap to 64-frame blocks (about 3 % of a column here): within 5 % of the exact RMS.
    np.testing.assert_allclose(got, brute, rtol=0.05, atol=1e-4)
    # The silent insert reads as silence.
    silent = EnergyIndex(np.zeros((2, 1000), dtype=np.float32)).rms(0, 1000, 10)
    assert not silent.any()


def test_snapping_to_latent_beats_and_zero_crossings() -> None:
    t = np.arange(4 * SR) / SR
    tone = np.sin(2 * np.pi * 100.0 * t).astype(np.float32)
    p = Project.from_audio(AudioData.from_array(np.stack([tone, tone])))
    s = Session()
    s.set_timeline(SR, p.frames)
    assert snap_frame(p, s, 5000, 10) == 5000  # nothing on
    s.set_snap(latent=True)
    assert snap_frame(p, s, 5000, 10) == LATENT_FRAMES
    s.set_snap(latent=False, beats=True)
    assert snap_frame(p, s, 20000, 10) == 20000  # no tempo: beats cannot snap
    import dataclasses

    p = dataclasses.replace(p, meta=dataclasses.replace(p.meta, grid=BeatGrid(120.0)))
    assert snap_frame(p, s, 20000, 10) == SR // 2
    s.set_snap(beats=False, zero_crossings=True)
    f = snap_frame(p, s, 1000, 10)
    # 100 Hz: a crossing every 220.5 frames.
    assert abs(f - 1000) <= 111
    assert abs(tone[f]) < np.sin(np.pi * 100.0 / SR * 2)


def test_spectrogram_of_a_tone_peaks_at_its_frequency() -> None:
    t = np.arange(2 * SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    audio = np.stack([tone, tone])
    spec = compute_spectrogram(lambda a, b: audio[:, a:b], audio.shape[1], SR, 0, 2 * SR, 120)
    assert spec.image.shape == (120, 256)
    assert spec.image.min() >= 0.0
    assert spec.image.max() <= 1.0
    rows_hz = np.geomspace(spec.min_hz, spec.max_hz, spec.image.shape[1])
    peak_hz = rows_hz[int(np.argmax(spec.image[60]))]
    assert 900.0 < peak_hz < 1100.0
    assert (spec.start, spec.end) == (0.0, 2.0)
