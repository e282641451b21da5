"""The solver core against independent dense references, on tensors small enough to densify.

- the exact per-mode solve against ``scipy.linalg.solve_sylvester`` (hypergraph loss) and
  against the Newton step of a dense J differentiated by autograd (every loss, with graphs,
  ridge and biases): J is quadratic in one mode's factors and bias, so one Newton step from
  anywhere lands on the minimiser;
- J and its parts against a dense J for every configuration;
- each diffusion block's training loss against J as a function of that block's factors;
- per-mode placement: every mode's update asks for that mode's copy of the data and of the
  factors, so a solver that ignored ``devices`` fails here even on a CPU-only machine.
"""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import sparse
import torch

from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.graphs import normalized_laplacian
from skhyperlearn.solvers._als import solve_mode
from skhyperlearn.solvers._hyperlearn import BlockConfig, ModeBlock
from skhyperlearn.solvers._init import initial_state
from skhyperlearn.solvers._problem import Problem
from skhyperlearn.solvers.losses import LOSSES, get_loss

SHAPE = (7, 6, 5)
RANK = 3
LAM = 0.7
ALPHA = 0.3
CONFIDENCE = 4.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _entries(loss, seed=0):
    values = "real" if loss == "observed" else "binary"
    data = make_hypergraph(SHAPE, rank=2, n_entries=90, values=values, random_state=seed)
    values = np.asarray(data.tensor.data, dtype=np.float64)
    if loss == "implicit":
        # Counts: the confidence of an entry grows with its value.
        values = values * np.random.default_rng(seed).integers(1, 4, values.shape[0])
    return np.asarray(data.tensor.coords.T), values


def _loss(loss, mode_solve="exact"):
    # The exact per-row solve by default: these references are about exact mode solves (the
    # implicit loss's CG solve is exact only cold, run to its tolerance: see below).
    return get_loss(loss, confidence=CONFIDENCE, mode_solve=mode_solve)


def _laplacians(graphs, seed=1):
    """Graphs on the modes listed in ``graphs`` (random weighted adjacencies), else None."""
    rng = np.random.default_rng(seed)
    laps = []
    for k, n in enumerate(SHAPE):
        if k not in graphs:
            laps.append(None)
            continue
        w = rng.uniform(0, 1, (n, n)) * (rng.uniform(0, 1, (n, n)) < 0.6)
        w = np.triu(w, 1)
        laps.append(np.asarray(normalized_laplacian(w + w.T).toarray()))
    return laps


def _problem(loss, bias, alpha, graphs, seed=0, mode_solve="exact"):
    coords, values = _entries(loss, seed)
    laps = _laplacians(graphs)
    problem = Problem.build(
        coords, values, SHAPE, laps, loss=_loss(loss, mode_solve), lam=LAM, alpha=alpha, bias=bias,
        devices=[torch.device("cpu")] * len(SHAPE),
    )  # fmt: skip
    rng = np.random.RandomState(seed)
    state = initial_state(problem, "random", RANK, rng, coords, values)
    if state.biases is not None:
        state.biases = [torch.as_tensor(rng.normal(0, 0.3, n)) for n in SHAPE]
        state.mean = 0.4
    return problem, state, coords, values, laps


def _dense_J(factors, biases, mean, coords, values, laps, loss, alpha):
    """λ·data + ½ Σ tr(AᵀLA) + α Σ (‖A‖² + ‖b‖²), by dense einsum (torch, differentiable)."""
    model = torch.einsum("ir,jr,kr->ijk", *factors)
    idx = tuple(torch.as_tensor(coords[:, k]) for k in range(coords.shape[1]))
    y = torch.as_tensor(values)
    if loss == "hypergraph":
        x = torch.zeros(SHAPE, dtype=torch.float64)
        x[idx] = y
        data = ((x - model) ** 2).sum()
    elif loss == "implicit":
        presence = torch.zeros(SHAPE, dtype=torch.float64)
        presence[idx] = 1.0
        data = ((presence - model) ** 2).sum()
        data = data + (CONFIDENCE * y * (1.0 - model[idx]) ** 2).sum()
        data = data / (1.0 + CONFIDENCE)
    else:
        pred = model[idx] + mean
        if biases is not None:
            pred = pred + sum(b[i] for b, i in zip(biases, idx, strict=True))
        data = ((y - pred) ** 2).sum()
    graph = sum(
        0.5 * (a * (torch.as_tensor(lap) @ a)).sum()
        for a, lap in zip(factors, laps, strict=True)
        if lap is not None
    )
    ridge = sum((a * a).sum() for a in factors)
    if biases is not None:
        ridge = ridge + sum((b * b).sum() for b in biases)
    return LAM * data + graph + alpha * ridge, data, graph, alpha * ridge


