"""The memory estimate, term by term, against the bytes the layout and buffers actually hold.

``estimate_fit_bytes`` adds up terms; each is checked where it can be isolated: the stored
entries' term is the difference between two and one devices (the data is held once per
device), its growth per stored entry against the bytes per entry of the tensors the layout
holds after every mode was visited, the losses' ``buffer_bytes`` against the Grams their
kernels return, and the chunk budget against ``max_memory``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sparse
import torch

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._memory import estimate_fit_bytes
from skhyperlearn._numerics._kernels import (
    DEFAULT_CHUNK_BYTES,
    SparseTensorData,
    implicit_normal_equations,
    mode_normal_equations,
)
from skhyperlearn._validation import check_tensor
from skhyperlearn.solvers import _problem
from skhyperlearn.solvers.losses import get_loss


def _input(shape, nnz, seed=0):
    rng = np.random.default_rng(seed)
    coords = np.unique(np.stack([rng.integers(0, n, nnz) for n in shape]), axis=1)
    return check_tensor(sparse.COO(coords, rng.random(coords.shape[1]), shape=shape))


def _layout_bytes(data) -> int:
    """Bytes of the tensors a fit's layout holds once every mode was visited."""
    # A tiny chunk budget: no small-tensor sorted copies, which the chunk term bounds.
    t = SparseTensorData.from_numpy(data.coords, data.values, data.shape, chunk_bytes=2**10)
    for k in range(t.order):
        t.in_mode_order(k)
    held = [t.coords_t, t.values, *t._perms.values()]
    held += [x for copy in t._sorted.values() if copy is not None for x in copy]
    storages = {
        x.untyped_storage().data_ptr(): x.untyped_storage().nbytes() for x in held if x is not None
    }
    return sum(storages.values())


def _estimate(data, rank=4, **kw):
    args = dict(loss_bytes=0, solver="als", chunk_bytes=2**20, n_devices=1)
    args.update(kw)
    return estimate_fit_bytes(data.shape, data.values.shape[0], rank, 8, **args)


@pytest.mark.parametrize("shape", [(40, 30, 20), (12, 10, 9, 8)], ids=["order3", "order4"])
def test_the_entries_term_is_what_the_layout_holds_once_per_device(shape):
    data = _input(shape, 3000)
    held = _layout_bytes(data)
    # The stored entries and their permutations are the only term that a device adds.
    per_device = _estimate(data, n_devices=2) - _estimate(data, n_devices=1)
    assert per_device >= held
    assert per_device <= 1.25 * held  # an estimate, not a multiple of what is held
    assert _estimate(data, n_devices=3) - _estimate(data, n_devices=2) == per_device


def test_growth_per_stored_entry_covers_the_layout_bytes_per_entry():
    shape = (200, 150, 100)
    small, large = _input(shape, 4000), _input(shape, 8000, seed=1)
    n_small, n_large = small.values.shape[0], large.values.shape[0]
    held_per_entry = (_layout_bytes(large) - _layout_bytes(small)) / (n_large - n_small)
    # int32 coordinates of 3 modes, float64 values, int32 permutations of modes 1 and 2.
    assert held_per_entry == 3 * 4 + 8 + 2 * 4
    growth = (_estimate(large) - _estimate(small)) / (n_large - n_small)
    assert growth >= held_per_entry


@pytest.mark.parametrize("shape", [(60, 7, 5), (5, 7, 60)])
def test_implicit_buffer_bytes_cover_the_largest_modes_grams(shape):
    rank, itemsize = 4, 8
    data = _input(shape, 300)
    t = SparseTensorData.from_numpy(data.coords, data.values, shape)
    rng = np.random.default_rng(0)
    factors = [torch.as_tensor(rng.random((n, rank))) for n in shape]
    # The per-row Grams are the exact mode solve's (the CG default holds none).
    loss = get_loss("implicit", confidence=2.0, mode_solve="exact")
    grams = [implicit_normal_equations(t, factors, k, 2.0)[1] for k in range(3)]
    held = max(g.numel() * g.element_size() for g in grams)
    assert held == max(shape) * rank**2 * itemsize
    assert loss.buffer_bytes(shape, rank, itemsize) >= held


@pytest.mark.parametrize("shape", [(60, 7, 5), (5, 7, 60)])
def test_observed_buffer_bytes_cover_the_largest_modes_grams(shape):
    rank, itemsize = 4, 8
    data = _input(shape, 300)
    t = SparseTensorData.from_numpy(data.coords, data.values, shape)
    rng = np.random.default_rng(0)
    factors = [torch.as_tensor(rng.random((n, rank))) for n in shape]
    biases = [torch.zeros(n, dtype=torch.float64) for n in shape]
    grams = [mode_normal_equations(t, factors, k, biases, 0.0, with_bias=True)[1] for k in range(3)]
    held = max(g.numel() * g.element_size() for g in grams)
    assert get_loss("observed").buffer_bytes(shape, rank, itemsize) >= held


def test_max_memory_shrinks_the_chunk_budget(monkeypatch):
    limit = 256 * 2**20
    X = sparse.COO(_input((30, 20, 10), 600).coords.T, 1.0, shape=(30, 20, 10))
    params = dict(rank=3, loss="hypergraph", max_iter=2, tol=0.0, random_state=0)
    # The default chunks alone (a few alive at once) would need more than the limit...
    free = HyperLearnDecomposition(**params).fit(X).memory_estimate_
    assert free > limit
    seen = []
    build = _problem.Problem.build.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs["chunk_bytes"])
        return build(cls, *args, **kwargs)

    monkeypatch.setattr(_problem.Problem, "build", classmethod(spy))
    # ...so the fit fits only because max_memory sized its chunks down.
    model = HyperLearnDecomposition(**params, max_memory=limit).fit(X)
    assert model.memory_estimate_ <= limit
    assert seen and all(c < DEFAULT_CHUNK_BYTES and 6 * c <= limit for c in seen)


@pytest.mark.parametrize("shape", [(40, 30, 20), (12, 10, 9, 8)], ids=["order3", "order4"])
def test_projection_terms_buffer_bytes_cover_the_pairs_they_hold(shape):
    """The default's projection terms hold one sparse matrix per other mode: the loss's share
    of the estimate covers what those matrices' layouts hold once both axes were visited."""
    from skhyperlearn.solvers.losses._projections import pair_tensors

    data = _input(shape, 3000)
    nnz = data.values.shape[0]
    plain = get_loss("implicit", projection_weight=0.0).for_data(
        data.shape, nnz, data.values, coords=data.coords
    )
    coupled = get_loss("implicit", projection_weight=1.0).for_data(
        data.shape, nnz, data.values, coords=data.coords
    )
    tensor = SparseTensorData.from_numpy(data.coords, data.values, data.shape, chunk_bytes=2**10)
    held = 0
    for pair in pair_tensors(tensor, 0).values():
        for k in range(2):
            pair.in_mode_order(k)
        parts = [pair.coords_t, pair.values, *pair._perms.values()]
        held += sum(x.untyped_storage().nbytes() for x in parts if x is not None)
    extra = coupled.buffer_bytes(data.shape, 4, 8) - plain.buffer_bytes(data.shape, 4, 8)
    assert held > 0
    assert held <= extra <= 4 * held
