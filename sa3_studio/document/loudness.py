"""Integrated loudness after ITU-R BS.1770-4 in pure numpy (for loudness normalisation).

K-weighting is two biquads. The standard lists their coefficients for 48 kHz only; we recover
the analogue prototypes from those coefficients (bilinear transform inverted) and transform them
back at the wanted rate, so at 48 kHz the filters equal the standard's exactly and at 44.1 kHz
they have the same analogue response.

Gating: 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 LU
below the loudness of the blocks that passed the absolute gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from sa3_studio.document.constants import SAMPLE_RATE

F64 = npt.NDArray[np.float64]

# BS.1770-4 table 1 (pre-filter, a high shelf) and table 2 (RLB weighting, a high-pass), 48 kHz.
_SHELF_48K_B = (1.53512485958697, -2.69169618940638, 1.19839281085285)
_SHELF_48K_A = (-1.69065929318241, 0.73248077421585)
_HIGHPASS_48K_A = (-1.99004745483398, 0.99007225036621)
_REFERENCE_RATE = 48000

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S = 0.4
STEP_S = 0.1  # 75 % overlap
_OFFSET = -0.691  # makes a 0 dBFS 1 kHz sine in one channel read -3.01 LUFS


def _prototype(a1: float, a2: float) -> tuple[float, float, float]:
    """Invert the bilinear transform of a 2nd-order denominator.

    With ``K = tan(pi f0 / fs)`` a bilinear biquad has ``a0 = 1 + K/Q + K^2``,
    ``a1 = 2 (K^2 - 1) / a0``, ``a2 = (1 - K/Q + K^2) / a0``. Hence
    ``1 + a1 + a2 = 4 K^2 / a0`` and ``1 - a1 + a2 = 4 / a0``.

    Returns:
        ``(K, Q, a0)`` at the rate the coefficients were made for.
    """
    a0 = 4.0 / (1.0 - a1 + a2)
    k = math.sqrt((1.0 + a1 + a2) / (1.0 - a1 + a2))
    q = 2.0 * k / (a0 * (1.0 - a2))
    return k, q, a0


def k_weighting(sample_rate: int = SAMPLE_RATE) -> tuple[tuple[F64, F64], tuple[F64, F64]]:
    """Coefficients of the two K-weighting biquads at ``sample_rate``.

    Returns:
        ``((b, a) of the shelf, (b, a) of the high-pass)``; ``a[0] == 1``.
    """
    # Shelf: numerator (Vh + Vb K/Q + K^2, 2 (K^2 - Vh), Vh - Vb K/Q + K^2) / a0.
    k48, q_shelf, a0 = _prototype(*_SHELF_48K_A)
    b0, b1, b2 = (b * a0 for b in _SHELF_48K_B)
    v_high = (b0 - b1 + b2) / 4.0
    v_band = (b0 - b2) * q_shelf / (2.0 * k48)
    f_shelf = math.atan(k48) * _REFERENCE_RATE / math.pi

    k = math.tan(math.pi * f_shelf / sample_rate)
    a0 = 1.0 + k / q_shelf + k * k
    shelf_b = (
        np.array(
            [
                v_high + v_band * k / q_shelf + k * k,
                2.0 * (k * k - v_high),
                v_high - v_band * k / q_shelf + k * k,
            ]
        )
        / a0
    )
    shelf_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q_shelf + k * k]) / a0

    # High-pass: the standard's numerator is (1, -2, 1) without dividing by its a0, i.e. the
    # analogue high-pass times a0 at 48 kHz (about +0.04 dB). Keep that same analogue gain.
    k48_hp, q_hp, a0_48 = _prototype(*_HIGHPASS_48K_A)
    f_hp = math.atan(k48_hp) * _REFERENCE_RATE / math.pi
    k = math.tan(math.pi * f_hp / sample_rate)
    a0 = 1.0 + k / q_hp + k * k
    hp_b = np.array([1.0, -2.0, 1.0]) * (a0_48 / a0)
    hp_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q_hp + k * k]) / a0
    return (shelf_b, shelf_a), (hp_b, hp_a)


_BLOCK = 4096  # all-pole block length: FFT size 8192
_CHUNK = 64 * _BLOCK  # frames filtered at a time, so temporary arrays stay small


class _Stage:
    """One IIR filter applied chunk by chunk, keeping its state between chunks.

    FIR part: ``sum_k b[k] x[n-k]`` with the last inputs of the previous chunk as history.

    All-pole part, ``y[n] = v[n] - sum_{j>=1} a[j] y[n-j]``, by blocks: inside a block the
    zero-state response is a convolution with the first ``B`` samples of the impulse response
    ``h`` (FFTs for many blocks at once). What the previous block leaves behind, its last N
    outputs ``p_k = y[-k]``, adds ``sum_k p_k g_k`` where the free response is
    ``g_k[n] = -sum_{m=0}^{N-k} a[m+k] h[n-m]``. Only those N numbers per channel are carried
    from block to block in Python, so the cost is a few FFTs per sample.
    """

    def __init__(self, b: F64, a: F64, channels: int) -> None:
        self.b = b
        self.order = a.shape[0] - 1
        self.history = np.zeros((channels, b.shape[0] - 1))  # (C, M): last inputs
        self.state = np.zeros((channels, self.order))  # (C, N): y[-1], y[-2], ...
        h = np.zeros(_BLOCK)
        h[0] = 1.0
        for i in range(1, _BLOCK):
            j = min(self.order, i)
            h[i] = -float(np.dot(a[1 : j + 1], h[i - j : i][::-1]))
        free = np.zeros((self.order, _BLOCK))  # free[k-1] = g_k
        for k in range(1, self.order + 1):
            for m in range(self.order - k + 1):
                free[k - 1, m:] -= a[m + k] * h[: _BLOCK - m]
        self.free = free
        # tail[i, k-1] = g_k[B-1-i]: the last N outputs of a block due to its entering state.
        self.tail_t = free[:, ::-1][:, : self.order].copy()  # (N, N), transposed
        self.h_spec = np.fft.rfft(h, 2 * _BLOCK)

    def __call__(self, x: F64) -> F64:
        """Filter the next chunk ``(C, L)``; every chunk but the last must be whole blocks."""
        channels, n = x.shape
        taps = self.b.shape[0]
        joined = np.concatenate((self.history, x), axis=1)  # (C, M + L)
        v: F64 = self.b[0] * x
        for k in range(1, taps):
            v += self.b[k] * joined[:, taps - 1 - k : taps - 1 - k + n]
        if taps > 1:
            self.history = joined[:, -(taps - 1) :].copy()
        if self.order == 0:
            return v
        n_blocks = -(-n // _BLOCK)
        if n_blocks * _BLOCK != n:
            v = np.concatenate((v, np.zeros((channels, n_blocks * _BLOCK - n))), axis=1)
        blocks = v.reshape(channels, n_blocks, _BLOCK)  # (C, J, B)
        zs = np.fft.irfft(np.fft.rfft(blocks, 2 * _BLOCK) * self.h_spec, 2 * _BLOCK)
        zs = zs[..., :_BLOCK]  # (C, J, B) zero-state responses
        zs_tail = zs[..., ::-1][..., : self.order]  # (C, J, N): y[B-1], y[B-2], ...
        entering = np.empty((channels, n_blocks, self.order))  # (C, J, N)
        state = self.state
        for j in range(n_blocks):
            entering[:, j] = state
            state = zs_tail[:, j] + state @ self.tail_t
        self.state = state
        y: F64 = (zs + entering @ self.free).reshape(channels, -1)[:, :n]  # (C, L)
        return y


def _k_weighted_chunks(data: F64, sample_rate: int) -> Iterator[F64]:
    """K-weighted ``(C, T)`` audio, yielded in chunks of :data:`_CHUNK` frames."""
    (sb, sa), (hb, ha) = k_weighting(sample_rate)
    channels = data.shape[0]
    # Two biquads in cascade rather than one 4th-order filter: the high-pass alone has a DC
    # gain near 4e4 in its all-pole half, and a combined filter loses digits to that.
    shelf, highpass = _Stage(sb, sa, channels), _Stage(hb, ha, channels)
    for lo in range(0, data.shape[1], _CHUNK):
        yield highpass(shelf(np.asarray(data[:, lo : lo + _CHUNK], dtype=np.float64)))


def iir_filter(x: npt.ArrayLike, b: Sequence[float] | F64, a: Sequence[float] | F64) -> F64:
    """Filter along the last axis with a low-order IIR filter (``a[0]`` must be 1), from rest.

    Args:
        x: signal ``(..., T)``.
        b: numerator coefficients.
        a: denominator coefficients, ``a[0] == 1``; keep the order small (a biquad has 2).

    Returns:
        The float64 output, same shape as ``x``.
    """
    b_arr = np.asarray(b, dtype=np.float64)
    a_arr = np.asarray(a, dtype=np.float64)
    if b_arr.ndim != 1 or a_arr.ndim != 1 or b_arr.size < 1 or a_arr.size < 1:
        raise ValueError("filter coefficients must be non-empty vectors")
    if a_arr[0] != 1.0:
        raise ValueError("the filter's a[0] must be 1")
    data = np.asarray(x, dtype=np.float64)
    lead, n = data.shape[:-1], data.shape[-1]
    flat = data.reshape(-1, n)  # (C, T)
    stage = _Stage(b_arr, a_arr, flat.shape[0])
    out = np.empty(flat.shape)
    for lo in range(0, n, _CHUNK):
        out[:, lo : lo + _CHUNK] = stage(flat[:, lo : lo + _CHUNK])
    return out.reshape(*lead, n)


def k_weight(samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> F64:
    """Apply K-weighting to ``(channels, frames)`` audio."""
    data = np.asarray(samples, dtype=np.float64)
    if data.shape[-1] == 0:
        return data.copy()
    return np.concatenate(list(_k_weighted_chunks(data, sample_rate)), axis=1)


def block_frames(sample_rate: int = SAMPLE_RATE) -> int:
    """Frames in one 400 ms gating block (four 100 ms steps)."""
    return 4 * round(STEP_S * sample_rate)


def integrated_loudness(
    samples: npt.ArrayLike,
    sample_rate: int = SAMPLE_RATE,
    channel_weights: Sequence[float] | None = None,
) -> float:
    """Gated integrated loudness in LUFS (BS.1770-4).

    Args:
        samples: ``(channels, frames)`` audio, full scale = 1.0.
        sample_rate: frames per second.
        channel_weights: per-channel weights ``G_i``; 1.0 each by default (left, right, centre).

    Returns:
        The loudness, or ``-inf`` when no block is louder than the absolute gate.

    Raises:
        ValueError: shorter than one 400 ms block.
    """
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    channels, n = data.shape
    step = round(STEP_S * sample_rate)
    if n < 4 * step:
        raise ValueError(f"loudness needs at least {BLOCK_S} s of audio")
    weights = np.ones(channels) if channel_weights is None else np.asarray(channel_weights, float)
    if weights.shape != (channels,):
        raise ValueError("one weight per channel is needed")
    # Sum the squared K-weighted signal per 100 ms step, chunk by chunk.
    step_sums: list[F64] = []
    carry = np.zeros((channels, 0))
    for y in _k_weighted_chunks(data, sample_rate):
        energy = np.concatenate((carry, y * y), axis=1)
        whole = energy.shape[1] // step
        step_sums.append(energy[:, : whole * step].reshape(channels, whole, step).sum(axis=2))
        carry = energy[:, whole * step :]
    step_energy = np.concatenate(step_sums, axis=1)  # (C, S)
    # Each 400 ms block is four consecutive 100 ms steps.
    block_energy = (
        step_energy[:, :-3] + step_energy[:, 1:-2] + step_energy[:, 2:-1] + step_energy[:, 3:]
    ) / (4 * step)  # (C, J) mean square per block
    weighted = weights @ block_energy  # (J,)
    with np.errstate(divide="ignore"):
        block_lufs = _OFFSET + 10.0 * np.log10(weighted)
    kept = block_lufs > ABSOLUTE_GATE_LUFS
    if not kept.any():
        return -math.inf
    relative_gate = _OFFSET + 10.0 * math.log10(float(weighted[kept].mean())) + RELATIVE_GATE_LU
    kept &= block_lufs > relative_gate
    return _OFFSET + 10.0 * math.log10(float(weighted[kept].mean()))


def peak_dbfs(samples: npt.ArrayLike) -> float:
    """Sample peak in dBFS (``-inf`` for silence)."""
    peak = float(np.max(np.abs(np.asarray(samples)), initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
