"""Malformed and unusual input to the graph helpers and the Hypergraph container (see
_refused.py and _unusual.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _refused import (
    Case,
    _adjacency,
    _asym,
    _asym_adjacency,
    _coo_with,
    _dense,
    _features,
    _func,
    _tensor,
    _with,
    check_refused,
    refused_params,
)
from _unusual import Catalogue, _adjacency_u, _assert_eq, _tensor_u, check_unusual

from skhyperlearn import graphs
from skhyperlearn.hypergraph import Hypergraph

REFUSED: list[Case] = [
    # ---------------------------------------------------------------- graph helpers
    Case(
        "normalized_laplacian-negative-weights",
        *_func(graphs.normalized_laplacian, lambda: [-_adjacency()]),
        ValueError,
        r"adjacency has negative weights \(min -1\)",
    ),
    Case(
        "normalized_laplacian-asymmetric",
        *_func(graphs.normalized_laplacian, lambda: [np.triu(_adjacency())]),
        ValueError,
        r"adjacency is not symmetric",
    ),
    Case(
        "normalized_laplacian-nan",
        *_func(graphs.normalized_laplacian, lambda: [_with(_adjacency(), (0, 1), np.nan)]),
        ValueError,
        r"adjacency contains NaN",
    ),
    Case(
        "normalized_laplacian-sparse-inf",
        *_func(
            graphs.normalized_laplacian,
            lambda: [sp.csr_array(_with(_adjacency(), (0, 1), np.inf))],
        ),
        ValueError,
        r"adjacency contains NaN or infinite",
    ),
    Case(
        "normalized_laplacian-non-square",
        *_func(graphs.normalized_laplacian, lambda: [np.ones((2, 3))]),
        ValueError,
        r"adjacency must be square, got shape \(2, 3\)",
    ),
    Case(
        "normalized_laplacian-1d",
        *_func(graphs.normalized_laplacian, lambda: [np.ones(3)]),
        ValueError,
        r"adjacency must be 2-D",
    ),
    Case(
        "normalized_laplacian-str",
        *_func(graphs.normalized_laplacian, lambda: ["abc"]),
        TypeError,
        r"The 'adjacency' parameter of normalized_laplacian must be an array-like or a sparse "
        r"array or matrix. Got 'abc' instead",
    ),
    Case(
        "normalized_laplacian-empty",
        *_func(graphs.normalized_laplacian, lambda: [np.zeros((0, 0))]),
        ValueError,
        r"adjacency is empty",
    ),
    Case(
        "normalized_laplacian-complex",
        *_func(graphs.normalized_laplacian, lambda: [_adjacency() * 1j]),
        ValueError,
        r"Complex data not supported: adjacency has complex values \(dtype complex128\)",
    ),
    Case(
        "graph_laplacians-negative-entry",
        *_func(graphs.graph_laplacians, lambda: [[None, -_adjacency()]]),
        ValueError,
        r"adjacencies\[1\]: adjacency has negative weights",
    ),
    Case(
        "graph_laplacians-not-a-list",
        *_func(graphs.graph_laplacians, lambda: [_adjacency()]),
        TypeError,
        r"adjacencies must be a list of adjacency matrices, got ndarray",
    ),
    Case(
        "knn_graph-n_neighbors-0",
        *_func(graphs.knn_graph, lambda: [_features(), 0]),
        ValueError,
        r"n_neighbors must be in \[1, 9\], got 0",
    ),
    Case(
        "knn_graph-n_neighbors-too-many",
        *_func(graphs.knn_graph, lambda: [_features(), 10]),
        ValueError,
        r"n_neighbors must be in \[1, 9\], got 10",
    ),
    Case(
        "knn_graph-n_neighbors-float",
        *_func(graphs.knn_graph, lambda: [_features(), 2.5]),
        TypeError,
        r"The 'n_neighbors' parameter of knn_graph must be an instance of 'int'. Got 2.5",
    ),
    Case(
        "knn_graph-features-nan",
        *_func(graphs.knn_graph, lambda: [_with(_features(), (2, 1), np.nan), 2]),
        ValueError,
        r"features contains NaN",
    ),
    Case(
        "knn_graph-one-sample",
        *_func(graphs.knn_graph, lambda: [_features(1), 1]),
        ValueError,
        r"features must have at least 2 samples, got 1",
    ),
    Case(
        "knn_graph-mode-foo",
        *_func(graphs.knn_graph, lambda: [_features(), 2], mode="foo"),
        ValueError,
        r"The 'mode' parameter of knn_graph must be a str among \{.*'connectivity'.*\}. Got 'foo'",
    ),
    Case(
        "knn_graph-sigma-negative",
        *_func(graphs.knn_graph, lambda: [_features(), 2], mode="distance", sigma=-1.0),
        ValueError,
        r"The 'sigma' parameter of knn_graph must be a float in the range \(0.0, inf\) or None. "
        r"Got -1.0",
    ),
    Case(
        "cooccurrence_graph-mode-out-of-range",
        *_func(graphs.cooccurrence_graph, lambda: [_tensor(), 3]),
        ValueError,
        r"mode must be in \[-3, 2\] for an order-3 tensor",
    ),
    Case(
        "cooccurrence_graph-mode-str",
        *_func(graphs.cooccurrence_graph, lambda: [_tensor(), "a"]),
        TypeError,
        r"The 'mode' parameter of cooccurrence_graph must be an instance of 'int'. Got 'a'",
    ),
    Case(
        "cooccurrence_graph-dense-tensor",
        *_func(graphs.cooccurrence_graph, lambda: [_dense(), 0]),
        TypeError,
        r"tensor must be a sparse.COO tensor or a scipy sparse matrix, got ndarray",
    ),
    Case(
        "cooccurrence_graph-other_modes-contains-mode",
        *_func(graphs.cooccurrence_graph, lambda: [_tensor(), 0], other_modes=[0, 1]),
        ValueError,
        r"other_modes must not contain mode 0",
    ),
    Case(
        "cooccurrence_graph-normalize-foo",
        *_func(graphs.cooccurrence_graph, lambda: [_tensor(), 0], normalize="foo"),
        ValueError,
        r"The 'normalize' parameter of cooccurrence_graph must be a str among \{.*'cosine'.*\} "
        r"or None. Got 'foo'",
    ),
    Case(
        "cooccurrence_graph-n_neighbors-0",
        *_func(graphs.cooccurrence_graph, lambda: [_tensor(), 0], n_neighbors=0),
        ValueError,
        r"The 'n_neighbors' parameter of cooccurrence_graph must be an int in the range "
        r"\[1, inf\) or None. Got 0",
    ),
    # ---------------------------------------------------------------- Hypergraph container
    Case(
        "Hypergraph-graph-count",
        *_func(Hypergraph, lambda: [_tensor(), [None, None]]),
        ValueError,
        r"graphs has 2 entries but the tensor has 3 modes",
    ),
    Case(
        "Hypergraph-graph-shape",
        *_func(Hypergraph, lambda: [_tensor(), [np.eye(3), None, None]]),
        ValueError,
        r"graphs\[0\] has shape \(3, 3\), but mode 0 of the tensor has 8 entities",
    ),
    Case(
        "Hypergraph-graph-nan",
        *_func(Hypergraph, lambda: [_tensor(), [None, np.full((6, 6), np.nan), None]]),
        ValueError,
        r"graphs\[1\] contains NaN or infinity",
    ),
    Case(
        "Hypergraph-single-graph",
        *_func(Hypergraph, lambda: [_tensor(), np.eye(8)]),
        TypeError,
        r"graphs must be a list of 3 matrices.*got ndarray",
    ),
    Case(
        "Hypergraph-adjacency-negative",
        *_func(
            Hypergraph, lambda: [_tensor(), [-np.ones((8, 8)), None, None]], graph_kind="adjacency"
        ),
        ValueError,
        r"graphs\[0\] is not a valid adjacency: adjacency has negative weights",
    ),
    Case(
        "Hypergraph-adjacency-asymmetric",
        *_func(
            Hypergraph,
            lambda: [_tensor(), [_asym_adjacency(), None, None]],
            graph_kind="adjacency",
        ),
        ValueError,
        r"graphs\[0\] is not a valid adjacency: adjacency is not symmetric",
    ),
    Case(
        "Hypergraph-laplacian-asymmetric",
        *_func(Hypergraph, lambda: [_tensor(), [_asym(), None, None]]),
        ValueError,
        r"graphs\[0\].*symmetric",
    ),
    Case(
        "Hypergraph-graph_kind-foo",
        *_func(Hypergraph, lambda: [_tensor()], graph_kind="foo"),
        ValueError,
        r"graph_kind must be one of \('laplacian', 'adjacency'\), got 'foo'",
    ),
    Case(
        "Hypergraph-sample_mode-out-of-range",
        *_func(Hypergraph, lambda: [_tensor()], sample_mode=5),
        ValueError,
        r"sample_mode must be in \[0, 3\) for a tensor of order 3, got 5",
    ),
    Case(
        "Hypergraph-tensor-None",
        *_func(Hypergraph, lambda: [None]),
        TypeError,
        r"tensor must be a sparse.COO or array-like, got NoneType",
    ),
    Case(
        "Hypergraph-tensor-1d",
        *_func(Hypergraph, lambda: [np.ones(3)]),
        ValueError,
        r"tensor must have at least 2 modes, got shape \(3,\)",
    ),
    Case(
        "Hypergraph-tensor-complex",
        *_func(Hypergraph, lambda: [np.ones((3, 3)) * 1j]),
        ValueError,
        r"Complex data not supported: tensor has complex values \(dtype complex128\)",
    ),
    Case(
        "Hypergraph-tensor-nan",
        *_func(Hypergraph, lambda: [_coo_with(np.nan)]),
        ValueError,
        r"tensor contains NaN",
    ),
    Case(
        "Hypergraph-ids-wrong-length",
        *_func(Hypergraph, lambda: [_tensor()], ids=[np.arange(3), None, None]),
        ValueError,
        r"ids\[0\] has shape \(3,\); expected \(8,\)",
    ),
    Case(
        "Hypergraph-index-out-of-range",
        *_func(lambda h, i: h[i], lambda: [Hypergraph(_tensor()), 100]),
        IndexError,
        r"index out of range for a mode of 8 entities",
    ),
    Case(
        "Hypergraph-index-float",
        *_func(lambda h, i: h[i], lambda: [Hypergraph(_tensor()), np.array([0.5])]),
        IndexError,
        r"indices must be integers or booleans, got dtype float64",
    ),
    Case(
        "Hypergraph-index-mask-length",
        *_func(lambda h, i: h[i], lambda: [Hypergraph(_tensor()), np.ones(3, dtype=bool)]),
        IndexError,
        r"boolean mask has length 3; expected 8",
    ),
    Case(
        "Hypergraph-index-other-axis",
        *_func(lambda h, i: h[i], lambda: [Hypergraph(_tensor()), (0, 1)]),
        IndexError,
        r"indexed along its sample mode only",
    ),
    Case(
        "Hypergraph-index-2d",
        *_func(lambda h, i: h[i], lambda: [Hypergraph(_tensor()), np.zeros((2, 2), dtype=int)]),
        IndexError,
        r"indices must be 1-D, got shape \(2, 2\)",
    ),
    Case(
        "Hypergraph-take-mode-out-of-range",
        *_func(lambda h: h.take([0], mode=7), lambda: [Hypergraph(_tensor())]),
        ValueError,
        r"mode must be in \[0, 3\) for a tensor of order 3, got 7",
    ),
    Case(
        "Hypergraph-from_edges-missing-column",
        *_func(
            Hypergraph.from_edges,
            lambda: [np.array([[0, 1, 2], [1, 2, 0]])],
            columns=[0, 5],
        ),
        ValueError,
        r"columns \[5\] are not columns of table",
    ),
    Case(
        "Hypergraph-from_edges-nan-weights",
        *_func(
            Hypergraph.from_edges,
            lambda: [np.array([[0, 1], [1, 2]])],
            weights=np.array([1.0, np.nan]),
        ),
        ValueError,
        r"weights contain NaN or infinity",
    ),
]

UNUSUAL = Catalogue()
case, fit_case = UNUSUAL.case, UNUSUAL.fit_case


def _graph_case(id, make, call, exc=None, match="", check=None):
    case(id, make, call, exc, match, check)


def _path_adj(w):
    return np.array([[0.0, w, w], [w, 0.0, 0.0], [w, 0.0, 0.0]])


_REF_LAP = graphs.normalized_laplacian(_path_adj(1.0)).toarray()
for _w in (1e308, 1e-310, 1e-300, 1e200):
    _graph_case(
        f"graphs-normalized-laplacian-weights-{_w:g}",
        lambda w=_w: {"w": _path_adj(w)},
        lambda d: graphs.normalized_laplacian(d["w"]),
        check=lambda lap, d: np.testing.assert_allclose(lap.toarray(), _REF_LAP, atol=1e-12),
    )
_graph_case(
    "graphs-normalized-laplacian-nan",
    lambda: {"w": _path_adj(np.nan)},
    lambda d: graphs.normalized_laplacian(d["w"]),
    ValueError,
    "adjacency contains NaN",
)
_graph_case(
    "graphs-normalized-laplacian-inf",
    lambda: {"w": _path_adj(np.inf)},
    lambda d: graphs.normalized_laplacian(d["w"]),
    ValueError,
    "adjacency contains NaN or infinite",
)
_graph_case(
    "graphs-normalized-laplacian-uint64-weights",
    lambda: {"w": _path_adj(1).astype(np.uint64) * np.uint64(2**63)},
    lambda d: graphs.normalized_laplacian(d["w"]),
    check=lambda lap, d: np.testing.assert_allclose(lap.toarray(), _REF_LAP, atol=1e-12),
)
_graph_case(
    "graphs-knn-numpy-int-neighbors",
    lambda: {"f": np.random.default_rng(0).random((10, 3))},
    lambda d: graphs.knn_graph(d["f"], n_neighbors=np.int64(2)),
    check=lambda w, d: _assert_eq(w.shape, (10, 10)),
)
_graph_case(
    "graphs-knn-bool-neighbors",
    lambda: {"f": np.random.default_rng(0).random((10, 3))},
    lambda d: graphs.knn_graph(d["f"], n_neighbors=True),
    TypeError,
    "n_neighbors must be an integer",
)
_KNN_F = np.array([[0.0, 1.0], [1.0, 0.0], [1e-5, 1e-5], [2e-5, 2e-5], [3.0, 3.0]])
for _c in (1e200, 1e-200):
    for _mode in ("connectivity", "distance"):
        _graph_case(
            f"graphs-knn-features-{_c:g}-{_mode}",
            lambda c=_c: {"f": _KNN_F * c},
            lambda d, m=_mode: graphs.knn_graph(d["f"], n_neighbors=2, mode=m),
            check=lambda w, d, m=_mode: np.testing.assert_allclose(
                w.toarray(), graphs.knn_graph(_KNN_F, n_neighbors=2, mode=m).toarray(), rtol=1e-12
            ),
        )
_graph_case(
    "graphs-knn-features-1e200-given-sigma",
    lambda: {"f": _KNN_F * 1e200},
    lambda d: graphs.knn_graph(d["f"], n_neighbors=2, mode="distance", sigma=1e195),
    check=lambda w, d: np.testing.assert_allclose(
        w.toarray(),
        graphs.knn_graph(_KNN_F, n_neighbors=2, mode="distance", sigma=1e-5).toarray(),
        rtol=1e-12,
    ),
)
_graph_case(
    "graphs-knn-nan-features",
    lambda: {"f": np.array([[0.0], [np.nan], [1.0]])},
    lambda d: graphs.knn_graph(d["f"], n_neighbors=1),
    ValueError,
    "NaN",
)
_graph_case(
    "graphs-cooccurrence-numpy-mode",
    lambda: {"x": _tensor_u()},
    lambda d: graphs.cooccurrence_graph(d["x"], mode=np.int64(1)),
    check=lambda w, d: _assert_eq(w.shape, (6, 6)),
)
_graph_case(
    "graphs-cooccurrence-bool-mode",
    lambda: {"x": _tensor_u()},
    lambda d: graphs.cooccurrence_graph(d["x"], mode=True),
    TypeError,
    "mode must be an integer",
)
case(
    "container-numpy-sample-mode",
    lambda: {"x": _tensor_u()},
    lambda d: Hypergraph(d["x"], sample_mode=np.int64(1)),
    check=lambda h, d: _assert_eq(h.sample_mode, 1),
)
case(
    "container-bool-sample-mode",
    lambda: {"x": _tensor_u()},
    lambda d: Hypergraph(d["x"], sample_mode=True),
    TypeError,
    "sample_mode must be an int",
)
case(
    "container-take-uint64-indices",
    lambda: {"h": Hypergraph(_tensor_u()), "idx": np.array([0, 2], dtype=np.uint64)},
    lambda d: d["h"].take(d["idx"], mode=0),
    check=lambda h, d: _assert_eq(h.shape, (2, 6, 5)),
)
case(
    "container-graph-extreme-weights",
    lambda: {"x": _tensor_u(), "adj": [_adjacency_u(8) * 1e308, None, None]},
    lambda d: Hypergraph(d["x"], graphs=d["adj"], graph_kind="adjacency").laplacians[0],
    check=lambda lap, d: np.testing.assert_allclose(
        lap.toarray(), graphs.normalized_laplacian(_adjacency_u(8)).toarray(), atol=1e-12
    ),
)
case(
    "container-graph-nan",
    lambda: {"x": _tensor_u(), "adj": [np.where(_adjacency_u(8) > 0, np.nan, 0.0), None, None]},
    lambda d: Hypergraph(d["x"], graphs=d["adj"]),
    ValueError,
    r"graphs\[0\].*NaN",
)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", refused_params(REFUSED))
def test_malformed_input_is_refused_naming_the_culprit(case):
    check_refused(case)


@pytest.mark.parametrize("case", UNUSUAL, ids=[c.id for c in UNUSUAL])
def test_unusual_input_is_refused_or_handled(case, tmp_path):
    check_unusual(case)
