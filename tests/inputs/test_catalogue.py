"""A catalogue of malformed inputs across the public API (issue #5).

Every case builds its own inputs, takes a deep snapshot of them, calls one public entry point
and checks three things:

- the exception has the expected type;
- its message names the culprit (the parameter, the position ``laplacians[k]`` ..., and where
  it helps the value that was given);
- nothing the caller handed in was modified (arrays, sparse tensors and matrices, containers,
  and the state of an already fitted estimator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
import torch
from _snapshot import assert_same, snapshot
from sklearn.exceptions import NotFittedError

from skhyperlearn import HyperLearnDecomposition, graphs
from skhyperlearn.datasets import (
    load_lastfm2k,
    load_monti_movielens,
    load_movielens100k,
    make_hypergraph,
)
from skhyperlearn.hypergraph import Hypergraph

try:  # written concurrently by another engineer
    from skhyperlearn._completion import HyperLearnRegressor
except ImportError:  # pragma: no cover - depends on the state of the tree
    HyperLearnRegressor = None

SHAPE = (8, 6, 5)
MISSING = "/nonexistent/skhyperlearn-catalogue"


# ---------------------------------------------------------------------------- inputs
def _tensor(shape=SHAPE, seed=0, dtype=np.float64) -> sparse.COO:
    rng = np.random.default_rng(seed)
    n = 3 * max(shape)
    coords = np.stack([rng.integers(0, s, n) for s in shape])
    coords[:, : len(shape)] = 0  # a repeated coordinate: summed, as pydata sparse does
    values = rng.random(n).astype(dtype) + 0.5
    return sparse.COO(coords, values, shape=shape, has_duplicates=True)


def _laplacian(n: int, seed: int = 0) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    w = np.triu((rng.random((n, n)) < 0.4).astype(float), 1)
    return graphs.normalized_laplacian(w + w.T)


def _laplacians(shape=SHAPE) -> list:
    return [_laplacian(n, k) for k, n in enumerate(shape)]


_FITTED: dict[str, HyperLearnDecomposition] = {}


def _fitted(warm_start: bool = False) -> HyperLearnDecomposition:
    """A small fitted estimator (cached; every case that uses it snapshots it first)."""
    key = f"warm={warm_start}"
    if key not in _FITTED:
        _FITTED[key] = HyperLearnDecomposition(
            rank=2,
            # without graphs, so that warm_start may be tried on another shape
            laplacians=None if warm_start else _laplacians(),
            max_iter=3,
            warm_start=warm_start,
            random_state=0,
        ).fit(_tensor())
    return _FITTED[key]


def _coords_values(seed=0):
    rng = np.random.default_rng(seed)
    coords = np.argwhere(rng.random((6, 5, 4)) < 0.4)
    return coords, rng.random(coords.shape[0])


def _est(**params) -> HyperLearnDecomposition:
    params.setdefault("rank", 2)
    params.setdefault("max_iter", 2)
    params.setdefault("random_state", 0)
    return HyperLearnDecomposition(**params)


# ---------------------------------------------------------------------------- the catalogue
@dataclass
class Case:
    id: str
    make: Callable[[], dict]  # the inputs, built fresh for the case
    call: Callable[[dict], Any]  # the entry point, fed with those inputs
    exc: type[BaseException]
    match: str  # regex the message must match: it names the culprit
    marks: list = field(default_factory=list)


def _fit(**params):
    """Inputs: a valid tensor X and the estimator's parameters; call: fit."""

    def make():
        return {"X": _tensor(), "params": params}

    def call(inp):
        return _est(**inp["params"]).fit(inp["X"])

    return make, call


def _fit_x(make_x, **params):
    """Inputs: a malformed X; call: fit."""

    def make():
        return {"X": make_x(), "params": params}

    def call(inp):
        return _est(**inp["params"]).fit(inp["X"])

    return make, call


def _fit_laplacians(make_laps):
    def make():
        return {"X": _tensor(), "laplacians": make_laps()}

    def call(inp):
        return _est(laplacians=inp["laplacians"]).fit(inp["X"])

    return make, call


def _on_fitted(method: str, make_arg, warm_start: bool = False):
    """Inputs: the fitted estimator and the argument; call: estimator.method(arg)."""

    def make():
        return {"model": _fitted(warm_start), "arg": make_arg()}

    def call(inp):
        return getattr(inp["model"], method)(inp["arg"])

    return make, call


def _on_unfitted(method: str, make_arg):
    def make():
        return {"model": _est(), "arg": make_arg()}

    def call(inp):
        return getattr(inp["model"], method)(inp["arg"])

    return make, call


def _func(fn, make_args, **kwargs):
    """Inputs: positional arguments of a function; call: fn(*args, **kwargs)."""

    def make():
        return {"args": list(make_args()), "kwargs": kwargs}

    def call(inp):
        return fn(*inp["args"], **inp["kwargs"])

    return make, call


def _asym(n=SHAPE[0]):
    """A Laplacian whose (0, 1) entry differs from its (1, 0) entry."""
    a = _laplacian(n).toarray()
    a[0, 1] -= 0.5
    return a


def _asym_adjacency(n=SHAPE[0]):
    w = np.ones((n, n))
    np.fill_diagonal(w, 0)
    w[0, 1] = 3.0
    return w


