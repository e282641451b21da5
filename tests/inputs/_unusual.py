"""The unusual-input catalogue's cases and builders (issue #12), shared by its test modules.

Scale, size, validity, conflicts, types and files: each case builds its inputs, snapshots
them, calls one public entry point and either checks a clear error or a correct result
(:func:`check_unusual`), and that the inputs are unchanged. The builders carry a ``_u`` suffix
to stand beside the refused catalogue's own (:mod:`_refused`) in a test module. Each test module
holds its cases in a :class:`Catalogue`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from _snapshot import assert_same, snapshot

from skhyperlearn import HyperLearnDecomposition, graphs

SHAPE = (8, 6, 5)


# ---------------------------------------------------------------------------- inputs
def _tensor_u(shape=SHAPE, seed=0, dtype=np.float64, scale=1.0) -> sparse.COO:
    rng = np.random.default_rng(seed)
    n = 4 * max(shape)
    coords = np.stack([rng.integers(0, s, n) for s in shape])
    values = ((rng.random(n) + 0.5) * scale).astype(dtype)
    return sparse.COO(coords, values, shape=shape)


def _adjacency_u(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.triu((rng.random((n, n)) < 0.5).astype(float), 1)
    w[np.arange(n - 1), np.arange(1, n)] = 1.0  # a path: connected
    return w + w.T


def _laplacian_u(n: int, seed: int = 0) -> sp.csr_array:
    return graphs.normalized_laplacian(_adjacency_u(n, seed))


def _est_u(**params) -> HyperLearnDecomposition:
    params.setdefault("rank", 2)
    params.setdefault("max_iter", 3)
    params.setdefault("tol", 0.0)
    params.setdefault("random_state", 0)
    return HyperLearnDecomposition(**params)


def _finite(model) -> bool:
    return all(np.isfinite(a).all() for a in model.factors_)


def _rec(model, x) -> np.ndarray:
    return model.reconstruct(np.asarray(x.coords).T)


_BASE: dict[str, np.ndarray] = {}


def _base_reconstruction(dtype, **params) -> np.ndarray:
    """Reconstruction of the unscaled tensor, cached per dtype and parameters."""
    key = f"{np.dtype(dtype).name}-{sorted(params.items())}"
    if key not in _BASE:
        x = _tensor_u(dtype=dtype)
        _BASE[key] = _rec(_est_u(alpha=0.0, **params).fit(x), x)
    return _BASE[key]


# ---------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    make: Callable[[], dict]  # fresh inputs
    call: Callable[[dict], Any]  # the entry point fed with them
    exc: type[BaseException] | None = None  # expected error, None: a result to check
    match: str = ""  # regex the message must match
    check: Callable[[Any, dict], None] | None = None  # the result's check
    warns: type[Warning] | None = None  # a warning that must be given (and match)


class Catalogue(list):
    """One test module's unusual-input cases; :meth:`case` and :meth:`fit_case` add one."""

    def case(self, id, make, call, exc=None, match="", check=None, warns=None):
        self.append(Case(id, make, call, exc, match, check, warns))

    def fit_case(self, id, params, make_x=_tensor_u, exc=None, match="", check=None, warns=None):
        self.case(
            id,
            lambda: {"x": make_x(), "params": params() if callable(params) else dict(params)},
            lambda d: _est_u(**d["params"]).fit(d["x"]),
            exc,
            match,
            check,
            warns,
        )


def _assert_eq(a, b):
    assert a == b, (a, b)


def _is_finite(model, d):
    assert _finite(model)


def check_unusual(case: Case) -> None:
    """The case's error (type, message) or its result's check, the warning it must give, and
    its inputs unchanged (keys starting with ``_`` are the case's own scratch)."""
    inputs = case.make()
    before = snapshot({k: v for k, v in inputs.items() if not k.startswith("_")})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.exc is not None:
            with pytest.raises(case.exc, match=case.match):
                case.call(inputs)
        else:
            result = case.call(inputs)
    if case.warns is not None:
        named = [w for w in caught if issubclass(w.category, case.warns)]
        assert any(re.search(case.match, str(w.message)) for w in named), [
            str(w.message) for w in caught
        ]
    if case.exc is None and case.check is not None:
        case.check(result, inputs)
    assert_same(before, snapshot({k: v for k, v in inputs.items() if not k.startswith("_")}))
