import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from structlearn.optim.power_iteration import init_vectors, power_iteration, sigma_max


@pytest.mark.parametrize("shape", [(48, 96), (96, 48), (1, 40), (40, 1), (64, 64)])
def test_warm_started_estimate_within_one_percent(shape: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(1)
    m, n = shape
    # Noise bulk plus a dominant direction 1.3x above the bulk edge, the shape of a trained weight
    # (a pure Gaussian matrix has a near-degenerate top and needs more iterations; see next test).
    a, b = torch.randn(3, m, 1, generator=g), torch.randn(3, 1, n, generator=g)
    top = 1.3 * (m**0.5 + n**0.5) * (a / a.norm(dim=1, keepdim=True)) * (b / b.norm(dim=2, keepdim=True))
    W = torch.randn(3, m, n, generator=g) + top
    v = init_vectors(3, n, generator=g)
    # A slowly drifting matrix, as between optimizer steps: 2 iterations per "step", warm started.
    for _ in range(10):
        W = W + 0.01 * torch.randn(W.shape, generator=g)
        est, v = power_iteration(W, v, 2)
    exact = torch.linalg.matrix_norm(W, ord=2)
    assert torch.all(est <= exact * (1 + 1e-5))  # a lower bound
    assert torch.all(est >= 0.99 * exact)


def test_gaussian_matrix_converges_with_warm_start_over_steps() -> None:
    g = torch.Generator().manual_seed(2)
    W = torch.randn(2, 64, 128, generator=g)
    v = init_vectors(2, 128, generator=g)
    for _ in range(20):  # a fixed matrix: 20 steps of 2 iterations
        est, v = power_iteration(W, v, 2)
    assert torch.all(est >= 0.99 * torch.linalg.matrix_norm(W, ord=2))


def test_cold_start_is_a_lower_bound_and_converges() -> None:
    A = torch.randn(5, 20, 30)
    exact = torch.linalg.matrix_norm(A, ord=2)
    v = init_vectors(5, 30)
    one, _ = power_iteration(A, v, 1)
    many, _ = power_iteration(A, v, 200)
    assert torch.all(one <= exact * (1 + 1e-5)) and torch.all(one < many)
    torch.testing.assert_close(many, exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(sigma_max(A[0], iters=200), exact[0], rtol=1e-4, atol=0)


def test_zero_matrix_keeps_its_vector() -> None:
    A = torch.zeros(2, 4, 3)
    A[1] = torch.randn(4, 3)
    v = init_vectors(2, 3)
    s, v2 = power_iteration(A, v, 2)
    assert s[0] == 0 and torch.equal(v2[0], v[0])
    assert s[1] > 0 and torch.isfinite(v2).all()


def test_bad_input() -> None:
    A, v = torch.randn(2, 3, 4), torch.randn(2, 4)
    with pytest.raises(ValueError, match="power_iters"):
        power_iteration(A, v, 0)
    with pytest.raises(ValueError, match="power_iters"):
        power_iteration(A, v, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expects A"):
        power_iteration(A, torch.randn(2, 3), 1)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 70),
    n=st.integers(1, 70),
    squarings=st.integers(0, 5),
    decay=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_sigma_upper_bound_is_certified_and_tight(m, n, squarings, decay, seed) -> None:
    """σ₁ ≤ bound ≤ r^{1/2^{s+2}}·σ₁ in float32, for spectra from flat (decay 0) to steep."""
    from structlearn.optim.power_iteration import sigma_upper_bound

    g = torch.Generator().manual_seed(seed)
    r = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))
    s = torch.arange(1, r + 1, dtype=torch.float64) ** -decay
    A = ((U * s) @ V.T).float().unsqueeze(0)
    exact = float(torch.linalg.matrix_norm(A[0].double(), ord=2))
    bound = float(sigma_upper_bound(A, squarings)[0])
    margin = 1 + 16 * torch.finfo(torch.float32).eps * max(m, n)  # the rounding allowance
    assert exact <= bound <= exact * r ** (1 / 2 ** (squarings + 2)) * margin * (1 + 2e-5)
    assert float(sigma_upper_bound(torch.zeros(2, m, n), squarings).max()) == 0.0


