"""The HyperLearn solver on CPU: J over training, schedules, devices, determinism, stopping.

Every J below is checked against a dense numpy reference on tensors small enough to densify.
The problems are planted (``make_hypergraph``): binary hyperedges for ``loss="hypergraph"`` and
noisy real values for ``loss="observed"`` (completion).
"""

import numpy as np
import pytest
import torch

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._validation import check_tensor
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.solvers._als import ExactUpdate
from skhyperlearn.solvers._block import DiffusionBlock
from skhyperlearn.solvers._hyperlearn import BlockConfig, BlockUpdate
from skhyperlearn.solvers._init import initial_state
from skhyperlearn.solvers._problem import Problem
from skhyperlearn.solvers._rounds import run_rounds
from skhyperlearn.solvers._schedules import Parallel, Sequential

SHAPE = (24, 18, 12)
RANK = 3
# Small blocks keep each round cheap; the structure (Chebyshev terms, LSTM, several diffusion
# steps) is the same as with Monti's sizes.
SMALL = {"n_terms": 3, "hidden": 8, "n_steps": 2}
CONFIG = BlockConfig(**SMALL, learning_rate=1e-2)
LOSSES = ["hypergraph", "observed"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(loss, seed=0):
    if loss == "hypergraph":
        return make_hypergraph(SHAPE, rank=RANK, n_entries=800, random_state=seed)
    return make_hypergraph(
        SHAPE, rank=RANK, n_entries=1200, values="real", noise=0.3, random_state=seed
    )


@pytest.fixture(scope="module", params=LOSSES)
def planted(request):
    return request.param, _data(request.param)


def _dense_J(data, factors, laplacians, loss, lam=1.0, alpha=0.0):
    """Dense reference of J (no biases): λ·data + ½ Σ tr(AᵀLA) + α Σ ‖A‖²."""
    model = np.einsum("ir,jr,kr->ijk", *factors)
    x = data.tensor.todense()
    if loss == "hypergraph":
        err = ((x - model) ** 2).sum()
    else:
        idx = tuple(data.tensor.coords)
        err = ((data.tensor.data - model[idx]) ** 2).sum()
    graph = sum(
        0.5 * np.sum(a * (lap @ a))
        for a, lap in zip(factors, laplacians, strict=True)
        if lap is not None
    )
    return lam * err + graph + alpha * sum((a * a).sum() for a in factors)


def _random_init(seed, scale):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.0, scale, (n, RANK)) for n in SHAPE]


def _model(loss, data, **kwargs):
    params = dict(
        rank=RANK,
        laplacians=data.laplacians,
        lam=1.0,
        alpha=0.0,
        loss=loss,
        solver="hyperlearn",
        max_iter=8,
        tol=0.0,
        learning_rate=1e-2,
        init_iter=3,
        random_state=0,
        **SMALL,
    )
    if loss == "observed":
        params["bias"] = False
    params.update(kwargs)
    return HyperLearnDecomposition(**params)


def _problem(data, loss, laplacians=None, devices=None):
    x = check_tensor(data.tensor)
    laplacians = data.laplacians if laplacians is None else laplacians
    devices = [torch.device("cpu")] * x.order if devices is None else devices
    problem = Problem.build(
        x.coords, x.values, x.shape, laplacians,
        loss=loss, lam=1.0, alpha=0.0, bias=True, devices=devices,
    )  # fmt: skip
    return problem, x


def _start(problem, x, init="random", seed=0):
    state = initial_state(problem, "random", RANK, np.random.RandomState(seed), x.coords, x.values)
    if init == "als":
        run_rounds(problem, state, ExactUpdate(1e-8), Sequential([1, 2, 0]), max_iter=5, tol=0)
    return state


def _run(problem, state, laplacians, schedule="sequential", max_iter=6, concurrent=True, **kw):
    """The HyperLearn solver: block updates under a schedule; (state, J history, rounds, blocks)."""
    state = state.clone()
    update = BlockUpdate(problem, state, laplacians, kw.pop("config", CONFIG), seed=123)
    order = [1, 2, 0]
    plan = Sequential(order) if schedule == "sequential" else Parallel(order, concurrent)
    run = run_rounds(problem, state, update, plan, max_iter=max_iter, tol=0.0, **kw)
    return state, run.history, run.n_iter, update.blocks


