"""The ODE samplers against the exact flow of Gaussian data, and their bookkeeping.

For data ``x0 ~ N(0, s²)`` and noise ``N(0, 1)``, ``x_t = (1 - t) x0 + t ε`` has variance
``σ_t² = (1 - t)² s² + t²``, the ideal denoiser is ``E[x0 | x_t] = (1 - t) s² x_t / σ_t²`` and the
probability-flow ODE carries ``x_1`` to exactly ``x_t = σ_t x_1``; so ``x_0 = s x_1``. Each
sampler's error against that endpoint must shrink at its order as the steps double.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch

from sa3_studio.engine.api import CancelToken
from sa3_studio.engine.sampling import sample_dpmpp, sample_euler, sample_rk4
from sa3_studio.errors import Cancelled

S = 0.5  # data standard deviation
Sampler = Callable[..., torch.Tensor]


def _gaussian_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    tt = t.to(torch.float64)[:, None, None]
    denoised = (1 - tt) * S**2 * x / ((1 - tt) ** 2 * S**2 + tt**2)
    return (x - denoised) / tt


def _sigma(t: float) -> float:
    return float(((1 - t) ** 2 * S**2 + t**2) ** 0.5)


def _error(sampler: Sampler, steps: int) -> float:
    """Relative error of integrating from t = 0.95 to t = 0.05 on a log-SNR-uniform grid.

    Orders of accuracy are about shrinking steps; the last step to t = 0 is a jump of
    infinite log-SNR whatever the number of steps, so it is left out here.
    """
    t0, t1 = 0.95, 0.05
    x = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x * _sigma(t0)
    lam0, lam1 = math.log((1 - t0) / t0), math.log((1 - t1) / t1)
    sigmas = torch.sigmoid(-torch.linspace(lam0, lam1, steps + 1, dtype=torch.float64))
    want = x / _sigma(t0) * _sigma(t1)
    out = sampler(_gaussian_velocity, x, sigmas)
    return float((out - want).abs().max() / want.abs().max())


def test_orders_of_accuracy_on_gaussian_data() -> None:
    # Each error ratio as the steps double is 2^order once the steps are small (DPM-Solver++
    # gets there from about 32 steps on this grid; RK4 reaches float32 time rounding past 32).
    euler = [_error(sample_euler, n) for n in (32, 64, 128)]
    dpmpp = [_error(sample_dpmpp, n) for n in (32, 64, 128)]
    rk4 = [_error(sample_rk4, n) for n in (8, 16, 32)]
    assert 1.7 < euler[0] / euler[1] < 2.3
    assert 1.7 < euler[1] / euler[2] < 2.3
    assert 3.5 < dpmpp[0] / dpmpp[1] < 4.5
    assert 3.5 < dpmpp[1] / dpmpp[2] < 4.5
    assert rk4[0] / rk4[1] > 12
    assert rk4[1] / rk4[2] > 12
    assert rk4[2] < dpmpp[0] < euler[0]  # all at 32 steps
    assert dpmpp[0] < 2.5e-3


def test_an_exact_denoiser_is_followed_exactly() -> None:
    """With one data point the flow is a straight line, which every sampler follows exactly."""
    target = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x1 = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x - target) / t.to(x.dtype)[:, None, None]

    sigmas = torch.tensor([1.0, 0.8, 0.45, 0.2, 0.0], dtype=torch.float64)
    for sampler in (sample_euler, sample_dpmpp):
        torch.testing.assert_close(sampler(velocity, x1, sigmas), target)
    # RK4's last evaluation runs at t = 1e-5 instead of 0, where this field is singular, so it
    # is exact only on a grid that stops short of 0.
    line = target + (x1 - target) * 0.125
    torch.testing.assert_close(sample_rk4(velocity, x1, torch.tensor([1.0, 0.5, 0.125])), line)


@pytest.mark.parametrize(("sampler", "per_step"), [(sample_dpmpp, 1), (sample_rk4, 4)])
def test_evaluations_progress_and_cancel(sampler: Sampler, per_step: int) -> None:
    times: list[float] = []
    progress: list[tuple[int, int]] = []

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        times.append(float(t[0]))
        return _gaussian_velocity(x, t)

    x1 = torch.randn(1, 2, 4, dtype=torch.float64)
    sigmas = torch.linspace(1.0, 0.0, 6, dtype=torch.float64)
    sampler(velocity, x1, sigmas, on_step=lambda done, total: progress.append((done, total)))
    assert len(times) == 5 * per_step
    assert progress == [(i, 5) for i in range(1, 6)]
    assert min(times) >= 0.99e-5  # the model never runs at t = 0 (RK4 clamps its last point)

    cancel = CancelToken()

    def cancel_after_two(done: int, total: int) -> None:
        if done == 2:
            cancel.cancel()

    times.clear()
    with pytest.raises(Cancelled):
        sampler(velocity, x1, sigmas, on_step=cancel_after_two, cancel=cancel)
    assert len(times) == 2 * per_step


def test_dpmpp_per_item_times() -> None:
    """Items with their own schedules (audio-to-audio batches) are each solved on their own."""
    x1 = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    a = torch.linspace(1.0, 0.0, 9, dtype=torch.float64)
    b = torch.linspace(0.7, 0.0, 9, dtype=torch.float64)
    both = sample_dpmpp(_gaussian_velocity, x1, torch.stack([a, b]))
    torch.testing.assert_close(both[:1], sample_dpmpp(_gaussian_velocity, x1[:1], a))
    torch.testing.assert_close(both[1:], sample_dpmpp(_gaussian_velocity, x1[1:], b))


def _official_dpmpp_reference(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigmas: list[float],
) -> torch.Tensor:
    """The official DPM-Solver++(2M) update written out step by step from reference §5.4 in
    plain float64 arithmetic, with the official log-SNR clamp ``λ(t) = ln(max(1 - t, 1e-10) /
    max(t, 1e-10))``: first order on the first step and on a step ending at 0, second order
    (Richardson extrapolation with r = h_last / h) otherwise."""

    def lam(t: float) -> float:
        return math.log(max(1 - t, 1e-10) / max(t, 1e-10))

    old = None
    for i in range(len(sigmas) - 1):
        t, tn = sigmas[i], sigmas[i + 1]
        denoised = x - t * velocity(x, torch.full((x.shape[0],), t, dtype=torch.float64))
        coeff = (tn - t) / (max(1 - tn, 1e-10) * max(t, 1e-10))
        d = denoised
        if old is not None and tn != 0:
            r = (lam(t) - lam(sigmas[i - 1])) / (lam(tn) - lam(t))
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        x = (tn / max(t, 1e-10)) * x - (1 - tn) * coeff * d
        old = denoised
    return x


def test_dpmpp_second_step_is_the_official_second_order_step() -> None:
    """From t = 1 the official solver's second step is second order (λ(1) = ln 1e-10 is
    finite); a solver without the clamp takes a first-order second step instead."""
    x1 = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    grid = [1.0, 0.875, 0.625, 0.25, 0.0]  # exact in float32, the samplers' time dtype
    for n in (2, 3, 5):
        sigmas = [*grid[: n - 1], 0.0] if n < 5 else grid
        ours = sample_dpmpp(_gaussian_velocity, x1, torch.tensor(sigmas, dtype=torch.float64))
        torch.testing.assert_close(
            ours, _official_dpmpp_reference(_gaussian_velocity, x1, sigmas), rtol=1e-6, atol=1e-6
        )
    # The second step really is the extrapolated one: a first-order second step differs.
    sigmas = [1.0, 0.875, 0.625]
    two = sample_dpmpp(_gaussian_velocity, x1, torch.tensor(sigmas, dtype=torch.float64))
    x = x1
    for t, tn in itertools.pairwise(sigmas):  # first order throughout
        d = x - t * _gaussian_velocity(x, torch.full((2,), t, dtype=torch.float64))
        x = (tn / t) * x - (1 - tn) * (tn - t) / ((1 - tn) * t) * d
    assert float((two - x).abs().max()) > 1e-3


def test_one_registry_of_samplers_with_one_signature() -> None:
    import inspect

    from sa3_studio.engine.api import SAMPLERS as NAMES
    from sa3_studio.engine.noise import GeneratorNoise
    from sa3_studio.engine.sampling import SAMPLERS, get_sampler
    from sa3_studio.errors import GenerationError

    assert tuple(SAMPLERS) == NAMES
    signatures = {name: inspect.signature(fn) for name, fn in SAMPLERS.items()}
    first = next(iter(signatures.values()))
    assert all(sig == first for sig in signatures.values()), signatures
    x1 = torch.randn(1, 2, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigmas = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    for name in NAMES:
        out = get_sampler(name)(
            _gaussian_velocity, x1, sigmas, noise=GeneratorNoise(0, torch.device("cpu"))
        )
        assert out.shape == x1.shape
        assert torch.isfinite(out).all()
    with pytest.raises(GenerationError, match="Unknown sampler 'heun'"):
        get_sampler("heun")
    with pytest.raises(GenerationError, match="noise source"):
        get_sampler("pingpong")(_gaussian_velocity, x1, sigmas)
