"""Sparse CP kernels against independent dense references (numpy einsum, brute force, autograd).

The dense tensors, CP tensors and Khatri–Rao products below are built in the tests only, on tiny
sizes, as references; the kernels themselves never form them.
"""

from __future__ import annotations

import itertools
import string

import numpy as np
import pytest
import torch

from skhyperlearn._numerics._kernels import (
    DEFAULT_CHUNK_BYTES,
    SparseTensorData,
    cp_values,
    gram_hadamard,
    hypergraph_sq_error,
    inner_product,
    mode_normal_equations,
    mttkrp,
    observed_sq_error,
)

RANK = 3


@pytest.fixture(autouse=True, params=["fused", "torch"])
def kernel_path(request, monkeypatch):
    """Every test runs with the compiled CPU kernels (where they apply) and with torch's."""
    from skhyperlearn._numerics._cpu import _fused

    if request.param == "fused" and not _fused.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_fused, "ENABLED", request.param == "fused")
    return request.param


SHAPES = {
    2: (7, 5),
    3: (6, 5, 4),
    4: (5, 4, 3, 4),
    5: (4, 3, 3, 2, 3),
}

DTYPES = {
    "float64": (np.float64, torch.float64, dict(rtol=1e-10, atol=1e-10)),
    "float32": (np.float32, torch.float32, dict(rtol=2e-4, atol=2e-4)),
}

CASES = [
    pytest.param(order, dt, id=f"order{order}-{dt}")
    for order in SHAPES
    for dt in ("float64", "float32")
    if dt == "float64" or order in (3, 5)
]


# --------------------------------------------------------------------------------------------
# references (numpy, dense, tiny)
# --------------------------------------------------------------------------------------------


def random_coords(shape, nnz, rng, forbid=None):
    """``nnz`` distinct coordinates, optionally avoiding some indices of some modes."""
    cells = np.array(list(np.ndindex(*shape)), dtype=np.int64)
    if forbid:
        keep = np.ones(len(cells), dtype=bool)
        for mode, idx in forbid.items():
            keep &= ~np.isin(cells[:, mode], idx)
        cells = cells[keep]
    pick = rng.choice(len(cells), size=min(nnz, len(cells)), replace=False)
    return cells[pick]


def random_problem(shape, nnz, rng, np_dtype=np.float64, forbid=None):
    coords = random_coords(shape, nnz, rng, forbid)
    values = rng.standard_normal(len(coords)).astype(np_dtype)
    factors = [rng.standard_normal((n, RANK)).astype(np_dtype) for n in shape]
    return coords, values, factors


def dense_of(coords, values, shape):
    x = np.zeros(shape, dtype=np.float64)
    x[tuple(coords.T)] = values
    return x


def _letters(order):
    return string.ascii_lowercase[:order]


def cp_dense(factors):
    idx = _letters(len(factors))
    spec = ",".join(f"{c}z" for c in idx) + "->" + idx
    return np.einsum(spec, *[np.asarray(a, dtype=np.float64) for a in factors])


def mttkrp_dense(x, factors, mode):
    idx = _letters(x.ndim)
    others = [j for j in range(x.ndim) if j != mode]
    spec = idx + "," + ",".join(f"{idx[j]}z" for j in others) + f"->{idx[mode]}z"
    return np.einsum(spec, x, *[np.asarray(factors[j], dtype=np.float64) for j in others])


def khatri_rao(mats):
    """Column-wise Kronecker product, built explicitly (tests only)."""
    out = np.asarray(mats[0], dtype=np.float64)
    for m in mats[1:]:
        m = np.asarray(m, dtype=np.float64)
        out = (out[:, None, :] * m[None, :, :]).reshape(-1, out.shape[1])
    return out


def offsets_dense(shape, biases, mean):
    """``mean + Σ_k b_k[i_k]`` broadcast over the whole tensor."""
    out = np.full(shape, float(mean))
    for k, b in enumerate(biases or []):
        if b is not None:
            view = [1] * len(shape)
            view[k] = shape[k]
            out = out + np.asarray(b, dtype=np.float64).reshape(view)
    return out


def to_torch(arrays, dtype):
    return [None if a is None else torch.tensor(a, dtype=dtype) for a in arrays]


