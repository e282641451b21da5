"""``projection_weight``: the sample mode's pairwise projections as data terms on the tensor's
factors, against dense references (einsum over the dense tensor and its projections, autograd
of J), planted signals the weight must follow, fold-in, scoring and parameter rules."""

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._ranking import ScoringModel, score_block
from skhyperlearn.graphs import normalized_laplacian
from skhyperlearn.solvers._problem import Problem, State
from skhyperlearn.solvers.losses import get_loss
from skhyperlearn.solvers.losses._projections import pair_tensors

SHAPE = (9, 7, 5)
RANK = 3


def _entries(rng, shape=SHAPE, density=0.3):
    cells = int(np.prod(shape))
    flat = rng.choice(cells, size=int(cells * density), replace=False)
    coords = np.stack(np.unravel_index(flat, shape), 1)
    values = rng.integers(1, 4, flat.shape[0]).astype(float)
    return coords, values


def _dense(coords, values, shape):
    x = np.zeros(shape)
    x[tuple(coords.T)] = values
    return torch.as_tensor(x)


def _implicit_dense(x, model, confidence, typical):
    """The implicit data term over every cell of the dense ``x`` (weights 1 + c·x)."""
    p = (x > 0).to(model.dtype)
    return (((1.0 + confidence * x) * (p - model) ** 2).sum()) / (1.0 + confidence * typical)


def _dense_data(loss, x, factors, s=0):
    """The coupled data term by einsum over the dense tensor and its dense projections."""
    order = x.ndim
    letters = "ijkl"[:order]
    cp = torch.einsum(",".join(f"{c}r" for c in letters) + "->" + letters, *factors)
    w = loss.projection_weight
    total = (1 - w) * _implicit_dense(x, cp, loss.confidence, loss.typical)
    for k in range(order):
        if k == s or w == 0.0:
            continue
        summed = [j for j in range(order) if j not in (s, k)]
        proj = x.sum(dim=summed) if summed else x
        c = loss.pair_constants[k]
        pair = factors[s] @ factors[k].T
        total = total + w * c.share * _implicit_dense(proj, pair, c.confidence, c.typical)
    return total


def _problem(coords, values, shape, w, mode_solve, laplacians=None, lam=1.3, alpha=0.07):
    loss = get_loss("implicit", mode_solve=mode_solve, projection_weight=w)
    loss = loss.for_data(shape, len(values), values, coords=coords)
    laps = laplacians or [None] * len(shape)
    problem = Problem.build(
        coords, values, shape, laps, loss=loss, lam=lam, alpha=alpha, bias=False,
        devices=[torch.device("cpu")] * len(shape),
    )  # fmt: skip
    return problem, loss


def _state(shape, rng):
    return State([torch.as_tensor(rng.normal(0.2, 0.5, (n, RANK))) for n in shape])


def test_projections_are_the_dense_sums_over_the_other_modes():
    rng = np.random.default_rng(0)
    coords, values = _entries(rng)
    problem, loss = _problem(coords, values, SHAPE, 0.5, "cg")
    x = _dense(coords, values, SHAPE)
    pairs = pair_tensors(problem.data(0), 0)
    assert sorted(pairs) == [1, 2]
    n_pairs = sum(int((x.sum(dim=[j for j in range(3) if j not in (0, k)]) > 0).sum())
                  for k in (1, 2))  # fmt: skip
    for k, pair in pairs.items():
        got = torch.zeros(SHAPE[0], SHAPE[k], dtype=torch.float64)
        got[tuple(pair.coords.T.long())] = pair.values
        summed = [j for j in range(3) if j not in (0, k)]
        dense = x.sum(dim=summed)
        assert torch.allclose(got, dense)
        assert pair.nnz <= len(values)  # never more entries than X
        # Fixed on the training X: every pair weighs alike; confidence="auto" on the pairs.
        constants = loss.pair_constants[k]
        assert constants.share == pytest.approx(len(values) / n_pairs)
        stored = dense[dense > 0]
        median = float(np.median(stored.numpy()))
        auto = 3.0 * np.sqrt(SHAPE[0] * SHAPE[k] / stored.numel()) / median
        assert constants.typical == median
        assert constants.confidence == pytest.approx(auto)


