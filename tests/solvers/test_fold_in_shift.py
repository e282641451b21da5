"""The graph's pull from fixed neighbours in a mode solve (``shift``): every loss's solve is
the stationary point, by autograd, of ``λ·value + ½tr(AᵀLA) + tr(Aᵀ shift) + α‖A‖²``."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skhyperlearn.graphs import normalized_laplacian
from skhyperlearn.solvers._problem import Problem, State
from skhyperlearn.solvers.losses import get_loss

SHAPE = (9, 7, 5)
RANK = 3

# (loss name, options): every quadratic the losses build (per-row Grams, the matrix-free CG,
# the coupled projections, the paper's shared Gram) and one with a bias column.
LOSSES = [
    ("hypergraph", {}),
    ("implicit", {"mode_solve": "cg", "projection_weight": 0.0}),
    ("implicit", {"mode_solve": "exact", "projection_weight": 0.0}),
    ("implicit", {"mode_solve": "cg", "projection_weight": 0.6}),
    ("observed", {}),
]


def _problem(name, options, graph_mode, bias):
    rng = np.random.default_rng(4)
    cells = int(np.prod(SHAPE))
    flat = rng.choice(cells, size=cells // 3, replace=False)
    coords = np.stack(np.unravel_index(flat, SHAPE), 1)
    values = rng.integers(1, 4, flat.shape[0]).astype(float)
    loss = get_loss(name, **options).for_data(SHAPE, len(values), values, coords=coords)
    laps = [None] * 3
    if graph_mode is not None:
        adj = sp.random(SHAPE[graph_mode], SHAPE[graph_mode], density=0.5, random_state=5)
        laps[graph_mode] = sp.csr_matrix(normalized_laplacian(adj + adj.T))
    problem = Problem.build(
        coords, values, SHAPE, laps, loss=loss, lam=1.3, alpha=0.07, bias=bias,
        devices=[torch.device("cpu")] * 3,
    )  # fmt: skip
    factors = [torch.as_tensor(rng.normal(0.2, 0.5, (n, RANK))) for n in SHAPE]
    biases = [torch.as_tensor(rng.normal(0, 0.1, n)) for n in SHAPE] if problem.bias else None
    return problem, State(factors, biases, 0.5 if problem.bias else 0.0), laps


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize(("name", "options"), LOSSES)
def test_solve_with_shift_is_stationary(name, options, mode, graph):
    bias = name == "observed"
    problem, state, laps = _problem(name, options, mode if graph else None, bias)
    quad = problem.quadratic(state, mode)
    lap = problem.laplacians[mode]
    shift = torch.as_tensor(np.random.default_rng(6).normal(size=(SHAPE[mode], RANK)))
    a, b = quad.solve(lap, problem.lam, problem.alpha, None, 1e-13, 5000, shift=shift)
    lap_d = None if laps[mode] is None else torch.as_tensor(laps[mode].toarray())

    def j(x, y):
        out = problem.lam * quad.value(x, y) + problem.alpha * (x * x).sum()
        if y is not None:
            out = out + problem.alpha * (y * y).sum()
        if lap_d is not None:
            out = out + 0.5 * (x * (lap_d @ x)).sum()
        return out + (x * shift).sum()

    def grads(x, y):
        x = x.clone().requires_grad_(True)
        y = None if y is None else y.clone().requires_grad_(True)
        j(x, y).backward()
        return x.grad.abs().max(), (0.0 if y is None else float(y.grad.abs().max()))

    at_zero = grads(torch.zeros_like(a), None if b is None else torch.zeros_like(b))
    at_solve = grads(a, b)
    # Relative to the gradient at 0 (the solves carry a ridge floor of a few ulps).
    assert float(at_solve[0]) < 1e-7 * float(at_zero[0])
    assert at_solve[1] <= 1e-7 * max(at_zero[1], float(at_zero[0]))
    plain, _ = quad.solve(lap, problem.lam, problem.alpha, None, 1e-13, 5000)
    assert not torch.allclose(plain, a)