def as_np(t):
    return t.detach().cpu().double().numpy()


def make_tensor(coords, values, shape, torch_dtype=torch.float64, chunk_bytes=None):
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    return SparseTensorData.from_numpy(coords, values, shape, dtype=torch_dtype, **kw)


# --------------------------------------------------------------------------------------------
# values, MTTKRP, Grams, losses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("order", "dt"), CASES)
def test_mttkrp_matches_einsum(order, dt):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(order)
    coords, values, factors = random_problem(shape, int(0.4 * np.prod(shape)), rng, np_dt)
    x = dense_of(coords, values, shape)
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)
    for k in range(order):
        got = mttkrp(t, tf, k)
        assert got.shape == (shape[k], RANK)
        assert got.dtype == t_dt
        np.testing.assert_allclose(as_np(got), mttkrp_dense(x, factors, k), **tol)


@pytest.mark.parametrize(("order", "dt"), CASES)
def test_mttkrp_matches_unfolding_times_khatri_rao(order, dt):
    """The definition ``X_(k) Ω_k`` with an explicit unfolding and Khatri–Rao product."""
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(100 + order)
    coords, values, factors = random_problem(shape, int(0.3 * np.prod(shape)), rng, np_dt)
    x = dense_of(coords, values, shape)
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)
    for k in range(order):
        others = [j for j in range(order) if j != k]
        unfold = np.moveaxis(x, k, 0).reshape(shape[k], -1)  # C order over the other modes
        omega = khatri_rao([factors[j] for j in others])  # same (row-major) ordering
        np.testing.assert_allclose(as_np(mttkrp(t, tf, k)), unfold @ omega, **tol)


@pytest.mark.parametrize(("order", "dt"), CASES)
def test_cp_values_match_dense_cp(order, dt):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(200 + order)
    coords, _, factors = random_problem(shape, int(0.5 * np.prod(shape)), rng, np_dt)
    dense = cp_dense(factors)
    got = cp_values(torch.as_tensor(coords), to_torch(factors, t_dt))
    assert got.dtype == t_dt
    np.testing.assert_allclose(as_np(got), dense[tuple(coords.T)], **tol)
    # repeated coordinates and an arbitrary order are fine too
    rep = np.concatenate([coords[::-1], coords[:5], coords[:5]])
    got = cp_values(torch.as_tensor(rep), to_torch(factors, t_dt))
    np.testing.assert_allclose(as_np(got), dense[tuple(rep.T)], **tol)


@pytest.mark.parametrize(("order", "dt"), CASES)
def test_inner_product_and_hypergraph_error(order, dt):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(300 + order)
    coords, values, factors = random_problem(shape, int(0.3 * np.prod(shape)), rng, np_dt)
    x = dense_of(coords, values, shape)
    model = cp_dense(factors)
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)

    ref_inner = float((x * model).sum())
    ref_err = float(((x - model) ** 2).sum())
    scale = float((x**2).sum() + (model**2).sum())
    atol = tol["rtol"] * scale
    assert inner_product(t, tf) == pytest.approx(ref_inner, rel=tol["rtol"], abs=atol)
    assert hypergraph_sq_error(t, tf) == pytest.approx(ref_err, rel=tol["rtol"], abs=atol)
    # ⟨X,[[A]]⟩ = Σ A_k ∘ MTTKRP_k for any k
    for k in range(order):
        inner_k = float((tf[k] * mttkrp(t, tf, k)).sum())
        assert inner_k == pytest.approx(ref_inner, rel=tol["rtol"], abs=atol)


def test_hypergraph_error_exact_fit_is_zero():
    shape = (5, 4, 3)
    rng = np.random.default_rng(7)
    factors = [rng.standard_normal((n, 2)) for n in shape]
    dense = cp_dense(factors)
    coords = np.array(list(np.ndindex(*shape)))
    t = make_tensor(coords, dense[tuple(coords.T)], shape)
    err = hypergraph_sq_error(t, to_torch(factors, torch.float64))
    assert 0.0 <= err < 1e-9