# ----------------------------------------------------------------------------- J over training
def test_reported_J_is_J_at_the_round_factors(planted):
    """The J passed to the callback and kept in loss_history_ is J at that round's factors."""
    loss, data = planted
    seen = []

    def callback(info):
        seen.append((info["loss"], info["graph"], [a.clone().numpy() for a in info["factors"]]))

    model = _model(loss, data, init="random", max_iter=4, callback=callback).fit(data.tensor)
    assert model.loss_history_ == [j for j, _, _ in seen]
    for j, graph, factors in seen:
        assert j == pytest.approx(_dense_J(data, factors, data.laplacians, loss), rel=1e-9)
        ref = sum(
            0.5 * np.sum(a * (lap @ a)) for a, lap in zip(factors, data.laplacians, strict=True)
        )
        assert graph == pytest.approx(ref, rel=1e-9)


def test_J_decreases_from_random_init_and_ends_below_it(planted):
    """From random factors J falls over training and every round ends below J at init."""
    loss, data = planted
    scale = 1.4 if loss == "hypergraph" else 1.0
    init = _random_init(1, scale)
    j_init = _dense_J(data, init, data.laplacians, loss)
    model = _model(loss, data, init=init, max_iter=20, learning_rate=1e-2).fit(data.tensor)
    hist = np.array(model.loss_history_)
    assert len(hist) == model.n_iter_ == 20
    assert hist[-1] < hist[0] < j_init
    assert hist.max() < j_init
    # a clear downward trend, not one lucky round
    assert hist[-3:].mean() < 0.8 * hist[:3].mean()
    assert hist[-1] < 0.6 * j_init
    # the returned factors (best round, sample mode re-solved exactly) are no worse
    assert _dense_J(data, model.factors_, data.laplacians, loss) <= hist.min() * (1 + 1e-9)


def test_factors_of_a_round_are_the_diffused_factors(planted):
    """J is evaluated at the blocks' outputs: the final state is block_k(A_k⁰, L̃_k)."""
    loss, data = planted
    problem, x = _problem(data, loss)
    state, hist, n_iter, blocks = _run(problem, _start(problem, x), data.laplacians)
    assert n_iter == len(hist) == 6
    for k, mb in enumerate(blocks):
        with torch.no_grad():
            assert torch.equal(mb.diffuse(), state.factors[k])
    assert hist[-1] == pytest.approx(problem.objective(state)["loss"], rel=1e-12)


def test_random_init_falls_far_als_init_only_polishes(planted):
    """init="random" vs "als": the same training, two regimes.

    From random factors J drops by a large factor. From a few exact sweeps the factors are
    already near a stationary point of J, and the blocks start near the identity map (small
    output layer), so J at the diffused factors stays in a narrow band around J at init (it
    may end slightly above or below it).
    """
    loss, data = planted
    problem, x = _problem(data, loss)
    cfg = BlockConfig(**SMALL, learning_rate=1e-3)
    start = _start(problem, x, "random")
    j_random = problem.objective(start)["loss"]
    _, hist_random, _, _ = _run(problem, start, data.laplacians, max_iter=10, config=cfg)
    assert hist_random[-1] < hist_random[0] < j_random

    start = _start(problem, x, "als")
    j_als = problem.objective(start)["loss"]
    assert j_als < 0.5 * hist_random[-1]
    _, hist_als, _, _ = _run(problem, start, data.laplacians, max_iter=10, config=cfg)
    assert np.max(np.abs(np.array(hist_als) / j_als - 1)) < 0.05


def test_fit_never_returns_factors_worse_than_its_init():
    data = _data("hypergraph")
    # The guarantee is about J: with factor_scale="free" (the hypergraph loss's default) the
    # fit keeps its lowest-J state; the solved scale keeps its last state instead.
    kwargs = dict(
        rank=RANK, laplacians=data.laplacians, tol=0.0, random_state=0, loss="hypergraph"
    )
    als = HyperLearnDecomposition(solver="als", init="random", max_iter=5, **kwargs)
    als.fit(data.tensor)
    # Start the blocks from the exact solver's factors with a lively learning rate.
    hl = HyperLearnDecomposition(
        solver="hyperlearn", init=als.factors_, max_iter=10, learning_rate=3e-2, **SMALL, **kwargs
    ).fit(data.tensor)
    j_init = _dense_J(data, als.factors_, data.laplacians, "hypergraph")
    j_fit = _dense_J(data, hl.factors_, data.laplacians, "hypergraph")
    assert j_fit <= j_init * (1 + 1e-9)


