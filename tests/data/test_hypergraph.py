"""Tests of the Hypergraph container: slicing, scikit-learn CV compatibility, builder, checks."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_consistent_length, indexable

from skhyperlearn.hypergraph import Hypergraph


def _random_tensor(shape, density=0.3, seed=0):
    return sparse.random(shape, density=density, random_state=seed)


def _random_adjacency(n, seed=0, density=0.5):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) * (rng.random((n, n)) < density), k=1)
    return sp.csr_array(upper + upper.T)


def _reference_laplacian(w):
    """Dense I - D^-1/2 W D^-1/2 with isolated nodes left at zero (scipy's convention)."""
    w = np.asarray(w, dtype=float)
    d = w.sum(axis=1)
    dinv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    return np.diag((d > 0).astype(float)) - dinv[:, None] * w * dinv[None, :]


@pytest.fixture
def hg():
    tensor = _random_tensor((7, 5, 4))
    graphs = [_random_adjacency(7, 1), None, _random_adjacency(4, 2)]
    ids = [np.arange(100, 107), None, np.array(list("abcd"), dtype=object)]
    return Hypergraph(tensor, graphs, graph_kind="adjacency", ids=ids)


def _check_slice(h, sub, idx, mode):
    """Brute-force reference: numpy take on the dense tensor and graph."""
    np.testing.assert_array_equal(sub.tensor.todense(), np.take(h.tensor.todense(), idx, mode))
    assert sub.shape[mode] == len(idx)
    for k in range(h.ndim):
        if k == mode or h.graphs[k] is None:
            continue
        np.testing.assert_array_equal(sub.graphs[k].toarray(), h.graphs[k].toarray())
    if h.graphs[mode] is not None:
        w = h.graphs[mode].toarray()[np.ix_(idx, idx)]
        np.testing.assert_allclose(sub.graphs[mode].toarray(), w)
        if h.graph_kind == "adjacency":
            expected = _reference_laplacian(w)
        else:
            expected = w  # a given Laplacian is sliced as is
        np.testing.assert_allclose(sub.laplacians[mode].toarray(), expected, atol=1e-12)
    if h.ids[mode] is not None:
        np.testing.assert_array_equal(sub.ids[mode], h.ids[mode][idx])


@pytest.mark.parametrize(
    "idx", [[3, 0, 6], [2, 2, 5, 2], [0], list(range(7)), [6, 5, 4, 3, 2, 1, 0], []]
)
def test_getitem_matches_reference(hg, idx):
    sub = hg[np.array(idx, dtype=np.int64)]
    assert isinstance(sub, Hypergraph)
    assert len(sub) == len(idx)
    _check_slice(hg, sub, np.array(idx, dtype=int), 0)


def test_getitem_boolean_mask_slice_negative_and_scalar(hg):
    mask = np.array([True, False, True, True, False, False, True])
    _check_slice(hg, hg[mask], np.flatnonzero(mask), 0)
    _check_slice(hg, hg[1:6:2], np.arange(1, 6, 2), 0)
    _check_slice(hg, hg[[-1, -7]], np.array([6, 0]), 0)
    # A single integer keeps the mode (one entity), unlike numpy.
    assert hg[3].shape == (1, 5, 4)
    _check_slice(hg, hg[3], np.array([3]), 0)
    _check_slice(hg, hg[[4, 1], ...], np.array([4, 1]), 0)
    _check_slice(hg, hg[[4, 1], :, :], np.array([4, 1]), 0)


def test_getitem_rejects_other_axes_and_bad_indices(hg):
    with pytest.raises(IndexError):
        hg[[0, 1], [0]]
    with pytest.raises(IndexError):
        hg[[0, 7]]
    with pytest.raises(IndexError):
        hg[np.ones(6, dtype=bool)]
    with pytest.raises(IndexError):
        hg[np.array([0.5])]
    with pytest.raises(IndexError):
        hg[True]


def test_laplacian_kind_is_sliced_directly():
    lap = sp.csr_array(_reference_laplacian(_random_adjacency(6, 3).toarray()))
    h = Hypergraph(_random_tensor((6, 3)), [lap, None])
    assert h.graph_kind == "laplacian"
    idx = np.array([5, 1, 1, 3])
    _check_slice(h, h[idx], idx, 0)


def test_sample_mode_other_than_zero(hg):
    h = Hypergraph(hg.tensor, hg.graphs, graph_kind="adjacency", sample_mode=2, ids=hg.ids)
    assert len(h) == 4
    idx = np.array([3, 0, 0])
    sub = h[idx]
    assert sub.sample_mode == 2
    _check_slice(h, sub, idx, 2)
    _check_slice(hg, hg.take([4, 2], mode=1), np.array([4, 2]), 1)


def test_untouched_modes_keep_their_laplacians(hg):
    lap2 = hg.laplacians[2]
    sub = hg[[0, 1, 2]]
    assert sub.laplacians[2] is lap2
    assert sub.laplacians[1] is None


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    data=st.data(),
)
def test_take_property(shape, data):
    seed = data.draw(st.integers(0, 1000))
    tensor = _random_tensor(tuple(shape), density=0.5, seed=seed)
    mode = data.draw(st.integers(0, len(shape) - 1))
    graphs = [None] * len(shape)
    graphs[mode] = _random_adjacency(shape[mode], seed)
    h = Hypergraph(tensor, graphs, graph_kind="adjacency", sample_mode=mode)
    idx = np.array(data.draw(st.lists(st.integers(0, shape[mode] - 1), max_size=8)), dtype=int)
    _check_slice(h, h[idx], idx, mode)


