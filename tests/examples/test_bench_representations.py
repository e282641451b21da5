"""The helpers of benchmarks/representations.py that are not a library's own code."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("implicit")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from representations import ImplicitALS, _Counts


def test_implicit_als_folds_new_rows_in_by_weighted_least_squares():
    train = sp.random(60, 40, density=0.15, random_state=1, format="csr")
    train.data[:] = 1.0
    new = sp.random(5, 40, density=0.2, random_state=2, format="csr")
    new.data[:] = 1.0
    model = ImplicitALS(4, alpha=10.0, regularization=0.5).fit(train)
    folded = model.transform(new)
    Y = np.asarray(model.model_.item_factors, dtype=np.float64)
    # implicit's objective for one row: stored cells weigh alpha·x, absent ones 1, target 1
    # where stored; its minimiser by the dense normal equations.
    for row, got in zip(new.toarray(), folded, strict=True):
        w = np.where(row > 0, 10.0 * row, 1.0)
        p = (row > 0).astype(np.float64)
        A = Y.T @ (w[:, None] * Y) + 0.5 * np.eye(4)
        np.testing.assert_allclose(got, np.linalg.solve(A, Y.T @ (w * p)), rtol=1e-3, atol=1e-4)


def test_counts_transforms():
    X = sp.csr_array(np.array([[0.0, 3.0], [1.0, 0.0]]))
    np.testing.assert_allclose(_Counts("log1p").transform(X).toarray(), np.log1p(X.toarray()))
    np.testing.assert_array_equal(_Counts("binary").transform(X).toarray(), [[0, 1], [1, 0]])