CONFIGS = [
    # (loss, bias, alpha, modes with a graph)
    ("hypergraph", False, 0.0, (0, 1, 2)),
    ("hypergraph", False, ALPHA, (1,)),
    ("hypergraph", False, ALPHA, ()),
    ("implicit", False, ALPHA, (0, 2)),
    ("implicit", False, 0.0, (1,)),
    ("implicit", False, ALPHA, ()),
    ("observed", False, ALPHA, (0, 2)),
    ("observed", True, ALPHA, (0, 1, 2)),
    ("observed", True, 0.0, (1,)),
    ("observed", True, ALPHA, ()),
]


def _newton_minimiser(problem, state, coords, values, laps, mode, loss, alpha):
    """Minimiser of the dense J over mode ``mode``'s factors (and bias): one Newton step."""
    width = RANK + int(state.biases is not None)
    n = SHAPE[mode]
    z0 = state.factors[mode].detach().clone()
    if state.biases is not None:
        z0 = torch.cat([z0, state.biases[mode][:, None]], 1)

    def j_of(z):
        z = z.reshape(n, width)
        factors = [z[:, :RANK] if k == mode else a for k, a in enumerate(state.factors)]
        biases = None
        if state.biases is not None:
            biases = [z[:, RANK] if k == mode else b for k, b in enumerate(state.biases)]
        return _dense_J(factors, biases, state.mean, coords, values, laps, loss, alpha)[0]

    flat = z0.reshape(-1)
    grad = torch.autograd.functional.jacobian(j_of, flat)
    hess = torch.autograd.functional.hessian(j_of, flat)
    return (flat - torch.linalg.solve(hess, grad)).reshape(n, width)


