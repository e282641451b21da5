"""Tests for skhyperlearn.graphs against dense numpy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from skhyperlearn.graphs import (
    cooccurrence_graph,
    graph_laplacians,
    knn_graph,
    normalized_laplacian,
)


def _random_adjacency(n, density=0.4, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 2.0, (n, n)) * (rng.random((n, n)) < density)
    W = np.triu(W, 1)
    return W + W.T


def _dense_laplacian(W):
    """I − D^{-1/2} W D^{-1/2}, self-loops dropped, isolated nodes all zero (csgraph convention)."""
    W = W - np.diag(np.diag(W))
    d = W.sum(axis=1)
    inv = np.zeros_like(d)
    inv[d > 0] = 1.0 / np.sqrt(d[d > 0])
    L = np.eye(len(d)) - inv[:, None] * W * inv[None, :]
    L[d == 0, d == 0] = 0.0
    return L


# ---------------------------------------------------------------- normalized_laplacian


@pytest.mark.parametrize(
    "convert",
    [np.asarray, sp.csr_array, sp.csr_matrix, sp.coo_array, sp.csc_matrix, sparse.COO.from_numpy],
)
def test_laplacian_matches_dense_reference(convert):
    W = _random_adjacency(12, seed=1)
    L = normalized_laplacian(convert(W))
    assert isinstance(L, sp.csr_array)
    assert L.dtype == np.float64
    np.testing.assert_allclose(L.toarray(), _dense_laplacian(W), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 15), density=st.floats(0.05, 1.0), seed=st.integers(0, 10_000))
def test_laplacian_symmetric_psd_spectrum_in_0_2(n, density, seed):
    W = _random_adjacency(n, density, seed)
    L = normalized_laplacian(W).toarray()
    np.testing.assert_allclose(L, _dense_laplacian(W), atol=1e-12)
    np.testing.assert_array_equal(L, L.T)
    eig = np.linalg.eigvalsh(L)
    assert eig.min() >= -1e-10
    assert eig.max() <= 2 + 1e-10


def test_laplacian_isolated_node_is_finite_zero_row():
    W = _random_adjacency(6, density=1.0, seed=2)
    W[3, :] = W[:, 3] = 0.0
    L = normalized_laplacian(sp.csr_array(W)).toarray()
    assert np.all(np.isfinite(L))
    np.testing.assert_array_equal(L[3], 0.0)
    np.testing.assert_array_equal(L[:, 3], 0.0)
    np.testing.assert_allclose(L, _dense_laplacian(W), atol=1e-12)


def test_laplacian_ignores_self_loops_and_accepts_int_and_bool():
    W = _random_adjacency(5, density=1.0, seed=3)
    with_loops = W + np.diag(np.arange(1.0, 6.0))
    np.testing.assert_allclose(
        normalized_laplacian(with_loops).toarray(), _dense_laplacian(W), atol=1e-12
    )
    B = W > 0
    np.testing.assert_allclose(
        normalized_laplacian(B).toarray(), _dense_laplacian(B.astype(float)), atol=1e-12
    )
    np.testing.assert_allclose(
        normalized_laplacian(B.astype(np.int32)).toarray(),
        _dense_laplacian(B.astype(float)),
        atol=1e-12,
    )


def test_laplacian_nearly_symmetric_is_symmetrised():
    W = _random_adjacency(8, density=1.0, seed=4)
    W_pert = W.copy()
    W_pert[0, 1] *= 1 + 1e-12
    L = normalized_laplacian(W_pert)
    assert abs(L - L.T).max() == 0
    np.testing.assert_allclose(L.toarray(), _dense_laplacian(W), atol=1e-10)


@pytest.mark.parametrize("convert", [np.asarray, sp.csr_array, sp.csr_matrix])
def test_laplacian_does_not_modify_input(convert):
    W = convert(_random_adjacency(7, seed=5))
    before = W.copy()
    normalized_laplacian(W)
    if sp.issparse(W):
        assert (W != before).nnz == 0
    else:
        np.testing.assert_array_equal(W, before)


def _bad_inputs():
    W = _random_adjacency(4, density=1.0, seed=6)
    nan = W.copy()
    nan[0, 1] = nan[1, 0] = np.nan
    inf = W.copy()
    inf[0, 1] = inf[1, 0] = np.inf
    neg = W.copy()
    neg[0, 1] = neg[1, 0] = -1.0
    asym = W.copy()
    asym[0, 1] += 0.5
    return [
        (np.zeros(4), ValueError, "adjacency must be 2-D"),
        (np.zeros((3, 4)), ValueError, "adjacency must be square"),
        (sp.csr_array((3, 4)), ValueError, "adjacency must be square"),
        (np.zeros((0, 0)), ValueError, "adjacency is empty"),
        (nan, ValueError, "adjacency contains NaN"),
        (inf, ValueError, "adjacency contains NaN or infinite"),
        (sp.csr_array(nan), ValueError, "adjacency contains NaN"),
        (neg, ValueError, "adjacency has negative weights"),
        (sp.coo_array(neg), ValueError, "adjacency has negative weights"),
        (asym, ValueError, "adjacency is not symmetric"),
        (sp.csr_matrix(asym), ValueError, "adjacency is not symmetric"),
        (W.astype(complex), ValueError, "adjacency has complex values"),
        (np.array([["a", "b"], ["b", "a"]]), TypeError, "adjacency must hold real numbers"),
        ("not a matrix", TypeError, "'adjacency' parameter of normalized_laplacian must be"),
    ]


@pytest.mark.parametrize(("bad", "error", "match"), _bad_inputs())
def test_laplacian_rejects_bad_input_and_leaves_it_unchanged(bad, error, match):
    before = bad.copy() if hasattr(bad, "copy") else bad
    with pytest.raises(error, match=match):
        normalized_laplacian(bad)
    if sp.issparse(bad):
        np.testing.assert_array_equal(bad.toarray(), before.toarray())
    elif isinstance(bad, np.ndarray):
        np.testing.assert_array_equal(bad, before)


def test_graph_laplacians_maps_and_keeps_none():
    W0 = _random_adjacency(5, seed=7)
    W2 = sp.csr_array(_random_adjacency(4, seed=8))
    out = graph_laplacians([W0, None, W2])
    assert out[1] is None
    np.testing.assert_allclose(out[0].toarray(), _dense_laplacian(W0), atol=1e-12)
    np.testing.assert_allclose(out[2].toarray(), _dense_laplacian(W2.toarray()), atol=1e-12)
    with pytest.raises(ValueError, match=r"adjacencies\[1\]: adjacency has negative"):
        graph_laplacians([W0, -W0])
    with pytest.raises(TypeError, match="adjacencies must be a list"):
        graph_laplacians(W2)


# ---------------------------------------------------------------- knn_graph


@pytest.mark.parametrize("mode", ["connectivity", "distance"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_knn_graph_symmetric_and_degree(mode, k):
    X = np.random.default_rng(0).normal(size=(40, 3))
    W = knn_graph(X, k, mode=mode)
    assert isinstance(W, sp.csr_array)
    assert W.dtype == np.float64
    assert abs(W - W.T).max() == 0
    assert np.all(W.diagonal() == 0)
    assert np.all(np.diff(W.indptr) >= k)
    assert np.all(W.data > 0)
    if mode == "connectivity":
        assert np.all(W.data == 1.0)
    else:
        assert np.all(W.data <= 1.0)


def test_knn_graph_matches_brute_force_neighbours_and_gaussian_weights():
    X = np.random.default_rng(1).normal(size=(25, 2))
    k, sigma = 4, 0.7
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    nearest = np.argsort(D, axis=1)[:, :k]
    A = np.zeros_like(D)
    for i, row in enumerate(nearest):
        A[i, row] = np.exp(-(D[i, row] ** 2) / (2 * sigma**2))
    expected = np.maximum(A, A.T)
    W = knn_graph(X, k, mode="distance", sigma=sigma)
    np.testing.assert_allclose(W.toarray(), expected, rtol=1e-12, atol=0)
    C = knn_graph(X, k)
    np.testing.assert_array_equal(C.toarray(), (expected > 0).astype(float))


def test_knn_graph_duplicate_points_no_self_loops():
    X = np.repeat(np.arange(5.0)[:, None], 2, axis=0)
    W = knn_graph(X, 2, mode="distance")
    assert np.all(W.diagonal() == 0)
    assert np.all(np.diff(W.indptr) >= 2)
    assert np.all(np.isfinite(W.data))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_neighbors": 10}, ValueError, "n_neighbors must be in"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be in"),
        ({"n_neighbors": 2.5}, TypeError, "'n_neighbors' parameter of knn_graph must be an inst"),
        ({"n_neighbors": True}, TypeError, "n_neighbors must be an integer, got bool"),
        ({"mode": "gauss"}, ValueError, "'mode' parameter of knn_graph must be a str among"),
        ({"mode": "distance", "sigma": 0.0}, ValueError, r"'sigma' .* range \(0.0, inf\)"),
        ({"sigma": 1.0}, ValueError, "sigma is only used"),
    ],
)
def test_knn_graph_validation(kwargs, error, match):
    X = np.random.default_rng(2).normal(size=(10, 2))
    with pytest.raises(error, match=match):
        knn_graph(X, **{"n_neighbors": 3, **kwargs})


def test_knn_graph_rejects_non_finite_features():
    X = np.random.default_rng(2).normal(size=(10, 2))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="features"):
        knn_graph(X, 3)


# ---------------------------------------------------------------- cooccurrence_graph


def _brute_cooccurrence(dense, mode, others):
    """Count shared distinct contexts pair by pair, straight from the dense tensor."""
    contexts = [set() for _ in range(dense.shape[mode])]
    for idx in zip(*np.nonzero(dense), strict=True):
        contexts[idx[mode]].add(tuple(idx[m] for m in others))
    n = dense.shape[mode]
    W = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        W[i, j] = len(contexts[i] & contexts[j])
    return W, np.array([len(c) for c in contexts], dtype=float)


@pytest.mark.parametrize(
    ("mode", "other_modes"),
    [(0, None), (1, None), (2, None), (-1, None), (0, [2]), (1, [0]), (2, [1, 0])],
)
def test_cooccurrence_matches_brute_force(mode, other_modes):
    X = sparse.random((7, 6, 5), density=0.25, random_state=3)
    dense = X.todense()
    order = dense.ndim
    m = mode % order
    others = [o for o in range(order) if o != m] if other_modes is None else other_modes
    expected, sizes = _brute_cooccurrence(dense, m, others)

    W = cooccurrence_graph(X, mode, other_modes=other_modes)
    assert isinstance(W, sp.csr_array)
    np.testing.assert_array_equal(W.toarray(), expected)

    cos = cooccurrence_graph(X, mode, other_modes=other_modes, normalize="cosine").toarray()
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_cos = np.nan_to_num(expected / np.sqrt(np.outer(sizes, sizes)))
        ref_jac = np.nan_to_num(expected / (sizes[:, None] + sizes[None] - expected))
    np.testing.assert_allclose(cos, ref_cos, atol=1e-12)
    jac = cooccurrence_graph(X, mode, other_modes=other_modes, normalize="jaccard").toarray()
    np.testing.assert_allclose(jac, ref_jac, atol=1e-12)


def test_cooccurrence_scipy_matrix_is_order_two():
    M = sp.random(9, 7, density=0.3, random_state=4, format="csr")
    dense = M.toarray()
    for mode in (0, 1):
        expected, _ = _brute_cooccurrence(dense, mode, [1 - mode])
        np.testing.assert_array_equal(cooccurrence_graph(M, mode).toarray(), expected)
    # same as B Bᵀ with the diagonal removed
    B = (dense != 0).astype(float)
    ref = B @ B.T
    np.fill_diagonal(ref, 0)
    np.testing.assert_array_equal(cooccurrence_graph(M, 0).toarray(), ref)


def test_cooccurrence_ignores_stored_zeros_and_values():
    coords = np.array([[0, 1, 2, 0], [0, 0, 1, 1]])
    X = sparse.COO(coords, np.array([5.0, 2.0, 0.0, 1.0]), shape=(3, 2))
    # entity 2's only entry is a stored zero: it is isolated; 0 and 1 share context 0
    np.testing.assert_array_equal(
        cooccurrence_graph(X, 0).toarray(), [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    )


def test_cooccurrence_top_k_then_symmetrised():
    X = sparse.random((12, 8, 6), density=0.3, random_state=5)
    full = cooccurrence_graph(X, 0).toarray()
    W = cooccurrence_graph(X, 0, n_neighbors=2).toarray()
    np.testing.assert_array_equal(W, W.T)
    assert np.all(np.diag(W) == 0)
    # every kept weight is a true co-occurrence weight
    np.testing.assert_array_equal(W[W > 0], full[W > 0])
    # brute-force reference: per row the 2 heaviest edges (ties to the smaller column), then max
    kept = np.zeros_like(full)
    for i, row in enumerate(full):
        candidates = [j for j in np.lexsort((np.arange(row.size), -row)) if row[j] > 0][:2]
        kept[i, candidates] = row[candidates]
    np.testing.assert_array_equal(W, np.maximum(kept, kept.T))


def test_cooccurrence_does_not_densify_large_tensor():
    rng = np.random.default_rng(6)
    shape = (10**5, 10**5, 10**5)
    coords = rng.integers(0, 50, size=(3, 2000))
    X = sparse.COO(coords, np.ones(2000), shape=shape)
    W = cooccurrence_graph(X, 1, other_modes=[0])
    assert W.shape == (10**5, 10**5)
    assert W.nnz > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": 3}, ValueError, "mode must be in"),
        ({"mode": 0, "other_modes": [0]}, ValueError, "other_modes must not contain"),
        ({"mode": 0, "other_modes": []}, ValueError, "other_modes must name"),
        ({"mode": 0, "other_modes": [1, 1]}, ValueError, "other_modes has repeated"),
        ({"mode": 0, "other_modes": [5]}, ValueError, "other_modes must be in"),
        ({"mode": 0, "n_neighbors": 0}, ValueError, r"'n_neighbors' .* range \[1, inf\)"),
        ({"mode": 0, "normalize": "l2"}, ValueError, "'normalize' .* must be a str among"),
        ({"mode": 1.0}, TypeError, "'mode' parameter of cooccurrence_graph must be an instance"),
        ({"mode": True}, TypeError, "mode must be an integer mode index, got True"),
    ],
)
def test_cooccurrence_validation(kwargs, error, match):
    X = sparse.random((4, 3, 2), density=0.5, random_state=0)
    with pytest.raises(error, match=match):
        cooccurrence_graph(X, **kwargs)


def test_cooccurrence_rejects_dense_tensor():
    with pytest.raises(TypeError, match=r"tensor must be a sparse\.COO"):
        cooccurrence_graph(np.ones((3, 3, 3)), 0)
