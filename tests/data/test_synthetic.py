"""Tests for the synthetic hypergraph generator."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
import scipy.sparse as sp
import sparse

from skhyperlearn.datasets._synthetic import _first_distinct, make_hypergraph


def _dense_cp(factors):
    letters = string.ascii_lowercase[: len(factors)]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    return np.einsum(spec, *factors)


def _dense_laplacian(W):
    d = W.sum(axis=1)
    inv = 1.0 / np.sqrt(d)
    return np.eye(len(d)) - inv[:, None] * W * inv[None, :]


def _rayleigh(A, L):
    return float(np.trace(A.T @ (L @ A)) / np.sum(A**2))


@pytest.mark.parametrize(
    "shape",
    [(8, 6), (10, 7, 5), (6, 5, 4, 3), (5, 4, 3, 3, 2)],
)
@pytest.mark.parametrize("values", ["binary", "real"])
def test_output_structure(shape, values):
    rank = 3
    data = make_hypergraph(shape, rank, n_entries=20, values=values, random_state=0)
    K = len(shape)
    X = data.tensor
    assert isinstance(X, sparse.COO)
    assert X.shape == shape
    assert X.dtype == np.float64
    assert X.nnz == 20
    # coalesced: strictly increasing linear indices
    assert np.all(np.diff(np.ravel_multi_index(tuple(X.coords), shape)) > 0)
    assert data.shape == shape
    assert data.rank == rank
    for key in ("adjacencies", "laplacians", "factors", "labels", "latent_positions"):
        assert len(data[key]) == K
    for k, n in enumerate(shape):
        W, L, A, y = data.adjacencies[k], data.laplacians[k], data.factors[k], data.labels[k]
        assert isinstance(W, sp.csr_array)
        assert isinstance(L, sp.csr_array)
        assert W.shape == L.shape == (n, n)
        assert abs(W - W.T).max() == 0
        np.testing.assert_allclose(L.toarray(), _dense_laplacian(W.toarray()), atol=1e-12)
        assert A.shape == (n, rank)
        assert np.all(A >= 0)
        assert y.shape == (n,)
        assert y.dtype == np.int64
    if values == "binary":
        np.testing.assert_array_equal(X.data, 1.0)


@pytest.mark.parametrize("values", ["binary", "real"])
def test_deterministic(values):
    kwargs = dict(shape=(20, 15, 10), rank=3, n_entries=300, values=values, noise=0.1)
    a = make_hypergraph(**kwargs, random_state=42)
    b = make_hypergraph(**kwargs, random_state=42)
    c = make_hypergraph(**kwargs, random_state=43)
    np.testing.assert_array_equal(a.tensor.coords, b.tensor.coords)
    np.testing.assert_array_equal(a.tensor.data, b.tensor.data)
    for k in range(3):
        np.testing.assert_array_equal(a.factors[k], b.factors[k])
        np.testing.assert_array_equal(a.labels[k], b.labels[k])
        assert (a.adjacencies[k] != b.adjacencies[k]).nnz == 0
    assert not np.array_equal(a.tensor.coords, c.tensor.coords)


def test_real_values_are_cp_values():
    data = make_hypergraph((9, 8, 7), 3, n_entries=150, values="real", random_state=1)
    dense = _dense_cp(data.factors)
    X = data.tensor
    np.testing.assert_allclose(X.data, dense[tuple(X.coords)], rtol=1e-12)


def test_real_values_fully_observed_equal_dense_cp():
    data = make_hypergraph((5, 4, 3, 2), 2, density=1.0, values="real", random_state=2)
    np.testing.assert_allclose(data.tensor.todense(), _dense_cp(data.factors), rtol=1e-12)


def test_real_noise_scale():
    clean = make_hypergraph((30, 20, 10), 3, n_entries=4000, values="real", random_state=3)
    noisy = make_hypergraph(
        (30, 20, 10), 3, n_entries=4000, values="real", noise=0.5, random_state=3
    )
    np.testing.assert_array_equal(clean.tensor.coords, noisy.tensor.coords)
    resid = noisy.tensor.data - clean.tensor.data
    assert resid.std() == pytest.approx(0.5 * clean.tensor.data.std(), rel=0.1)


@pytest.mark.parametrize("density", [1.0, 0.9, 0.5])
def test_binary_dense_small_tensors(density):
    shape = (5, 4, 3)
    data = make_hypergraph(shape, 2, density=density, random_state=4)
    assert data.tensor.nnz == round(density * math.prod(shape))
    if density == 1.0:
        np.testing.assert_array_equal(data.tensor.todense(), 1.0)


def _cp_at(factors, coords):
    """CP values at the rows of ``coords`` (n, K), straight from the definition."""
    terms = np.ones((coords.shape[0], factors[0].shape[1]))
    for k, A in enumerate(factors):
        terms = terms * A[coords[:, k]]
    return terms.sum(axis=1)


@pytest.mark.parametrize("shape", [(40, 30, 20), (300, 200, 100)])
def test_binary_cells_follow_cp_values(shape):
    # the small shape enumerates every cell, the large one draws and de-duplicates
    data = make_hypergraph(shape, 3, n_entries=2000, random_state=5)
    rng = np.random.default_rng(0)
    uniform = np.column_stack([rng.integers(0, n, 5000) for n in shape])
    chosen = _cp_at(data.factors, data.tensor.coords.T)
    assert chosen.mean() > 1.3 * _cp_at(data.factors, uniform).mean()
    # noise=1 draws uniformly: no preference left
    flat = make_hypergraph(shape, 3, n_entries=2000, noise=1.0, random_state=5)
    ratio = _cp_at(flat.factors, flat.tensor.coords.T).mean() / _cp_at(flat.factors, uniform).mean()
    assert ratio == pytest.approx(1.0, abs=0.1)


def test_planted_factors_are_smooth():
    data = make_hypergraph((60, 50, 40), 4, random_state=6)
    rng = np.random.default_rng(0)
    for A, L in zip(data.factors, data.laplacians, strict=True):
        random = rng.standard_normal(A.shape)
        assert _rayleigh(A, L) < 0.1 * _rayleigh(random, L)
        # also smoother than a non-negative random matrix, whose mean part is already smooth
        assert _rayleigh(A, L) < 0.2 * _rayleigh(rng.random(A.shape), L)
    rough = make_hypergraph((60, 50, 40), 4, smoothness=0.0, random_state=6)
    for A_smooth, A_rough, L in zip(data.factors, rough.factors, data.laplacians, strict=True):
        assert _rayleigh(A_smooth, L) < _rayleigh(A_rough, L)


def test_labels_are_communities_visible_in_factors_and_graph():
    data = make_hypergraph((60, 50, 40), 4, n_communities=[4, 3, 2], random_state=7)
    for k, (A, W, y) in enumerate(zip(data.factors, data.adjacencies, data.labels, strict=True)):
        n_comm = [4, 3, 2][k]
        assert set(np.unique(y)) == set(range(n_comm))
        counts = np.bincount(y)
        assert counts.max() - counts.min() <= 1  # balanced
        # nearest-centroid classification on the factors recovers the communities
        centroids = np.stack([A[y == c].mean(0) for c in range(n_comm)])
        pred = np.argmin(((A[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        assert np.mean(pred == y) > 0.9
        # graph edges mostly stay inside communities
        rows, cols = W.nonzero()
        assert np.mean(y[rows] == y[cols]) > 0.8


def test_default_entries_and_neighbours_capped():
    data = make_hypergraph((3, 2), rank=1, n_neighbors=50, random_state=0)
    assert data.tensor.nnz >= 1
    assert data.adjacencies[1].toarray().tolist() == [[0, 1], [1, 0]]
    assert make_hypergraph(random_state=0).tensor.nnz == round(0.05 * 60 * 50 * 40)


def test_large_case_has_the_requested_entries():
    data = make_hypergraph((200, 150, 100), 5, n_entries=50_000, random_state=0)
    assert data.tensor.nnz == 50_000


def test_large_shape_never_enumerates():
    shape = (2000, 2000, 2000)  # 8e9 cells: enumerating them would not fit in memory
    data = make_hypergraph(shape, 2, n_entries=1000, n_neighbors=2, random_state=0)
    assert data.tensor.nnz == 1000
    assert data.tensor.shape == shape


def test_first_distinct_keeps_draw_order_and_survives_index_overflow():
    shape = (2**40, 2**40, 2**40)  # the linear index would overflow int64
    coords = np.array([[5, 1, 2], [0, 0, 0], [5, 1, 2], [2**39, 3, 1], [0, 0, 0], [7, 7, 7]])
    np.testing.assert_array_equal(_first_distinct(coords, shape, 3), coords[[0, 1, 3]])
    np.testing.assert_array_equal(_first_distinct(coords, (2**40, 8, 8), 10), coords[[0, 1, 3, 5]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (5,)}, "shape must have at least 2"),
        ({"shape": (5, 1)}, r"shape\[1\] must be an integer >= 2"),
        ({"shape": 5}, "shape must be a sequence"),
        ({"rank": 0}, r"'rank' parameter .* must be an int in the range \[1, inf\)"),
        ({"n_entries": 0}, r"'n_entries' parameter .* an int in the range \[1, inf\) or None"),
        ({"shape": (3, 3), "n_entries": 10}, "n_entries = 10 exceeds"),
        ({"density": 0.0}, r"'density' parameter .* a float in the range \(0.0, 1.0\] or None"),
        ({"density": 1.5}, r"'density' parameter .* a float in the range \(0.0, 1.0\] or None"),
        ({"density": True}, "density must be a finite number, got True"),
        ({"density": 0.5, "n_entries": 10}, "at most one of n_entries and density"),
        ({"values": "ternary"}, r"'values' parameter .* a str among \{.*'real'.*\}. Got 'ternary'"),
        ({"noise": -0.1}, r"'noise' parameter .* a float in the range \[0.0, inf\)"),
        ({"noise": 1.5}, "noise must be in"),
        ({"n_neighbors": 0}, r"'n_neighbors' parameter .* an int in the range \[1, inf\)"),
        ({"smoothness": -1.0}, r"'smoothness' parameter .* a float in the range \[0.0, inf\)"),
        ({"smoothness": float("nan")}, r"'smoothness' parameter .* \[0.0, inf\). Got nan"),
        ({"n_communities": [2, 2]}, "n_communities must have one entry per mode"),
        ({"n_communities": 100}, r"n_communities\[0\] = 100 exceeds"),
    ],
)
def test_validation(kwargs, match):
    kwargs = {"shape": (10, 8, 6), **kwargs}
    with pytest.raises(ValueError, match=match):
        make_hypergraph(**kwargs, random_state=0)


def test_rank_type_error():
    with pytest.raises(TypeError, match="'rank' parameter of make_hypergraph must be an int"):
        make_hypergraph((4, 4), rank=2.0)
    with pytest.raises(TypeError, match="rank must be an integer, got bool True"):
        make_hypergraph((4, 4), rank=True)