def test_gram_variants_match_the_matrix_versions() -> None:
    from structlearn.optim.power_iteration import gram, power_iteration_gram, sigma_upper_bound

    g = torch.Generator().manual_seed(5)
    A = torch.randn(4, 30, 12, generator=g, dtype=torch.float64)
    v = init_vectors(4, 12, dtype=torch.float64, generator=g)
    s_a, v_a = power_iteration(A, v, 3)
    s_g, v_g = power_iteration_gram(gram(A), v, 3)
    assert torch.allclose(s_a, s_g, rtol=1e-12) and torch.allclose(v_a, v_g, rtol=1e-12)
    assert torch.all(s_g <= torch.linalg.matrix_norm(A, ord=2) * (1 + 1e-12))  # still a lower bound
    assert gram(A.mT).shape == (4, 12, 12)  # the smaller side
    zero = torch.zeros(1, 5, 5)
    s0, v0 = power_iteration_gram(zero, init_vectors(1, 5), 2)
    assert s0.item() == 0 and torch.isfinite(v0).all() and v0.norm() > 0  # a zero matrix keeps its vector
    assert sigma_upper_bound(zero, 4).item() == 0
    with pytest.raises(ValueError, match="power_iteration_gram expects"):
        power_iteration_gram(torch.zeros(2, 3, 4), torch.zeros(2, 4))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    batch=st.integers(1, 9),
    squarings=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_early_stopping_certificate_is_certified_at_every_level(batch, squarings, seed) -> None:
    """The CPU certificate (stop once the bound ≤ good_enough): every value is still ≥ σ₁, a matrix that
    stops does so at or below its target, one that never stops gets the fixed-level bound exactly, and
    a zero Gram matrix gives +inf (no bound from G alone; :func:`sigma_upper_bound` then returns 0)."""
    from structlearn.optim.power_iteration import gram, sigma_upper_bound_gram

    g = torch.Generator().manual_seed(seed)
    A = torch.randn(batch, 40, 16, generator=g) * torch.rand(batch, 1, 1, generator=g) ** 3
    A[0] = 0.0
    G = gram(A)
    exact = torch.linalg.matrix_norm(A.double(), ord=2)
    fixed = sigma_upper_bound_gram(G, squarings, 40)
    assert torch.equal(sigma_upper_bound_gram(G, squarings, 40, torch.zeros(batch)), fixed)
    target = exact.float() * (0.9 + 0.3 * torch.rand(batch, generator=g))
    early = sigma_upper_bound_gram(G, squarings, 40, target)
    assert bool((early.double() >= exact * (1 - 1e-6)).all())
    # G = 0 may be a zero matrix or one whose products all underflowed: from G alone, no bound
    assert math.isinf(float(early[0])) and math.isinf(float(fixed[0]))
    stopped = early > fixed
    assert bool((early[stopped] <= target[stopped]).all())
    assert torch.equal(early[~stopped], fixed[~stopped])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 300),
    n=st.integers(1, 300),
    kind=st.sampled_from(["gauss", "constant", "rank1", "spiky"]),
    log_scale=st.floats(-20.0, 15.0),
    seed=st.integers(0, 2**16),
)
def test_frobenius_upper_bound_is_certified(m, n, kind, log_scale, seed) -> None:
    """Level −1 of the certificate: at or above the exact ‖A‖_F (float64) ≥ σ₁ for every matrix (within
    the documented rounding margin of it where finite), +inf (no bound) where that margin would not hold:
    tiny norms (underflow) and zero matrices."""
    from structlearn.optim.power_iteration import frobenius_upper_bound

    g = torch.Generator().manual_seed(seed)
    if kind == "gauss":
        A = torch.randn(3, m, n, generator=g)
    elif kind == "constant":  # equal terms: the sum's rounding is not averaged out
        A = torch.full((3, m, n), 1.0 + 2.0**-20)
    elif kind == "rank1":
        A = torch.randn(3, m, 1, generator=g) @ torch.randn(3, 1, n, generator=g)
    else:
        A = torch.randn(3, m, n, generator=g) ** 5
    A = A * 10.0**log_scale
    A[1] = 0.0
    exact = torch.linalg.matrix_norm(A.double())
    got = frobenius_upper_bound(A).double()
    assert bool((got >= exact).all()) and math.isinf(got[1])
    finite = torch.isfinite(got)
    margin = 1 + 4.0 * (m * n + 2) * torch.finfo(torch.float32).eps
    assert bool((got[finite] <= exact[finite] * margin).all())
    assert bool(finite[(exact > 1e-12) & (exact < 1e18)].all())  # a bound away from under- and overflow
    assert bool((exact >= torch.linalg.matrix_norm(A.double(), ord=2) * (1 - 1e-12)).all())


def test_frobenius_upper_bound_gives_up_where_its_margin_would_not_hold() -> None:
    """The rounding margin holds up to k·u = 1/4: 2048 × 2047 float32 entries, not 2048 × 2049."""
    from structlearn.optim.power_iteration import frobenius_upper_bound

    assert torch.isfinite(frobenius_upper_bound(torch.ones(1, 2048, 2047))).all()
    assert torch.isinf(frobenius_upper_bound(torch.ones(1, 2048, 2049))).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 80),
    n=st.integers(1, 80),
    log_scale=st.floats(-44.0, 37.0),
    seed=st.integers(0, 2**16),
)
def test_sigma_upper_bound_is_certified_at_every_scale(m, n, log_scale, seed) -> None:
    """Entries so small that their products underflow in G (the chain had returned 0 for entries below
    ~1e-13), or so large that they overflow: the bound stays ≥ σ₁ (falling back to (m·n)^{1/2}·max|a|),
    and it is the Gram certificate itself away from those extremes."""
    from structlearn.optim.power_iteration import max_entry_upper_bound, sigma_upper_bound

    g = torch.Generator().manual_seed(seed)
    A64 = torch.randn(2, m, n, generator=g, dtype=torch.float64) * 10.0**log_scale
    A = A64.float()
    exact = torch.linalg.matrix_norm(A.double(), ord=2)
    got = sigma_upper_bound(A, 4).double()
    assert bool((got >= exact).all())
    assert bool((max_entry_upper_bound(A).double() >= exact).all())
    if -6.0 < log_scale < 7.0:  # far from under- and overflow: the tight certificate, not the fallback
        assert bool((got <= exact * min(m, n) ** (1 / 64) * 1.01).all())