# ----------------------------------------------------------------------------- schedules
def test_parallel_concurrent_equals_one_mode_after_another(planted):
    """The parallel (Jacobi) schedule gives the same factors run by threads or in turn."""
    loss, data = planted
    problem, x = _problem(data, loss)
    start = _start(problem, x)
    s_conc, h_conc, _, b_conc = _run(problem, start, data.laplacians, "parallel", concurrent=True)
    s_turn, h_turn, _, b_turn = _run(problem, start, data.laplacians, "parallel", concurrent=False)
    assert h_conc == h_turn
    for a, b in zip(s_conc.factors, s_turn.factors, strict=True):
        assert torch.equal(a, b)
    for ma, mb in zip(b_conc, b_turn, strict=True):
        for p, q in zip(ma.block.parameters(), mb.block.parameters(), strict=True):
            assert torch.equal(p, q)
    if loss == "observed":
        for a, b in zip(s_conc.biases, s_turn.biases, strict=True):
            assert torch.equal(a, b)
        assert s_conc.mean == s_turn.mean

    s_seq, h_seq, _, _ = _run(problem, start, data.laplacians, "sequential")
    assert h_seq != h_conc
    assert not all(torch.allclose(a, b) for a, b in zip(s_seq.factors, s_conc.factors, strict=True))


@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
def test_estimator_schedules_train(planted, schedule):
    loss, data = planted
    model = _model(loss, data, init="random", schedule=schedule)
    model.fit(data.tensor)
    assert model.n_iter_ == len(model.loss_history_) == 8
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert all(
        np.isfinite(a).all() and a.shape == (n, RANK)
        for a, n in zip(model.factors_, SHAPE, strict=True)
    )


# ----------------------------------------------------------------------------- devices
def test_devices_cpu_list_places_every_block_on_its_device(planted):
    loss, data = planted
    k = len(SHAPE)
    problem, x = _problem(data, loss, devices=[torch.device("cpu")] * k)
    state, _, _, blocks = _run(problem, _start(problem, x), data.laplacians, max_iter=2)
    cpu = torch.device("cpu")
    for mode, mb in enumerate(blocks):
        assert mb.mode == mode
        assert all(p.device == cpu for p in mb.block.parameters())
        assert all(b.device == cpu for b in mb.block.buffers())
        assert mb.lap_tilde.device == cpu and mb.lap_tilde.layout == torch.sparse_csr
        assert mb.a0.device == cpu
        if loss == "observed":
            assert mb.bias is not None and mb.bias.device == cpu
        for group in mb.optimizer.state.values():
            assert all(t.device == cpu for t in group.values() if torch.is_tensor(t) and t.ndim)
        assert problem.data(mode).device == cpu
        assert problem.laplacians[mode].device == cpu
        assert state.factors[mode].device == cpu


