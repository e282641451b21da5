"""The estimators' repr prints graphs and initial factors as their shapes, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone

from skhyperlearn import HyperLearnDecomposition, HyperLearnRegressor
from skhyperlearn.datasets import make_hypergraph


@pytest.fixture(scope="module")
def data():
    return make_hypergraph(shape=(30, 20, 10), n_entries=300, random_state=0)


def test_graphs_and_init_print_as_shapes(data):
    init = [np.ones((n, 3)) for n in data.tensor.shape]
    model = HyperLearnDecomposition(rank=3, laplacians=[data.laplacians[0], None, None], init=init)
    text = repr(model)
    nnz = data.laplacians[0].nnz
    flat = " ".join(text.split())
    assert flat == (
        "HyperLearnDecomposition(init=[<ndarray 30×3, float64>, <ndarray 20×3, float64>, "
        f"<ndarray 10×3, float64>], laplacians=[<csr_array 30×30, {nnz:,} stored>, None, None], "
        "rank=3)"
    )
    # scikit-learn's printer still wraps long reprs at parameter boundaries.
    assert max(len(line) for line in text.splitlines()) <= 90
    # The full sparse repr that scikit-learn would print is gone.
    assert "Compressed Sparse" not in text and "array([[" not in text


def test_regressor_and_other_sparse_formats():
    lap = sp.identity(5, format="coo")
    text = repr(HyperLearnRegressor(laplacians=(None, lap), shape=(4, 5)))
    assert (
        text == "HyperLearnRegressor(laplacians=(None, <coo_matrix 5×5, 5 stored>), shape=(4, 5))"
    )


def test_plain_parameters_print_as_scikit_learn_does(data):
    model = HyperLearnDecomposition(rank=4, lam=0.5, solver="hyperlearn")
    assert repr(model) == BaseEstimator.__repr__(model)
    assert repr(HyperLearnRegressor()) == "HyperLearnRegressor()"


def test_repr_leaves_parameters_and_clone_untouched(data):
    model = HyperLearnDecomposition(rank=3, laplacians=data.laplacians, max_iter=3)
    repr(model)
    params = model.get_params(deep=False)
    assert all(a is b for a, b in zip(params["laplacians"], data.laplacians, strict=True))
    copy = clone(model)
    assert all(sp.issparse(lap) for lap in copy.laplacians)
    model.fit(data.tensor)
    # A fitted estimator prints the same, and printing does not touch its fitted state.
    factors = [a.copy() for a in model.factors_]
    assert repr(model) == repr(copy)
    assert all(np.array_equal(a, b) for a, b in zip(model.factors_, factors, strict=True))