@pytest.mark.parametrize("use_mean", [False, True])
@pytest.mark.parametrize("bias_modes", ["none", "all", "some"])
@pytest.mark.parametrize(("order", "dt"), CASES)
def test_observed_sq_error_masked_dense(order, dt, bias_modes, use_mean):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(400 + order)
    coords, values, factors = random_problem(shape, int(0.35 * np.prod(shape)), rng, np_dt)
    if bias_modes == "none":
        biases = None
    else:
        biases = [rng.standard_normal(n).astype(np_dt) for n in shape]
        if bias_modes == "some":
            biases[1] = None
    mean = 0.7 if use_mean else 0.0

    x = dense_of(coords, values, shape)
    mask = dense_of(coords, np.ones(len(coords)), shape)
    pred = cp_dense(factors) + offsets_dense(shape, biases, mean)
    ref = float((mask * (x - pred) ** 2).sum())

    t = make_tensor(coords, values, shape, t_dt)
    tb = None if biases is None else to_torch(biases, t_dt)
    got = observed_sq_error(t, to_torch(factors, t_dt), tb, mean)
    assert got == pytest.approx(ref, rel=tol["rtol"] * 10, abs=tol["atol"] * 10)


@pytest.mark.parametrize("order", list(SHAPES))
def test_gram_hadamard_is_gram_of_khatri_rao(order):
    shape = SHAPES[order]
    rng = np.random.default_rng(500 + order)
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    tf = to_torch(factors, torch.float64)
    for skip in [None, *range(order)]:
        kr = khatri_rao([a for j, a in enumerate(factors) if j != skip])
        got = gram_hadamard(tf, skip=skip)
        assert got.shape == (RANK, RANK)
        np.testing.assert_allclose(as_np(got), kr.T @ kr, rtol=1e-10, atol=1e-10)
    # 1ᵀ(⊛_k A_kᵀA_k)1 is ‖[[A]]‖²
    assert float(gram_hadamard(tf).sum()) == pytest.approx(float((cp_dense(factors) ** 2).sum()))


def test_gram_hadamard_float32():
    rng = np.random.default_rng(11)
    factors = [rng.standard_normal((n, RANK)).astype(np.float32) for n in (4, 5, 3)]
    got = gram_hadamard(to_torch(factors, torch.float32), skip=1)
    assert got.dtype == torch.float32
    kr = khatri_rao([factors[0], factors[2]])
    np.testing.assert_allclose(as_np(got), kr.T @ kr, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# per-row normal equations (brute force)
# --------------------------------------------------------------------------------------------


def normal_equations_brute(coords, values, shape, factors, mode, biases, mean, with_bias):
    width = RANK + int(with_bias)
    rhs = np.zeros((shape[mode], width))
    grams = np.zeros((shape[mode], width, width))
    for c, v in zip(coords, values, strict=True):
        h = np.ones(RANK)
        for j, a in enumerate(factors):
            if j != mode:
                h = h * a[c[j]]
        if with_bias:
            h = np.append(h, 1.0)
        y = float(v) - mean
        for j, b in enumerate(biases or []):
            if b is not None and j != mode:
                y -= b[c[j]]
        i = c[mode]
        rhs[i] += y * h
        grams[i] += np.outer(h, h)
    return rhs, grams


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("use_biases", [False, True])
@pytest.mark.parametrize(("order", "dt"), CASES)
def test_mode_normal_equations_brute_force(order, dt, use_biases, with_bias):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(600 + order)
    coords, values, factors = random_problem(shape, int(0.3 * np.prod(shape)), rng, np_dt)
    biases = [rng.standard_normal(n).astype(np_dt) for n in shape] if use_biases else None
    mean = -0.4 if use_biases else 0.0
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)
    tb = None if biases is None else to_torch(biases, t_dt)
    width = RANK + int(with_bias)
    for k in range(order):
        rhs, grams = mode_normal_equations(t, tf, k, tb, mean, with_bias=with_bias)
        assert rhs.shape == (shape[k], width)
        assert grams.shape == (shape[k], width, width)
        ref_rhs, ref_grams = normal_equations_brute(
            coords, values, shape, factors, k, biases, mean, with_bias
        )
        np.testing.assert_allclose(as_np(rhs), ref_rhs, **tol)
        np.testing.assert_allclose(as_np(grams), ref_grams, **tol)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_normal_equations_consistent_with_autograd(order):
    """∂/∂A_k of the masked loss is −2 (rhs_i − G_i a_i) (own bias solved jointly or absent)."""
    shape = SHAPES[order]
    rng = np.random.default_rng(700 + order)
    coords, values, factors = random_problem(shape, int(0.4 * np.prod(shape)), rng)
    biases = [rng.standard_normal(n) for n in shape]
    t = make_tensor(coords, values, shape)
    tf = to_torch(factors, torch.float64)
    tb = to_torch(biases, torch.float64)
    for k in range(order):
        a = tf[k].clone().requires_grad_(True)
        loss = _observed_loss_torch(t, [*tf[:k], a, *tf[k + 1 :]], tb, 0.3)
        (grad,) = torch.autograd.grad(loss, a)
        rhs, grams = mode_normal_equations(t, tf, k, tb, 0.3, with_bias=True)
        a_aug = torch.cat([tf[k], tb[k][:, None]], 1)
        resid = rhs - torch.einsum("irs,is->ir", grams, a_aug)
        np.testing.assert_allclose(as_np(grad), as_np(-2.0 * resid[:, :RANK]), atol=1e-10)
        # last column: gradient of the masked loss in the row's own bias
        b = tb[k].clone().requires_grad_(True)
        loss = _observed_loss_torch(t, tf, [*tb[:k], b, *tb[k + 1 :]], 0.3)
        loss.backward()
        np.testing.assert_allclose(as_np(b.grad), as_np(-2.0 * resid[:, RANK]), atol=1e-10)

        no_own = [*tb[:k], None, *tb[k + 1 :]]
        a = tf[k].clone().requires_grad_(True)
        loss = _observed_loss_torch(t, [*tf[:k], a, *tf[k + 1 :]], no_own, 0.3)
        (grad,) = torch.autograd.grad(loss, a)
        rhs, grams = mode_normal_equations(t, tf, k, no_own, 0.3, with_bias=False)
        resid = rhs - torch.einsum("irs,is->ir", grams, tf[k])
        np.testing.assert_allclose(as_np(grad), as_np(-2.0 * resid), atol=1e-10)


