"""Malformed and unusual input to HyperLearnDecomposition: parameters, X, laplacians, fitted
methods (see _refused.py and _unusual.py for what each case checks)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
import torch
from _refused import (
    SHAPE,
    Case,
    _asym,
    _coo_with,
    _dense,
    _est,
    _fit,
    _fit_laplacians,
    _fit_x,
    _init,
    _laplacian,
    _laplacians,
    _on_fitted,
    _on_unfitted,
    _tensor,
    _with,
    check_refused,
    refused_params,
)
from _snapshot import assert_same, snapshot
from _unusual import (
    Catalogue,
    _adjacency_u,
    _assert_eq,
    _base_reconstruction,
    _est_u,
    _finite,
    _is_finite,
    _laplacian_u,
    _rec,
    _tensor_u,
    check_unusual,
)
from sklearn.exceptions import NotFittedError

from skhyperlearn import HyperLearnDecomposition, HyperLearnRegressor
from skhyperlearn.hypergraph import Hypergraph

REFUSED: list[Case] = [
    # ---------------------------------------------------------------- estimator parameters
    Case("rank-0", *_fit(rank=0), ValueError, r"'rank' parameter.*Got 0 instead"),
    Case("rank-str", *_fit(rank="3"), TypeError, r"'rank' parameter.*Got '3' instead"),
    Case("lam-0", *_fit(lam=0), ValueError, r"'lam' parameter.*Got 0 instead"),
    Case("lam-negative", *_fit(lam=-1), ValueError, r"'lam' parameter.*Got -1 instead"),
    Case("alpha-negative", *_fit(alpha=-1.0), ValueError, r"'alpha' parameter.*Got -1.0"),
    Case("loss-foo", *_fit(loss="foo"), ValueError, r"'loss' parameter.*Got 'foo'"),
    Case("solver-bar", *_fit(solver="bar"), ValueError, r"'solver' parameter.*Got 'bar'"),
    Case("max_iter-0", *_fit(max_iter=0), ValueError, r"'max_iter' parameter.*Got 0"),
    Case(
        "on_nonfinite-ignore",
        *_fit(on_nonfinite="ignore"),
        ValueError,
        r"'on_nonfinite' parameter.*Got 'ignore'",
    ),
    Case("callback-not-callable", *_fit(callback=5), TypeError, r"'callback' parameter.*Got 5"),
    Case("init-foo", *_fit(init="foo"), ValueError, r"'init' parameter.*Got 'foo'"),
    Case(
        "init-wrong-count",
        *_fit(init=[np.ones((8, 2))]),
        ValueError,
        r"init has 1 arrays but X has 3 modes",
    ),
    Case(
        "init-wrong-shape",
        *_fit(init=_init(i1=np.ones((6, 3)))),
        ValueError,
        r"init\[1\] has shape \(6, 3\), expected \(6, 2\)",
    ),
    Case(
        "init-nan",
        *_fit(init=_init(i1=_with(np.ones((6, 2)), (2, 1), np.nan))),
        ValueError,
        r"init\[1\] contains NaN",
    ),
    Case(
        "init-inf",
        *_fit(init=_init(i2=_with(np.ones((5, 2)), (0, 0), np.inf))),
        ValueError,
        r"init\[2\] contains NaN or infinity",
    ),
    Case(
        "init-strings",
        *_fit(init=_init(i0=np.full((8, 2), "a"))),
        TypeError,
        r"init\[0\] must hold real numbers",
    ),
    Case(
        "init-complex",
        *_fit(init=_init(i0=np.ones((8, 2)) * 1j)),
        TypeError,
        r"Complex data not supported: init\[0\] has complex values",
    ),
    Case(
        "init-svd-rank-too-large",
        *_fit(rank=5, init="svd"),
        ValueError,
        r"rank=5 cannot be produced by init='svd'.*mode-2 unfolding has shape \(5, 48\)",
    ),
    Case(
        "sample_mode-out-of-range",
        *_fit(sample_mode=3),
        ValueError,
        r"sample_mode=3 is out of range for X of order 3",
    ),
    Case("sample_mode-negative", *_fit(sample_mode=-1), ValueError, r"'sample_mode' parameter"),
    Case(
        "devices-cuda7",
        *_fit(devices="cuda:7"),
        ValueError,
        r"devices: device 'cuda:7' is unavailable",
    ),
    Case("devices-tpu", *_fit(devices="tpu"), ValueError, r"devices: 'tpu' is not a valid"),
    Case(
        "devices-list-wrong-length",
        *_fit(devices=["cpu", "cpu"]),
        ValueError,
        r"devices has 2 entries but X has 3 modes",
    ),
    Case(
        "devices-list-bad-entry",
        *_fit(devices=["cpu", "tpu", "cpu"]),
        ValueError,
        r"devices\[1\]: 'tpu' is not a valid",
    ),
    Case(
        "devices-list-of-ints",
        *_fit(devices=[0, 1, 2]),
        TypeError,
        r"devices\[0\] must be a device string.*got int",
    ),
    Case("devices-dict", *_fit(devices={"a": 1}), TypeError, r"'devices' parameter"),
    Case(
        "max_memory-lots",
        *_fit(max_memory="lots"),
        ValueError,
        r"max_memory='lots' is not a size",
    ),
    Case(
        "max_memory-0GB",
        *_fit(max_memory="0GB"),
        ValueError,
        r"max_memory='0GB' is not a size",
    ),
    Case(
        "max_memory-negative",
        *_fit(max_memory=-5),
        ValueError,
        r"'max_memory' parameter.*Got -5",
    ),
    Case(
        "max_memory-too-small",
        *_fit(max_memory=100),
        MemoryError,
        r"max_memory: the fit needs an estimated .*max_memory=100 \(100 B\)",
    ),
    Case(
        "early_stopping-hypergraph-loss",
        *_fit(early_stopping=True),
        ValueError,
        r"early_stopping=True needs loss='observed'",
    ),
    Case(
        "early_stopping-hyperlearn-hypergraph-loss",
        *_fit(early_stopping=True, solver="hyperlearn"),
        ValueError,
        r"early_stopping=True needs loss='observed'",
    ),
    Case(
        "validation_fraction-leaves-nothing",
        *_fit(early_stopping=True, loss="observed", validation_fraction=0.001),
        ValueError,
        r"validation_fraction=0.001 leaves 0 of \d+ stored entries",
    ),
    Case(
        "validation_fraction-above-1",
        *_fit(validation_fraction=1.5),
        ValueError,
        r"'validation_fraction' parameter.*Got 1.5",
    ),
    Case(
        "warm_start-shape-changed",
        *_on_fitted("fit", lambda: _tensor(shape=(8, 6, 4)), warm_start=True),
        ValueError,
        r"warm_start=True needs X of the fitted shape \(8, 6, 5\), got \(8, 6, 4\)",
    ),
    # ---------------------------------------------------------------- X
    Case(
        "X-1d",
        *_fit_x(lambda: np.ones(5)),
        ValueError,
        r"X must have at least 2 dimensions.*shape \(5,\)",
    ),
    Case("X-0d", *_fit_x(lambda: np.float64(3.0)), ValueError, r"X must have at least 2"),
    Case(
        "X-dense-nan",
        *_fit_x(lambda: _with(_dense(), (1, 2, 3), np.nan)),
        ValueError,
        r"X contains NaN",
    ),
    Case(
        "X-dense-inf",
        *_fit_x(lambda: _with(_dense(), (1, 2, 3), np.inf)),
        ValueError,
        r"X contains infinity",
    ),
    Case(
        "X-coo-nan",
        *_fit_x(lambda: _coo_with(np.nan)),
        ValueError,
        r"X contains NaN or infinity among its stored values",
    ),
    Case(
        "X-coo-inf",
        *_fit_x(lambda: _coo_with(-np.inf)),
        ValueError,
        r"X contains NaN or infinity among its stored values",
    ),
    Case(
        "X-scipy-nan",
        *_fit_x(lambda: sp.csr_array(np.array([[np.nan, 1.0], [1.0, 0.0]]))),
        ValueError,
        r"X contains NaN",
    ),
    Case(
        "X-dense-complex",
        *_fit_x(lambda: _dense() * (1 + 1j)),
        ValueError,
        r"X has complex values",
    ),
    Case(
        "X-coo-complex",
        *_fit_x(lambda: _tensor() * (1 + 1j)),
        ValueError,
        r"X has complex values",
    ),
    Case(
        "X-scipy-complex",
        *_fit_x(lambda: sp.csr_array(np.array([[1j, 1.0], [1.0, 0.0]]))),
        ValueError,
        r"X has complex values",
    ),
    Case(
        "X-dense-strings",
        *_fit_x(lambda: np.array([["a", "b"], ["c", "d"]])),
        TypeError,
        r"X must hold real numbers",
    ),
    Case(
        "X-object-dict",
        *_fit_x(lambda: _with(np.ones((3, 3), dtype=object), (0, 0), {"foo": "bar"})),
        TypeError,
        r"X must hold real numbers.*argument must be a string.* number",
    ),
    Case("X-str", *_fit_x(lambda: "abc"), TypeError, r"X must be a sparse.COO.*got str"),
    Case("X-None", *_fit_x(lambda: None), TypeError, r"X must be a sparse.COO.*got NoneType"),
    Case("X-ragged-list", *_fit_x(lambda: [[1, 2], [3]]), TypeError, r"X must be array-like"),
    Case(
        "X-coo-empty",
        *_fit_x(lambda: sparse.zeros((3, 4, 5))),
        ValueError,
        r"X is empty: it has no stored \(non-zero\) entries, shape \(3, 4, 5\)",
    ),
    Case(
        "X-dense-all-zero",
        *_fit_x(lambda: np.zeros((3, 4))),
        ValueError,
        r"X is empty: it has no stored",
    ),
    Case(
        "X-coo-zero-size-mode",
        *_fit_x(lambda: sparse.COO(np.zeros((3, 0), dtype=np.int64), np.zeros(0), shape=(3, 0, 4))),
        ValueError,
        r"X has an empty mode: shape \(3, 0, 4\)",
    ),
    Case(
        "X-dense-zero-size-mode",
        *_fit_x(lambda: np.zeros((3, 0, 4))),
        ValueError,
        r"X has an empty mode: shape \(3, 0, 4\)",
    ),
    Case(
        "X-fill-value-1",
        *_fit_x(
            lambda: sparse.COO(
                np.array([[0, 1], [1, 0]]), np.array([1.0, 2.0]), shape=(2, 2), fill_value=1.0
            )
        ),
        ValueError,
        r"X must have fill_value 0",
    ),
    Case(
        # a duck-typed container (tensor + laplacians): its graphs are checked by fit
        "X-container-asymmetric-laplacian",
        *_fit_x(lambda: SimpleNamespace(tensor=_tensor(), laplacians=[_asym(), None, None])),
        ValueError,
        r"X.laplacians\[0\] is not symmetric",
    ),
    Case(
        "X-container-laplacian-count",
        *_fit_x(lambda: SimpleNamespace(tensor=_tensor(), laplacians=[None])),
        ValueError,
        r"X.laplacians has 1 entries but X is a tensor of order 3",
    ),
    # ---------------------------------------------------------------- laplacians
    Case(
        "laplacians-count",
        *_fit_laplacians(lambda: _laplacians()[:2]),
        ValueError,
        r"laplacians has 2 entries but X is a tensor of order 3",
    ),
    Case(
        "laplacians-shape-mismatch",
        *_fit_laplacians(lambda: [None, _laplacian(8), None]),
        ValueError,
        r"laplacians\[1\] has shape \(8, 8\) but mode 1 of X has 6 entities",
    ),
    Case(
        "laplacians-non-square",
        *_fit_laplacians(lambda: [np.ones((8, 7)), None, None]),
        ValueError,
        r"laplacians\[0\] must be square, got shape \(8, 7\)",
    ),
    Case(
        "laplacians-asymmetric",
        *_fit_laplacians(lambda: [_asym(), None, None]),
        ValueError,
        r"laplacians\[0\] is not symmetric",
    ),
    Case(
        "laplacians-nan",
        *_fit_laplacians(lambda: [None, _with(_laplacian(6).toarray(), (0, 0), np.nan), None]),
        ValueError,
        r"laplacians\[1\] contains NaN or infinity",
    ),
    Case(
        "laplacians-sparse-inf",
        *_fit_laplacians(
            lambda: [None, None, sp.csr_array(_with(_laplacian(5).toarray(), (1, 1), np.inf))]
        ),
        ValueError,
        r"laplacians\[2\] contains NaN or infinity",
    ),
    Case(
        "laplacians-single-sparse-matrix",
        *_fit_laplacians(lambda: _laplacian(8)),
        TypeError,
        r"laplacians.*list",
    ),
    Case(
        "laplacians-single-dense-matrix",
        *_fit_laplacians(lambda: _laplacian(8).toarray()),
        TypeError,
        r"laplacians must be a list of 3 Laplacians.*got a single ndarray",
    ),
    Case(
        "laplacians-string-entry",
        *_fit_laplacians(lambda: ["abc", None, None]),
        TypeError,
        r"laplacians\[0\] must hold real numbers",
    ),
    Case(
        "laplacians-3d-entry",
        *_fit_laplacians(lambda: [np.ones((8, 8, 1)), None, None]),
        ValueError,
        r"laplacians\[0\] must be a 2-D matrix",
    ),
    Case(
        "laplacians-negative-diagonal",
        *_fit_laplacians(lambda: [-np.eye(8), None, None]),
        ValueError,
        r"laplacians\[0\].*negative diagonal",
    ),
    Case(
        "laplacians-negative-weights",
        *_fit_laplacians(lambda: [None, np.eye(6) + 0.1 * (np.ones((6, 6)) - np.eye(6)), None]),
        ValueError,
        r"laplacians\[1\].*negative",
    ),
    # ---------------------------------------------------------------- transform / score / ...
    Case("transform-unfitted", *_on_unfitted("transform", _tensor), NotFittedError, "not fitted"),
    Case("score-unfitted", *_on_unfitted("score", _tensor), NotFittedError, "not fitted"),
    Case(
        "reconstruct-unfitted",
        *_on_unfitted("reconstruct", lambda: np.zeros((1, 3), dtype=int)),
        NotFittedError,
        "not fitted",
    ),
    Case(
        "transform-wrong-shape",
        *_on_fitted("transform", lambda: _tensor(shape=(8, 6, 4))),
        ValueError,
        r"X has shape \(8, 6, 4\) but the estimator was fitted on shape \(8, 6, 5\)",
    ),
    Case(
        "transform-wrong-order",
        *_on_fitted("transform", lambda: _tensor(shape=(8, 6))),
        ValueError,
        r"X has order 2 but the estimator was fitted on order 3",
    ),
    Case(
        "transform-None",
        *_on_fitted("transform", lambda: None),
        TypeError,
        r"X must be a sparse.COO.*NoneType",
    ),
    Case(
        "transform-nan",
        *_on_fitted("transform", lambda: _coo_with(np.nan)),
        ValueError,
        r"X contains NaN or infinity",
    ),
    Case(
        "score-wrong-shape",
        *_on_fitted("score", lambda: _tensor(shape=(8, 5, 5))),
        ValueError,
        r"X has shape \(8, 5, 5\) but the estimator was fitted on shape \(8, 6, 5\)",
    ),
    Case(
        "reconstruct-wrong-columns",
        *_on_fitted("reconstruct", lambda: np.zeros((3, 2), dtype=int)),
        ValueError,
        r"coords must have shape \(n, 3\), got \(3, 2\)",
    ),
    Case(
        "reconstruct-1d",
        *_on_fitted("reconstruct", lambda: np.array([0, 0, 0])),
        ValueError,
        r"coords must have shape \(n, 3\), got \(3,\)",
    ),
    Case(
        "reconstruct-out-of-range",
        *_on_fitted("reconstruct", lambda: np.array([[8, 0, 0]])),
        ValueError,
        r"coords has indices outside the fitted shape \(8, 6, 5\)",
    ),
    Case(
        "reconstruct-negative",
        *_on_fitted("reconstruct", lambda: np.array([[0, -1, 0]])),
        ValueError,
        r"coords has indices outside the fitted shape",
    ),
    Case(
        "reconstruct-fractional",
        *_on_fitted("reconstruct", lambda: np.array([[0.5, 0.0, 0.0]])),
        TypeError,
        r"coords must hold integers, got dtype float64",
    ),
    Case(
        "reconstruct-strings",
        *_on_fitted("reconstruct", lambda: np.array([["a", "b", "c"]])),
        TypeError,
        r"coords must hold integers",
    ),
]

UNUSUAL = Catalogue()
case, fit_case = UNUSUAL.case, UNUSUAL.fit_case


# --- scale ---------------------------------------------------------------------------------
def _scaled_like_base(c, dtype, rtol, **params):
    def check(model, d):
        assert _finite(model)
        rec = _rec(model, d["x"]) / c
        base = _base_reconstruction(dtype, **params)
        assert np.abs(rec - base).max() <= rtol * np.abs(base).max()

    return check


for _c, _dtype, _rtol in (
    (1e-10, np.float64, 1e-9),
    (1e-12, np.float64, 1e-9),
    (1e-4, np.float32, 1e-3),
    (1e-6, np.float32, 1e-3),
    (1e12, np.float64, 1e-9),
    (1e8, np.float32, 1e-3),
):
    fit_case(
        f"scale-{np.dtype(_dtype).name}-{_c:g}-same-model",
        # The paper's loss fits values (the implicit one reads them as confidences).
        {"alpha": 0.0, "loss": "hypergraph"},
        lambda c=_c, dt=_dtype: _tensor_u(dtype=dt, scale=c),
        check=_scaled_like_base(_c, _dtype, _rtol, loss="hypergraph"),
    )
fit_case(
    "scale-observed-1e-10-same-model",
    {"alpha": 0.0, "loss": "observed", "bias": False, "lam": 1.0},
    lambda: _tensor_u(scale=1e-10),
    check=_scaled_like_base(1e-10, np.float64, 1e-8, loss="observed", bias=False, lam=1.0),
)
fit_case(
    "scale-graph-1e-10-finite-nonzero",
    lambda: {"laplacians": [_laplacian_u(n, k) for k, n in enumerate(SHAPE)]},
    lambda: _tensor_u(scale=1e-10),
    check=lambda m, d: (
        _is_finite(m, d),
        np.testing.assert_array_less(0, np.abs(_rec(m, d["x"])).max()),
    ),
)
fit_case(
    "scale-float64-1e300-refused",
    {},
    lambda: _tensor_u(scale=1e300),
    ValueError,
    "X has values up to 1.*overflow float64",
)
fit_case(
    "scale-float32-1e20-refused",
    {},
    lambda: _tensor_u(dtype=np.float32, scale=1e20),
    ValueError,
    "X has values up to .*overflow float32",
)
fit_case(
    "scale-float32-1e-22-warns-underflow",
    {"alpha": 0.0},
    lambda: _tensor_u(dtype=np.float32, scale=1e-22),
    warns=UserWarning,
    match="X has values down to .*underflow float32",
    check=_is_finite,
)
case(
    "scale-regressor-y-1e300-refused",
    lambda: {"X": np.array([[0, 0], [1, 1], [1, 0]]), "y": np.array([1e300, 2e300, 1.0])},
    lambda d: HyperLearnRegressor(rank=1, max_iter=2).fit(d["X"], d["y"]),
    ValueError,
    "y has values up to .*overflow",
)
case(
    "scale-transform-1e300-refused",
    lambda: {"model": _est_u().fit(_tensor_u()), "x": _tensor_u(scale=1e300)},
    lambda d: d["model"].transform(d["x"]),
    ValueError,
    "X has values up to",
)

# --- size ----------------------------------------------------------------------------------
case(
    "size-regressor-shape-over-2**63-cells",
    lambda: {"X": np.array([[0, 0, 0], [1, 1, 1]]), "y": np.array([1.0, 2.0])},
    lambda d: HyperLearnRegressor(rank=1, shape=(2**40, 2**40, 2**40)).fit(d["X"], d["y"]),
    ValueError,
    r"more than 2\^63",
)
case(
    "size-regressor-uint64-coordinate-wraps",
    lambda: {"X": np.array([[0, 0], [2**63 + 5, 1]], dtype=np.uint64), "y": np.array([1.0, 2.0])},
    lambda d: HyperLearnRegressor(rank=1).fit(d["X"], d["y"]),
    ValueError,
    r"coordinate 9223372036854775813.*2\^63",
)


def _huge_modes():
    # A long mode (factors of 2^20 rows stay small; 2^31 rows would need 17 GB).
    coords = np.array([[0, 1, 0, 1], [0, 2**19, 5, 2**20 - 1], [1, 0, 2, 3]])
    return sparse.COO(coords, np.array([1.0, 2.0, 3.0, 4.0]), shape=(2, 2**20, 4))


fit_case(
    "size-n_features_in-exact-for-huge-modes",
    {"init": "random", "rank": 1, "max_iter": 1},
    _huge_modes,
    check=lambda m, d: (_is_finite(m, d), _assert_eq(m.n_features_in_, 2**20 * 4)),
)


# --- validity ------------------------------------------------------------------------------
def _neg_lap(n):
    # Symmetric, non-negative diagonal, non-positive off-diagonal, yet eigenvalue -0.5.
    return sp.csr_array(_laplacian_u(n) - 0.5 * sp.eye_array(n))


fit_case(
    "validity-negative-eigenvalue-small",
    lambda: {
        "laplacians": [
            sp.csr_array(np.array([[0.5] * 8]).T @ np.zeros((1, 8)) + _neg_lap(8)),
            None,
            None,
        ]
    },
    exc=ValueError,
    match=r"laplacians\[0\] has a negative eigenvalue \(-0\.5",
)
fit_case(
    "validity-negative-eigenvalue-off-diagonal-heavy",
    {
        "laplacians": [
            None,
            sp.csr_array(np.array([[0.0, -1.0] + [0] * 4, [-1.0, 0.0] + [0] * 4] + [[0] * 6] * 4)),
            None,
        ]
    },
    exc=ValueError,
    match=r"laplacians\[1\] has a negative eigenvalue",
)
fit_case(
    "validity-negative-eigenvalue-large-graph",
    lambda: {"laplacians": [_neg_lap(600), None, None], "init": "random"},
    lambda: _tensor_u(shape=(600, 6, 5)),
    exc=ValueError,
    match=r"laplacians\[0\] has a negative eigenvalue",
)
fit_case(
    "validity-large-normalized-laplacian-passes",
    lambda: {"laplacians": [_laplacian_u(600), None, None], "init": "random", "max_iter": 1},
    lambda: _tensor_u(shape=(600, 6, 5)),
    check=_is_finite,
)
fit_case(
    "validity-combinatorial-laplacian-passes",
    lambda: {"laplacians": [sp.csr_array(sp.csgraph.laplacian(_adjacency_u(8))), None, None]},
    check=_is_finite,
)


def _with_zeros_coo():
    x = _tensor_u()
    coords = np.concatenate([x.coords, [[1, 7], [2, 5], [3, 4]]], axis=1)
    return sparse.COO(coords, np.concatenate([x.data, [0.0, 0.0]]), shape=x.shape)


def _same_as(reference_x, **params):
    def check(model, d):
        ref = _est_u(**params).fit(reference_x())
        np.testing.assert_allclose(_rec(model, d["x"]), _rec(ref, d["x"]), rtol=1e-10, atol=1e-12)

    return check


fit_case(
    "zeros-coo-explicit-zeros-hypergraph-same-as-without",
    {"init": "random"},
    _with_zeros_coo,
    check=_same_as(_tensor_u, init="random"),
)


def _matrix(zeros: bool):
    rng = np.random.default_rng(3)
    dense = (rng.random((7, 5)) < 0.5) * (rng.random((7, 5)) + 0.5)
    m = sp.coo_array(dense)
    if zeros:
        # An explicit zero on a cell that is otherwise absent.
        i, j = np.argwhere(dense == 0)[0]
        m = sp.coo_array((np.r_[m.data, 0.0], (np.r_[m.row, i], np.r_[m.col, j])), shape=m.shape)
    return m, dense


case(
    "zeros-scipy-coo-dense-same-model-hypergraph",
    lambda: {"m": _matrix(True)[0], "dense": _matrix(True)[1]},
    lambda d: (
        _est_u(rank=2, init="random").fit(d["m"]),
        # pydata's from_scipy_sparse drops the zeros of the matrix it is given: a copy.
        _est_u(rank=2, init="random").fit(sparse.COO.from_scipy_sparse(d["m"].copy())),
        _est_u(rank=2, init="random").fit(d["dense"]),
    ),
    check=lambda ms, d: [
        np.testing.assert_allclose(ms[0].factors_[k], m.factors_[k], rtol=1e-10, atol=1e-12)
        for m in ms[1:]
        for k in range(2)
    ],
)
case(
    "zeros-scipy-and-coo-keep-observed-zero",
    lambda: {"m": _matrix(True)[0]},
    lambda d: (
        _est_u(rank=2, loss="observed", init="random").fit(d["m"]),
        # Built from the same triplets (pydata's from_scipy_sparse would drop the zero).
        _est_u(rank=2, loss="observed", init="random").fit(
            sparse.COO(np.stack([d["m"].row, d["m"].col]), d["m"].data, shape=d["m"].shape)
        ),
        _est_u(rank=2, loss="observed", init="random").fit(_matrix(False)[0]),
    ),
    check=lambda ms, d: (
        np.testing.assert_allclose(ms[0].factors_[0], ms[1].factors_[0], rtol=1e-10),
        _assert_eq(np.allclose(ms[0].factors_[0], ms[2].factors_[0]), False),
    ),
)
fit_case(
    "zeros-only-explicit-zeros-hypergraph",
    {},
    lambda: sparse.COO(np.array([[0, 1], [0, 1], [0, 1]]), np.array([0.0, 0.0]), shape=SHAPE),
    ValueError,
    "X has only zero values among its 2 stored entries",
)
fit_case(
    "zeros-cancelling-duplicates-hypergraph",
    {"init": "random"},
    lambda: sparse.COO(
        np.concatenate([_tensor_u().coords, [[2, 2], [3, 3], [4, 4]]], axis=1),
        np.concatenate([_tensor_u().data, [1.5, -1.5]]),
        shape=SHAPE,
        has_duplicates=True,
    ),
    check=_same_as(_tensor_u, init="random"),
)


# --- conflicts -----------------------------------------------------------------------------
def _hypergraph_with_graph_on(mode: int):
    adj = [None] * 3
    adj[mode] = _adjacency_u(SHAPE[mode], 5)
    return Hypergraph(_tensor_u(), graphs=adj, graph_kind="adjacency")


case(
    "conflict-hypergraph-graph-plus-laplacians-other-mode-both-used",
    lambda: {"x": _hypergraph_with_graph_on(0), "laps": [None, _laplacian_u(SHAPE[1]), None]},
    lambda d: _est_u(laplacians=d["laps"]).fit(d["x"]),
    check=lambda m, d: (
        _assert_eq([lap is not None for lap in m._laplacians_fit], [True, True, False]),
        _is_finite(m, d),
    ),
)
case(
    "conflict-hypergraph-graph-plus-laplacians-same-mode-warns",
    lambda: {"x": _hypergraph_with_graph_on(0), "laps": [_laplacian_u(SHAPE[0]), None, None]},
    lambda d: _est_u(laplacians=d["laps"]).fit(d["x"]),
    warns=UserWarning,
    match=r"carries graphs for modes \[0\].*X's graphs are used",
    check=lambda m, d: np.testing.assert_allclose(
        m._laplacians_fit[0].toarray(), d["x"].laplacians[0].toarray()
    ),
)


def _warm_then(**changes):
    model = _est_u(warm_start=True).fit(_tensor_u())
    return model.set_params(**changes)


case(
    "conflict-warm-start-after-rank-change",
    lambda: {"model": _warm_then(rank=3), "x": _tensor_u()},
    lambda d: d["model"].fit(d["x"]),
    ValueError,
    r"warm_start=True starts from the fitted factors of rank 2, but rank=3",
)
case(
    "conflict-warm-start-same-rank-continues",
    # "_model" is refitted on purpose: left out of the snapshot.
    lambda: {"_model": _warm_then(), "x": _tensor_u()},
    lambda d: d["_model"].fit(d["x"]),
    check=lambda m, d: _assert_eq(len(m.loss_history_), 6),
)
case(
    "conflict-feature-names-follow-fitted-rank",
    lambda: {"model": _est_u().fit(_tensor_u()).set_params(rank=5)},
    lambda d: d["model"].get_feature_names_out(),
    check=lambda names, d: _assert_eq(len(names), 2),
)
fit_case(
    "conflict-n_steps-0-hyperlearn",
    {"solver": "hyperlearn", "n_steps": 0},
    exc=ValueError,
    match="n_steps=0: the HyperLearn solver",
)
fit_case("conflict-n_steps-0-als-ignored", {"n_steps": 0}, check=_is_finite)

# --- types ---------------------------------------------------------------------------------
for _name, _value in (
    ("sample_mode", True),
    ("rank", True),
    ("max_iter", np.True_),
    ("init_iter", False),
    ("n_iter_no_change", True),
    ("hidden", np.True_),
    ("tol", True),
    ("lam", np.True_),
):
    fit_case(
        f"types-{_name}-bool-refused",
        {_name: _value},
        exc=TypeError,
        match=f"'{_name}' parameter .* not a boolean",
    )
for _name, _value in (
    ("rank", np.int64(2)),
    ("rank", np.uint8(2)),
    ("max_iter", np.int32(2)),
    ("sample_mode", np.uint64(1)),
    ("max_memory", np.int64(10**9)),
    ("max_memory", np.float32(1e9)),
    ("lam", np.float32(0.5)),
):
    fit_case(f"types-{_name}-{type(_value).__name__}-accepted", {_name: _value}, check=_is_finite)
fit_case(
    "types-max_memory-np-true-refused",
    {"max_memory": np.True_},
    exc=(TypeError, ValueError),
    match="max_memory",
)
fit_case(
    "types-callback-np-true-stops",
    {"callback": lambda info: np.True_, "max_iter": 5},
    check=lambda m, d: _assert_eq(m.n_iter_, 1),
)
fit_case(
    "types-callback-truthy-non-bool-does-not-stop",
    {"callback": lambda info: 1, "max_iter": 4},
    check=lambda m, d: _assert_eq(m.n_iter_, 4),
)


case(
    "reconstruct-uint64-beyond-shape",
    lambda: {
        "model": _est_u().fit(_tensor_u()),
        "c": np.array([[2**63 + 1, 0, 0]], dtype=np.uint64),
    },
    lambda d: d["model"].reconstruct(d["c"]),
    ValueError,
    "outside the fitted shape",
)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", refused_params(REFUSED))
def test_malformed_input_is_refused_naming_the_culprit(case):
    check_refused(case)


@pytest.mark.parametrize("case", UNUSUAL, ids=[c.id for c in UNUSUAL])
def test_unusual_input_is_refused_or_handled(case, tmp_path):
    check_unusual(case)


# ---------------------------------------------------------------------------- accepted inputs
# The other side of the catalogue: inputs that look unusual but are valid must be accepted,
# unchanged, with the documented dtype handling.
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int8, np.float64),
        (np.bool_, np.float64),
    ],
)
def test_dtypes_are_preserved_or_promoted(dtype, expected):
    x = (_tensor() > 0.8).astype(dtype) if dtype == np.bool_ else (_tensor() * 3).astype(dtype)
    before = snapshot(x)
    model = _est().fit(x)
    assert_same(before, snapshot(x), "X")
    assert all(a.dtype == expected for a in model.factors_)
    assert model.transform(x).dtype == expected


def test_duplicate_coo_coordinates_are_summed_as_pydata_sparse_does():
    coords = np.array([[0, 0, 1, 2], [1, 1, 0, 2], [2, 2, 1, 0]])
    values = np.array([1.0, 2.0, 0.5, 4.0])
    dup = sparse.COO(coords, values, shape=(3, 3, 3), has_duplicates=True)
    raw = sparse.COO(coords, values, shape=(3, 3, 3), has_duplicates=False)  # not summed yet
    summed = sparse.COO(coords[:, 1:], np.array([3.0, 0.5, 4.0]), shape=(3, 3, 3))
    before = snapshot(raw)
    a = _est(rank=1, max_iter=5).fit(raw)
    b = _est(rank=1, max_iter=5).fit(summed)
    c = _est(rank=1, max_iter=5).fit(dup)
    assert_same(before, snapshot(raw), "X")
    for fa, fb, fc in zip(a.factors_, b.factors_, c.factors_, strict=True):
        np.testing.assert_allclose(fa, fb)
        np.testing.assert_allclose(fc, fb)
    doc = HyperLearnDecomposition.__doc__
    assert "Repeated coordinates" in doc and "summed" in doc


def test_devices_given_as_cpu_strings_are_accepted():
    x = _tensor()
    for devices in ("cpu", ["cpu", "cpu", "cpu"], ("cpu", torch.device("cpu"), "cpu")):
        model = _est(devices=devices).fit(x)
        assert model.devices_ == ["cpu"] * 3