def test_sklearn_indexing_and_length_checks(hg):
    y = np.arange(7)
    assert _num_samples(hg) == len(hg) == 7
    check_consistent_length(hg, y)
    with pytest.raises(ValueError, match="inconsistent"):
        check_consistent_length(hg, y[:5])
    h_ix, _ = indexable(hg, y)
    assert h_ix is hg
    for idx in ([5, 1, 1], np.array([True, False] * 3 + [True]), slice(2, 5)):
        sub = _safe_indexing(hg, idx)
        expected = np.arange(7)[idx]
        _check_slice(hg, sub, expected, 0)
        np.testing.assert_array_equal(_safe_indexing(y, idx), expected)


def test_kfold_folds_are_consistent(hg):
    y = np.arange(7)
    for train, test in KFold(n_splits=3, shuffle=True, random_state=0).split(hg, y):
        h_train = _safe_indexing(hg, train)
        check_consistent_length(h_train, _safe_indexing(y, train))
        _check_slice(hg, h_train, train, 0)
        _check_slice(hg, _safe_indexing(hg, test), test, 0)


class _FoldChecker(BaseEstimator):
    """Fits nothing; records that each fold's tensor and sample-mode graph agree with y."""

    def __init__(self, c=1.0):
        self.c = c

    def fit(self, X, y):
        assert isinstance(X, Hypergraph)
        assert len(X) == len(y) == X.shape[0] == X.laplacians[0].shape[0]
        np.testing.assert_array_equal(X.ids[0], 100 + np.asarray(y))
        return self

    def score(self, X, y):
        self.fit(X, y)
        return self.c


def test_grid_search_cv_runs_on_a_hypergraph(hg):
    search = GridSearchCV(_FoldChecker(), {"c": [1.0, 2.0]}, cv=KFold(3), error_score="raise")
    search.fit(hg, np.arange(7))
    assert search.best_params_ == {"c": 2.0}


def test_pickle_round_trip(hg):
    sub = hg[[1, 2, 2]]
    _ = sub.laplacians  # with the Laplacian cache filled
    back = pickle.loads(pickle.dumps(sub))
    assert back.shape == sub.shape and back.sample_mode == sub.sample_mode
    np.testing.assert_array_equal(back.tensor.todense(), sub.tensor.todense())
    for a, b in zip(back.laplacians, sub.laplacians, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.toarray(), b.toarray())
    np.testing.assert_array_equal(back.ids[0], sub.ids[0])
    assert repr(back) == repr(sub)


def test_accessors_and_repr(hg):
    assert hg.ndim == 3 and hg.shape == (7, 5, 4) and hg.nnz == hg.tensor.nnz
    assert hg.graphs[1] is None and hg.graphs[0].shape == (7, 7)
    assert "Hypergraph(shape=(7, 5, 4)" in repr(hg) and "7x7" in repr(hg)
    h = Hypergraph(np.eye(3))  # dense input is converted
    assert isinstance(h.tensor, sparse.COO) and h.laplacians == [None, None]
    assert Hypergraph(sp.csr_matrix(np.eye(3))).nnz == 3


def test_from_edges_ndarray_sums_duplicates():
    table = np.array([[10, 7, 1], [30, 7, 2], [10, 7, 1], [20, 5, 1], [10, 7, 1]])
    before = table.copy()
    h = Hypergraph.from_edges(table)
    np.testing.assert_array_equal(table, before)
    assert h.shape == (3, 2, 2)
    np.testing.assert_array_equal(h.ids[0], [10, 20, 30])
    np.testing.assert_array_equal(h.ids[1], [5, 7])
    dense = h.tensor.todense()
    assert dense[0, 1, 0] == 3  # (10, 7, 1) three times, summed
    assert dense[2, 1, 1] == 1 and dense[1, 0, 0] == 1 and dense.sum() == 5
    assert h.index_of(0, 30) == 2
    np.testing.assert_array_equal(h.index_of(1, [7, 5, 7]), [1, 0, 1])
    with pytest.raises(KeyError):
        h.index_of(0, [10, 99])


