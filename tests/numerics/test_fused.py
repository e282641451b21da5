"""The compiled CPU kernels (:mod:`skhyperlearn._numerics._cpu._fused`) against dense references
and torch's."""

import itertools

import numpy as np
import pytest
import torch

from skhyperlearn._numerics._cpu import _fused
from skhyperlearn._numerics._kernels import SparseTensorData, implicit_normal_equations, mttkrp

pytestmark = pytest.mark.skipif(not _fused.available(), reason="numba is not installed")

SHAPES = {2: (40, 30), 3: (30, 20, 12), 4: (12, 10, 8, 9)}


def _problem(order, dtype, rng):
    shape = SHAPES[order]
    nnz = min(1500, int(np.prod(shape)) // 2)
    flat = rng.choice(int(np.prod(shape)), size=nnz, replace=False)  # distinct, unsorted
    coords = np.stack(np.unravel_index(flat, shape), 1)
    values = rng.standard_normal(nnz).astype(dtype)
    factors = [rng.standard_normal((n, 5)).astype(dtype) for n in shape]
    return shape, coords, values, factors


def _tensor_in(layout, coords, values, shape, monkeypatch) -> SparseTensorData:
    """The entries held so that the kernels read them in ``layout``."""
    if layout == "many parts":  # every mode cut into up to 7 parts run on the pool
        monkeypatch.setattr(_fused, "_MIN_PART_WORK", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    # A chunk budget of 1 byte keeps no sorted copy: entries are read through the permutation.
    chunk = 1 if layout in ("permutation", "many parts") else 64 * 2**20
    dtype = torch.float64 if values.dtype == np.float64 else torch.float32
    return SparseTensorData.from_numpy(coords, values, shape, dtype=dtype, chunk_bytes=chunk)


def _dense_mttkrp(shape, coords, values, factors, mode):
    x = np.zeros(shape)
    x[tuple(coords.T)] = values
    letters = "abcd"[: len(shape)]
    others = [j for j in range(len(shape)) if j != mode]
    spec = letters + "," + ",".join(f"{letters[j]}z" for j in others) + f"->{letters[mode]}z"
    return np.einsum(spec, x, *[factors[j].astype(np.float64) for j in others])


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "layout", ["sorted copy", "permutation", "storage order", "int64 coords", "many parts"]
)
def test_fused_mttkrp_matches_einsum(order, dtype, layout, monkeypatch):
    rng = np.random.default_rng(order)
    shape, coords, values, factors = _problem(order, dtype, rng)
    if layout == "storage order":  # sorted by mode 0: no permutation for it
        keep = np.lexsort(coords.T[::-1])
        coords, values = coords[keep], values[keep]
    if layout == "int64 coords":
        coords_t = np.ascontiguousarray(coords.T, dtype=np.int64)  # shared as given
        coords = coords_t.T
    t = _tensor_in(layout, coords, values, shape, monkeypatch)
    tdt = t.dtype
    tf = [torch.from_numpy(a) for a in factors]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    for mode in range(order):
        if layout == "sorted copy" and mode:
            assert t._sorted_copy(mode) is not None
        if layout == "permutation" and mode:
            assert t._perm(mode) is not None and t._sorted_copy(mode) is None
        got = _fused.fused_mttkrp(t, tf, mode)
        assert got is not None and got.dtype == tdt and got.shape == (shape[mode], 5)
        ref = _dense_mttkrp(shape, coords, values, factors, mode)
        np.testing.assert_allclose(got.double().numpy(), ref, **tol)
        monkeypatch.setattr(_fused, "ENABLED", False)
        np.testing.assert_allclose(got.numpy(), mttkrp(t, tf, mode).numpy(), **tol)
        monkeypatch.setattr(_fused, "ENABLED", True)
    if layout == "many parts":
        assert len(t.memo(("parts", 1, 5, 7), list)) > 2


def _brute_implicit(shape, coords, values, factors, mode, confidence):
    """Entry by entry: ``Σ (1 + c·x) h`` and ``Σ c·x h hᵀ`` per row of ``mode``."""
    rank = factors[0].shape[1]
    linear = np.zeros((shape[mode], rank))
    grams = np.zeros((shape[mode], rank, rank))
    for idx, x in zip(coords, values.astype(np.float64), strict=True):
        h = np.ones(rank)
        for j, a in enumerate(factors):
            if j != mode:
                h = h * a[idx[j]].astype(np.float64)
        linear[idx[mode]] += (1 + confidence * x) * h
        grams[idx[mode]] += confidence * x * np.outer(h, h)
    return linear, grams


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["sorted copy", "permutation", "many parts"])
def test_fused_implicit_matches_entry_by_entry(order, dtype, layout, monkeypatch):
    rng = np.random.default_rng(10 + order)
    shape, coords, values, factors = _problem(order, dtype, rng)
    values = np.abs(values) + np.asarray(0.1, dtype)  # confidences: non-negative counts
    t = _tensor_in(layout, coords, values, shape, monkeypatch)
    tdt = t.dtype
    tf = [torch.from_numpy(a) for a in factors]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-3)
    for mode in range(order):
        got = _fused.fused_implicit(t, tf, mode, 2.5)
        assert got is not None
        linear, grams = got
        assert linear.dtype == grams.dtype == tdt and grams.shape == (shape[mode], 5, 5)
        ref_linear, ref_grams = _brute_implicit(shape, coords, values, factors, mode, 2.5)
        np.testing.assert_allclose(linear.double().numpy(), ref_linear, **tol)
        np.testing.assert_allclose(grams.double().numpy(), ref_grams, **tol)
        monkeypatch.setattr(_fused, "ENABLED", False)
        torch_linear, torch_grams = implicit_normal_equations(t, tf, mode, 2.5)
        monkeypatch.setattr(_fused, "ENABLED", True)
        np.testing.assert_allclose(linear.numpy(), torch_linear.numpy(), **tol)
        np.testing.assert_allclose(grams.numpy(), torch_grams.numpy(), **tol)
    if layout == "many parts":
        assert len(t.memo(("parts", 1, 5 * 7, 7), list)) > 2


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["sorted copy", "permutation", "many parts"])
def test_matrix_free_row_kernels_match_entry_by_entry(order, dtype, layout, monkeypatch):
    # The implicit CG's passes (right-hand side and Jacobi diagonal, operator product, value)
    # for every order: each gathers h_e with its order's loop, chosen when numba compiles it.
    rng = np.random.default_rng(20 + order)
    shape, coords, values, factors = _problem(order, dtype, rng)
    values = np.abs(values) + np.asarray(0.1, dtype)
    t = _tensor_in(layout, coords, values, shape, monkeypatch)
    tf = [torch.from_numpy(a) for a in factors]
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-3)
    c = 2.5
    for mode in range(order):
        y = rng.standard_normal((shape[mode], 5)).astype(dtype)
        lin, dsum, app = (np.zeros((shape[mode], 5)) for _ in range(3))
        value = 0.0
        for idx, x in zip(coords, values.astype(np.float64), strict=True):
            h = np.ones(5)
            for j, a in enumerate(factors):
                if j != mode:
                    h = h * a[idx[j]].astype(np.float64)
            i, w = idx[mode], c * x
            lin[i] += (1 + w) * h
            dsum[i] += w * h * h
            t_e = h @ y[i].astype(np.float64)
            app[i] += w * t_e * h
            value += w * t_e**2 - 2 * (1 + w) * t_e
        got_lin, got_dsum = _fused.fused_implicit_rhs_diag(t, tf, mode, c)
        np.testing.assert_allclose(got_lin.double().numpy(), lin, **tol)
        np.testing.assert_allclose(got_dsum.double().numpy(), dsum, **tol)
        got_app = _fused.fused_implicit_apply(t, tf, mode, c, torch.from_numpy(y))
        np.testing.assert_allclose(got_app.double().numpy(), app, **tol)
        got_value = _fused.fused_implicit_value(t, tf, mode, c, torch.from_numpy(y))
        np.testing.assert_allclose(got_value, value, rtol=tol["rtol"] * 10, atol=tol["atol"])


