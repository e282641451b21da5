"""``mode_solve="cg"``: the implicit loss's matrix-free mode solve against the per-row Gram
solve, brute force and autograd, on every layout the compiled kernels read and in torch."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._numerics._cpu import _fused, _fused_cg_numba
from skhyperlearn._numerics._kernels import SparseTensorData, implicit_normal_equations
from skhyperlearn._numerics._sparse import laplacian_to_torch
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.graphs import normalized_laplacian
from skhyperlearn.solvers._problem import State
from skhyperlearn.solvers.losses._matrix_free import ImplicitOperatorQuadratic
from skhyperlearn.solvers.losses._rowwise import RowwiseQuadratic

SHAPES = {2: (30, 24), 3: (14, 11, 9), 4: (8, 7, 6, 5)}
RANK = 4
CONF = 6.0
LAYOUTS = [
    "sorted copy", "permutation", "storage order", "int64 coords", "many parts", "short cache",
]  # fmt: skip


@pytest.fixture(params=["fused", "torch"])
def kernels(request, monkeypatch):
    if request.param == "fused" and not _fused.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_fused, "ENABLED", request.param == "fused")
    return request.param


def _entries(order, rng):
    shape = SHAPES[order]
    cells = int(np.prod(shape))
    flat = rng.choice(cells, size=cells // 4, replace=False)  # distinct, unsorted
    coords = np.stack(np.unravel_index(flat, shape), 1)
    values = rng.integers(1, 5, flat.shape[0]).astype(float)
    return shape, coords, values


def _tensor(layout, shape, coords, values, monkeypatch, dtype=torch.float64):
    if layout == "storage order":  # sorted by mode 0: no permutation for it
        keep = np.lexsort(coords.T[::-1])
        coords, values = coords[keep], values[keep]
    if layout == "int64 coords":  # shared as given: the kernels read int64 indices
        coords = np.ascontiguousarray(coords.T, dtype=np.int64).T
    if layout == "many parts":
        monkeypatch.setattr(_fused, "_MIN_PART_WORK", 1)
        monkeypatch.setattr(torch, "get_num_threads", lambda: 5)
    if layout == "short cache":  # rows longer than the CG's cache of entry products
        itemsize = torch.empty(0, dtype=dtype).element_size()
        monkeypatch.setattr(_fused_cg_numba, "CACHE_BYTES", 2 * RANK * itemsize)
    chunk = 1 if layout in ("permutation", "many parts") else 64 * 2**20
    return SparseTensorData.from_numpy(coords, values, shape, dtype=dtype, chunk_bytes=chunk)


def _factors(shape, rng, dtype=torch.float64):
    return [torch.as_tensor(rng.normal(0, 0.6, (n, RANK)), dtype=dtype) for n in shape]


def _quads(tensor, factors, mode):
    """The matrix-free quadratic and the per-row Gram one of the same mode."""
    scale = 1.0 / (1.0 + CONF)
    const = tensor.nnz + CONF * tensor.value_sum
    others = [a for j, a in enumerate(factors) if j != mode]
    gram = torch.ones(RANK, RANK, dtype=tensor.dtype)
    for a in others:
        gram = gram * (a.T @ a)
    free = ImplicitOperatorQuadratic(mode, const, scale, CONF, tensor, factors, gram)
    linear, grams = implicit_normal_equations(tensor, factors, mode, CONF)
    exact = RowwiseQuadratic(mode, scale * const, linear * scale, (grams + gram) * scale)
    return free, exact


def _laplacian(n, rng):
    w = sp.random(n, n, density=0.3, random_state=int(rng.integers(1 << 30)))
    return laplacian_to_torch(normalized_laplacian(w + w.T), torch.float64, "cpu")


def _brute_value(shape, coords, values, factors, mode, a):
    """The implicit data term over every cell, densely, with mode ``mode``'s factors ``a``."""
    fs = [f.numpy() for f in factors]
    fs[mode] = a.detach().numpy()
    letters = "abcd"[: len(shape)]
    model = np.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *fs)
    presence, weight = np.zeros(shape), np.zeros(shape)
    presence[tuple(coords.T)] = 1.0
    weight[tuple(coords.T)] = CONF * values
    return float(((presence - model) ** 2 + weight * (1 - model) ** 2).sum() / (1 + CONF))


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("graph", [False, True])
def test_converged_cg_equals_the_per_row_solve(order, layout, graph, kernels, monkeypatch):
    rng = np.random.default_rng(order)
    shape, coords, values = _entries(order, rng)
    tensor = _tensor(layout, shape, coords, values, monkeypatch)
    factors = _factors(shape, rng)
    for mode in range(order):
        free, exact = _quads(tensor, factors, mode)
        lap = _laplacian(shape[mode], rng) if graph else None
        want, _ = exact.solve(lap, 2.0, 0.1, None, 1e-13, 2000)
        got, bias = free.solve(lap, 2.0, 0.1, None, 1e-13, 2000)  # cold: run to tolerance
        assert bias is None and got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-7, atol=1e-9)
        # The same data term as the Gram quadratic and as the dense loss over every cell.
        a = torch.as_tensor(rng.normal(0, 0.5, want.shape))
        brute = _brute_value(shape, coords, values, factors, mode, a)
        np.testing.assert_allclose(float(free.value(a)), brute, rtol=1e-10)
        np.testing.assert_allclose(float(exact.value(a)), brute, rtol=1e-10)


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("graph", [False, True])
def test_cg_solution_is_a_stationary_point_of_the_mode_objective(order, graph, kernels):
    """The gradient of ``λ·value + ½tr(AᵀLA) + α‖A‖²`` by autograd vanishes at the solution."""
    rng = np.random.default_rng(20 + order)
    shape, coords, values = _entries(order, rng)
    tensor = SparseTensorData.from_numpy(coords, values, shape)
    factors = _factors(shape, rng)
    lam, alpha = 3.0, 0.05
    for mode in range(order):
        free, _ = _quads(tensor, factors, mode)
        lap = _laplacian(shape[mode], rng) if graph else None

        def objective(a, free=free, lap=lap):
            graph_term = 0.0 if lap is None else 0.5 * (a * (lap @ a)).sum()
            return lam * free.value(a) + graph_term + alpha * (a * a).sum()

        def grad(a, objective=objective):
            a = a.clone().requires_grad_(True)
            return torch.autograd.grad(objective(a), a)[0]

        sol, _ = free.solve(lap, lam, alpha, None, 1e-13, 2000)
        reference = float(grad(torch.zeros_like(sol)).norm())
        assert float(grad(sol).norm()) < 1e-8 * reference


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_operator_is_the_hessian_vector_product(order, layout, kernels, monkeypatch):
    """``2s(G v + Σ w_e (h_eᵀ v) h_e)`` equals autograd's Hessian of the data term times v."""
    from skhyperlearn._numerics._kernels import implicit_stored_apply

    rng = np.random.default_rng(40 + order)
    shape, coords, values = _entries(order, rng)
    tensor = _tensor(layout, shape, coords, values, monkeypatch)
    factors = _factors(shape, rng)
    for mode in range(order):
        free, _ = _quads(tensor, factors, mode)
        a = torch.as_tensor(rng.normal(0, 0.5, (shape[mode], RANK)))
        v = torch.as_tensor(rng.normal(0, 1.0, (shape[mode], RANK)))
        with _fused_off(monkeypatch):  # autograd runs torch's kernels
            _, hvp = torch.autograd.functional.hvp(free.value, a, v)
        stored = implicit_stored_apply(tensor, factors, mode, CONF, v)
        op = 2.0 * free.scale * (v @ free.gram + stored)
        np.testing.assert_allclose(op.numpy(), hvp.numpy(), rtol=1e-9, atol=1e-10)


