"""The coupled (``projection_weight > 0``) mode solve's compiled per-row CG against the torch
CG over the same parts and against the exact minimiser: each row's normal equations built
densely by einsum over the tensor and its projections, then solved.

The implicit loss fits no biases (``fits_bias`` is False), so there is no bias case."""

import numpy as np
import pytest
import torch

from skhyperlearn._numerics import _cg
from skhyperlearn._numerics._cpu import _fused, _fused_cg_numba
from skhyperlearn.solvers._problem import Problem, State
from skhyperlearn.solvers.losses import get_loss
from skhyperlearn.solvers.losses._projections import pair_error, pair_tensors

SHAPES = {3: (9, 7, 5), 4: (7, 6, 5, 4)}
RANK = 3
LAM, ALPHA = 1.3, 0.07


@pytest.fixture(autouse=True)
def _needs_numba():
    if not _fused.available():
        pytest.skip("numba is not installed")


def _entries(rng, shape, density=0.3):
    cells = int(np.prod(shape))
    flat = rng.choice(cells, size=int(cells * density), replace=False)
    coords = np.stack(np.unravel_index(flat, shape), 1)
    values = rng.integers(1, 4, flat.shape[0]).astype(float)
    return coords, values


def _problem(coords, values, shape, w, dtype=np.float64):
    loss = get_loss("implicit", projection_weight=w)
    loss = loss.for_data(shape, len(values), values, coords=coords)
    problem = Problem.build(
        coords, values.astype(dtype), shape, [None] * len(shape), loss=loss, lam=LAM,
        alpha=ALPHA, bias=False, devices=[torch.device("cpu")] * len(shape),
    )  # fmt: skip
    return problem, loss


def _state(shape, rng, dtype=torch.float64):
    return State([torch.as_tensor(rng.normal(0.2, 0.5, (n, RANK)), dtype=dtype) for n in shape])


def _solve(problem, state, mode, warm, fused, monkeypatch):
    """Mode ``mode``'s solve with the compiled kernels (``fused``) or torch's, from a fresh
    quadratic; cold: CG to a tight tolerance, warm: the few steps of a sweep."""
    with monkeypatch.context() as m:
        m.setattr(_fused, "ENABLED", fused)
        quad = problem.quadratic(state, mode)
        start = (state.factors[mode], None) if warm else None
        a, bias = quad.solve(None, problem.lam, problem.alpha, start, 1e-13, 2000)
    assert bias is None
    return quad, a


CASES = [(3, 1.0), (3, 0.4), (4, 1.0), (4, 0.4)]


@pytest.mark.parametrize("order, w", CASES)
@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("layout", ["plain", "many parts", "short cache"])
def test_compiled_coupled_solve_equals_the_torch_solve(order, w, warm, layout, monkeypatch):
    if layout == "many parts":
        monkeypatch.setattr(_fused, "_MIN_PART_WORK", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    if layout == "short cache":  # a row's entries over its parts exceed the cache
        monkeypatch.setattr(_fused_cg_numba, "CACHE_BYTES", 3 * RANK * 8)
    shape = SHAPES[order]
    rng = np.random.default_rng(order)
    problem, _ = _problem(*_entries(rng, shape), shape, w)
    state = _state(shape, rng)
    for mode in range(order):
        _, want = _solve(problem, state, mode, warm, False, monkeypatch)
        quad, got = _solve(problem, state, mode, warm, True, monkeypatch)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
        # The value kept from CG's own recurrences is the data term there, without a pass.
        assert quad._solved is not None and quad._solved[0] is got
        recomputed = float(quad.value(got.clone()))
        assert float(quad.value(got)) == pytest.approx(recomputed, rel=1e-10)


@pytest.mark.parametrize("order, w", CASES)
@pytest.mark.parametrize("warm", [False, True])
def test_compiled_coupled_solve_in_float32(order, w, warm, monkeypatch):
    shape = SHAPES[order]
    rng = np.random.default_rng(10 + order)
    problem, _ = _problem(*_entries(rng, shape), shape, w, np.float32)
    state = _state(shape, rng, torch.float32)
    for mode in range(order):
        _, want = _solve(problem, state, mode, warm, False, monkeypatch)
        quad, got = _solve(problem, state, mode, warm, True, monkeypatch)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-3, atol=2e-4)
        recomputed = float(quad.value(got.clone()))
        assert float(quad.value(got)) == pytest.approx(recomputed, rel=1e-4)


def _dense(coords, values, shape):
    x = np.zeros(shape)
    x[tuple(coords.T)] = values
    return x


