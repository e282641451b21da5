"""Scale properties of the fit (issue #12), checked with hypothesis.

- Without graphs and ridge, J(c·X) at ``c^(1/K)·A`` is c² J(X) at A: every exact update is
  scale-equivariant, so fits of X and c·X give the same normalized factors and reconstructions
  scaled by c, in float32 and float64 alike (the ridge floors are relative to each system).
- With graphs (and ridge), the data term scales by c² but the graph and ridge terms by
  ``c^(2/K)``: fitting c·X with ``lam`` is fitting X with ``lam·c^(2 − 2/K)`` (the ``lam``
  docstring), from correspondingly scaled starts.
"""

from __future__ import annotations

import warnings

import numpy as np
import sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.graphs import normalized_laplacian

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow],
)


def _tensor(shape, seed, dtype) -> sparse.COO:
    rng = np.random.default_rng(seed)
    n = 3 * max(shape)
    coords = np.stack([rng.integers(0, s, n) for s in shape])
    return sparse.COO(coords, (rng.random(n) + 0.5).astype(dtype), shape=shape)


def _laplacian(n: int, seed: int):
    rng = np.random.default_rng(seed)
    w = np.triu((rng.random((n, n)) < 0.5).astype(float), 1)
    w[np.arange(n - 1), np.arange(1, n)] = 1.0
    return normalized_laplacian(w + w.T)


def _fit(x, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the runs are short on purpose
        return HyperLearnDecomposition(max_iter=4, tol=0.0, random_state=0, **params).fit(x)


def _normalized(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=0), np.finfo(np.float64).tiny)


shapes = st.sampled_from([(7, 5), (6, 5, 4), (4, 4, 3, 3)])
exponents = st.floats(-8.0, 8.0, allow_nan=False)


@SETTINGS
@given(
    shape=shapes,
    exponent=exponents,
    dtype=st.sampled_from([np.float32, np.float64]),
    loss=st.sampled_from(["hypergraph", "observed"]),
    seed=st.integers(0, 3),
)
def test_without_graph_and_ridge_the_fit_scales_with_x(shape, exponent, dtype, loss, seed):
    c = 10.0**exponent
    x = _tensor(shape, seed, dtype)
    xc = sparse.COO(x.coords, (x.data * c).astype(dtype), shape=shape)
    assert np.all(xc.data > 0)  # c·X is representable in dtype
    params = {"rank": 2, "alpha": 0.0, "loss": loss, "bias": False, "init": "random"}
    base, scaled = _fit(x, **params), _fit(xc, **params)
    tol = 1e-6 if dtype == np.float64 else 2e-2
    for a, b in zip(base.factors_, scaled.factors_, strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(_normalized(b), _normalized(a), atol=tol)
    rec, rec_c = base.reconstruct(x.coords.T), scaled.reconstruct(x.coords.T)
    np.testing.assert_allclose(rec_c / c, rec, atol=tol * np.abs(rec).max())


@SETTINGS
@given(
    shape=shapes,
    exponent=st.floats(-4.0, 4.0, allow_nan=False),
    loss=st.sampled_from(["hypergraph", "observed"]),
    alpha=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 3),
)
def test_with_graphs_scaling_x_by_c_is_scaling_lam_by_c_to_2_minus_2_over_k(
    shape, exponent, loss, alpha, seed
):
    c = 10.0**exponent
    order = len(shape)
    x = _tensor(shape, seed, np.float64)
    xc = sparse.COO(x.coords, x.data * c, shape=shape)
    laps = [_laplacian(n, seed + k) for k, n in enumerate(shape)]
    rng = np.random.default_rng(seed)
    start = [rng.random((n, 2)) + 0.1 for n in shape]
    common = {"rank": 2, "alpha": alpha, "loss": loss, "bias": False, "laplacians": laps}
    # X with lam=1 (a model away from the zero solution), c·X with lam = 1 / c^(2 − 2/K).
    lam = c ** -(2 - 2 / order)
    a = _fit(xc, lam=lam, init=[s * c ** (1 / order) for s in start], cg_tol=1e-12, **common)
    b = _fit(x, lam=lam * c ** (2 - 2 / order), init=start, cg_tol=1e-12, **common)
    for fa, fb in zip(a.factors_, b.factors_, strict=True):
        np.testing.assert_allclose(
            fa / c ** (1 / order), fb, rtol=1e-6, atol=1e-8 * np.abs(fb).max()
        )
    rec_a, rec_b = a.reconstruct(x.coords.T), b.reconstruct(x.coords.T)
    np.testing.assert_allclose(rec_a / c, rec_b, rtol=1e-6, atol=1e-8 * np.abs(rec_b).max())
    # lam·c² (what the data term alone suggests) is a different problem as soon as c ≠ 1.
    if abs(exponent) > 1:
        other = _fit(x, lam=lam * c**2, init=start, cg_tol=1e-12, **common)
        assert not np.allclose(other.reconstruct(x.coords.T), rec_b, rtol=1e-3)