class _fused_off:
    def __init__(self, monkeypatch):
        self.monkeypatch, self.was = monkeypatch, _fused.ENABLED

    def __enter__(self):
        self.monkeypatch.setattr(_fused, "ENABLED", False)

    def __exit__(self, *exc):
        self.monkeypatch.setattr(_fused, "ENABLED", self.was)


@pytest.mark.parametrize("graph", [False, True])
def test_warm_steps_lower_the_mode_objective_and_leave_inputs(graph, kernels):
    rng = np.random.default_rng(7)
    shape, coords, values = _entries(3, rng)
    tensor = SparseTensorData.from_numpy(coords, values, shape)
    factors = _factors(shape, rng)
    free, exact = _quads(tensor, factors, 0)
    lap = _laplacian(shape[0], rng) if graph else None

    def j(a):
        graph_term = 0.0 if lap is None else 0.5 * float((a * (lap @ a)).sum())
        return 2.0 * float(free.value(a)) + graph_term + 0.1 * float((a * a).sum())

    start = factors[0].clone()
    best, _ = exact.solve(lap, 2.0, 0.1, None, 1e-13, 2000)
    previous = j(start)
    for steps in (1, 3, 10):
        free.steps = steps
        a, _ = free.solve(lap, 2.0, 0.1, (start, None), 1e-13, 2000)
        assert j(best) - 1e-9 * abs(j(best)) <= j(a) < previous
        previous = j(a)
        # At the solution the value may come from CG's recurrences: it is the value there.
        np.testing.assert_allclose(float(free.value(a)), float(free.value(a.clone())), rtol=1e-10)
        np.testing.assert_allclose(float(free.value(a)), float(exact.value(a)), rtol=1e-10)
    assert torch.equal(start, factors[0])  # the warm start is not written to