def _dense_terms(loss, x, factors, mode, s=0):
    """``(x_m, A_m, weight·scale, confidence, local mode)`` of every term that involves
    ``mode``: the dense tensor or projection, its factors and constants."""
    order, w = x.ndim, loss.projection_weight
    terms = []
    if w < 1.0:
        scale = 1.0 / (1.0 + loss.confidence * loss.typical)
        terms.append((x, list(factors), (1.0 - w) * scale, loss.confidence, mode))
    for k in range(order):
        if k == s or mode not in (s, k):
            continue
        summed = tuple(j for j in range(order) if j not in (s, k))
        c = loss.pair_constants[k]
        scale = w * c.share / (1.0 + c.confidence * c.typical)
        local = 0 if mode == s else 1
        terms.append((x.sum(axis=summed), [factors[s], factors[k]], scale, c.confidence, local))
    return terms


def _exact_rows(loss, x, factors, mode):
    """Row by row ``(Σ 2λ·ws (Σ_cells (1 + c·x) h hᵀ) + 2αI) a_i = Σ 2λ·ws Σ_cells (1 + c·x) p h``
    with ``h`` the other factors' rows at each cell, by einsum over the dense arrays."""
    n = factors[mode].shape[0]
    lhs = np.zeros((n, RANK, RANK)) + 2.0 * ALPHA * np.eye(RANK)
    rhs = np.zeros((n, RANK))
    for dense, fs, ws, conf, local in _dense_terms(loss, x, factors, mode):
        letters = "ijkl"[: dense.ndim]
        others = [letters[j] for j in range(dense.ndim) if j != local]
        h = np.einsum(",".join(f"{c}r" for c in others) + "->" + "".join(others) + "r",
                      *[fs[j].numpy() for j in range(dense.ndim) if j != local])  # fmt: skip
        weight = np.moveaxis(1.0 + conf * dense, local, 0)
        presence = np.moveaxis((dense > 0).astype(float), local, 0)
        cells = "".join(others)
        lhs += 2 * LAM * ws * np.einsum(f"n{cells},{cells}r,{cells}q->nrq", weight, h, h)
        rhs += 2 * LAM * ws * np.einsum(f"n{cells},{cells}r->nr", weight * presence, h)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


@pytest.mark.parametrize("order, w", CASES)
def test_compiled_coupled_solve_is_the_exact_minimiser(order, w, monkeypatch):
    shape = SHAPES[order]
    rng = np.random.default_rng(20 + order)
    coords, values = _entries(rng, shape)
    problem, loss = _problem(coords, values, shape, w)
    state = _state(shape, rng)
    x = _dense(coords, values, shape)
    for mode in range(order):
        _, got = _solve(problem, state, mode, False, True, monkeypatch)
        expected = _exact_rows(loss, x, state.factors, mode)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7, atol=1e-9)


def test_the_compiled_solve_runs_no_torch_cg(monkeypatch):
    """Without a graph on the CPU the coupled solve is the compiled one: no block CG (its N × R
    vectors per pair) and no separate right-hand-side pass."""
    shape = SHAPES[3]
    rng = np.random.default_rng(5)
    problem, _ = _problem(*_entries(rng, shape), shape, 1.0)
    state = _state(shape, rng)

    def refuse(*args, **kwargs):
        raise AssertionError("the torch path ran")

    from skhyperlearn.solvers.losses import _projections

    monkeypatch.setattr(_projections, "pcg", refuse)
    monkeypatch.setattr(_projections, "implicit_rhs_diag", refuse)
    assert _projections.pcg is not _cg.pcg
    for mode in range(3):
        quad = problem.quadratic(state, mode)
        a, _ = quad.solve(None, problem.lam, problem.alpha, (state.factors[mode], None), 0, 50)
        assert torch.isfinite(a).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_projections_compiled_error_equals_torchs(dtype, monkeypatch):
    """The projection terms' constants (asked at each mode solve not involving them) from the
    compiled pass equal torch's pass over the same pair matrix."""
    shape = SHAPES[4]
    rng = np.random.default_rng(6)
    problem, loss = _problem(*_entries(rng, shape), shape, 1.0, dtype)
    state = _state(shape, rng, torch.float32 if dtype == np.float32 else torch.float64)
    for k, pair in pair_tensors(problem.data(0), 0).items():
        two = [state.factors[0], state.factors[k]]
        got = pair_error(pair, two, loss.pair_constants[k])
        monkeypatch.setattr(_fused, "ENABLED", False)
        want = pair_error(pair, two, loss.pair_constants[k])
        monkeypatch.setattr(_fused, "ENABLED", True)
        assert got == pytest.approx(want, rel=1e-10 if dtype == np.float64 else 1e-4)
