"""Completion scores, top k, filtering, similarity and fold-in against brute-force references.

Every reference densifies the (small) model: the full tensor of model values by einsum, the
known hyperedges as a dense mask, cosine by a full matrix product, and the fold-in as the
minimiser of a dense J (one Newton step by autograd: J is quadratic in one mode's rows).
"""

from __future__ import annotations

import string

import numpy as np
import pytest
import sparse
import torch

from skhyperlearn import Hypergraph, HyperLearnDecomposition
from skhyperlearn.graphs import normalized_laplacian

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPES = {2: (9, 7), 3: (8, 6, 5), 4: (6, 5, 4, 3)}
CONFIGS = [
    # (loss, bias, factor_scale)
    ("implicit", False, "auto"),
    ("implicit", False, "free"),
    ("hypergraph", False, "auto"),
    ("observed", True, "auto"),
    ("observed", False, "auto"),
]


def _tensor(shape, loss, n=None, seed=0):
    rng = np.random.default_rng(seed)
    n = n or max(12, int(0.3 * np.prod(shape)))
    coords = np.stack([rng.integers(0, s, n) for s in shape])
    coords = np.unique(coords, axis=1)
    if loss == "observed":
        values = rng.normal(3.0, 1.0, coords.shape[1])
    else:
        values = rng.integers(1, 3, coords.shape[1]).astype(float)
    return sparse.COO(coords, values, shape=shape)


def _fit(order, loss, bias, scale="auto", seed=0, **kw):
    x = _tensor(SHAPES[order], loss, seed=seed)
    if loss == "observed":
        kw = {"lam": 1.0, "alpha": 0.1, **kw}  # the defaults collapse on these few entries
    model = HyperLearnDecomposition(
        rank=3, loss=loss, bias=bias, factor_scale=scale, max_iter=4, tol=0.0, random_state=seed,
        early_stopping=False, **kw,
    )  # fmt: skip
    return model.fit(x), x


def _dense(model):
    """Every cell's model value: einsum of the factors, plus mean and broadcast biases."""
    order = len(model.factors_)
    letters = string.ascii_lowercase[:order]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    out = np.einsum(spec, *model.factors_)
    w = model.projection_weight if model.loss_ == "implicit" and order > 2 else 0.0
    if w > 0:
        # The projection terms' bilinear models, one per mode paired with the sample mode.
        s = model.sample_mode
        pairs = 0.0
        for k in range(order):
            if k != s:
                block = model.factors_[s] @ model.factors_[k].T
                shape = [1] * order
                shape[s], shape[k] = block.shape
                pairs = pairs + block.reshape(shape)
        out = (1 - w) * out + w / (order - 1) * pairs
    if model.biases_ is not None:
        out = out + model.mean_
        for k, b in enumerate(model.biases_):
            out = out + b.reshape([-1 if j == k else 1 for j in range(order)])
    return out


def _completions(dense, queries, mode):
    """Row q: dense values along ``mode`` at the other coordinates of query q."""
    rows = []
    for q in queries:
        index = tuple(slice(None) if j == mode else int(c) for j, c in enumerate(q))
        rows.append(dense[index])
    return np.array(rows)


def _queries(shape, n=7, seed=3):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in shape], axis=1)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize(("loss", "bias", "scale"), CONFIGS)
def test_score_mode_equals_the_dense_model(order, loss, bias, scale):
    model, _ = _fit(order, loss, bias, scale)
    dense = _dense(model)
    queries = _queries(SHAPES[order])
    for mode in range(order):
        expected = _completions(dense, queries, mode)
        np.testing.assert_allclose(model.score_mode(queries, mode), expected, rtol=1e-10)
        got = model.score_mode(queries, mode - order, chunk_size=2)  # negative mode, chunks
        np.testing.assert_allclose(got, expected, rtol=1e-10)
    if bias:
        assert model.biases_ is not None and model.mean_ != 0.0  # the biases were scored


def _known_mask(x, queries, mode):
    """Dense mask of completions that are stored hyperedges of x."""
    stored = np.zeros(x.shape, bool)
    stored[tuple(x.coords)] = True
    return _completions(stored, queries, mode)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize(("loss", "bias", "scale"), CONFIGS[::2])