@pytest.mark.parametrize("cache_entries", [0, 1, 3])
def test_warm_steps_do_not_depend_on_the_row_cache(cache_entries, monkeypatch):
    # The compiled CG keeps each row's first entries' products for its steps and gathers the
    # rest again: the same numbers either way, so the same iterate bit for bit.
    if not _fused.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    shape, coords, values = _entries(3, rng)
    tensor = SparseTensorData.from_numpy(coords, values, shape)
    factors = _factors(shape, rng)
    want, _ = _quads(tensor, factors, 1)[0].solve(None, 2.0, 0.1, (factors[1], None), 0.0, 9)
    monkeypatch.setattr(_fused_cg_numba, "CACHE_BYTES", cache_entries * RANK * 8)
    got, _ = _quads(tensor, factors, 1)[0].solve(None, 2.0, 0.1, (factors[1], None), 0.0, 9)
    assert not torch.equal(got, factors[1])
    assert torch.equal(got, want)


def test_float32_solve_matches_float64(kernels):
    rng = np.random.default_rng(3)
    shape, coords, values = _entries(3, rng)
    f64 = _factors(shape, rng)
    t64 = SparseTensorData.from_numpy(coords, values, shape)
    t32 = SparseTensorData.from_numpy(coords, values, shape, dtype=torch.float32)
    want, _ = _quads(t64, f64, 1)[0].solve(None, 2.0, 0.1, None, 1e-10, 500)
    got, _ = _quads(t32, [a.float() for a in f64], 1)[0].solve(None, 2.0, 0.1, None, 1e-6, 500)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-3, atol=2e-4)


def test_carry_keeps_the_model():
    rng = np.random.default_rng(5)
    factors = [torch.as_tensor(rng.normal(0, 2.0, (n, 3))) for n in (5, 4, 6)]
    state = State(list(factors))
    state.normalize_except(1, carry=True)
    model = torch.einsum("ir,jr,kr->ijk", *factors)
    np.testing.assert_allclose(torch.einsum("ir,jr,kr->ijk", *state.factors), model)
    np.testing.assert_allclose(torch.linalg.vector_norm(state.factors[0], dim=0), 1.0)


@pytest.mark.parametrize(
    ("params", "sweeps"), [({"projection_weight": 0.0}, 15), ({}, 40)], ids=["tensor", "default"]
)
def test_fit_with_cg_reaches_the_exact_solves_objective(params, sweeps):
    # The coupled projection terms (the default) converge more slowly, under either solve.
    data = make_hypergraph(shape=(40, 30, 20), rank=3, random_state=0)
    common = dict(rank=4, random_state=0, max_iter=sweeps, tol=0, laplacians=data.laplacians)
    common.update(params)
    cg = HyperLearnDecomposition(**common).fit(data.tensor)
    exact = HyperLearnDecomposition(mode_solve="exact", **common).fit(data.tensor)
    assert cg.mode_solve == "cg" and cg.loss_ == "implicit"
    assert np.all(np.diff(cg.loss_history_) <= 1e-9 * cg.loss_history_[0])
    np.testing.assert_allclose(cg.loss_history_[-1], exact.loss_history_[-1], rtol=0.02)
    np.testing.assert_allclose(cg.transform(data.tensor), cg.fit_transform(data.tensor))


def test_mode_solve_is_validated():
    data = make_hypergraph(shape=(10, 8, 6), rank=2, random_state=0)
    with pytest.raises(InvalidParameterError, match="mode_solve"):
        HyperLearnDecomposition(mode_solve="cholesky").fit(data.tensor)
