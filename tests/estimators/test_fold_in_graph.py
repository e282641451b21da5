"""A fold-in of a Hypergraph slice sees its edges to the fitted entities: the union's graph,
against dense references (the union's Laplacian built directly, autograd of J over it)."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
import torch

from skhyperlearn import Hypergraph, HyperLearnDecomposition
from skhyperlearn._graph_origin import fold_in_blocks
from skhyperlearn.graphs import normalized_laplacian

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHAPE = (30, 8, 6)
RANK = 3


def _adjacency(n, seed):
    adj = sp.random(n, n, density=0.25, random_state=seed)
    adj = (adj + adj.T).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    return adj


def _hypergraph(kind="adjacency", seed=0, graph_mode=0):
    rng = np.random.default_rng(seed)
    cells = int(np.prod(SHAPE))
    flat = rng.choice(cells, size=cells // 4, replace=False)
    coords = np.stack(np.unravel_index(flat, SHAPE), 0)
    x = sparse.COO(coords, np.ones(flat.shape[0]), shape=SHAPE)
    graphs = [None] * 3
    adj = _adjacency(SHAPE[graph_mode], seed + 1)
    graphs[graph_mode] = adj if kind == "adjacency" else normalized_laplacian(adj)
    return Hypergraph(x, graphs, graph_kind=kind)


TRAIN = np.arange(0, 30, 3).tolist() + np.arange(1, 30, 3).tolist()
TEST = np.arange(2, 30, 3)


@pytest.mark.parametrize("kind", ["adjacency", "laplacian"])
def test_blocks_are_the_union_graph(kind):
    h = _hypergraph(kind)
    # A slice of a slice: positions compose.
    train = h[np.arange(29)][TRAIN[:15]]
    test = h[TEST]
    blocks = fold_in_blocks(train._origins[0], test._origins[0])
    fitted = np.asarray(TRAIN[:15])
    outside = fitted[~np.isin(fitted, TEST)]
    union = np.concatenate([TEST, outside])
    w = h.graphs[0][union][:, union]
    lap = (normalized_laplacian(w) if kind == "adjacency" else sp.csr_array(w)).toarray()
    n = len(TEST)
    np.testing.assert_allclose(blocks.own.toarray(), lap[:n, :n])
    np.testing.assert_allclose(blocks.cross.toarray(), lap[:n, n:])
    np.testing.assert_array_equal(fitted[blocks.rows], outside)


def test_no_blocks_without_fitted_neighbours_outside_or_another_origin():
    h = _hypergraph()
    assert fold_in_blocks(h[TRAIN[:5]]._origins[0], h[TRAIN]._origins[0]) is None
    assert fold_in_blocks(h[TRAIN]._origins[0], h._origins[0]) is None
    other = Hypergraph(h.tensor, h.graphs, graph_kind="adjacency")
    assert fold_in_blocks(h[TRAIN]._origins[0], other[TEST]._origins[0]) is None


def _union_objective(model, h, test, mode, lam, alpha, scale):
    """J over the new rows ``a`` (fitted units) with the fitted rows fixed, by einsum over the
    dense tensor and the union's Laplacian built from the full graph."""
    factors = [torch.as_tensor(f) for f in model.factors_]
    x = torch.as_tensor(h.take(test, mode=mode).tensor.todense())
    positions = model._origins_fit[mode].positions
    outside = positions[~np.isin(positions, test)]
    union = np.concatenate([test, outside])
    w = h.graphs[mode][union][:, union]
    lap = torch.as_tensor(normalized_laplacian(w).toarray())
    fixed = factors[mode][np.flatnonzero(~np.isin(positions, test))]
    sizes = [len(test) if k == mode else f.shape[0] for k, f in enumerate(factors)]

    def j(flat):
        a = flat.view(len(test), RANK)
        fs = list(factors)
        fs[mode] = a
        cp = torch.einsum("ir,jr,kr->ijk", *fs)
        rows = torch.cat([a, fixed]) * scale  # the graph acts on the scale-carrying rows
        return (
            lam * ((x - cp) ** 2).sum()
            + 0.5 * (rows * (lap @ rows)).sum()
            + alpha * ((a * scale) ** 2).sum()
        )

    assert sizes[mode] == len(test)
    return j


