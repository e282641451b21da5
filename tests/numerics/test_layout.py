"""The single-copy layout of the stored entries (issue 13).

One ``(K, nnz)`` index array (the caller's int32/int64 one, or a copy in the narrowest index
type), the values as given, a stable
permutation per mode whose indices are not in storage order, chunks gathered when visited.
Checked against dense einsum references, numpy's stable argsort and a count of what the layout
holds; and validation's conversion (no full copies, duplicates summed) against dense sums.
"""

from __future__ import annotations

import numpy as np
import pytest
import sparse
import torch

from skhyperlearn._numerics._kernels import (
    hypergraph_sq_error,
    mode_normal_equations,
    mttkrp,
    observed_sq_error,
)
from skhyperlearn._numerics._layout import SparseTensorData, _stable_order, index_dtype
from skhyperlearn._validation import check_tensor, drop_zeros

RANK = 4


def _dense(coords, values, shape):
    x = np.zeros(shape)
    np.add.at(x, tuple(coords.T), values)
    return x


def _mttkrp_dense(x, factors, mode):
    letters = "abcdefg"[: x.ndim]
    others = [j for j in range(x.ndim) if j != mode]
    spec = letters + "," + ",".join(f"{letters[j]}z" for j in others) + f"->{letters[mode]}z"
    return np.einsum(spec, x, *[factors[j] for j in others])


def _random_entries(shape, nnz, rng, *, sorted_=False):
    lin = rng.choice(int(np.prod(shape)), size=nnz, replace=False)
    if sorted_:
        lin = np.sort(lin)
    return np.stack(np.unravel_index(lin, shape), axis=1), rng.standard_normal(nnz)


@pytest.mark.parametrize("chunk_bytes", [1, 2**20, 2**26], ids=["tiny", "1MiB", "64MiB"])
@pytest.mark.parametrize("n_keys", [1, 3, 50, 5000])
def test_stable_order_is_a_stable_argsort(chunk_bytes, n_keys):
    rng = np.random.default_rng(n_keys)
    keys = rng.integers(0, n_keys, 200_000).astype(np.int32)
    t = torch.as_tensor(keys)
    ptr = torch.zeros(n_keys + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(t, minlength=n_keys), 0, out=ptr[1:])
    for dtype in (torch.int32, torch.int64):
        got = _stable_order(t, ptr, chunk_bytes, dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), np.argsort(keys, kind="stable"))


def test_index_dtype_is_the_narrowest_that_holds_the_mode():
    assert index_dtype(1) == torch.int32
    assert index_dtype(2**31 - 1) == torch.int32
    assert index_dtype(2**31) == torch.int64


@pytest.mark.parametrize("order", [2, 3, 4])
def test_shuffled_entries_sorted_per_mode_and_mttkrp_matches_einsum(order):
    """Storage order sorted by no mode: every mode needs a permutation and gets it right."""
    shape = (60, 50, 9, 7)[:order]
    rng = np.random.default_rng(order)
    coords, values = _random_entries(shape, 2500, rng)  # over two chunks of 1024
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    tf = [torch.as_tensor(a) for a in factors]
    x = _dense(coords, values, shape)
    t = SparseTensorData.from_numpy(coords, values, shape, chunk_bytes=1)
    assert t.coords_t.dtype == torch.int32
    for mode in range(order):
        chunks = list(t.layout(mode, RANK))
        assert len(chunks) == 3 and all(c.coords.shape[1] <= 1024 for c in chunks)
        seen = torch.cat([c.coords for c in chunks], 1)
        # Every entry once, in mode order, each with its own value.
        assert seen.shape[1] == len(values)
        assert bool((seen[mode, 1:] >= seen[mode, :-1]).all())
        vals = torch.cat([c.values for c in chunks]).numpy()
        np.testing.assert_allclose(np.sort(vals), np.sort(values))
        np.testing.assert_allclose(x[tuple(seen.numpy())], vals)
        np.testing.assert_allclose(
            mttkrp(t, tf, mode).numpy(), _mttkrp_dense(x, factors, mode), rtol=1e-10, atol=1e-10
        )
    model = np.einsum("ir,jr,kr->ijk", *factors[:3]) if order == 3 else None
    if model is not None:
        assert hypergraph_sq_error(t, tf) == pytest.approx(float(((x - model) ** 2).sum()))
        observed = float(((x - model)[tuple(coords.T)] ** 2).sum())
        assert observed_sq_error(t, tf) == pytest.approx(observed, rel=1e-12)


