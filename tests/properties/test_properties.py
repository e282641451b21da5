"""Property-based tests (hypothesis) of the estimator on random hypergraphs (issue #5).

Random orders 2–5, shapes 1..6 per mode, random coordinates with repeats (summed), modes whose
some indices never occur (empty slices), graphs with isolated nodes (zero degree), both losses,
random sample modes and dtypes: ``fit`` always gives finite factors of the right shapes,
``transform`` / ``reconstruct`` / ``fit_transform`` give the right shapes, and nothing the caller
passed in is modified.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._validation import check_tensor
from skhyperlearn.graphs import normalized_laplacian

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # reproducible in CI; a failure prints its minimal example
)


@st.composite
def adjacencies(draw, n: int):
    """A symmetric non-negative adjacency with some isolated nodes (zero rows and columns)."""
    weights = draw(
        st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0, 3.0]), min_size=n * n, max_size=n * n)
    )
    w = np.array(weights).reshape(n, n)
    w = np.triu(w, 1)
    w = w + w.T
    isolated = draw(st.lists(st.integers(0, n - 1), max_size=n))
    w[isolated, :] = 0.0
    w[:, isolated] = 0.0
    if draw(st.booleans()):
        w[0, :] = 0.0  # at least one isolated node often
        w[:, 0] = 0.0
    return w


@st.composite
def hypergraphs(draw, max_order=5, max_size=6):
    """(COO tensor, laplacians, adjacencies) with repeats, empty slices and isolated nodes."""
    order = draw(st.integers(2, max_order))
    shape = tuple(draw(st.lists(st.integers(1, max_size), min_size=order, max_size=order)))
    n_entries = draw(st.integers(1, 30))
    # Each mode draws its indices from a random subset: the other indices are empty slices.
    coords = []
    for n in shape:
        used = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        coords.append(draw(st.lists(st.sampled_from(used), min_size=n_entries, max_size=n_entries)))
    coords = np.array(coords, dtype=np.int64)
    # Explicit repeats of some coordinates.
    n_repeat = draw(st.integers(0, min(5, n_entries)))
    if n_repeat:
        coords = np.concatenate([coords, coords[:, :n_repeat]], axis=1)
    kind = draw(st.sampled_from(["float", "int", "binary"]))
    if kind == "float":
        values = np.array(
            draw(
                st.lists(
                    st.floats(-3, 3, allow_nan=False, allow_subnormal=False),
                    min_size=coords.shape[1],
                    max_size=coords.shape[1],
                )
            )
        )
    elif kind == "int":
        values = np.array(
            draw(st.lists(st.integers(1, 5), min_size=coords.shape[1], max_size=coords.shape[1])),
            dtype=np.int64,
        )
    else:
        values = np.ones(coords.shape[1])
    dtype = draw(st.sampled_from([np.float64, np.float32])) if kind != "int" else np.int64
    values = values.astype(dtype)
    if not np.any(sparse.COO(coords, values, shape=shape, has_duplicates=True).data != 0):
        # Stored zeros are dropped (one rule for every format): keep one non-zero cell.
        values[0] = 1 + np.abs(values).sum()
    summed_by_pydata = draw(st.booleans())
    x = sparse.COO(coords, values, shape=shape, has_duplicates=summed_by_pydata)
    adj, laps = [], []
    for n in shape:
        if n >= 2 and draw(st.booleans()):
            w = draw(adjacencies(n))
            adj.append(w)
            laps.append(normalized_laplacian(w))
        else:
            adj.append(None)
            laps.append(None)
    return x, laps, adj


def _copy_inputs(x, laps):
    return (
        (x.coords.copy(), x.data.copy(), x.shape),
        [None if lap is None else lap.toarray() for lap in laps],
    )


def _assert_unchanged(x, laps, saved):
    (coords, data, shape), dense_laps = saved
    assert x.shape == shape
    np.testing.assert_array_equal(x.coords, coords)
    np.testing.assert_array_equal(x.data, data)
    for lap, dense in zip(laps, dense_laps, strict=True):
        if lap is not None:
            np.testing.assert_array_equal(lap.toarray(), dense)


def _check_fitted(model, x, rank):
    shape = x.shape
    s = model.sample_mode
    assert len(model.factors_) == len(shape)
    for a, n in zip(model.factors_, shape, strict=True):
        assert a.shape == (n, rank)
        assert np.isfinite(a).all()
    expected = np.float32 if x.dtype == np.float32 else np.float64
    assert all(a.dtype == expected for a in model.factors_)
    assert all(np.isfinite(v) for v in model.loss_history_)
    z = model.transform(x)
    assert z.shape == (shape[s], rank) and np.isfinite(z).all()
    coords = x.coords.T
    rec = model.reconstruct(coords)
    assert rec.shape == (coords.shape[0],) and np.isfinite(rec).all()
    every = np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), axis=1)
    assert model.reconstruct(every).shape == (every.shape[0],)
    assert model.reconstruct(np.zeros((0, len(shape)), dtype=int)).shape == (0,)


# ---------------------------------------------------------------------------- exact solver
@settings(SETTINGS, max_examples=60)
@given(
    data=hypergraphs(),
    rank=st.integers(1, 4),
    loss=st.sampled_from(["hypergraph", "observed"]),
    alpha=st.sampled_from([0.0, 1e-3]),
    lam=st.sampled_from([0.1, 1.0, 10.0]),
    sample_mode_seed=st.integers(0, 4),
)
def test_exact_fit_is_finite_with_right_shapes(data, rank, loss, alpha, lam, sample_mode_seed):
    x, laps, _ = data
    s = sample_mode_seed % x.ndim
    saved = _copy_inputs(x, laps)
    model = HyperLearnDecomposition(
        rank=rank,
        lam=lam,
        alpha=alpha,
        laplacians=laps,
        loss=loss,
        sample_mode=s,
        max_iter=3,
        random_state=0,
    )
    z = model.fit_transform(x)
    assert z.shape == (x.shape[s], rank)
    np.testing.assert_array_equal(z, model.factors_[s])
    _check_fitted(model, x, rank)
    _assert_unchanged(x, laps, saved)


@settings(SETTINGS, max_examples=15)
@given(data=hypergraphs(max_order=4, max_size=5), rank=st.integers(1, 3))
def test_hypergraph_container_fit_is_finite(data, rank):
    """Graphs given as adjacencies through the Hypergraph container (isolated nodes kept)."""
    from skhyperlearn.hypergraph import Hypergraph

    x, _, adj = data
    h = Hypergraph(x, [None if w is None else sp.csr_array(w) for w in adj], graph_kind="adjacency")
    model = HyperLearnDecomposition(rank=rank, max_iter=2, random_state=0).fit(h)
    _check_fitted(model, x, rank)
    assert model.transform(h).shape == (x.shape[0], rank)


# ---------------------------------------------------------------------------- HyperLearn solver
@settings(SETTINGS, max_examples=6, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(
    data=hypergraphs(max_order=4, max_size=5),
    rank=st.integers(1, 3),
    loss=st.sampled_from(["hypergraph", "observed"]),
    schedule=st.sampled_from(["sequential", "parallel"]),
)
def test_hyperlearn_fit_is_finite_with_right_shapes(data, rank, loss, schedule):
    x, laps, _ = data
    saved = _copy_inputs(x, laps)
    model = HyperLearnDecomposition(
        rank=rank,
        laplacians=laps,
        loss=loss,
        solver="hyperlearn",
        schedule=schedule,
        init="random",
        n_steps=2,
        hidden=4,
        n_terms=2,
        max_iter=2,
        random_state=0,
    ).fit(x)
    _check_fitted(model, x, rank)
    assert len(model.blocks_) == x.ndim
    _assert_unchanged(x, laps, saved)


# ---------------------------------------------------------------------------- validation layer
@settings(SETTINGS, max_examples=80)
@given(data=hypergraphs())
def test_repeated_coordinates_are_summed_like_pydata_sparse(data):
    x, _, _ = data
    raw = sparse.COO(x.coords, x.data, shape=x.shape, has_duplicates=False)
    summed = sparse.COO(x.coords, x.data, shape=x.shape, has_duplicates=True)
    a, b = check_tensor(raw), check_tensor(summed)
    assert a.shape == b.shape == x.shape
    dense_a = np.zeros(x.shape)
    np.add.at(dense_a, tuple(a.coords.T), a.values)
    np.testing.assert_allclose(dense_a, summed.todense(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.sort(a.values[a.values != 0]), np.sort(b.values[b.values != 0]), rtol=1e-5, atol=1e-5
    )
    # distinct, in range
    linear = np.ravel_multi_index(tuple(a.coords.T), x.shape)
    assert np.unique(linear).shape[0] == linear.shape[0]


@settings(SETTINGS, max_examples=80)
@given(n=st.integers(1, 8), data=st.data())
def test_laplacian_with_isolated_nodes_is_finite_psd(n, data):
    w = data.draw(adjacencies(n)) if n >= 2 else np.zeros((1, 1))
    saved = w.copy()
    lap = normalized_laplacian(w)
    np.testing.assert_array_equal(w, saved)
    dense = lap.toarray()
    assert np.isfinite(dense).all()
    np.testing.assert_array_equal(dense, dense.T)
    isolated = ~(w > 0).any(axis=1)
    assert np.all(dense[isolated] == 0) and np.all(dense[:, isolated] == 0)
    eig = np.linalg.eigvalsh(dense)
    assert eig.min() > -1e-10 and eig.max() < 2 + 1e-10


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_single_entry_tensor_every_order(order):
    """The smallest inputs: one stored entry, shape 1 on some modes, rank above the sizes."""
    shape = tuple([1] * (order - 1) + [3])
    x = sparse.COO(np.zeros((order, 1), dtype=np.int64), np.array([2.0]), shape=shape)
    for loss in ("hypergraph", "observed"):
        model = HyperLearnDecomposition(rank=4, loss=loss, max_iter=3, random_state=0).fit(x)
        _check_fitted(model, x, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("graph", [False, True])
def test_observed_loss_rows_with_one_entry(dtype, graph):
    """Minimal example found by the properties above (hyperlearn, then exact solver).

    Every row holds one entry, so each per-row Gram ``[[Σa², Σa], [Σa, n]]`` (factor and bias
    columns) is singular; with ``alpha=0`` only the solver's ridge floor keeps the system
    solvable, and it must do so in float32 too.
    """
    x = sparse.COO(np.array([[0, 1], [0, 1]]), np.array([1.0, 2.0], dtype=dtype), shape=(2, 2))
    laps = [normalized_laplacian(np.zeros((2, 2))), None] if graph else None
    model = HyperLearnDecomposition(
        rank=1, loss="observed", lam=1.0, alpha=0.0, laplacians=laps, max_iter=2, random_state=0
    ).fit(x)
    _check_fitted(model, x, 1)