def test_parts_cover_every_row_once():
    rowptr = np.array([0, 0, 5, 5, 100, 101, 101, 300, 300])  # empty rows, one heavy row
    for n in (1, 2, 3, 8, 50):
        parts = _fused._parts(rowptr, work_per_entry=2**21, n_threads=n)
        assert parts[0][0] == 0 and parts[-1][1] == len(rowptr) - 1
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(parts))
        assert len(parts) <= n


def test_falls_back_where_it_does_not_apply(monkeypatch):
    rng = np.random.default_rng(5)
    shape = (4, 3, 3, 2, 3)
    flat = rng.choice(np.prod(shape), 60, replace=False)
    coords = np.stack(np.unravel_index(flat, shape), 1)
    t5 = SparseTensorData.from_numpy(coords, rng.standard_normal(60), shape)
    f5 = [torch.randn(n, 2, dtype=torch.float64) for n in shape]
    assert _fused.fused_mttkrp(t5, f5, 0) is None  # no kernel for 5th order: torch's
    assert _fused.fused_implicit(t5, f5, 0, 1.0) is None
    shape3, coords3, values3, factors3 = _problem(3, np.float64, rng)
    t = SparseTensorData.from_numpy(coords3, values3, shape3)
    tf = [torch.from_numpy(a) for a in factors3]
    assert _fused.fused_mttkrp(t, [a.float() for a in tf], 0) is None  # dtype differs
    assert _fused.fused_implicit(t, [a.float() for a in tf], 0, 1.0) is None
    leaf = [a.clone().requires_grad_() for a in tf]
    assert _fused.fused_mttkrp(t, leaf, 0) is None  # autograd needs torch's kernel
    with torch.no_grad():
        assert _fused.fused_mttkrp(t, leaf, 0) is not None
    monkeypatch.setenv("SKHYPERLEARN_NO_NUMBA", "1")
    assert not _fused.available() and _fused.fused_mttkrp(t, tf, 0) is None


def test_fused_does_not_modify_inputs():
    rng = np.random.default_rng(9)
    shape, coords, values, factors = _problem(3, np.float64, rng)
    t = SparseTensorData.from_numpy(coords, values, shape, chunk_bytes=1)
    tf = [torch.from_numpy(a.copy()) for a in factors]
    before = [a.clone() for a in tf], t.coords_t.clone(), t.values.clone()
    for mode in range(3):
        _fused.fused_mttkrp(t, tf, mode)
        _fused.fused_implicit(t, tf, mode, 3.0)
    assert all(torch.equal(a, b) for a, b in zip(tf, before[0], strict=True))
    assert torch.equal(t.coords_t, before[1]) and torch.equal(t.values, before[2])