def hypergraph_gradient(t, factors, k):
    """Gradient of ‖X − [[A]]‖² in A_k assembled from the kernels: 2 (A_k G_k − MTTKRP_k)."""
    return 2.0 * (factors[k] @ gram_hadamard(factors, skip=k) - mttkrp(t, factors, k))


def observed_gradient(t, factors, k, biases=None, mean=0.0):
    """Gradient of the masked loss in A_k assembled from the normal equations: −2(rhs − G a)."""
    own = None if biases is None else biases[k]
    others = None if biases is None else [*biases[:k], None, *biases[k + 1 :]]
    rhs, grams = mode_normal_equations(t, factors, k, others, mean, with_bias=own is not None)
    a = factors[k] if own is None else torch.cat([factors[k], own[:, None]], 1)
    resid = rhs - torch.einsum("irs,is->ir", grams, a)
    return -2.0 * resid[:, : factors[k].shape[1]]


def _observed_loss_torch(t, factors, biases, mean):
    """Masked loss with a dense torch reference (differentiable)."""
    shape = t.shape
    x = torch.zeros(shape, dtype=torch.float64)
    mask = torch.zeros(shape, dtype=torch.float64)
    idx = tuple(t.coords.T)
    x[idx] = t.values.double()
    mask[idx] = 1.0
    letters = _letters(len(shape))
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    pred = torch.einsum(spec, *[a.double() for a in factors]) + mean
    for k, b in enumerate(biases or []):
        if b is not None:
            view = [1] * len(shape)
            view[k] = shape[k]
            pred = pred + b.double().reshape(view)
    return (mask * (x - pred) ** 2).sum()


# --------------------------------------------------------------------------------------------
# gradients against autograd
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("order", "dt"), CASES)
def test_hypergraph_gradient_matches_autograd(order, dt):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(800 + order)
    coords, values, factors = random_problem(shape, int(0.3 * np.prod(shape)), rng, np_dt)
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)

    x = torch.tensor(dense_of(coords, values, shape))
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in factors]
    letters = _letters(order)
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    loss = ((x - torch.einsum(spec, *leaves)) ** 2).sum()
    loss.backward()
    assert hypergraph_sq_error(t, tf) == pytest.approx(loss.item(), rel=tol["rtol"] * 10)
    for k in range(order):
        got = hypergraph_gradient(t, tf, k)
        assert got.shape == (shape[k], RANK)
        np.testing.assert_allclose(as_np(got), as_np(leaves[k].grad), **tol)


