"""The SVD start works on the stored entries only: unfoldings with 10^13 columns are fine."""

from __future__ import annotations

import numpy as np
import sparse

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.solvers._init import _leading_left_singular, _unfolding


def test_unfolding_keeps_only_non_empty_columns_and_the_same_left_singular_vectors():
    rng = np.random.default_rng(0)
    shape = (12, 9, 7)
    coords = np.stack([rng.integers(0, n, 40) for n in shape], axis=1)
    coords = np.unique(coords, axis=0)
    values = rng.random(coords.shape[0])
    unf = _unfolding(coords, values, shape, 0)
    assert unf.shape[1] == len({(b, c) for _, b, c in coords})
    dense = np.zeros(shape)
    dense[tuple(coords.T)] = values
    full = dense.reshape(shape[0], -1)
    u, s = _leading_left_singular(unf, 3, np.random.RandomState(0))
    u_ref, s_ref, _ = np.linalg.svd(full, full_matrices=False)
    np.testing.assert_allclose(s, s_ref[:3], rtol=1e-10)
    # Same subspace (signs and order within ties aside).
    np.testing.assert_allclose(np.abs(u.T @ u_ref[:, :3]), np.eye(3), atol=1e-8)


def test_fewer_non_empty_columns_than_the_rank_pads_with_zero_directions():
    unf_coords = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    unf = _unfolding(unf_coords, np.array([1.0, 2.0, 3.0]), (3, 4, 4), 0)
    u, s = _leading_left_singular(unf, 2, np.random.RandomState(0))
    assert u.shape == (3, 2)
    np.testing.assert_allclose(s, [np.sqrt(14.0), 0.0], atol=1e-12)


def test_svd_start_on_a_fourth_order_tensor_with_huge_unfoldings():
    rng = np.random.default_rng(1)
    shape = (60, 100_000, 100_000, 1_000)  # the mode-0 unfolding has 10^13 columns
    coords = np.stack([rng.integers(0, n, 600) for n in shape])
    X = sparse.COO(coords, np.ones(600), shape=shape)
    model = HyperLearnDecomposition(rank=3, init="svd", max_iter=2, random_state=0).fit(X)
    assert all(np.isfinite(a).all() for a in model.factors_)