@pytest.mark.parametrize(("loss", "bias", "alpha", "graphs"), CONFIGS)
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("mode_solve", ["exact", "cg"])
def test_exact_mode_solve_matches_dense_newton_step(loss, bias, alpha, graphs, mode, mode_solve):
    if mode_solve == "cg" and loss != "implicit":
        pytest.skip("only the implicit loss has a CG mode solve")
    problem, state, coords, values, laps = _problem(loss, bias, alpha, graphs, 0, mode_solve)
    expected = _newton_minimiser(problem, state, coords, values, laps, mode, loss, alpha)
    # Cold, the CG solve runs to cg_tol: the exact minimiser (warm, it takes a few steps).
    warm = mode_solve == "exact"
    a, b, _ = solve_mode(problem, state, mode, warm=warm, cg_tol=1e-13, cg_maxiter=5000)
    got = a if b is None else torch.cat([a, b[:, None]], 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_hypergraph_mode_solve_matches_solve_sylvester(mode):
    """L A + A (2λG + 2αI) = 2λ X₍ₖ₎ KR, with G and the Khatri–Rao product built densely."""
    problem, state, coords, values, laps = _problem("hypergraph", False, ALPHA, (0, 1, 2))
    x = np.zeros(SHAPE)
    x[tuple(coords.T)] = values
    others = [k for k in range(3) if k != mode]
    f = [a.numpy() for a in state.factors]
    kr = np.einsum("ir,jr->ijr", f[others[0]], f[others[1]]).reshape(-1, RANK)
    unfold = np.moveaxis(x, mode, 0).reshape(SHAPE[mode], -1)
    gram = kr.T @ kr
    rhs = 2 * LAM * unfold @ kr
    expected = scipy.linalg.solve_sylvester(
        laps[mode], 2 * LAM * gram + 2 * ALPHA * np.eye(RANK), rhs
    )
    a, b, _ = solve_mode(problem, state, mode, cg_tol=1e-13, cg_maxiter=5000)
    assert b is None
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("loss", "bias", "alpha", "graphs"), CONFIGS)
def test_objective_and_its_parts_match_dense_J(loss, bias, alpha, graphs):
    problem, state, coords, values, laps = _problem(loss, bias, alpha, graphs)
    total, data, graph, ridge = _dense_J(
        state.factors, state.biases, state.mean, coords, values, laps, loss, alpha
    )
    info = problem.objective(state)
    np.testing.assert_allclose(info["loss"], float(total), rtol=1e-10)
    np.testing.assert_allclose(info["data"], float(data), rtol=1e-10)
    np.testing.assert_allclose(info["graph"], float(graph), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(info["ridge"], float(ridge), rtol=1e-10, atol=1e-12)
    # The parts add up to J (progress lines print them).
    assert info["loss"] == pytest.approx(LAM * info["data"] + info["graph"] + info["ridge"])


@pytest.mark.parametrize(("loss", "bias", "alpha", "graphs"), CONFIGS)
@pytest.mark.parametrize("mode", [0, 2])
def test_block_training_loss_is_J_over_its_mode(loss, bias, alpha, graphs, mode):
    """Loss_k(a) = J(state with A_k = a) minus the terms of the other modes, for any a."""
    problem, state, coords, values, laps = _problem(loss, bias, alpha, graphs)
    config = BlockConfig(n_terms=2, hidden=4, n_steps=1)
    b0 = None if state.biases is None else state.biases[mode]
    block = ModeBlock(problem, mode, laps[mode], state.factors[mode], b0, config, seed=0)
    quad = problem.quadratic(state, mode)
    rng = np.random.default_rng(3)
    for _ in range(2):
        a = torch.as_tensor(rng.normal(0, 1, (SHAPE[mode], RANK)))
        factors = [a if k == mode else f for k, f in enumerate(state.factors)]
        full = _dense_J(factors, state.biases, state.mean, coords, values, laps, loss, alpha)[0]
        rest = 0.0
        for k, f in enumerate(state.factors):
            if k == mode:
                continue
            if laps[k] is not None:
                rest += 0.5 * float((f * (torch.as_tensor(laps[k]) @ f)).sum())
            rest += alpha * float((f * f).sum())
            if state.biases is not None:
                rest += alpha * float((state.biases[k] ** 2).sum())
        got = float(block.loss(quad, a))
        np.testing.assert_allclose(got, float(full) - rest, rtol=1e-9)


class _Recorder:
    """Spies on Problem.data and Problem.gather: which mode's placement each call asked for."""

    def __init__(self, monkeypatch):
        self.calls = []
        data, gather = Problem.data, Problem.gather

        def spy_data(problem, mode, term=0):
            self.calls.append(("data", mode))
            return data(problem, mode, term)

        def spy_gather(problem, mode, tensors):
            self.calls.append(("gather", mode))
            return gather(problem, mode, tensors)

        monkeypatch.setattr(Problem, "data", spy_data)
        monkeypatch.setattr(Problem, "gather", spy_gather)


@pytest.mark.parametrize("loss", ["hypergraph", "implicit", "observed"])
def test_each_mode_update_uses_that_modes_placement(monkeypatch, loss):
    """A mode's quadratic is built from that mode's copy of the entries and of the factors."""
    problem, state, *_ = _problem(loss, loss == "observed", ALPHA, (0, 1, 2))
    rec = _Recorder(monkeypatch)
    for mode in (2, 0, 1):
        rec.calls.clear()
        solve_mode(problem, state, mode)
        assert ("data", mode) in rec.calls and ("gather", mode) in rec.calls
        assert {m for _, m in rec.calls} == {mode}, rec.calls


def test_problem_places_each_modes_parts_on_its_device():
    """With distinct devices (CPU and meta), each mode's entries, graph and factors go there."""
    cpu, meta = torch.device("cpu"), torch.device("meta")
    coords, values = _entries("observed")
    devices = [cpu, meta, cpu]
    problem = Problem.build(
        coords, values, SHAPE, _laplacians((0, 1, 2)), loss="observed", lam=LAM, alpha=ALPHA,
        bias=True, devices=devices,
    )  # fmt: skip
    state = initial_state(problem, "random", RANK, np.random.RandomState(0), coords, values)
    for k, dev in enumerate(devices):
        # (the entries' layout needs real values, so only the CPU modes' copies are built here)
        if dev == cpu:
            assert problem.data(k).device == cpu
        assert problem.laplacians[k].device.type == dev.type
        assert state.factors[k].device.type == dev.type
        assert state.biases[k].device.type == dev.type
    # Gathering for mode 1 moves every factor to mode 1's device.
    assert all(t.device.type == "meta" for t in problem.gather(1, state.factors))
    # The stored entries are copied once per device, not once per mode.
    assert problem.data(0) is problem.data(2)


def test_configs_cover_every_loss_bias_and_ridge():
    assert {loss for loss, *_ in CONFIGS} >= set(LOSSES)
    seen = {(loss, bias, alpha > 0) for loss, bias, alpha, _ in CONFIGS}
    expected = {(loss, False, a) for loss in ("hypergraph", "implicit") for a in (False, True)}
    expected |= set(itertools.product(["observed"], [False, True], [True])) | {
        ("observed", True, False)
    }
    assert expected <= seen


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_block_exact_bias_minimises_J_given_the_factors(mode):
    """The bias the diffusion blocks take is where dJ/db = 0 (autograd on the dense J)."""
    problem, state, coords, values, laps = _problem("observed", True, ALPHA, (0, 1, 2))
    quad = problem.quadratic(state, mode)
    a = torch.as_tensor(np.random.default_rng(5).normal(0, 1, (SHAPE[mode], RANK)))
    bias = quad.exact_bias(a, LAM, ALPHA).clone().requires_grad_(True)
    factors = [a if k == mode else f for k, f in enumerate(state.factors)]
    biases = [bias if k == mode else b for k, b in enumerate(state.biases)]
    total = _dense_J(factors, biases, state.mean, coords, values, laps, "observed", ALPHA)[0]
    (grad,) = torch.autograd.grad(total, bias)
    assert float(grad.abs().max()) < 1e-9 * max(1.0, float(total))


def test_mean_update_minimises_J_over_the_mean():
    problem, state, coords, values, laps = _problem("observed", True, ALPHA, (0, 1, 2))
    mean = torch.tensor(
        problem.update_mean(state), dtype=torch.float64, requires_grad=True
    )
    total = _dense_J(state.factors, state.biases, mean, coords, values, laps, "observed", ALPHA)
    (grad,) = torch.autograd.grad(total[0], mean)
    assert abs(float(grad)) < 1e-9 * float(total[0])
    assert float(mean) != pytest.approx(state.mean)


def test_importing_and_fitting_install_no_warning_filter():
    # numpy, scipy and torch install filters of their own on import: compare after them.
    code = (
        "import warnings, numpy, scipy.sparse, scipy.sparse.linalg, sklearn, sparse, torch\n"
        "import torch.optim, torch.nn\n"
        "before = list(warnings.filters)\n"
        "import skhyperlearn, skhyperlearn.solvers._rounds\n"
        "from skhyperlearn.datasets import make_hypergraph\n"
        "d = make_hypergraph((8, 6, 5), rank=2, random_state=0)\n"
        "skhyperlearn.HyperLearnDecomposition(rank=2, laplacians=d.laplacians, max_iter=2,"
        " tol=0, solver='hyperlearn', init_iter=1).fit(d.tensor)\n"
        "new = [f for f in warnings.filters if f not in before]\n"
        "assert not [f for f in new if 'parse' in str(f[1])], new\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root, PYTHONWARNINGS="")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
def test_exact_solver_ends_at_a_stationary_point_of_dense_J(schedule):
    """Fitted factors, biases and mean: the dense J's gradient vanishes (every parameter)."""
    from skhyperlearn import HyperLearnDecomposition

    coords, values = _entries("observed")
    laps = _laplacians((0, 1, 2))
    x = sparse.COO(coords.T, values, shape=SHAPE)
    model = HyperLearnDecomposition(
        rank=RANK, lam=LAM, alpha=ALPHA, laplacians=laps, loss="observed", max_iter=3000,
        tol=1e-15, schedule=schedule, init="random", random_state=0,
    ).fit(x)  # fmt: skip
    params = [torch.tensor(a, requires_grad=True) for a in model.factors_]
    params += [torch.tensor(b, requires_grad=True) for b in model.biases_]
    params.append(torch.tensor(model.mean_, dtype=torch.float64, requires_grad=True))
    total = _dense_J(params[:3], params[3:6], params[6], coords, values, laps, "observed", ALPHA)
    grads = torch.autograd.grad(total[0], params)
    worst = max(float(g.abs().max()) for g in grads)
    assert worst < 1e-6 * max(1.0, float(total[0])), [float(g.abs().max()) for g in grads]


# ---------------------------------------------------------------- factor_scale="solved"
@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
@pytest.mark.parametrize(("loss", "graphs"), [("implicit", (0, 2)), ("hypergraph", (0, 1, 2))])
def test_solved_scale_round_is_dense_newton_steps_against_unit_norm_others(
    schedule, loss, graphs
):
    """Each mode of a round is the minimiser of the dense J with the others at unit norm."""
    from skhyperlearn.solvers._als import ExactUpdate
    from skhyperlearn.solvers._problem import unit_columns
    from skhyperlearn.solvers._schedules import get_schedule

    problem, state, coords, values, laps = _problem(loss, False, ALPHA, graphs)
    problem.normalize = True
    order = [1, 2, 0]  # the sample mode (0) last, as the estimator orders them
    start = [a.clone() for a in state.factors]
    expected = {}
    ref = [a.clone() for a in start]
    for k in order:
        others = [a if j == k else unit_columns(a) for j, a in enumerate(ref)]
        view = type(state)(others)
        expected[k] = _newton_minimiser(problem, view, coords, values, laps, k, loss, ALPHA)
        if schedule == "sequential":
            ref = [expected[k] if j == k else a for j, a in enumerate(others)]
    update = ExactUpdate(cg_tol=1e-13)
    with get_schedule(schedule)(order) as sched:
        sched.run_round(problem, state, update)
    # The sample mode carries the scale; the others leave the round with unit columns.
    torch.testing.assert_close(state.factors[0], expected[0], rtol=1e-7, atol=1e-9)
    ones = torch.ones(RANK, dtype=torch.float64)
    for k in (1, 2):
        got = state.factors[k]
        torch.testing.assert_close(got, unit_columns(expected[k]), rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(torch.linalg.vector_norm(got, dim=0), ones)