@pytest.mark.parametrize("devices", [["cpu"] * 3, [torch.device("cpu")] * 3, "cpu"])
def test_estimator_devices_cpu_matches_default(devices):
    data = _data("hypergraph")
    kw = dict(init="random", max_iter=3)
    ref = _model("hypergraph", data, **kw).fit(data.tensor)
    model = _model("hypergraph", data, devices=devices, **kw).fit(data.tensor)
    assert model.devices_ == ["cpu"] * 3
    for a, b in zip(model.factors_, ref.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    for block in model.blocks_:
        assert all(p.device.type == "cpu" for p in block.parameters())


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
def test_same_seed_same_fit_different_seed_different_fit(schedule):
    data = _data("observed")
    kw = dict(schedule=schedule, bias=True, max_iter=4, init="random")
    a = _model("observed", data, **kw).fit(data.tensor)
    b = _model("observed", data, **kw).fit(data.tensor)
    c = _model("observed", data, **dict(kw, random_state=1)).fit(data.tensor)
    assert a.loss_history_ == b.loss_history_
    for fa, fb in zip(a.factors_ + a.biases_, b.factors_ + b.biases_, strict=True):
        np.testing.assert_array_equal(fa, fb)
    for ba, bb in zip(a.blocks_, b.blocks_, strict=True):
        for (na, pa), (nb, pb) in zip(
            ba.state_dict().items(), bb.state_dict().items(), strict=True
        ):
            assert na == nb and torch.equal(pa, pb)
    assert a.loss_history_ != c.loss_history_
    assert not any(np.allclose(fa, fc) for fa, fc in zip(a.factors_, c.factors_, strict=True))


# ----------------------------------------------------------------------------- blocks
def test_blocks_attribute(planted):
    loss, data = planted
    model = _model(loss, data, init="random", max_iter=3).fit(data.tensor)
    assert len(model.blocks_) == len(SHAPE)
    for block in model.blocks_:
        assert isinstance(block, DiffusionBlock)
        assert block.cheb.n_terms == SMALL["n_terms"]
        assert block.hidden == SMALL["hidden"] and block.n_steps == SMALL["n_steps"]
        assert block.rank == RANK
        assert all(torch.isfinite(p).all() and p.device.type == "cpu" for p in block.parameters())
        # trained: the output bias starts at zero and Adam has moved it
        assert block.out.bias.abs().max() > 0
    assert HyperLearnDecomposition(rank=RANK, max_iter=2).fit(data.tensor).blocks_ is None


def _identity_filter_reference(block, a0):
    """The block with only the j = 0 Chebyshev term, T_0(L̃) = I (no graph)."""
    theta0 = block.cheb.theta[0]
    a, state = a0, None
    for _ in range(block.n_steps):
        h, c = block.lstm(torch.relu(a @ theta0 + block.cheb.bias), state)
        state = (h, c)
        a = a + block.out(h)
    return a


def test_mode_without_graph_uses_the_identity_filter(planted):
    loss, data = planted
    laps = [data.laplacians[0], None, data.laplacians[2]]
    problem, x = _problem(data, loss, laplacians=laps)
    state, hist, _, blocks = _run(problem, _start(problem, x), laps, max_iter=3)
    assert blocks[1].lap_tilde is None and problem.laplacians[1] is None
    with torch.no_grad():
        np.testing.assert_allclose(
            blocks[1].diffuse().numpy(), _identity_filter_reference(blocks[1].block, blocks[1].a0)
        )
        # a graph mode does use its graph
        with_graph = blocks[0].diffuse()
        assert not torch.allclose(
            with_graph, _identity_filter_reference(blocks[0].block, blocks[0].a0)
        )
    if loss == "hypergraph":  # (the observed problem here also fits biases)
        factors = [a.numpy() for a in state.factors]
        assert hist[-1] == pytest.approx(_dense_J(data, factors, laps, loss), rel=1e-9)

    # through the estimator: the graph term counts only the modes with a graph
    graphs = []
    model = _model(loss, data, init="random", max_iter=2, laplacians=laps,
        callback=lambda info: graphs.append((info["graph"], [a.numpy() for a in info["factors"]])),
    ).fit(data.tensor)  # fmt: skip
    assert model.n_iter_ == 2
    for graph, factors in graphs:
        ref = sum(
            0.5 * np.sum(a * (lap @ a))
            for a, lap in zip(factors, laps, strict=True)
            if lap is not None
        )
        assert graph == pytest.approx(ref, rel=1e-9)


# ----------------------------------------------------------------------------- stopping
def test_early_stopping_keeps_the_best_validation_factors():
    data = _data("observed")
    seen = {}

    def callback(info):
        seen[info["iteration"]] = (info["validation_rmse"], [a.clone() for a in info["factors"]])

    model = _model("observed", data, init="random", bias=True, max_iter=60,
        learning_rate=3e-2, early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
        callback=callback,
    ).fit(data.tensor)  # fmt: skip
    val = model.validation_history_
    assert len(val) == model.n_iter_ == len(model.loss_history_) == len(seen)
    assert val == [seen[i][0] for i in range(1, model.n_iter_ + 1)]
    assert model.best_iter_ == int(np.argmin(val)) + 1
    # it stopped early, n_iter_no_change rounds after the best one
    assert model.n_iter_ < 60
    assert model.n_iter_ == model.best_iter_ + 3
    assert min(val[model.best_iter_ :]) >= val[model.best_iter_ - 1]
    # The chosen round count is then trained again on every stored entry: the same run as a
    # fit without early stopping that goes exactly best_iter_ rounds (fresh random state).
    refit = _model("observed", data, init="random", bias=True, max_iter=model.best_iter_,
        learning_rate=3e-2, early_stopping=False, n_iter_no_change=10**6,
    ).fit(data.tensor)  # fmt: skip
    if refit.best_iter_ == refit.n_iter_:  # its J-best state is its last one
        for a, b in zip(model.factors_, refit.factors_, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    best = seen[model.best_iter_][1]
    assert not np.allclose(model.factors_[1], best[1].numpy())


def test_early_stopping_needs_observed_loss():
    data = _data("hypergraph")
    model = _model("hypergraph", data, early_stopping=True)
    with pytest.raises(ValueError, match="observed"):
        model.fit(data.tensor)


@pytest.mark.parametrize("schedule", ["sequential", "parallel"])
def test_callback_returning_true_stops_after_that_round(schedule):
    data = _data("hypergraph")
    calls = []

    def callback(info):
        calls.append(info["iteration"])
        assert info["time"] >= 0
        return info["iteration"] == 3

    model = _model(
        "hypergraph", data, init="random", schedule=schedule, max_iter=20, callback=callback
    )
    model.fit(data.tensor)
    assert calls == [1, 2, 3]
    assert model.n_iter_ == len(model.loss_history_) == 3