def test_layout_holds_one_copy_and_a_permutation_per_unsorted_mode():
    """What the tensor keeps after passes over every mode: ``K·4 + 4·(K−1)`` bytes per entry
    beyond the values (the storage order is sorted by mode 0), not a sorted copy per mode."""
    shape = (40, 30, 20)
    rng = np.random.default_rng(7)
    coords, values = _random_entries(shape, 5000, rng, sorted_=True)
    t = SparseTensorData.from_numpy(coords, values, shape, chunk_bytes=2**12)
    tf = [torch.as_tensor(rng.standard_normal((n, RANK))) for n in shape]
    for mode in range(3):
        mttkrp(t, tf, mode)
        mode_normal_equations(t, tf, mode, with_bias=True)
    assert t._perms[0] is None
    held = t.coords_t.numel() * t.coords_t.element_size()
    held += sum(p.numel() * p.element_size() for p in t._perms.values() if p is not None)
    assert held == len(values) * (3 * 4 + 2 * 4)
    # Workspace buffers stay within the chunk budget, whatever the number of entries.
    n_per = max(1024, 2**12 // ((RANK + 1) ** 2 * 8))
    for ws in t._workspaces.values():
        for name, buf in ws._bufs.items():
            assert buf.numel() <= max(n_per, 1024) * max(3, (RANK + 1) ** 2), name


def test_check_tensor_shares_sorted_input():
    """Sorted, distinct input is used as it is: its int64 coordinates are not narrowed into a
    copy (the caller keeps them alive anyway), and the kernels share them too."""
    shape = (50, 40, 30)
    rng = np.random.default_rng(3)
    coords, values = _random_entries(shape, 2000, rng, sorted_=True)
    x = sparse.COO(np.ascontiguousarray(coords.T, dtype=np.int64), values, shape=shape,
                   has_duplicates=False, sorted=True)  # fmt: skip
    data = check_tensor(x)
    assert data.coords.dtype == np.int64 and data.coords.T.flags.c_contiguous
    assert np.shares_memory(data.coords, x.coords) and not data.coords.flags.writeable
    assert x.coords.flags.writeable
    np.testing.assert_array_equal(data.coords, coords)
    # The values are the caller's, read-only through this view; the caller's stay writeable.
    assert np.shares_memory(data.values, x.data) and not data.values.flags.writeable
    assert x.data.flags.writeable
    t = SparseTensorData.from_numpy(data.coords, data.values, data.shape)
    assert np.shares_memory(t.coords_t.numpy(), data.coords)
    assert np.shares_memory(t.values.numpy(), data.values)


@pytest.mark.parametrize("dtype", [np.int16, np.uint32, np.int64])
def test_copied_coordinates_are_narrowed(dtype):
    """Coordinates that must be copied (another type, another layout) become int32."""
    shape = (50, 40, 30)
    coords, values = _random_entries(shape, 500, np.random.default_rng(5), sorted_=True)
    t = SparseTensorData.from_numpy(coords.astype(dtype), values, shape)  # (nnz, K) row-major
    assert t.coords_t.dtype == torch.int32 and t.coords_t.is_contiguous()
    np.testing.assert_array_equal(t.coords.numpy(), coords)
    data = drop_zeros(check_tensor(sparse.COO(coords.T, np.where(values > 0.5, values, 0.0),
                                              shape=shape)))  # fmt: skip
    assert data.coords.dtype == np.int32 and data.coords.T.flags.c_contiguous


def test_check_tensor_sums_unsorted_duplicates_like_dense():
    shape = (9, 8, 7)
    rng = np.random.default_rng(4)
    coords = rng.integers(0, 7, (3000, 3))  # many repeats, random order
    values = rng.standard_normal(3000)
    x = sparse.COO(coords.T, values, shape=shape, has_duplicates=True, sorted=False)
    before = (x.coords.copy(), x.data.copy())
    data = check_tensor(x)
    dense = _dense(coords, values, shape)
    lin = np.ravel_multi_index(tuple(data.coords.T), shape)
    assert np.all(np.diff(lin) > 0), "row-major order, each cell once"
    np.testing.assert_allclose(dense[tuple(data.coords.T)], data.values, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(dense) <= len(data.values) == len(np.unique(lin))
    np.testing.assert_array_equal(x.coords, before[0])
    np.testing.assert_array_equal(x.data, before[1])


def test_small_tensors_keep_a_sorted_copy_per_permuted_mode():
    """Below a sixteenth of the chunk budget each permuted mode's order is gathered once (no
    gather per visit); the chunks are the same as those gathered on visit."""
    shape = (40, 30, 20)
    coords, values = _random_entries(shape, 3000, np.random.default_rng(11))
    small = SparseTensorData.from_numpy(coords, values, shape)
    lean = SparseTensorData.from_numpy(coords, values, shape, chunk_bytes=2**12)
    for mode in range(3):
        assert (small._sorted_copy(mode) is None) == (small._perm(mode) is None)
        assert lean._sorted_copy(mode) is None
        got = torch.cat([c.coords for c in small.layout(mode, RANK)], 1)
        want = torch.cat([c.coords for c in lean.layout(mode, RANK)], 1)
        assert torch.equal(got, want)
        assert torch.equal(
            torch.cat([c.values for c in small.layout(mode, RANK)]),
            torch.cat([c.values for c in lean.layout(mode, RANK)]),
        )


def test_blocked_second_gather_gives_the_same_numbers(monkeypatch):
    """The other factors' rows are gathered into a small buffer block by block; the products
    are those of whole-chunk gathers, bit for bit, whatever the block size."""
    import skhyperlearn._numerics._kernels as kernels

    shape = (40, 30, 20, 6)
    rng = np.random.default_rng(13)
    coords, values = _random_entries(shape, 3000, rng)
    tf = [torch.as_tensor(rng.standard_normal((n, RANK))) for n in shape]
    whole = SparseTensorData.from_numpy(coords, values, shape)
    want = [mttkrp(whole, tf, mode) for mode in range(4)]
    want_inner = kernels.inner_product(whole, tf)
    monkeypatch.setattr(kernels, "_GATHER_BLOCK_BYTES", 7 * RANK * 8)  # 7 rows per block
    blocked = SparseTensorData.from_numpy(coords, values, shape)
    for mode in range(4):
        assert torch.equal(mttkrp(blocked, tf, mode), want[mode])
    assert kernels.inner_product(blocked, tf) == want_inner
    assert blocked.workspace()._bufs["tmp"].numel() == 7 * RANK
