"""Malformed and unusual input to HyperLearnRegressor (see _refused.py and _unusual.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _refused import Case, _regressor_cases, check_refused, refused_params
from _unusual import Catalogue, _assert_eq, _is_finite, _laplacian_u, check_unusual

from skhyperlearn import HyperLearnRegressor

REFUSED: list[Case] = [
    *_regressor_cases(),
]

UNUSUAL = Catalogue()
case, fit_case = UNUSUAL.case, UNUSUAL.fit_case


def _reg_data():
    rng = np.random.default_rng(0)
    coords = np.stack([rng.integers(0, 4, 30), rng.integers(0, 3, 30)], axis=1)
    return {"X": coords, "y": rng.random(30) + 1.0}


def _reg_fit(**params):
    params = {"rank": 1, "max_iter": 2, "random_state": 0, **params}
    return lambda d: HyperLearnRegressor(**params).fit(d["X"], d["y"])


def _reg_with(**params):
    return lambda d: _reg_fit(**{k: v() if callable(v) else v for k, v in params.items()})(d)


case(
    "types-regressor-laplacians-single-matrix",
    _reg_data,
    _reg_with(laplacians=lambda: _laplacian_u(4)),
    TypeError,
    "laplacians must be a list of 2 Laplacians .* got a single csr_array",
)
case(
    "types-regressor-laplacians-single-ndarray",
    _reg_data,
    _reg_with(laplacians=lambda: _laplacian_u(4).toarray()),
    TypeError,
    "laplacians must be a list of 2 Laplacians .* got a single ndarray",
)
case(
    "types-regressor-laplacians-nested-lists",
    _reg_data,
    _reg_with(laplacians=lambda: [_laplacian_u(5).toarray().tolist(), None]),
    check=lambda m, d: (_assert_eq(m.shape_, (5, 3)), _is_finite(m.decomposition_, d)),
)
case(
    "types-regressor-laplacians-1d-entry",
    _reg_data,
    _reg_with(laplacians=lambda: [[1.0, 2.0], None]),
    ValueError,
    r"laplacians\[0\] must be a 2-D matrix",
)
case(
    "types-regressor-shape-numpy-ints",
    _reg_data,
    _reg_with(shape=(np.int64(6), np.uint8(3))),
    check=lambda m, d: _assert_eq(m.shape_, (6, 3)),
)
case(
    "types-regressor-shape-bool",
    _reg_data,
    _reg_with(shape=(True, 3)),
    TypeError,
    r"shape\[0\] must be an integer",
)
case(
    "types-regressor-shape-fraction",
    _reg_data,
    _reg_with(shape=(6.5, 3)),
    TypeError,
    r"shape\[0\] must be an integer",
)
case("types-regressor-rank-bool", _reg_data, _reg_with(rank=True), TypeError, "'rank' parameter")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", refused_params(REFUSED))
def test_malformed_input_is_refused_naming_the_culprit(case):
    check_refused(case)


@pytest.mark.parametrize("case", UNUSUAL, ids=[c.id for c in UNUSUAL])
def test_unusual_input_is_refused_or_handled(case, tmp_path):
    check_unusual(case)