@pytest.mark.parametrize("mode_solve", ["cg", "exact"])
@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_value_and_error_match_the_dense_reference(mode_solve, w):
    rng = np.random.default_rng(1)
    coords, values = _entries(rng)
    problem, loss = _problem(coords, values, SHAPE, w, mode_solve)
    state = _state(SHAPE, rng)
    x = _dense(coords, values, SHAPE)
    expected = float(_dense_data(loss, x, state.factors))
    assert problem.data_error(state) == pytest.approx(expected, rel=1e-10)
    for mode in range(3):
        quad = problem.quadratic(state, mode)
        a = torch.as_tensor(rng.normal(size=(SHAPE[mode], RANK)))
        factors = list(state.factors)
        factors[mode] = a
        assert float(quad.value(a)) == pytest.approx(
            float(_dense_data(loss, x, factors)), rel=1e-10
        )


def _dense_minimiser(problem, loss, x, state, mode, lap):
    """Minimiser of J in mode ``mode`` by Newton's step on autograd's Hessian (J quadratic)."""
    n = SHAPE[mode]
    lap_d = None if lap is None else torch.as_tensor(lap.toarray())

    def j(flat):
        factors = list(state.factors)
        factors[mode] = flat.view(n, RANK)
        out = problem.lam * _dense_data(loss, x, factors)
        out = out + problem.alpha * (flat * flat).sum()
        if lap_d is not None:
            a = flat.view(n, RANK)
            out = out + 0.5 * (a * (lap_d @ a)).sum()
        return out

    zero = torch.zeros(n * RANK, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(j, zero)
    hess = torch.autograd.functional.hessian(j, zero)
    return torch.linalg.solve(hess, -grad).view(n, RANK)


@pytest.mark.parametrize("mode_solve", ["cg", "exact"])
@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_mode_solve_is_the_minimiser_of_j(mode_solve, graph, mode):
    rng = np.random.default_rng(2)
    coords, values = _entries(rng)
    laps = [None] * 3
    lap = None
    if graph:
        adj = sp.random(SHAPE[mode], SHAPE[mode], density=0.5, random_state=3)
        lap = sp.csr_matrix(normalized_laplacian(adj + adj.T))
        laps[mode] = lap
    problem, loss = _problem(coords, values, SHAPE, 0.4, mode_solve, laps)
    state = _state(SHAPE, rng)
    quad = problem.quadratic(state, mode)
    a, _ = quad.solve(problem.laplacians[mode], problem.lam, problem.alpha, None, 1e-12, 2000)
    expected = _dense_minimiser(problem, loss, _dense(coords, values, SHAPE), state, mode, lap)
    assert torch.allclose(a, expected, atol=1e-7, rtol=1e-6)


def _xor_tensor(rng, n=40, m=12):
    """Sample i (group g_i) is linked to (t, u) iff g_t XOR g_u = g_i: every sample meets every
    t and every u equally often, so the projections carry no trace of the groups."""
    groups = np.arange(n) % 2
    gt, gu = np.arange(m) % 2, np.arange(m) % 2
    coords = [
        (i, t, u)
        for i in range(n)
        for t in range(m)
        for u in range(m)
        if (gt[t] ^ gu[u]) == groups[i] and rng.random() < 0.7
    ]
    coords = np.array(coords).T
    return sparse.COO(coords, np.ones(coords.shape[1]), shape=(n, m, m)), groups


def _separability(z, y):
    z = (z - z.mean(0)) / (z.std(0) + 1e-12)
    clf = LogisticRegression(max_iter=2000)
    return cross_val_score(clf, z, y, cv=4, scoring="accuracy").mean()


def test_tensor_signal_that_the_projections_lack_needs_the_tensor_term():
    x, groups = _xor_tensor(np.random.default_rng(4))
    scores = {}
    for w in (0.0, 1.0):
        model = HyperLearnDecomposition(rank=4, projection_weight=w, random_state=0, max_iter=60)
        scores[w] = _separability(model.fit_transform(x), groups)
    assert scores[0.0] > 0.9
    assert scores[1.0] < 0.7


def _noisy_context(rng, n=60, m=30, n_context=400):
    """Samples and items in 3 planted blocks; each hyperedge's context entity is uniform noise:
    the low-rank structure sits in the projection, the tensor is spread over the contexts."""
    groups = np.arange(n) % 3
    item_groups = np.arange(m) % 3
    rows = []
    for i in range(n):
        items = np.flatnonzero(item_groups == groups[i])
        for t in rng.choice(items, size=6, replace=False):
            for u in rng.choice(n_context, size=2, replace=False):
                rows.append((i, t, u))
        for t in rng.choice(m, size=2, replace=False):  # noise links
            rows.append((i, t, rng.integers(n_context)))
    coords = np.unique(np.array(rows), axis=0).T
    return sparse.COO(coords, np.ones(coords.shape[1]), shape=(n, m, n_context)), groups


def test_projection_signal_the_tensor_spreads_needs_the_projection_terms():
    x, groups = _noisy_context(np.random.default_rng(5))
    scores = {}
    for w in (0.0, 1.0):
        model = HyperLearnDecomposition(rank=3, projection_weight=w, random_state=0, max_iter=60)
        scores[w] = _separability(model.fit_transform(x), groups)
    assert scores[1.0] > 0.95
    assert scores[1.0] > scores[0.0] + 0.1


@pytest.mark.parametrize("mode_solve", ["cg", "exact"])
def test_fold_in_computes_a_new_samples_projections_from_its_entries(mode_solve):
    rng = np.random.default_rng(6)
    coords, values = _entries(rng, (20, 8, 6), 0.3)
    x = sparse.COO(coords.T, values, shape=(20, 8, 6))
    model = HyperLearnDecomposition(
        rank=RANK, projection_weight=0.5, mode_solve=mode_solve, random_state=0, max_iter=20
    ).fit(x)
    assert model.factor_scale_ == "free"
    full = model.transform(x)
    assert np.allclose(full, model.factors_[0], atol=1e-6)
    rows = np.array([3, 11, 17])
    assert np.allclose(model.transform(x[rows]), full[rows], atol=1e-6)
    # The new rows' solve is the coupled one: the tensor-only fold-in gives other rows.
    model._loss_fit.projection_weight = 0.0
    assert not np.allclose(model.transform(x[rows]), full[rows], atol=1e-3)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_scores_are_the_mix_of_the_cp_and_pairwise_models(mode):
    rng = np.random.default_rng(7)
    factors = [rng.normal(size=(n, RANK)) for n in SHAPE]
    w = 0.35
    model = ScoringModel(factors, pairwise=(w, 0))
    queries = np.stack([rng.integers(0, n, 6) for n in SHAPE], 1)
    got = score_block(model, queries, mode)
    cp = np.einsum("ir,jr,kr->ijk", *factors)
    for q, row in zip(queries, got, strict=True):
        for e in range(SHAPE[mode]):
            cell = list(q)
            cell[mode] = e
            i, t, u = cell
            pairs = factors[0][i] @ factors[1][t] + factors[0][i] @ factors[2][u]
            assert row[e] == pytest.approx((1 - w) * cp[i, t, u] + w / 2 * pairs)


def test_a_fitted_models_scores_carry_its_weight():
    rng = np.random.default_rng(8)
    coords, values = _entries(rng)
    x = sparse.COO(coords.T, values, shape=SHAPE)
    model = HyperLearnDecomposition(rank=RANK, projection_weight=0.25, max_iter=5).fit(x)
    assert ScoringModel.from_estimator(model).pairwise == (0.25, 0)
    default = HyperLearnDecomposition(rank=RANK, max_iter=5).fit(x)
    assert ScoringModel.from_estimator(default).pairwise == (1.0, 0)
    plain = HyperLearnDecomposition(rank=RANK, projection_weight=0.0, max_iter=5).fit(x)
    assert ScoringModel.from_estimator(plain).pairwise is None


def test_hyperlearn_solver_and_parallel_schedule_fit_the_coupled_model():
    rng = np.random.default_rng(9)
    coords, values = _entries(rng, (16, 8, 6), 0.3)
    x = sparse.COO(coords.T, values, shape=(16, 8, 6))
    hyperlearn = {"solver": "hyperlearn", "n_steps": 2, "init_iter": 2}
    for params in (hyperlearn, {"schedule": "parallel"}):
        model = HyperLearnDecomposition(
            rank=RANK, projection_weight=0.5, random_state=0, max_iter=4, tol=0, **params
        ).fit(x)
        assert all(np.isfinite(a).all() for a in model.factors_)


def test_parameter_errors_are_raised_before_any_work():
    rng = np.random.default_rng(10)
    coords, values = _entries(rng)
    x = sparse.COO(coords.T, values, shape=SHAPE)
    for bad in (-0.1, 1.5):
        model = HyperLearnDecomposition(projection_weight=bad)
        with pytest.raises(InvalidParameterError, match="projection_weight"):
            model.fit(x)
        assert not hasattr(model, "factors_")
    with pytest.raises(TypeError, match="projection_weight"):
        HyperLearnDecomposition(projection_weight=True).fit(x)
    model = HyperLearnDecomposition(projection_weight=0.5, factor_scale="solved")
    with pytest.raises(ValueError, match="factor_scale='solved' with projection_weight"):
        model.fit(x)
    assert not hasattr(model, "factors_")
    assert "projection_weight" in HyperLearnDecomposition().get_params()


def test_the_weight_is_ignored_on_order_two_and_by_other_losses():
    rng = np.random.default_rng(11)
    coords, values = _entries(rng, (12, 10), 0.3)
    x = sparse.COO(coords.T, values, shape=(12, 10))
    a = HyperLearnDecomposition(rank=RANK, random_state=0, max_iter=5).fit(x)
    b = HyperLearnDecomposition(rank=RANK, random_state=0, max_iter=5, projection_weight=0.5)
    b.fit(x)
    assert np.array_equal(a.factors_[0], b.factors_[0])
    coords, values = _entries(rng)
    x3 = sparse.COO(coords.T, values, shape=SHAPE)
    kw = dict(rank=RANK, loss="hypergraph", random_state=0, max_iter=5)
    a = HyperLearnDecomposition(**kw).fit(x3)
    b = HyperLearnDecomposition(projection_weight=0.5, **kw).fit(x3)
    assert np.array_equal(a.factors_[0], b.factors_[0])


@pytest.mark.parametrize("w", [0.0, 0.5, None], ids=["tensor", "mixed", "default"])
def test_x_and_1000x_give_the_same_factors_under_the_defaults(w):
    # confidence="auto" weighs a stored entry by its value over the median stored value (and
    # each projection by its own median), and the target is presence: the fit of 1000·X is the
    # fit of X, factors included (the expected scaling is none).
    rng = np.random.default_rng(12)
    coords, values = _entries(rng, (14, 9, 6), 0.3)
    fits = []
    for scale in (1.0, 1000.0):
        x = sparse.COO(coords.T, values * scale, shape=(14, 9, 6))
        model = HyperLearnDecomposition(rank=RANK, random_state=0)
        model.set_params(max_iter=15, tol=0)
        if w is not None:
            model.set_params(projection_weight=w)
        fits.append(model.fit(x))
    a, b = fits
    assert b.confidence_ == pytest.approx(a.confidence_ / 1000.0)
    for fa, fb in zip(a.factors_, b.factors_, strict=True):
        assert np.allclose(fa, fb, rtol=1e-6, atol=1e-8 * np.abs(fa).max())
    assert np.allclose(a.transform(a_x := sparse.COO(coords.T, values, shape=(14, 9, 6))),
                       b.transform(a_x * 1000.0), rtol=1e-6, atol=1e-8)  # fmt: skip
