"""A mode's solve split over row blocks equals the solve over every row (threads as ranks).

Each of W threads holds a block of the mode's rows (``RowBlock``) over an in-memory stand-in for
the fit's ``ShardComm`` (the same collectives, by barrier), and runs the loss's one solve: the
gathered result and the value must be the whole solve's to rounding, on every thread the same
bits. Blocks may be empty (fewer rows than ranks). The sharded fit over gloo ranks is
``test_sharded.py``.
"""

import threading

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skhyperlearn._numerics._cg import pcg
from skhyperlearn._numerics._sparse import csr_to_torch
from skhyperlearn.solvers._sharded_rows import (
    SPLIT_MIN_CELLS,
    ReplicatedRows,
    RowBlock,
    solve_rows,
    split_gram_hadamard,
    split_policy,
)
from skhyperlearn.solvers.losses._hypergraph import HypergraphQuadratic
from skhyperlearn.solvers.losses._rowwise import RowwiseQuadratic


class _Exchange:
    """Every thread's value, handed to every thread (an all-to-all by barrier)."""

    def __init__(self, world):
        self.slots = [None] * world
        self.barrier = threading.Barrier(world, timeout=60)

    def all(self, rank, value):
        self.slots[rank] = value
        self.barrier.wait()
        got = list(self.slots)
        self.barrier.wait()
        return got


class _ThreadComm:
    """The collectives of ``ShardComm`` among threads (sums in rank order)."""

    def __init__(self, exchange, rank, world):
        self.ex, self.rank, self.world_size = exchange, rank, world
        self.calls = 0

    def sum(self, tensors, scalars, what):
        self.calls += 1
        got = self.ex.all(self.rank, ([t.clone() for t in tensors], list(scalars)))
        outs = [sum(g[0][i] for g in got) for i in range(len(tensors))]
        return outs, [sum(g[1][i] for g in got) for i in range(len(scalars))]

    def max(self, x, what):
        self.calls += 1
        return max(self.ex.all(self.rank, x))

    def scatter_sum(self, t, block, count, what, mode):
        self.calls += 1
        total = sum(self.ex.all(self.rank, t.clone()))
        start = min(self.rank * block, t.shape[0])
        return total[start : start + count]

    def gather_rows(self, t, block, n, what, mode):
        self.calls += 1
        assert t.shape[0] <= block
        return torch.cat(self.ex.all(self.rank, t.clone()))[:n]


def _graph(n, seed):
    rng = np.random.default_rng(seed)
    w = sp.random(n, n, density=0.3, random_state=rng)
    w = w + w.T
    w.setdiag(0)
    return csr_to_torch(sp.diags(np.asarray(w.sum(1)).ravel()) - w, torch.float64)


def _on_threads(world, work, timeout=60):
    """``work(comm)`` on ``world`` threads, one ``_ThreadComm`` each; their results in order."""
    ex = _Exchange(world)
    ex.barrier = threading.Barrier(world, timeout=timeout)
    out, errors = [None] * world, []

    def run(rank):
        try:
            out[rank] = work(_ThreadComm(ex, rank, world))
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)
            ex.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def _split(world, n, make_quad, run):
    """``run(quad, rows)`` on ``world`` threads, each with its block's quadratic."""

    def work(comm):
        rows = RowBlock(comm, n, mode=0)
        return run(make_quad(rows), rows)

    return _on_threads(world, work)


def _same_on_every_rank(out):
    for got in out[1:]:
        for a, b in zip(got, out[0], strict=True):
            if a is not None:
                torch.testing.assert_close(a, b, rtol=0, atol=0)


def _close(got, want):
    scale = float(want.abs().max())
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("world, n", [(2, 11), (3, 9), (4, 3)])
@pytest.mark.parametrize("graph", [True, False])
@pytest.mark.parametrize("warm", [True, False])
def test_hypergraph_solve_over_row_blocks_equals_the_whole_solve(world, n, graph, warm):
    rng = np.random.default_rng(n)
    rank = 3
    linear = torch.from_numpy(rng.standard_normal((n, rank)))
    h = rng.standard_normal((7, rank))
    gram = torch.from_numpy(h.T @ h)
    lap = _graph(n, n) if graph else None
    start = (torch.from_numpy(rng.standard_normal((n, rank))), None) if warm else None
    shift = torch.from_numpy(rng.standard_normal((n, rank)))
    whole = HypergraphQuadratic(0, 5.0, linear, gram)
    args = (lap, 0.7, 0.1, start, 1e-12, 500)
    want, _ = whole.solve(*args, shift=shift)

    def run(quad, rows):
        a, _ = quad.solve(*args, shift=shift)
        return a, quad.value(a)

    def make(rows):
        return HypergraphQuadratic(0, 5.0, rows.local(linear), gram, rows=rows)

    out = _split(world, n, make, run)
    _same_on_every_rank(out)
    _close(out[0][0], want)
    _close(out[0][1], whole.value(want))


