"""Tests of the Chebyshev filter and the MGCNN-LSTM diffusion block."""

from __future__ import annotations

import numpy as np
import numpy.polynomial.chebyshev as npcheb
import pytest
import scipy.sparse as sp
import torch

from skhyperlearn.solvers._block import (
    ChebyshevFilter,
    DiffusionBlock,
    laplacian_spectrum_bound,
    sparse_scaled_laplacian,
)


def _normalized_laplacian(n: int, density: float, seed: int) -> np.ndarray:
    """Dense ``I − D^{-1/2} W D^{-1/2}`` of a random symmetric non-negative ``W`` (numpy only)."""
    rng = np.random.default_rng(seed)
    w = rng.random((n, n)) * (rng.random((n, n)) < density)
    w = np.triu(w, 1)
    w = w + w.T
    deg = w.sum(axis=1)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    return np.eye(n) - inv_sqrt[:, None] * w * inv_sqrt[None, :]


def _dense_chebyshev(lap_tilde: np.ndarray, n_terms: int) -> list[np.ndarray]:
    """``T_j(L̃)`` as dense matrices, j = 0..n_terms-1."""
    n = lap_tilde.shape[0]
    mats = [np.eye(n), lap_tilde]
    while len(mats) < n_terms:
        mats.append(2 * lap_tilde @ mats[-1] - mats[-2])
    return mats[:n_terms]