@pytest.mark.parametrize("bias_modes", ["none", "all", "some"])
@pytest.mark.parametrize(("order", "dt"), CASES)
def test_observed_gradient_matches_autograd(order, dt, bias_modes):
    np_dt, t_dt, tol = DTYPES[dt]
    shape = SHAPES[order]
    rng = np.random.default_rng(900 + order)
    coords, values, factors = random_problem(shape, int(0.3 * np.prod(shape)), rng, np_dt)
    if bias_modes == "none":
        biases, mean = None, 0.0
    else:
        biases = [rng.standard_normal(n).astype(np_dt) for n in shape]
        if bias_modes == "some":
            biases[0] = None
        mean = 1.3
    t = make_tensor(coords, values, shape, t_dt)
    tf = to_torch(factors, t_dt)
    tb = None if biases is None else to_torch(biases, t_dt)

    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in factors]
    tb64 = None if biases is None else to_torch(biases, torch.float64)
    loss = _observed_loss_torch(t, leaves, tb64, mean)
    loss.backward()
    assert observed_sq_error(t, tf, tb, mean) == pytest.approx(loss.item(), rel=tol["rtol"] * 10)
    for k in range(order):
        got = observed_gradient(t, tf, k, tb, mean)
        assert got.shape == (shape[k], RANK)
        np.testing.assert_allclose(as_np(got), as_np(leaves[k].grad), **tol)


# --------------------------------------------------------------------------------------------
# chunking
# --------------------------------------------------------------------------------------------


def _all_results(t, factors, biases, mean):
    order = len(factors)
    out = {
        "cp_values": cp_values(t.coords, factors, t.chunk_bytes),
        "inner": torch.tensor(inner_product(t, factors), dtype=torch.float64),
        "hyper_err": torch.tensor(hypergraph_sq_error(t, factors), dtype=torch.float64),
        "obs_err": torch.tensor(observed_sq_error(t, factors, biases, mean), dtype=torch.float64),
    }
    for k in range(order):
        out[f"mttkrp{k}"] = mttkrp(t, factors, k)
        out[f"hgrad{k}"] = hypergraph_gradient(t, factors, k)
        out[f"ograd{k}"] = observed_gradient(t, factors, k, biases, mean)
        for wb in (False, True):
            rhs, grams = mode_normal_equations(t, factors, k, biases, mean, with_bias=wb)
            out[f"rhs{k}{wb}"] = rhs
            out[f"grams{k}{wb}"] = grams
    return out


def _boundary_rows_repeat(t, mode, width):
    chunks = t.layout(mode, width)
    return len(chunks), any(a.row_stop - 1 == b.row_start for a, b in itertools.pairwise(chunks))


@pytest.mark.parametrize("skewed", [False, True], ids=["uniform", "one-heavy-row"])
def test_tiny_chunks_match_default(skewed):
    shape = (30, 25, 20)
    rng = np.random.default_rng(1000 + int(skewed))
    if skewed:
        # every cell of row 3 of mode 0 (500 entries), the rest spread over the other rows
        heavy = np.array([(3, j, k) for j in range(25) for k in range(20)])
        rest = random_coords(shape, 3000, rng, forbid={0: [3]})
        coords = np.concatenate([heavy, rest])
    else:
        coords = random_coords(shape, 3500, rng)
    coords = coords[rng.permutation(len(coords))]
    values = rng.standard_normal(len(coords))
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    biases = [rng.standard_normal(n) for n in shape]
    mean = 0.25
    tf = to_torch(factors, torch.float64)
    tb = to_torch(biases, torch.float64)

    small = make_tensor(coords, values, shape, chunk_bytes=1)
    big = make_tensor(coords, values, shape)
    assert big.chunk_bytes == DEFAULT_CHUNK_BYTES
    for mode in range(3):
        n_chunks, repeats = _boundary_rows_repeat(small, mode, RANK)
        assert n_chunks >= 3
        assert all(c.coords.shape[0] <= 1024 for c in small.layout(mode, RANK))
        assert repeats, "test data should split a row across a chunk boundary"
        assert len(big.layout(mode, RANK)) == 1

    got_small = _all_results(small, tf, tb, mean)
    got_big = _all_results(big, tf, tb, mean)
    for key, ref in got_big.items():
        np.testing.assert_allclose(
            as_np(got_small[key]), as_np(ref), rtol=1e-10, atol=1e-9, err_msg=key
        )

    # and against the dense references
    x = dense_of(coords, values, shape)
    for k in range(3):
        np.testing.assert_allclose(
            as_np(got_small[f"mttkrp{k}"]), mttkrp_dense(x, factors, k), rtol=1e-10, atol=1e-9
        )
    ref_err = float(((x - cp_dense(factors)) ** 2).sum())
    assert float(got_small["hyper_err"]) == pytest.approx(ref_err, rel=1e-10)