def test_from_edges_ndarray_weights_column_and_columns():
    table = np.array([[1, 2, 0.5], [1, 3, 1.5], [1, 2, 2.0]])
    h = Hypergraph.from_edges(table, weights=2)
    assert h.shape == (1, 2)
    np.testing.assert_allclose(h.tensor.todense(), [[2.5, 1.5]])
    h2 = Hypergraph.from_edges(table, columns=[1, 0], weights=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(h2.tensor.todense(), [[4.0], [2.0]])


def test_from_edges_dataframe_with_ids_and_graphs():
    df = pd.DataFrame(
        {
            "user": ["bob", "ann", "bob", "cid"],
            "item": [3, 1, 3, 2],
            "tag": ["x", "y", "x", "y"],
            "w": [1.0, 2.0, 0.5, 1.0],
        }
    )
    before = df.copy()
    users = ["ann", "bob", "cid", "dan"]  # dan has a graph node but no hyperedge
    adjacency = _random_adjacency(4, 5, density=1.0)
    h = Hypergraph.from_edges(
        df,
        columns=["user", "item", "tag"],
        weights="w",
        ids=[users, None, None],
        graphs=[adjacency, None, None],
        graph_kind="adjacency",
    )
    pd.testing.assert_frame_equal(df, before)
    assert h.shape == (4, 3, 2)
    assert h.tensor.todense()[1, 2, 0] == 1.5  # bob, 3, x: 1.0 + 0.5
    assert h.tensor.todense()[0, 0, 1] == 2.0
    np.testing.assert_array_equal(h.ids[0], users)
    np.testing.assert_array_equal(h.index_of(2, ["y", "x"]), [1, 0])
    sub = h[h.index_of(0, ["dan", "bob"])]
    np.testing.assert_array_equal(sub.ids[0], ["dan", "bob"])
    np.testing.assert_allclose(sub.graphs[0].toarray(), adjacency.toarray()[np.ix_([3, 1], [3, 1])])
    # without columns, every column but the weights is a mode
    assert Hypergraph.from_edges(df, weights="w").ndim == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"columns": ["user", "nope"]}, ValueError, "columns"),
        ({"columns": ["user"]}, ValueError, "columns"),
        ({"weights": "nope"}, ValueError, "weights"),
        ({"weights": np.ones(3)}, ValueError, "weights"),
        ({"weights": "label"}, ValueError, "weights"),
        ({"ids": [["ann"], None]}, ValueError, "ids"),
        ({"ids": [None]}, ValueError, "ids"),
        ({"graphs": [np.eye(3), None]}, ValueError, r"graphs\[0\]"),
        ({"sample_mode": 2}, ValueError, "sample_mode"),
    ],
)
def test_from_edges_bad_inputs(kwargs, error, match):
    df = pd.DataFrame({"user": ["ann", "bob"], "item": [1, 2], "label": ["a", "b"]})
    before = df.copy()
    if "columns" not in kwargs and "weights" not in kwargs:
        kwargs = {**kwargs, "columns": ["user", "item"]}
    with pytest.raises(error, match=match):
        Hypergraph.from_edges(df, **kwargs)
    pd.testing.assert_frame_equal(df, before)


def test_from_edges_rejects_missing_ids_and_empty_tables():
    with pytest.raises(ValueError, match="missing"):
        Hypergraph.from_edges(np.array([[1.0, 2.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="table"):
        Hypergraph.from_edges(np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="table"):
        Hypergraph.from_edges(np.arange(3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"graphs": [None, None]}, ValueError, "graphs"),
        ({"graphs": sp.eye(4)}, TypeError, "graphs"),
        ({"graphs": [None, sp.eye(4), None]}, ValueError, r"graphs\[1\]"),
        ({"graphs": [np.ones((4, 3)), None, None]}, ValueError, r"graphs\[0\]"),
        ({"graphs": [np.full((4, 4), np.nan), None, None]}, ValueError, r"graphs\[0\]"),
        ({"graphs": ["abc", None, None]}, TypeError, r"graphs\[0\]"),
        ({"graph_kind": "normalized"}, ValueError, "graph_kind"),
        ({"sample_mode": 3}, ValueError, "sample_mode"),
        ({"sample_mode": 1.0}, TypeError, "sample_mode"),
        ({"ids": [np.arange(3), None, None]}, ValueError, r"ids\[0\]"),
        ({"ids": [None, None]}, ValueError, "ids"),
    ],
)
def test_constructor_bad_inputs(kwargs, error, match):
    tensor = _random_tensor((4, 3, 2))
    coords, data = tensor.coords.copy(), tensor.data.copy()
    with pytest.raises(error, match=match):
        Hypergraph(tensor, **kwargs)
    np.testing.assert_array_equal(tensor.coords, coords)
    np.testing.assert_array_equal(tensor.data, data)


def test_constructor_bad_tensors_and_adjacency():
    with pytest.raises(TypeError, match="tensor"):
        Hypergraph(None)
    with pytest.raises(ValueError, match="tensor"):
        Hypergraph(np.arange(3.0))
    with pytest.raises(ValueError, match="fill_value"):
        Hypergraph(sparse.full((2, 2), 1.0))
    asymmetric = np.array([[0.0, 1.0], [0.0, 0.0]])
    before = asymmetric.copy()
    with pytest.raises(ValueError, match=r"graphs\[0\]"):
        Hypergraph(np.eye(2), [asymmetric, None], graph_kind="adjacency")
    np.testing.assert_array_equal(asymmetric, before)
    with pytest.raises(ValueError, match="mode 0 has no ids"):
        Hypergraph(np.eye(2)).index_of(0, 1)
