"""Coordinates are bounds-checked on every path, whatever the number of cells (#23).

A tensor of more than 2^63 cells has no int64 linear index, so the check that used to come with
``np.ravel_multi_index`` never ran for it: a coordinate past its mode passed validation and
reached the compiled kernels. Below 2^63 cells the same mistake was numpy's "invalid entry in
coordinates array", which names neither X nor the mode.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import sparse

from skhyperlearn import HyperLearnDecomposition, graphs
from skhyperlearn._validation import check_tensor, n_cells
from skhyperlearn.hypergraph import Hypergraph

BIG = (10**7, 10**7, 10**7)  # 10^21 cells, more than 2^63


def _coo(shape, coords, bad_mode, bad_value):
    """A COO built valid, then given a coordinate outside its shape (as a caller's edit can)."""
    x = sparse.COO(np.array(coords), np.arange(1.0, len(coords[0]) + 1), shape=shape,
                   sorted=True, has_duplicates=False)  # fmt: skip
    x.coords[bad_mode, -1] = bad_value
    return x


def _snapshot(x):
    return copy.deepcopy((x.coords, x.data, x.shape))


def _same(a, b):
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


CASES = [
    (BIG, [[0, 1], [0, 1], [0, 2]], 0, 10**7 + 5, r"mode 0 holds index 10000005"),
    (BIG, [[0, 1], [0, 1], [0, 2]], 2, 10**7, r"mode 2 holds index 10000000"),
    (BIG, [[0, 1], [0, 1], [0, 2]], 1, -1, r"mode 1 holds index -1"),
    ((3, 4), [[0, 1], [0, 1]], 1, 4, r"mode 1 holds index 4"),
    ((3, 4), [[0, 1], [0, 1]], 0, -2, r"mode 0 holds index -2"),
]


@pytest.mark.parametrize(("shape", "coords", "mode", "value", "match"), CASES)
def test_check_tensor_refuses_coordinates_outside_the_shape(shape, coords, mode, value, match):
    x = _coo(shape, coords, mode, value)
    before = _snapshot(x)
    with pytest.raises(ValueError, match=r"X has a coordinate outside its shape: " + match):
        check_tensor(x, "X")
    _same(before, _snapshot(x))


def test_big_tensor_in_range_still_passes():
    assert n_cells(BIG) > np.iinfo(np.int64).max
    x = sparse.COO(np.array([[0, 9_999_999], [0, 1], [0, 2]]), [1.0, 2.0], shape=BIG,
                   sorted=True, has_duplicates=False)  # fmt: skip
    data = check_tensor(x)
    np.testing.assert_array_equal(data.coords, [[0, 0, 0], [9_999_999, 1, 2]])


def test_fit_refuses_a_big_tensor_with_a_coordinate_past_its_mode():
    x = _coo(BIG, [[0, 1], [0, 1], [0, 2]], 0, 10**7 + 5)
    before = _snapshot(x)
    model = HyperLearnDecomposition(rank=2, max_iter=1)
    with pytest.raises(ValueError, match=r"X has a coordinate outside its shape: mode 0"):
        model.fit(x)
    assert not hasattr(model, "factors_")
    _same(before, _snapshot(x))


def test_scipy_input_with_an_index_past_its_shape_is_named():
    m = sp.coo_array((np.array([1.0, 2.0]), (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    m.col[0] = 5
    before = (m.row.copy(), m.col.copy(), m.data.copy())
    with pytest.raises(ValueError, match=r"X has a coordinate outside its shape: mode 1 holds"):
        check_tensor(m, "X")
    _same(before, (m.row, m.col, m.data))


def test_hypergraph_and_cooccurrence_refuse_coordinates_outside_the_shape():
    x = _coo((3, 4, 2), [[0, 1], [0, 1], [0, 1]], 1, 9)
    with pytest.raises(ValueError, match=r"tensor has a coordinate outside its shape: mode 1"):
        Hypergraph(x)
    big = _coo(BIG, [[0, 1], [0, 1], [0, 2]], 2, 10**7 + 1)
    with pytest.raises(ValueError, match=r"tensor has a coordinate outside its shape: mode 2"):
        graphs.cooccurrence_graph(big, 0)