def test_heavy_row_spanning_many_chunks():
    """One mode-0 index owns every entry: every chunk covers the same single row."""
    shape = (4, 60, 60)
    rng = np.random.default_rng(1100)
    jk = random_coords((60, 60), 3300, rng)
    coords = np.column_stack([np.full(len(jk), 2), jk])
    values = rng.standard_normal(len(coords))
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    tf = to_torch(factors, torch.float64)
    small = make_tensor(coords, values, shape, chunk_bytes=1)
    chunks = small.layout(0, RANK)
    assert len(chunks) == 4
    assert all((c.row_start, c.row_stop) == (2, 3) for c in chunks)
    x = dense_of(coords, values, shape)
    got = mttkrp(small, tf, 0)
    np.testing.assert_allclose(as_np(got), mttkrp_dense(x, factors, 0), rtol=1e-10, atol=1e-9)
    assert not got[[0, 1, 3]].any()
    rhs, grams = mode_normal_equations(small, tf, 0, with_bias=True)
    ref_rhs, ref_grams = normal_equations_brute(coords, values, shape, factors, 0, None, 0.0, True)
    np.testing.assert_allclose(as_np(rhs), ref_rhs, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(as_np(grams), ref_grams, rtol=1e-10, atol=1e-9)


def test_layout_cache_across_widths():
    """A narrow pass after a wide one (and vice versa) still sees every entry exactly once."""
    shape = (20, 15, 12)
    rng = np.random.default_rng(1200)
    coords, values, factors = random_problem(shape, 3200, rng)
    tf = to_torch(factors, torch.float64)
    x = dense_of(coords, values, shape)
    # mttkrp chunks: 72000 // 24 = 3000 entries; normal equations (width 16): 1024 entries
    for first_wide in (False, True):
        t = make_tensor(coords, values, shape, chunk_bytes=24 * 3000)
        for step in range(2):
            if (step == 0) == first_wide:
                for k in range(3):
                    rhs, grams = mode_normal_equations(t, tf, k, with_bias=True)
                    ref_rhs, ref_grams = normal_equations_brute(
                        coords, values, shape, factors, k, None, 0.0, True
                    )
                    np.testing.assert_allclose(as_np(rhs), ref_rhs, atol=1e-9)
                    np.testing.assert_allclose(as_np(grams), ref_grams, atol=1e-9)
            else:
                for k in range(3):
                    np.testing.assert_allclose(
                        as_np(mttkrp(t, tf, k)), mttkrp_dense(x, factors, k), atol=1e-9
                    )


def test_cp_values_tiny_chunks():
    shape = (10, 9, 8, 7)
    rng = np.random.default_rng(1300)
    coords = random_coords(shape, 3100, rng)
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    tf = to_torch(factors, torch.float64)
    c = torch.as_tensor(coords)
    a = cp_values(c, tf, chunk_bytes=1)
    b = cp_values(c, tf)
    np.testing.assert_allclose(as_np(a), as_np(b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(as_np(a), cp_dense(factors)[tuple(coords.T)], atol=1e-10)


# --------------------------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [2, 3, 4])
def test_empty_rows_give_zero_rows(order):
    shape = SHAPES[order]
    empty = {k: [0, shape[k] // 2, shape[k] - 1] if k == 0 else [1] for k in range(order)}
    rng = np.random.default_rng(1400 + order)
    coords, values, factors = random_problem(shape, int(0.4 * np.prod(shape)), rng, forbid=empty)
    t = make_tensor(coords, values, shape)
    tf = to_torch(factors, torch.float64)
    x = dense_of(coords, values, shape)
    for k in range(order):
        rows = sorted(set(empty[k]))
        m = mttkrp(t, tf, k)
        np.testing.assert_allclose(as_np(m), mttkrp_dense(x, factors, k), atol=1e-10)
        assert not m[rows].any()
        rhs, grams = mode_normal_equations(t, tf, k, with_bias=True)
        assert not rhs[rows].any()
        assert not grams[rows].any()
        assert not observed_gradient(t, tf, k)[rows].any()
        # rows with no entries still feel the model term in the hypergraph loss: 2 A G
        g = hypergraph_gradient(t, tf, k)
        expect = 2.0 * tf[k][rows] @ gram_hadamard(tf, skip=k)
        np.testing.assert_allclose(as_np(g[rows]), as_np(expect), atol=1e-10)


def test_no_stored_entries():
    shape = (4, 3, 5)
    rng = np.random.default_rng(1500)
    factors = [rng.standard_normal((n, RANK)) for n in shape]
    tf = to_torch(factors, torch.float64)
    t = make_tensor(np.zeros((0, 3), dtype=np.int64), np.zeros(0), shape)
    assert t.nnz == 0
    for k in range(3):
        assert not mttkrp(t, tf, k).any()
        assert mttkrp(t, tf, k).shape == (shape[k], RANK)
        rhs, grams = mode_normal_equations(t, tf, k)
        assert not rhs.any() and not grams.any()
    assert inner_product(t, tf) == 0.0
    assert observed_sq_error(t, tf) == 0.0
    assert hypergraph_sq_error(t, tf) == pytest.approx(float((cp_dense(factors) ** 2).sum()))


def test_order2_is_matrix_products():
    shape = (7, 5)
    rng = np.random.default_rng(1600)
    coords, values, (a, b) = random_problem(shape, 20, rng)
    x = dense_of(coords, values, shape)
    t = make_tensor(coords, values, shape)
    ta, tb = to_torch([a, b], torch.float64)
    np.testing.assert_allclose(as_np(mttkrp(t, [ta, tb], 0)), x @ b, atol=1e-12)
    np.testing.assert_allclose(as_np(mttkrp(t, [ta, tb], 1)), x.T @ a, atol=1e-12)
    np.testing.assert_allclose(
        as_np(cp_values(torch.as_tensor(coords), [ta, tb])), (a @ b.T)[tuple(coords.T)]
    )
    np.testing.assert_allclose(as_np(gram_hadamard([ta, tb], skip=0)), b.T @ b)
    np.testing.assert_allclose(as_np(gram_hadamard([ta, tb])), (a.T @ a) * (b.T @ b))
    assert inner_product(t, [ta, tb]) == pytest.approx(float(np.trace(x.T @ a @ b.T)))
    err = float(np.linalg.norm(x - a @ b.T) ** 2)
    assert hypergraph_sq_error(t, [ta, tb]) == pytest.approx(err)
    np.testing.assert_allclose(
        as_np(hypergraph_gradient(t, [ta, tb], 0)), -2.0 * (x - a @ b.T) @ b, atol=1e-12
    )
    np.testing.assert_allclose(
        as_np(hypergraph_gradient(t, [ta, tb], 1)), -2.0 * (x - a @ b.T).T @ a, atol=1e-12
    )


def test_kernels_do_not_modify_inputs():
    shape = (6, 5, 4)
    rng = np.random.default_rng(1700)
    coords, values, factors = random_problem(shape, 40, rng)
    biases = [rng.standard_normal(n) for n in shape]
    t = make_tensor(coords, values, shape)
    tf = to_torch(factors, torch.float64)
    tb = to_torch(biases, torch.float64)
    keep = [f.clone() for f in tf] + [b.clone() for b in tb] + [t.values.clone(), t.coords.clone()]
    _all_results(t, tf, tb, 0.5)
    for before, after in zip(keep, [*tf, *tb, t.values, t.coords], strict=True):
        assert torch.equal(before, after)