def test_recommend_is_brute_force_top_k_with_training_hyperedges_excluded(order, loss, bias, scale):
    model, x = _fit(order, loss, bias, scale)
    dense = _dense(model)
    # Queries taken from training hyperedges, so that each has known completions to exclude.
    queries = np.asarray(x.coords.T[:9])
    for mode in range(order):
        scores = _completions(dense, queries, mode)
        known = _known_mask(x, queries, mode)
        assert known.any(axis=1).all()
        k = min(3, SHAPES[order][mode] - int(known.sum(1).max()))
        ids, got = model.recommend(queries, mode, k=k)
        masked = np.where(known, -np.inf, scores)
        expected_ids = np.argsort(-masked, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_allclose(got, np.take_along_axis(scores, expected_ids, 1), rtol=1e-10)
        assert not np.take_along_axis(known, ids, 1).any()
        # Without exclusion: the plain top k, known completions included.
        ids_all, _ = model.recommend(queries, mode, k=k, exclude=None)
        np.testing.assert_array_equal(ids_all, np.argsort(-scores, 1, kind="stable")[:, :k])


def test_exclude_takes_coordinates_or_a_tensor_and_fills_past_the_candidates():
    model, x = _fit(3, "implicit", False)
    queries = np.array([[0, 0, 0], [1, 2, 0]])
    extra = np.array([[0, 0, 1], [0, 0, 3], [1, 2, 4]])
    dense = _completions(_dense(model), queries, 2)
    ids, scores = model.recommend(queries, 2, k=5, exclude=extra)
    assert set(ids[0]) == {0, 2, 4} | {-1}
    assert list(ids[0][3:]) == [-1, -1] and np.all(np.isneginf(scores[0][3:]))
    np.testing.assert_allclose(scores[0][:3], np.sort(dense[0][[0, 2, 4]])[::-1])
    assert -1 not in ids[1][:4] and 4 not in ids[1]
    coo = sparse.COO(extra.T, np.ones(3), shape=x.shape)
    np.testing.assert_array_equal(model.recommend(queries, 2, k=5, exclude=coo)[0], ids)


def test_similar_is_brute_force_cosine_without_self():
    model, _ = _fit(3, "implicit", False)
    a = model.factors_[1]
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    ids, scores = model.similar(1, [0, 3, 5], k=4, chunk_size=2)
    expected = np.argsort(-cos[[0, 3, 5]], axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(cos[[0, 3, 5]], expected, 1))
    one_ids, one = model.similar(1, 3, k=2)
    np.testing.assert_array_equal(one_ids, expected[1, :2])
    np.testing.assert_allclose(one, scores[1, :2])


# ---------------------------------------------------------------------------- fold-in
def _dense_J(factors, biases, mean, x, laps, model):
    """The fitted objective by dense einsum: λ·data + ½ Σ tr(AᵀLA) + α Σ (‖A‖² + ‖b‖²)."""
    order = len(factors)
    letters = string.ascii_lowercase[:order]
    values = torch.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *factors)
    idx = tuple(torch.as_tensor(c) for c in x.coords)
    y = torch.as_tensor(x.data, dtype=torch.float64)
    if model.loss_ == "observed":
        pred = values[idx] + mean
        if biases is not None:
            pred = pred + sum(b[i] for b, i in zip(biases, idx, strict=True))
        data = ((y - pred) ** 2).sum()
    elif model.loss_ == "implicit":
        c = model.confidence_
        presence = torch.zeros(x.shape, dtype=torch.float64)
        presence[idx] = 1.0
        data = ((presence - values) ** 2).sum() + (c * y * (1 - values[idx]) ** 2).sum()
        # Divided by the weight of a typical stored entry (its median value, see for_data).
        data = data / (1.0 + c * model._loss_fit.typical)
    else:
        dense = torch.zeros(x.shape, dtype=torch.float64)
        dense[idx] = y
        data = ((dense - values) ** 2).sum()
    lam, alpha = model._weights(model._loss_fit, model.factor_scale_ == "solved")
    graph = sum(
        0.5 * (a * (lap @ a)).sum() for a, lap in zip(factors, laps, strict=True) if lap is not None
    )
    ridge = sum((a * a).sum() for a in factors)
    if biases is not None:
        ridge = ridge + sum((b * b).sum() for b in biases)
    return lam * data + graph + alpha * ridge


