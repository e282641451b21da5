"""The SVD start against numpy's dense SVD: singular values (not their squares) on both paths,
and a rank-1 matrix reproduced with its scale."""

from __future__ import annotations

import numpy as np
import pytest

from skhyperlearn.solvers import _init
from skhyperlearn.solvers._init import _leading_left_singular, _unfolding, svd_factors


def _sparse_tensor(shape, nnz, seed=0):
    rng = np.random.default_rng(seed)
    coords = np.unique(np.stack([rng.integers(0, n, nnz) for n in shape], axis=1), axis=0)
    return coords, rng.normal(size=coords.shape[0])


def _dense(coords, values, shape):
    out = np.zeros(shape)
    out[tuple(coords.T)] = values
    return out


@pytest.mark.parametrize("path", ["dense", "eigsh"])
def test_leading_singular_values_and_vectors_match_numpy(monkeypatch, path):
    shape = (15, 12, 10)
    coords, values = _sparse_tensor(shape, 300)
    if path == "eigsh":
        # Every unfolding above 0 cells goes through eigsh of X Xᵀ, as large ones do.
        monkeypatch.setattr(_init, "_DENSE_SVD_CELLS", 0)
    dense = _dense(coords, values, shape)
    rank = 4
    for k in range(3):
        unf = _unfolding(coords, values, shape, k)
        u, s = _leading_left_singular(unf, rank, np.random.RandomState(0))
        order = np.argsort(s)[::-1]
        u, s = u[:, order], s[order]
        u_ref, s_ref, _ = np.linalg.svd(np.moveaxis(dense, k, 0).reshape(shape[k], -1))
        np.testing.assert_allclose(s, s_ref[:rank], rtol=1e-8)
        np.testing.assert_allclose(np.abs(u.T @ u_ref[:, :rank]), np.eye(rank), atol=1e-6)


@pytest.mark.parametrize("path", ["dense", "eigsh"])
def test_svd_start_reproduces_a_rank_one_matrix_with_its_scale(monkeypatch, path):
    if path == "eigsh":
        monkeypatch.setattr(_init, "_DENSE_SVD_CELLS", 0)
    rng = np.random.default_rng(3)
    u, v = rng.uniform(0.5, 2.0, 9), rng.uniform(0.5, 2.0, 7)
    matrix = 40.0 * np.outer(u, v)
    coords = np.argwhere(matrix != 0)
    a, b = svd_factors(coords, matrix[tuple(coords.T)], matrix.shape, 2, np.random.RandomState(0))
    np.testing.assert_allclose(a @ b.T, matrix, rtol=1e-8)
    # The second direction carries nothing of a rank-1 matrix.
    np.testing.assert_allclose(np.outer(a[:, 1], b[:, 1]), 0.0, atol=1e-6 * matrix.max())