@pytest.mark.parametrize(("mode", "factor_scale"), [(0, "free"), (0, "solved"), (1, "solved")])
def test_fold_in_is_the_minimiser_over_the_union_graph(mode, factor_scale):
    h = _hypergraph(graph_mode=mode)
    n = SHAPE[mode]
    test = np.arange(2, n, 3)
    train = np.setdiff1d(np.arange(n), test)
    lam, alpha = 1.0, 0.05
    model = HyperLearnDecomposition(
        rank=RANK, loss="hypergraph", lam=lam, alpha=alpha, factor_scale=factor_scale,
        max_iter=5, random_state=0,
    ).fit(h.take(train, mode=mode))  # fmt: skip
    got = model.fold_in(h.take(test, mode=mode), mode)
    scale = torch.ones(RANK, dtype=torch.float64)
    if mode != model.sample_mode and factor_scale == "solved":
        for k, f in enumerate(model.factors_):
            if k != mode:
                scale = scale * torch.linalg.vector_norm(torch.as_tensor(f), dim=0)
    j = _union_objective(model, h, test, mode, lam, alpha, scale)
    zero = torch.zeros(len(test) * RANK, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(j, zero)
    hess = torch.autograd.functional.hessian(j, zero)
    want = torch.linalg.solve(hess, -grad).view(len(test), RANK).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    # Without the edges to the fitted rows (X's own sub-graph only) the answer differs.
    fresh = Hypergraph(h.take(test, mode=mode).tensor, h.take(test, mode=mode).graphs,
                       graph_kind="adjacency")  # fmt: skip
    assert not np.allclose(model.fold_in(fresh, mode), want, atol=1e-3)


def test_transform_of_the_training_slice_is_fit_transform():
    h = _hypergraph()
    model = HyperLearnDecomposition(rank=RANK, max_iter=5, random_state=0)
    z = model.fit_transform(h[TRAIN])
    np.testing.assert_allclose(model.transform(h[TRAIN]), z, rtol=1e-6, atol=1e-8)


def test_defaults_pull_an_entity_without_hyperedges_to_its_neighbours():
    h = _hypergraph()
    model = HyperLearnDecomposition(rank=RANK, max_iter=5, random_state=0).fit(h[TRAIN])
    # The test rows' hyperedges dropped but one (X must store an entry): the graph is all
    # that places the others, and their edges to training rows place them near those.
    test = h[TEST]
    t = test.tensor
    keep = t.coords[0] == t.coords[0][0]
    empty = Hypergraph(
        sparse.COO(t.coords[:, keep], t.data[keep], shape=t.shape), test.graphs,
        graph_kind="adjacency",
    )  # fmt: skip
    empty._origins = test._origins
    z = model.transform(empty)
    blocks = fold_in_blocks(model._origins_fit[0], test._origins[0])
    has_neighbours = np.asarray(abs(blocks.cross).sum(axis=1)).ravel() > 0
    rows = np.flatnonzero(has_neighbours & (np.arange(len(TEST)) != t.coords[0][0]))
    assert rows.size
    assert np.all(np.linalg.norm(z[rows], axis=1) > 1e-3)
    # Towards the weighted average of their fitted neighbours.
    near = -blocks.cross @ model.factors_[0][blocks.rows]
    cos = (z[rows] * near[rows]).sum(1) / np.linalg.norm(z[rows], axis=1)
    cos /= np.linalg.norm(near[rows], axis=1)
    assert np.all(cos > 0.9)


def test_pickled_estimator_and_slices_keep_the_edges():
    h = _hypergraph()
    model = HyperLearnDecomposition(rank=RANK, max_iter=5, random_state=0).fit(h[TRAIN])
    want = model.transform(h[TEST])
    model2, test2 = pickle.loads(pickle.dumps((model, h[TEST])))
    np.testing.assert_array_equal(model2.transform(test2), want)
    # The fitted estimator holds its own reference: the caller's graph is never written.
    before = h.graphs[0].toarray().copy()
    model.transform(h[TEST])
    np.testing.assert_array_equal(h.graphs[0].toarray(), before)


def test_marginalized_slices_keep_their_place():
    from skhyperlearn.preprocessing import marginalize_modes

    h = _hypergraph()
    model = HyperLearnDecomposition(rank=RANK, max_iter=5, random_state=0)
    model.fit(marginalize_modes(h[TRAIN], 2))
    test = marginalize_modes(h[TEST], 2)
    blocks = fold_in_blocks(model._origins_fit[0], test._origins[0])
    assert blocks is not None and blocks.cross.nnz
    fresh = Hypergraph(test.tensor, test.graphs, graph_kind="adjacency")
    assert not np.allclose(model.transform(test), model.transform(fresh))