def _reference_fold_in(model, x_new, mode, lap):
    """Minimiser of the dense J over the new rows of ``mode`` (and their bias), the other
    modes fixed: at the fitted factors, or at their unit-norm columns under the solved scale
    (then divided by those norms)."""
    solved = model.factor_scale_ == "solved" and mode != model.sample_mode
    fixed = [torch.as_tensor(a) for a in model.factors_]
    if solved:
        fixed = [a / torch.linalg.vector_norm(a, dim=0) for a in fixed]
    biases = None if model.biases_ is None else [torch.as_tensor(b) for b in model.biases_]
    n, rank = x_new.shape[mode], model.rank
    width = rank + int(biases is not None)
    laps = [lap if k == mode else None for k in range(len(fixed))]

    def j_of(z):
        z = z.reshape(n, width)
        factors = [z[:, :rank] if k == mode else a for k, a in enumerate(fixed)]
        bs = (
            None
            if biases is None
            else [z[:, rank] if k == mode else b for k, b in enumerate(biases)]
        )
        return _dense_J(factors, bs, model.mean_, x_new, laps, model)

    z0 = torch.zeros(n * width, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(j_of, z0)
    hess = torch.autograd.functional.hessian(j_of, z0)
    z = (z0 - torch.linalg.solve(hess, grad)).reshape(n, width)
    a = z[:, :rank]
    if solved:
        scale = torch.ones(rank, dtype=torch.float64)
        for k, f in enumerate(model.factors_):
            if k != mode:
                scale = scale * torch.linalg.vector_norm(torch.as_tensor(f), dim=0)
        a = a / scale
    return a.numpy(), None if biases is None else z[:, rank].numpy()


def _graph(n, seed=5):
    rng = np.random.default_rng(seed)
    w = np.triu(rng.uniform(0, 1, (n, n)) * (rng.uniform(0, 1, (n, n)) < 0.6), 1)
    return normalized_laplacian(w + w.T).toarray()


@pytest.mark.parametrize(("loss", "bias", "scale"), CONFIGS)
@pytest.mark.parametrize("mode", [1, 2])
def test_fold_in_of_a_non_sample_mode_is_the_exact_solve_against_the_others(
    loss, bias, scale, mode
):
    # The reference is the CP term's solve (the projection terms' fold-in: test_projections).
    model, _ = _fit(3, loss, bias, scale, cg_tol=1e-13, projection_weight=0.0)
    shape = list(SHAPES[3])
    shape[mode] = 4  # four new entities
    x_new = _tensor(tuple(shape), loss, n=30, seed=11)
    a, b = model.fold_in(x_new, mode=mode, return_bias=True)
    ref_a, ref_b = _reference_fold_in(model, x_new, mode, None)
    np.testing.assert_allclose(a, ref_a, rtol=1e-7, atol=1e-9)
    if bias:
        np.testing.assert_allclose(b, ref_b, rtol=1e-7, atol=1e-9)
    else:
        assert b is None
    # The new entities are then scored with the fitted ones, through rows=.
    queries = np.asarray(x_new.coords.T[:5])
    other = (mode + 1) % 3
    rows = {mode: (a, b) if bias else a}
    got = model.score_mode(queries, other, rows=rows)
    swapped = list(model.factors_)
    swapped[mode] = a
    dense = np.einsum("az,bz,cz->abc", *swapped)
    if bias:
        biases = list(model.biases_)
        biases[mode] = b
        dense = (
            dense
            + model.mean_
            + sum(
                bb.reshape([-1 if j == k else 1 for j in range(3)]) for k, bb in enumerate(biases)
            )
        )
    np.testing.assert_allclose(got, _completions(dense, queries, other), rtol=1e-10)


@pytest.mark.parametrize("loss", ["implicit", "observed"])
def test_fold_in_uses_the_graph_of_the_new_entities(loss):
    model, _ = _fit(3, loss, loss == "observed", cg_tol=1e-13, projection_weight=0.0)
    x_new = _tensor((8, 4, 5), loss, n=40, seed=12)
    lap = _graph(4)
    graphs = [None, lap, None]
    hyper = Hypergraph(x_new, graphs=graphs, graph_kind="laplacian")
    a, b = model.fold_in(hyper, mode=1, return_bias=True)
    ref_a, ref_b = _reference_fold_in(model, x_new, 1, torch.as_tensor(lap))
    np.testing.assert_allclose(a, ref_a, rtol=1e-7, atol=1e-9)
    if ref_b is not None:
        np.testing.assert_allclose(b, ref_b, rtol=1e-7, atol=1e-9)
    no_graph = model.fold_in(x_new, mode=1)
    assert np.abs(no_graph - a).max() > 1e-6  # the graph changed the solution


def test_fold_in_of_the_sample_mode_is_transform():
    model, x = _fit(3, "implicit", False)
    np.testing.assert_array_equal(model.fold_in(x), model.transform(x))
    np.testing.assert_array_equal(model.fold_in(x, mode=0), model.transform(x))


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def fitted():
    return _fit(3, "implicit", False)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.score_mode([[0, 0, 0]], 3), ValueError, "mode=3 is out of range"),
        (lambda m: m.score_mode([[0, 0, 0]], 1.0), TypeError, "mode must be an integer"),
        (lambda m: m.score_mode([[0, 0]], 1), ValueError, r"queries must have shape \(n, 3\)"),
        (lambda m: m.score_mode([[0, 9, 0]], 2), ValueError, r"queries\[:, 1\] holds indices"),
        (lambda m: m.score_mode([[0.5, 0, 0]], 2), TypeError, "queries must hold integer"),
        (lambda m: m.score_mode([[0, 0, 0]], 2, chunk_size=0), ValueError, "chunk_size"),
        (lambda m: m.recommend([[0, 0, 0]], 2, k=0), ValueError, r"k=0 must be in \[1, 5\]"),
        (lambda m: m.recommend([[0, 0, 0]], 2, k=6), ValueError, "k=6"),
        (lambda m: m.recommend([[0, 0, 0]], 2, k=2, exclude="test"), ValueError, "exclude must be"),
        (lambda m: m.recommend([[0, 0, 0]], 2, k=2, exclude=[[0, 0, 9]]), ValueError, "exclude"),
        (
            lambda m: m.recommend([[0, 0, 0]], 2, k=2, rows={0: np.zeros((2, 3))}),
            ValueError,
            'exclude="train" names the fitted entities',
        ),
        (lambda m: m.score_mode([[0, 0, 0]], 2, rows={0: np.zeros((2, 4))}), ValueError, "rows"),
        (lambda m: m.score_mode([[0, 0, 0]], 2, rows=[1]), TypeError, "rows must be None"),
        (lambda m: m.similar(1, [6], k=2), ValueError, r"ids must be in \[0, 6\)"),
        (lambda m: m.similar(1, [0], k=6), ValueError, "k=6"),
        (lambda m: m.similar(1, [0.0], k=2), TypeError, "ids must hold integer"),
        (lambda m: m.fold_in(_tensor((8, 6, 4), "implicit"), mode=1), ValueError, "mode=1"),
        (lambda m: m.fold_in(_tensor((8, 6, 5), "implicit"), mode=5), ValueError, "mode=5"),
    ],
)
def test_bad_input_is_refused_naming_the_parameter(fitted, call, error, match):
    model, _ = fitted
    with pytest.raises(error, match=match):
        call(model)