@pytest.mark.parametrize("n_terms", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_filter_matches_dense_reference(n_terms: int, seed: int) -> None:
    n, fin, fout = 12, 3, 4
    lap = _normalized_laplacian(n, density=0.4, seed=seed)
    lam_max = 2.0
    lap_tilde_np = 2 * lap / lam_max - np.eye(n)
    mats = _dense_chebyshev(lap_tilde_np, n_terms)

    # Cross-check the dense recurrence against the spectral definition T_j(L̃) = U T_j(μ) Uᵀ.
    mu, u = np.linalg.eigh(lap_tilde_np)
    assert mu.min() >= -1 - 1e-10 and mu.max() <= 1 + 1e-10
    for j, t_j in enumerate(mats):
        coef = np.zeros(j + 1)
        coef[j] = 1.0
        np.testing.assert_allclose(t_j, (u * npcheb.chebval(mu, coef)) @ u.T, atol=1e-10)

    torch.manual_seed(seed)
    filt = ChebyshevFilter(fin, fout, n_terms).double()
    x = np.random.default_rng(seed + 10).standard_normal((n, fin))
    theta = filt.theta.detach().numpy()
    expected = sum(mats[j] @ x @ theta[j] for j in range(n_terms)) + filt.bias.detach().numpy()

    lap_t = sparse_scaled_laplacian(sp.csr_array(lap), lam_max, dtype=torch.float64)
    assert lap_t.layout == torch.sparse_csr
    got = filt(torch.from_numpy(x), lap_t).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_scaled_laplacian_values_and_inputs() -> None:
    lap = _normalized_laplacian(9, density=0.5, seed=3)
    for lam_max in (2.0, 1.5):
        expected = 2 * lap / lam_max - np.eye(9)
        from_sparse = sparse_scaled_laplacian(sp.coo_matrix(lap), lam_max, dtype=torch.float64)
        from_dense = sparse_scaled_laplacian(lap, lam_max, dtype=torch.float64)
        for t in (from_sparse, from_dense):
            assert t.layout == torch.sparse_csr and t.dtype == torch.float64
            np.testing.assert_allclose(t.to_dense().numpy(), expected, atol=1e-15)
    assert sparse_scaled_laplacian(lap, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="square"):
        sparse_scaled_laplacian(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="lambda_max"):
        sparse_scaled_laplacian(lap, 0.0)


@pytest.mark.parametrize("weight", [1.0, 1e4])
def test_spectrum_bound_keeps_a_weighted_laplacian_in_chebyshev_range(weight: float) -> None:
    """2 for a normalized Laplacian (the figures of every normalized graph unchanged), 2c for c
    times one: the rescaled operator is then the same, with its spectrum in [-1, 1]."""
    lap = _normalized_laplacian(9, density=0.5, seed=3)
    weighted = weight * lap
    bound = laplacian_spectrum_bound(sp.csr_array(weighted))
    assert bound == 2.0 * weight
    assert laplacian_spectrum_bound(weighted) == bound
    assert np.linalg.eigvalsh(weighted).max() <= bound
    # The default rescaling uses that bound.
    tilde = sparse_scaled_laplacian(weighted, dtype=torch.float64).to_dense().numpy()
    np.testing.assert_allclose(tilde, lap - np.eye(9), atol=1e-12)
    # Combinatorial D − W: 2·d_max bounds it too.
    w = np.triu(np.random.default_rng(0).random((7, 7)), 1)
    w = w + w.T
    combinatorial = np.diag(w.sum(axis=1)) - w
    assert np.linalg.eigvalsh(combinatorial).max() <= laplacian_spectrum_bound(combinatorial)
    assert laplacian_spectrum_bound(np.zeros((4, 4))) == 2.0


def test_identity_filter_without_graph() -> None:
    torch.manual_seed(0)
    filt = ChebyshevFilter(3, 5, n_terms=4).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    expected = x @ filt.theta[0] + filt.bias
    torch.testing.assert_close(filt(x, None), expected)
    no_bias = ChebyshevFilter(3, 5, n_terms=4, bias=False).double()
    torch.testing.assert_close(no_bias(x, None), x @ no_bias.theta[0])


def _graph(n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    return sparse_scaled_laplacian(_normalized_laplacian(n, 0.4, seed), dtype=dtype)


@pytest.mark.parametrize("use_graph", [True, False])
def test_zero_output_block_is_identity(use_graph: bool) -> None:
    torch.manual_seed(0)
    block = DiffusionBlock(4, n_terms=3, hidden=8, n_steps=5, init_scale=0.0).double()
    a0 = torch.randn(10, 4, dtype=torch.float64)
    lap = _graph(10, 0, torch.float64) if use_graph else None
    assert torch.equal(block(a0, lap), a0)
    iterates = block(a0, lap, return_all=True)
    assert len(iterates) == 6
    assert all(torch.equal(a, a0) for a in iterates)


def test_default_init_starts_near_identity() -> None:
    torch.manual_seed(0)
    block = DiffusionBlock(4).double()
    a0 = torch.randn(30, 4, dtype=torch.float64)
    a_t = block(a0, _graph(30, 1, torch.float64))
    assert 0 < (a_t - a0).abs().max() < 0.05


def test_gradients_reach_all_parameters() -> None:
    torch.manual_seed(0)
    block = DiffusionBlock(4, n_terms=3, hidden=8, n_steps=3)
    a0 = torch.randn(10, 4)
    loss = (block(a0, _graph(10, 2, torch.float32)) * torch.randn(10, 4)).sum()
    loss.backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck_through_sparse_recurrence() -> None:
    torch.manual_seed(0)
    # A larger output init than the default so the check is not dominated by tiny values.
    block = DiffusionBlock(2, n_terms=4, hidden=3, n_steps=2, init_scale=0.3).double()
    lap = _graph(5, 4, torch.float64)
    a0 = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    params = tuple(block.parameters())
    names = [name for name, _ in block.named_parameters()]

    def fn(a: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        overrides = dict(zip(names, values, strict=True))
        return torch.func.functional_call(block, overrides, (a, lap))

    inputs = (a0, *(p.detach().clone().requires_grad_(True) for p in params))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)

    # The filter alone, w.r.t. its input, through the sparse products.
    filt = ChebyshevFilter(2, 3, n_terms=5).double()
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: filt(x, lap), (x,))


def test_deterministic_given_seed() -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(42)
        block = DiffusionBlock(3, hidden=6, n_steps=4)
        a0 = torch.randn(8, 3)
        return block(a0, _graph(8, 5, torch.float32))

    assert torch.equal(run(), run())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    block = DiffusionBlock(3, hidden=6, n_steps=3).to(dtype=dtype)
    a0 = torch.randn(8, 3, dtype=dtype)
    for lap in (_graph(8, 6, dtype), None):
        out = block(a0, lap, return_all=True)
        assert len(out) == 4
        assert all(a.dtype == dtype and a.shape == (8, 3) for a in out)
        assert torch.isfinite(out[-1]).all()


def test_bad_input_shape() -> None:
    block = DiffusionBlock(3)
    with pytest.raises(ValueError, match="shape"):
        block(torch.zeros(4, 2), None)
