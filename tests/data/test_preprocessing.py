"""Context modes summed out and count transforms, against dense references."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import (
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from skhyperlearn import Hypergraph, HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.preprocessing import MarginalizeModes, marginalize_modes


def _random_counts(shape, nnz, seed=0) -> sparse.COO:
    rng = np.random.default_rng(seed)
    coords = np.stack([rng.integers(0, n, nnz) for n in shape])
    # Repeated coordinates sum: some cells hold counts above one.
    return sparse.COO(coords, rng.integers(1, 4, nnz).astype(float), shape=shape)


@pytest.mark.parametrize("modes", [2, [2], (1,), [-1], [1, 3]])
def test_sum_matches_dense_reference(modes):
    X = _random_counts((7, 5, 4, 3), 120)
    dense = X.todense()
    axes = tuple(sorted(m % 4 for m in np.atleast_1d(modes)))
    out = marginalize_modes(X, modes)
    assert isinstance(out, sparse.COO)
    np.testing.assert_allclose(out.todense(), dense.sum(axis=axes))


@pytest.mark.parametrize(
    ("counts", "reference"),
    [("raw", lambda d: d), ("log1p", np.log1p), ("binary", lambda d: (d > 0).astype(float))],
)
def test_count_transforms(counts, reference):
    X = _random_counts((6, 5, 4), 80, seed=1)
    out = marginalize_modes(X, 1, counts=counts)
    np.testing.assert_allclose(out.todense(), reference(X.todense().sum(axis=1)))


def test_scipy_and_dense_input_and_no_modes():
    dense = _random_counts((6, 5, 4), 50, seed=2).todense()
    np.testing.assert_allclose(marginalize_modes(dense, 2).todense(), dense.sum(axis=2))
    matrix = sp.random(8, 6, density=0.3, random_state=0, format="csr") * 3
    out = MarginalizeModes(counts="log1p").fit_transform(matrix)
    np.testing.assert_allclose(out.todense(), np.log1p(matrix.toarray()))
    # No modes and raw counts: the input itself goes through.
    assert MarginalizeModes().fit_transform(matrix) is matrix


def test_hypergraph_keeps_remaining_graphs_ids_and_sample_mode():
    data = make_hypergraph(shape=(12, 9, 7), rank=2, random_state=0)
    ids = [np.arange(12) + 100, None, np.arange(7) + 7]
    H = Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency", sample_mode=2, ids=ids)
    out = marginalize_modes(H, 1, counts="log1p")
    assert isinstance(out, Hypergraph)
    assert out.shape == (12, 7)
    assert out.sample_mode == 1
    assert out.graph_kind == "adjacency"
    assert (out.graphs[0] != data.adjacencies[0]).nnz == 0
    assert (out.graphs[1] != data.adjacencies[2]).nnz == 0
    np.testing.assert_array_equal(out.ids[0], ids[0])
    np.testing.assert_array_equal(out.ids[1], ids[2])
    np.testing.assert_allclose(out.tensor.todense(), np.log1p(data.tensor.todense().sum(axis=1)))


def test_inputs_are_not_modified():
    X = _random_counts((6, 5, 4), 60, seed=3)
    coords, values = X.coords.copy(), X.data.copy()
    marginalize_modes(X, 2, counts="log1p")
    np.testing.assert_array_equal(X.coords, coords)
    np.testing.assert_array_equal(X.data, values)


@pytest.mark.parametrize(
    ("modes", "counts", "error", "match"),
    [
        (0, "raw", ValueError, "sample mode"),
        (3, "raw", ValueError, "out of range"),
        ([1, 1], "raw", ValueError, "repeated"),
        ([1, 2], "raw", ValueError, "fewer than 2 modes"),
        ("1", "raw", TypeError, "modes must be"),
        ([1.0], "raw", TypeError, "modes must hold ints"),
        ([True], "raw", TypeError, "modes must hold ints"),
        (1, "sqrt", ValueError, r"'counts' parameter of marginalize_modes must be a str among"),
    ],
)
def test_bad_parameters_name_the_problem(modes, counts, error, match):
    X = _random_counts((6, 5, 4), 30)
    with pytest.raises(error, match=match):
        marginalize_modes(X, modes, counts=counts)


def test_negative_values_refused_by_count_transforms():
    X = sparse.COO(np.array([[0, 1], [0, 1], [0, 0]]), np.array([-1.0, 2.0]), shape=(2, 2, 1))
    with pytest.raises(ValueError, match="non-negative"):
        marginalize_modes(X, 2, counts="log1p")
    np.testing.assert_allclose(marginalize_modes(X, 2).todense(), [[-1.0, 0.0], [0.0, 2.0]])


def test_constant_context_factor_is_the_summed_fit():
    """Summing a mode out fits the same model as a constant factor on it (up to the scale)."""
    X = _random_counts((9, 7, 4), 150, seed=4)
    model = HyperLearnDecomposition(rank=2, max_iter=200, tol=1e-12, random_state=0)
    A, B = model.fit(marginalize_modes(X, 2)).factors_
    dense = X.todense()
    summed_fit = np.einsum("ir,jr->ij", A, B)
    # The best model constant along mode 2 predicts the mean over it: J of X at that model is
    # ‖X‖² − ‖ΣX‖²/N + ‖ΣX − N·M‖²/N, minimised by the same M = fit of the summed tensor / N.
    n = dense.shape[2]
    constant = np.repeat((summed_fit / n)[:, :, None], n, axis=2)
    direct = np.sum((dense - constant) ** 2)
    identity = (
        np.sum(dense**2)
        - np.sum(dense.sum(2) ** 2) / n
        + np.sum((dense.sum(2) - summed_fit) ** 2) / n
    )
    np.testing.assert_allclose(direct, identity, rtol=1e-10)


def test_in_a_pipeline_with_grid_search():
    data = make_hypergraph(shape=(40, 12, 6), rank=2, random_state=0)
    H = Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency")
    pipe = make_pipeline(
        MarginalizeModes(2, counts="log1p"),
        HyperLearnDecomposition(rank=2, alpha=0.1, max_iter=20, random_state=0),
    )
    search = GridSearchCV(pipe, {"hyperlearndecomposition__lam": [0.1, 1.0]}, cv=2)
    search.fit(H)
    assert search.best_estimator_.transform(H[:5]).shape == (5, 2)


@pytest.mark.parametrize(
    "check",
    [
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
        check_no_attributes_set_in_init,
        check_estimator_repr,
    ],
)
def test_sklearn_api_checks(check):
    # The full parametrize_with_checks suite feeds 2-D arrays and expects arrays back; this
    # transformer maps tensors to tensors, so only the API checks that hold for it are run.
    check("MarginalizeModes", MarginalizeModes(counts="log1p"))


def test_clone_and_pickle_round_trip():
    X = _random_counts((6, 5, 4), 40, seed=5)
    step = clone(MarginalizeModes([2], counts="log1p")).fit(X)
    again = pickle.loads(pickle.dumps(step))
    np.testing.assert_allclose(again.transform(X).todense(), step.transform(X).todense())
    with pytest.raises(ValueError, match="expecting 20 features"):
        step.transform(_random_counts((6, 5, 3), 40))