def _with(arr, index, value):
    dtype = object if isinstance(value, dict) else np.result_type(np.asarray(arr), value)
    out = np.array(arr, dtype=dtype)
    out[index] = value
    return out


def _coo_with(value):
    x = _tensor()
    data = x.data.copy()
    data[1] = value
    return sparse.COO(x.coords.copy(), data, shape=x.shape)


def _dense():
    return _tensor().todense()


def _init(shape=SHAPE, rank=2, **changes):
    arrays = [np.full((n, rank), 0.5) for n in shape]
    for k, a in changes.items():
        arrays[int(k[1:])] = a
    return arrays


def _features(n=10, seed=0):
    return np.random.default_rng(seed).random((n, 3))


def _adjacency(n=4):
    w = np.ones((n, n))
    np.fill_diagonal(w, 0)
    return w


def _regressor_cases() -> list[Case]:
    if HyperLearnRegressor is None:  # pragma: no cover
        return []

    def fit(make_xy, **params):
        def make():
            coords, y = make_xy()
            return {"X": coords, "y": y, "params": params}

        def call(inp):
            est = HyperLearnRegressor(**{"rank": 2, "max_iter": 2, **inp["params"]})
            return est.fit(inp["X"], inp["y"])

        return make, call

    fitted: dict = {}

    def predict(make_x):
        def make():
            if "m" not in fitted:
                fitted["m"] = HyperLearnRegressor(rank=2, max_iter=2, random_state=0).fit(
                    *_coords_values()
                )
            return {"model": fitted["m"], "X": make_x()}

        def call(inp):
            return inp["model"].predict(inp["X"])

        return make, call

    cv = _coords_values
    return [
        Case("regressor-rank-0", *fit(cv, rank=0), ValueError, r"'rank' parameter.*Got 0"),
        Case(
            "regressor-fractional-coords",
            *fit(lambda: (cv()[0] + 0.5, cv()[1])),
            ValueError,
            r"X must hold integer coordinates",
        ),
        Case(
            "regressor-negative-coords",
            *fit(lambda: (cv()[0] - 1, cv()[1])),
            ValueError,
            r"X holds (negative )?coordinates",
        ),
        Case(
            "regressor-y-nan",
            *fit(lambda: (cv()[0], _with(cv()[1], 0, np.nan))),
            ValueError,
            r"y contains NaN",
        ),
        Case(
            "regressor-X-y-length-mismatch",
            *fit(lambda: (cv()[0], cv()[1][:-1])),
            ValueError,
            r"inconsistent numbers of samples",
        ),
        Case(
            "regressor-shape-wrong-order",
            *fit(cv, shape=(6, 5)),
            ValueError,
            r"shape has 2 entries but X has 3 columns",
        ),
        Case(
            "regressor-shape-too-small",
            *fit(cv, shape=(2, 5, 4)),
            ValueError,
            r"column 0 of X holds index 5, outside mode 0 of size 2",
        ),
        Case(
            "regressor-single-column",
            *fit(lambda: (cv()[0][:, :1], cv()[1])),
            ValueError,
            r"1 feature\(s\).*minimum of 2",
        ),
        Case(
            "regressor-laplacian-count",
            *fit(cv, laplacians=[None]),
            ValueError,
            r"laplacians has 1 entries but X has 3 columns",
        ),
        Case(
            "regressor-predict-out-of-range",
            *predict(lambda: np.array([[6, 0, 0]])),
            ValueError,
            r"column 0 of X holds index 6, outside mode 0",
        ),
        Case(
            "regressor-predict-wrong-order",
            *predict(lambda: np.array([[0, 0]])),
            ValueError,
            r"X has 2 features.*expecting 3",
        ),
    ]


CASES: list[Case] = [
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
    # ---------------------------------------------------------------- loaders
    Case(
        "load_movielens100k-missing-path",
        *_func(load_movielens100k, lambda: [MISSING]),
        FileNotFoundError,
        r"MovieLens 100K not found: expected the file .*skhyperlearn-catalogue/ml-100k/u.data",
    ),
    Case(
        "load_lastfm2k-missing-path",
        *_func(load_lastfm2k, lambda: [MISSING]),
        FileNotFoundError,
        r"Last.fm 2K not found: expected the file .*user_taggedartists.dat",
    ),
    Case(
        "load_lastfm2k-order-5",
        *_func(load_lastfm2k, lambda: [MISSING], order=5),
        ValueError,
        r"order must be 3 or 4, got 5",
    ),
    Case(
        "load_monti_movielens-missing-path",
        *_func(load_monti_movielens, lambda: [MISSING]),
        FileNotFoundError,
        r"split_1.mat\) not found: expected the file .*skhyperlearn-catalogue",
    ),
    Case(
        "make_hypergraph-one-mode",
        *_func(make_hypergraph, lambda: [], shape=(5,)),
        ValueError,
        r"shape must have at least 2 modes, got 1",
    ),
    *_regressor_cases(),
]


def test_catalogue_is_large_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_malformed_input_is_refused_naming_the_culprit(case: Case):
    inputs = case.make()
    before = snapshot(inputs)
    with pytest.raises(case.exc, match=case.match):
        case.call(inputs)
    assert_same(before, snapshot(inputs))


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