@pytest.mark.parametrize("world, n", [(2, 10), (4, 3)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_rowwise_solve_over_row_blocks_equals_the_whole_solve(world, n, with_bias):
    rng = np.random.default_rng(world + n)
    width = 3 + int(with_bias)
    h = rng.standard_normal((n, 6, width))
    grams = torch.from_numpy(np.einsum("nei,nej->nij", h, h))
    linear = torch.from_numpy(rng.standard_normal((n, width)))
    lap = _graph(n, 1)
    start = (torch.zeros(n, 3, dtype=torch.float64), torch.zeros(n, dtype=torch.float64))
    whole = RowwiseQuadratic(0, 2.0, linear, grams, with_bias)
    args = (lap, 1.3, 0.05, start, 1e-12, 500)
    want_a, want_b = whole.solve(*args)

    def make(rows):
        return RowwiseQuadratic(0, 2.0, rows.local(linear), rows.local(grams), with_bias, rows=rows)

    def run(quad, rows):
        a, b = quad.solve(*args)
        return a, b, quad.value(a, b)

    out = _split(world, n, make, run)
    _same_on_every_rank(out)
    _close(out[0][0], want_a)
    if with_bias:
        _close(out[0][1], want_b)
    _close(out[0][2], whole.value(want_a, want_b))


def test_row_blocks_cover_every_row_once_and_grams_sum_over_them():
    rng = np.random.default_rng(0)
    factors = [torch.from_numpy(rng.standard_normal((n, 4))) for n in (5, 2, 7)]
    world = 3

    def run(_, rows0):
        blocks = [RowBlock(rows0.comm, int(a.shape[0]), k) for k, a in enumerate(factors)]
        spans = [(b.start, b.stop) for b in blocks]
        return spans, split_gram_hadamard(factors, 1, blocks)

    out = _split(world, 5, lambda rows: None, run)
    for k, a in enumerate(factors):
        covered = [i for spans, _ in out for i in range(*spans[k])]
        assert covered == list(range(a.shape[0]))
    want = (factors[0].T @ factors[0]) * (factors[2].T @ factors[2])
    for _, gram in out:
        torch.testing.assert_close(gram, want, rtol=1e-12, atol=1e-12)


class _Ranks:
    rank, world_size = 1, 4


@pytest.mark.parametrize(
    "policy, cells, coupled, split",
    [
        ("auto", 10, False, True),  # no graph: the split adds no message
        ("auto", 10, True, False),  # a small coupled mode: solved whole on every rank
        ("auto", SPLIT_MIN_CELLS, True, True),
        ("all", 10, True, True),
        ("none", SPLIT_MIN_CELLS, False, False),
    ],
)
def test_which_solves_are_split(policy, cells, coupled, split):
    rows = solve_rows(_Ranks(), 9, 0, cells, coupled, policy)
    assert isinstance(rows, RowBlock if split else ReplicatedRows)
    # Rank 1 of 4 over 9 rows: blocks of 3, its own [3, 6); or every row.
    assert (rows.start, rows.count(9)) == ((3, 3) if split else (0, 9))


def test_one_rank_keeps_every_mode_whole_unless_told():
    one = type("One", (), {"rank": 0, "world_size": 1})()
    assert isinstance(solve_rows(one, 9, 0, 10, False, "auto"), ReplicatedRows)
    assert isinstance(solve_rows(one, 9, 0, 10, False, "all"), RowBlock)


def test_split_policy_names_the_variable_when_unknown(monkeypatch):
    monkeypatch.setenv("SKHYPERLEARN_SPLIT_SOLVES", "sometimes")
    with pytest.raises(ValueError, match="SKHYPERLEARN_SPLIT_SOLVES='sometimes'"):
        split_policy()
    monkeypatch.delenv("SKHYPERLEARN_SPLIT_SOLVES")
    assert split_policy() == "auto"


def test_independent_cgs_split_over_ranks_stop_together():
    # Each thread holds some of the independent systems (columns); its operator is a
    # collective, as the sharded CG's is. Systems that converge at different steps must not
    # let one thread stop while the others wait in the collective.
    world, n = 2, 6
    rng = np.random.default_rng(3)
    mats, rhs = [], []
    for cond in (1.5, 1e4):  # thread 0's system converges in a few steps, thread 1's not
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        mats.append(torch.from_numpy(q @ np.diag(np.geomspace(1, cond, n)) @ q.T))
        rhs.append(torch.from_numpy(rng.standard_normal((n, 1))))

    def work(comm):
        def op(y):
            comm.sum([y], [], "step")  # a collective every step
            return mats[comm.rank] @ y

        rows = RowBlock(comm, world, 0)
        b = rhs[comm.rank]
        return pcg(op, b, torch.zeros_like(b), lambda r: r, tol=1e-10, maxiter=200,
                   per_column=True, allany=rows.any)  # fmt: skip

    out = _on_threads(world, work, timeout=10)
    for rank in range(world):
        want = torch.linalg.solve(mats[rank], rhs[rank])
        torch.testing.assert_close(out[rank], want, rtol=1e-8, atol=1e-8)