def test_unfitted_estimator_refuses_to_rank():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HyperLearnDecomposition().score_mode([[0, 0, 0]], 1)
    with pytest.raises(NotFittedError):
        HyperLearnDecomposition().fold_in(_tensor((3, 3, 3), "implicit"), mode=1)


def test_queries_and_factors_are_not_modified(fitted):
    model, _ = fitted
    queries = np.array([[0, 1, 2], [3, 4, 1]])
    before = [a.copy() for a in model.factors_], queries.copy()
    model.recommend(queries, 2, k=2)
    model.similar(0, [1], k=2)
    np.testing.assert_array_equal(queries, before[1])
    for a, b in zip(model.factors_, before[0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_known_hyperedges_without_a_linear_index_match_the_linear_one():
    from skhyperlearn._ranking import KnownHyperedges

    rng = np.random.default_rng(0)
    small = (5, 4, 6, 3)
    coords = np.stack([rng.integers(0, s, 40) for s in small], 1)
    queries = np.stack([rng.integers(0, s, 25) for s in small], 1)
    huge = (2**40, 2**40, 6, 2**40)  # more cells off mode 2 than an int64 index holds
    for mode in range(4):
        expected = KnownHyperedges(coords, small, mode).pairs(queries)
        shape = tuple(small[j] if j == mode else huge[j] for j in range(4))
        got = KnownHyperedges(coords, shape, mode).pairs(queries)
        key = lambda p: sorted(zip(*(a.tolist() for a in p), strict=True))  # noqa: E731
        assert key(got) == key(expected)
        assert len(expected[0]) > 0
