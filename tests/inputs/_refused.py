"""The refused-input catalogue's cases and builders (issue #5), shared by its test modules.

Every case builds its own inputs, takes a deep snapshot of them, calls one public entry point
and checks three things (:func:`check_refused`):

- the exception has the expected type;
- its message names the culprit (the parameter, the position ``laplacians[k]`` ..., and where
  it helps the value that was given);
- nothing the caller handed in was modified (arrays, sparse tensors and matrices, containers,
  and the state of an already fitted estimator).

The cases are split by entry point: ``test_catalogue_estimator.py`` (the decomposition),
``test_catalogue_completion.py`` (the regressor), ``test_catalogue_graphs.py`` (graph helpers,
``Hypergraph``, preprocessing) and ``test_catalogue_datasets.py`` (loaders, generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from _snapshot import assert_same, snapshot

from skhyperlearn import HyperLearnDecomposition, graphs

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


def refused_params(cases: list[Case]) -> list:
    """The cases as pytest parameters, with their ids and marks."""
    return [pytest.param(c, id=c.id, marks=c.marks) for c in cases]


def check_refused(case: Case) -> None:
    """The case's call raises its exception, matching its message; its inputs are unchanged."""
    inputs = case.make()
    before = snapshot(inputs)
    with pytest.raises(case.exc, match=case.match):
        case.call(inputs)
    assert_same(before, snapshot(inputs))
