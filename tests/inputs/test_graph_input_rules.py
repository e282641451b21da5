"""Graph and hypergraph input rules of #23: dtype-aware Laplacian tolerances, one rule for
complex input, pydata sparse adjacencies in ``Hypergraph``, missing ids, uint64 indices and NaN
stored values. Every case snapshots what it passes in and checks it is unchanged afterwards.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sparse

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._validation import check_laplacians, check_tensor
from skhyperlearn.graphs import cooccurrence_graph, graph_laplacians, normalized_laplacian
from skhyperlearn.hypergraph import Hypergraph

COMPLETE4 = np.ones((4, 4)) - np.eye(4)


def _snap(obj):
    """A comparable deep copy of arrays, scipy / pydata sparse matrices and containers."""
    if isinstance(obj, sparse.COO):
        return ("coo", obj.coords.copy(), obj.data.copy(), obj.shape)
    if sp.issparse(obj):
        c = obj.tocoo()
        return ("sp", obj.format, obj.dtype.str, c.row.copy(), c.col.copy(), c.data.copy())
    if isinstance(obj, (list, tuple)):
        return [_snap(o) for o in obj]
    if isinstance(obj, pd.DataFrame):
        return ("df", obj.copy(deep=True))
    return copy.deepcopy(obj)


def _equal(a, b):
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    elif isinstance(a, tuple) and a and a[0] == "df":
        pd.testing.assert_frame_equal(a[1], b[1])
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def _unchanged(fn, *args, **kwargs):
    """Call ``fn`` and check that none of its arguments changed; returns its result."""
    before = _snap([list(args), list(kwargs.values())])
    try:
        return fn(*args, **kwargs)
    finally:
        _equal(before, _snap([list(args), list(kwargs.values())]))


# ---------------------------------------------------------------------------- tolerances
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_normalized_laplacian_is_not_refused_for_rounding():
    lap = normalized_laplacian(COMPLETE4).astype(np.float32)
    # float32 rounding alone puts its zero eigenvalue below -1e-8, the float64 tolerance
    assert np.linalg.eigvalsh(lap.toarray().astype(np.float64))[0] < -1e-8
    out = _unchanged(check_laplacians, [lap], (4,))
    np.testing.assert_array_equal(out[0].toarray(), lap.toarray().astype(np.float64))
    # the dense float32 form, and the same through a Hypergraph and a fit
    _unchanged(check_laplacians, [lap.toarray()], (4,))
    tensor = sparse.COO(np.array([[0, 1, 2, 3], [0, 1, 0, 1]]), np.ones(4), shape=(4, 2))
    h = _unchanged(Hypergraph, tensor, [lap, None])
    model = HyperLearnDecomposition(rank=1, max_iter=2, init="random", random_state=0).fit(h)
    assert np.isfinite(model.loss_history_[-1])


def test_float32_tolerance_still_refuses_a_real_negative_eigenvalue():
    # eigenvalues of L - 1e-3 I: -1e-3 and up, far beyond float32 rounding
    bad = (normalized_laplacian(COMPLETE4).toarray() - 1e-3 * np.eye(4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"laplacians\[0\] has a negative eigenvalue \(-0\.001"):
        _unchanged(check_laplacians, [bad], (4,))


def test_float64_tolerance_is_unchanged():
    lap = normalized_laplacian(COMPLETE4).toarray()
    lap[0, 0] -= 5e-8  # beyond float64's 1e-8: still refused
    lap[1, 1] -= 5e-8
    with pytest.raises(ValueError, match=r"negative eigenvalue"):
        check_laplacians([lap], (4,))


# ---------------------------------------------------------------------------- complex input
def _complex_forms(dense: np.ndarray):
    z = dense.astype(np.complex128) * (1 + 1e-3j)
    return {"dense": z, "scipy": sp.csr_array(z), "coo": sparse.COO.from_numpy(z)}


COMPLEX = r"Complex data not supported: .*has complex values \(dtype complex128\)"


@pytest.mark.parametrize("form", ["dense", "scipy", "coo"])
def test_complex_is_refused_the_same_way_everywhere(form):
    adjacency = _complex_forms(COMPLETE4)[form]
    laplacian = _complex_forms(normalized_laplacian(COMPLETE4).toarray())[form]
    tensor = _complex_forms(np.arange(8.0).reshape(4, 2) + 1)[form]
    real_tensor = sparse.COO.from_numpy(np.arange(8.0).reshape(4, 2) + 1)
    calls = [
        (r"^Complex.*: X has", lambda: check_tensor(tensor, "X")),
        (r"^Complex.*: laplacians\[0\] has", lambda: check_laplacians([laplacian, None], (4, 2))),
        (r"^Complex.*: adjacency has", lambda: normalized_laplacian(adjacency)),
        (r"^adjacencies\[0\]: Complex.*: adjacency has", lambda: graph_laplacians([adjacency])),
        (r"^Complex.*: tensor has", lambda: Hypergraph(tensor)),
        (r"^Complex.*: graphs\[0\] has", lambda: Hypergraph(real_tensor, [laplacian, None])),
        (
            r"^Complex.*: graphs\[0\] has",
            lambda: Hypergraph(real_tensor, [adjacency, None], graph_kind="adjacency"),
        ),
    ]
    if form != "dense":
        calls.append((r"^Complex.*: tensor has", lambda: cooccurrence_graph(tensor, 0)))
    before = _snap([adjacency, laplacian, tensor])
    for where, call in calls:
        # ValueError (scikit-learn's convention) and TypeError (what graphs raised before)
        for kind in (ValueError, TypeError):
            with pytest.raises(kind, match=COMPLEX) as info:
                call()
            assert re.search(where, str(info.value)), str(info.value)
    _equal(before, _snap([adjacency, laplacian, tensor]))


def test_fit_refuses_complex_laplacians_given_to_the_estimator():
    tensor = sparse.COO.from_numpy(np.arange(8.0).reshape(4, 2) + 1)
    lap = sp.csr_array(normalized_laplacian(COMPLETE4) * (1 + 0j))  # Hermitian, imaginary 0
    model = HyperLearnDecomposition(rank=1, max_iter=2, laplacians=[lap, None])
    with pytest.raises(ValueError, match=r"laplacians\[0\] has complex values"):
        _unchanged(model.fit, tensor)
    assert not hasattr(model, "factors_")


def test_from_edges_refuses_complex_weights():
    table = np.array([[0, 1], [1, 0]])
    weights = np.array([1 + 2j, 3 + 0j])
    with pytest.raises(ValueError, match=r"weights has complex values"):
        _unchanged(Hypergraph.from_edges, table, weights=weights)


# ---------------------------------------------------------------------------- pydata adjacency
def test_hypergraph_accepts_a_pydata_adjacency_as_normalized_laplacian_does():
    w = sparse.COO.from_numpy(COMPLETE4)
    tensor = sparse.COO(np.array([[0, 1, 2, 3], [0, 1, 0, 1]]), np.ones(4), shape=(4, 2))
    h = _unchanged(Hypergraph, tensor, [w, None], graph_kind="adjacency")
    np.testing.assert_allclose(h.laplacians[0].toarray(), normalized_laplacian(w).toarray())
    np.testing.assert_array_equal(h.graphs[0].toarray(), COMPLETE4)
    # slicing a fold keeps working on the converted graph
    assert h[[0, 2]].graphs[0].shape == (2, 2)
    # a pydata Laplacian, for graph_kind="laplacian" and the estimator's laplacians=
    lap = sparse.COO.from_scipy_sparse(normalized_laplacian(COMPLETE4))
    h2 = _unchanged(Hypergraph, tensor, [lap, None])
    np.testing.assert_array_equal(h2.laplacians[0].toarray(), lap.todense())
    out = _unchanged(check_laplacians, [lap, None], (4, 2))
    np.testing.assert_array_equal(out[0].toarray(), lap.todense())


def test_hypergraph_refuses_a_3d_pydata_graph():
    tensor = sparse.COO.from_numpy(np.eye(3))
    g = sparse.COO.from_numpy(np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match=r"graphs\[0\] must be 2-D"):
        Hypergraph(tensor, [g, None], graph_kind="adjacency")


# ---------------------------------------------------------------------------- ids and indices
@pytest.mark.parametrize(
    "column",
    [
        np.array([1.0, np.nan, 2.0]),
        np.array(["2020-01-01", "NaT", "2020-01-02"], dtype="datetime64[D]"),
        np.array([np.timedelta64(1, "D"), np.timedelta64("NaT"), np.timedelta64(2, "D")]),
        np.array(["a", None, "b"], dtype=object),
        np.array(["a", pd.NA, "b"], dtype=object),
        np.array(["a", pd.NaT, "b"], dtype=object),
        np.array([1, np.float64("nan"), 2], dtype=object),
    ],
    ids=["float-nan", "datetime-nat", "timedelta-nat", "none", "pd-na", "pd-nat", "object-nan"],
)
def test_from_edges_refuses_missing_ids(column):
    table = pd.DataFrame({"a": column, "b": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"column 0 of table contains missing ids"):
        _unchanged(Hypergraph.from_edges, table)


def test_from_edges_refuses_pandas_nullable_integers_with_na():
    table = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"column 0 of table contains missing ids"):
        _unchanged(Hypergraph.from_edges, table)


def test_from_edges_keeps_datetime_ids_without_nat():
    column = np.array(["2020-01-02", "2020-01-01"], dtype="datetime64[D]")
    h = Hypergraph.from_edges(pd.DataFrame({"a": column, "b": [0, 1]}))
    np.testing.assert_array_equal(h.ids[0], np.sort(column))


def test_uint64_indices_beyond_int64_are_out_of_range():
    h = Hypergraph(sparse.COO.from_numpy(np.eye(3)))
    idx = np.array([2**64 - 1], dtype=np.uint64)  # wrapped to -1 (the last entity) before
    with pytest.raises(IndexError, match=r"index out of range for a mode of 3 entities"):
        _unchanged(h.take, idx)
    with pytest.raises(IndexError, match=r"out of range"):
        h[np.array([2**63], dtype=np.uint64)]
    np.testing.assert_array_equal(h.take(np.array([2], np.uint64)).tensor.todense(), [[0, 0, 1]])


# ---------------------------------------------------------------------------- NaN stored values
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_cooccurrence_refuses_nan_stored_values(bad):
    coo = sparse.COO(np.array([[0, 1, 2], [0, 0, 1]]), np.array([1.0, bad, 1.0]), shape=(3, 2))
    with pytest.raises(ValueError, match=r"tensor contains NaN or infinity"):
        _unchanged(cooccurrence_graph, coo, 0)
    with pytest.raises(ValueError, match=r"tensor contains NaN or infinity"):
        _unchanged(cooccurrence_graph, sp.csr_array(coo.to_scipy_sparse()), 0)


# ---------------------------------------------------------------------------- sample mode in CV
def test_cross_validation_over_a_sample_mode_other_than_zero_names_the_mismatch():
    from sklearn.model_selection import GridSearchCV, KFold

    # scikit-learn counts X.shape[0] = 6 samples; the sample mode (1) has 4 entities
    tensor = sparse.COO(np.array([[0, 5, 3], [0, 3, 1], [0, 1, 2]]), np.ones(3), shape=(6, 4, 3))
    h = Hypergraph(tensor, sample_mode=1)
    assert len(h) == 4 and h[[0, 3]].shape == (6, 2, 3)
    search = GridSearchCV(HyperLearnDecomposition(rank=1, sample_mode=1), {"alpha": [0.1]},
                          cv=KFold(3), error_score="raise")  # fmt: skip
    with pytest.raises(IndexError, match=r"sample_mode=1.*X\.shape\[0\] = 6 samples"):
        search.fit(h)
    with pytest.raises(IndexError, match=r"^index out of range for a mode of 3 entities\.$"):
        h.take([5], mode=2)
