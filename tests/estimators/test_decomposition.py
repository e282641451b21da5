"""HyperLearnDecomposition with the exact solver: recovery, monotone J, scikit-learn behaviour."""

import numpy as np
import pytest
import scipy.sparse as sp
import sparse
from scipy.sparse import csgraph
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhyperlearn import HyperLearnDecomposition


def _cp_dense(factors):
    letters = "abcdefgh"[: len(factors)]
    spec = ",".join(f"{c}r" for c in letters) + "->" + letters
    return np.einsum(spec, *factors)


def _planted(shape, rank, seed=0):
    rng = np.random.default_rng(seed)
    factors = [rng.random((n, rank)) for n in shape]
    return factors, _cp_dense(factors)


def _random_laplacian(n, rng, p=0.3):
    w = np.triu((rng.random((n, n)) < p).astype(float), 1)
    return sp.csr_array(csgraph.laplacian(w + w.T, normed=True))


@parametrize_with_checks([HyperLearnDecomposition(rank=3, max_iter=20, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("shape", [(12, 15), (10, 12, 14), (6, 7, 5, 4)])
def test_planted_low_rank_is_recovered(shape):
    _factors, dense = _planted(shape, 3)
    model = HyperLearnDecomposition(
        rank=3, loss="hypergraph", max_iter=1000, tol=1e-14, random_state=0
    )
    model.fit(sparse.COO.from_numpy(dense))
    rel = np.linalg.norm(dense - _cp_dense(model.factors_)) / np.linalg.norm(dense)
    assert rel < 1e-3
    assert [a.shape for a in model.factors_] == [(n, 3) for n in shape]


def test_observed_loss_completes_held_out_entries():
    shape = (30, 25, 20)
    _factors, dense = _planted(shape, 2, seed=1)
    rng = np.random.default_rng(1)
    mask = rng.random(shape) < 0.3
    coords = np.argwhere(mask)
    x = sparse.COO(coords.T, dense[mask], shape=shape)
    model = HyperLearnDecomposition(
        rank=2,
        lam=1.0,
        alpha=0.0,
        loss="observed",
        bias=False,
        max_iter=150,
        tol=1e-10,
        random_state=0,
    ).fit(x)
    held = np.argwhere(~mask)
    pred = model.reconstruct(held)
    truth = dense[~mask]
    assert np.sqrt(np.mean((pred - truth) ** 2)) / np.std(truth) < 1e-2


def test_graph_lowers_held_out_error_on_graph_smooth_factors():
    from skhyperlearn.datasets import make_hypergraph

    data = make_hypergraph(
        shape=(30, 25, 20), rank=4, density=1.0, values="real", noise=2.0, random_state=0
    )
    x = data.tensor
    clean = _cp_dense(data.factors)
    rng = np.random.default_rng(0)
    train = rng.random(x.nnz) < 0.3  # 70% of the entries withheld
    coords = x.coords.T
    x_train = sparse.COO(coords[train].T, x.data[train], shape=x.shape)
    held = coords[~train]
    errors = {}
    for name, laps in [("none", None), ("graphs", data.laplacians)]:
        model = HyperLearnDecomposition(
            rank=4,
            lam=0.3,
            laplacians=laps,
            loss="observed",
            bias=False,
            alpha=1e-2,
            max_iter=60,
            random_state=0,
        ).fit(x_train)
        pred = model.reconstruct(held)
        errors[name] = np.sqrt(np.mean((pred - clean[tuple(held.T)]) ** 2))
    assert errors["graphs"] < 0.85 * errors["none"], errors


@pytest.mark.parametrize("loss", ["hypergraph", "observed"])
def test_objective_never_increases(loss):
    rng = np.random.default_rng(2)
    shape = (15, 12, 10)
    _, dense = _planted(shape, 3, seed=2)
    dense = dense + 0.5 * rng.standard_normal(shape)
    dense[rng.random(shape) < 0.6] = 0.0
    laps = [_random_laplacian(n, rng) for n in shape]
    laps[1] = None
    model = HyperLearnDecomposition(
        rank=4,
        lam=0.7,
        laplacians=laps,
        loss=loss,
        alpha=1e-2,
        max_iter=40,
        tol=0,
        random_state=0,
    ).fit(sparse.COO.from_numpy(dense))
    hist = np.asarray(model.loss_history_)
    assert len(hist) == 40 == model.n_iter_
    assert np.all(np.diff(hist) <= 1e-9 * hist[0])
    assert hist[-1] < hist[0]


@pytest.mark.parametrize("loss", ["hypergraph", "observed"])
def test_fit_transform_equals_fit_then_transform_with_sample_graph(loss):
    rng = np.random.default_rng(3)
    shape = (20, 15, 10)
    _, dense = _planted(shape, 2, seed=3)
    dense[rng.random(shape) < 0.5] = 0.0
    laps = [_random_laplacian(n, rng) for n in shape]
    x = sparse.COO.from_numpy(dense)
    est = HyperLearnDecomposition(rank=3, laplacians=laps, loss=loss, max_iter=15, random_state=0)
    a = est.fit_transform(x)
    b = est.transform(x)
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(a, est.factors_[0])


def test_transform_folds_in_unseen_entities():
    # Without a sample-mode graph rows are independent: folding in a subset of the training
    # entities, or the same entities in another order, gives their fitted factors.
    _factors, dense = _planted((40, 12, 10), 3, seed=4)
    model = HyperLearnDecomposition(
        rank=3, loss="hypergraph", max_iter=300, tol=1e-12, random_state=0
    )
    model.fit(sparse.COO.from_numpy(dense[:30]))
    new = model.transform(sparse.COO.from_numpy(dense[30:]))
    assert new.shape == (10, 3)
    rel = np.linalg.norm(_cp_dense([new, *model.factors_[1:]]) - dense[30:]) / np.linalg.norm(
        dense[30:]
    )
    assert rel < 1e-3
    idx = np.array([5, 2, 7])
    np.testing.assert_allclose(
        model.transform(sparse.COO.from_numpy(dense[idx])), model.factors_[0][idx], atol=1e-8
    )


def test_sample_mode_other_than_zero():
    _factors, dense = _planted((8, 9, 10), 2, seed=5)
    model = HyperLearnDecomposition(
        rank=2, loss="hypergraph", sample_mode=2, max_iter=300, tol=1e-12, random_state=0
    )
    out = model.fit_transform(sparse.COO.from_numpy(dense))
    assert out.shape == (10, 2)
    np.testing.assert_allclose(out, model.transform(sparse.COO.from_numpy(dense)), atol=1e-8)


def test_reconstruct_adds_mean_and_biases():
    rng = np.random.default_rng(6)
    shape = (10, 9, 8)
    dense = rng.random(shape) * (rng.random(shape) < 0.5)
    model = HyperLearnDecomposition(rank=2, loss="observed", max_iter=5, random_state=0)
    model.fit(sparse.COO.from_numpy(dense))
    coords = np.argwhere(np.ones(shape, bool))[::7]
    expected = _cp_dense(model.factors_)[tuple(coords.T)] + model.mean_
    for k, b in enumerate(model.biases_):
        expected = expected + b[coords[:, k]]
    np.testing.assert_allclose(model.reconstruct(coords), expected, rtol=1e-10)


def test_inputs_accepted_in_every_form_give_the_same_fit():
    _, dense = _planted((12, 10), 2, seed=7)
    dense[dense < 0.6] = 0
    forms = [dense, sp.csr_matrix(dense), sp.coo_array(dense), sparse.COO.from_numpy(dense)]
    fits = [
        HyperLearnDecomposition(rank=2, max_iter=10, random_state=0).fit_transform(x) for x in forms
    ]
    for f in fits[1:]:
        np.testing.assert_allclose(f, fits[0], rtol=1e-10)


def test_duplicate_coordinates_are_summed_and_input_untouched():
    coords = np.array([[0, 1, 1, 2], [0, 2, 2, 1], [1, 0, 0, 1]])
    data = np.array([1.0, 2.0, 3.0, 4.0])
    x = sparse.COO(coords, data, shape=(3, 3, 2), has_duplicates=True, sorted=False)
    before = (x.coords.copy(), x.data.copy())
    model = HyperLearnDecomposition(rank=1, max_iter=5, random_state=0).fit(x)
    summed = sparse.COO(coords, data, shape=(3, 3, 2)).todense()
    model_b = HyperLearnDecomposition(rank=1, max_iter=5, random_state=0).fit(summed)
    np.testing.assert_allclose(model.factors_[0], model_b.factors_[0], rtol=1e-10)
    np.testing.assert_array_equal(x.coords, before[0])
    np.testing.assert_array_equal(x.data, before[1])


def test_deterministic_for_a_random_state_and_dtype_preserved():
    _, dense = _planted((10, 9, 8), 2, seed=8)
    x = sparse.COO.from_numpy(dense)
    # The paper's loss: the implicit loss's presence target is all ones on this dense tensor,
    # whose fit (rank one, whatever the start) would not tell the starts apart.
    kw = dict(rank=3, loss="hypergraph", max_iter=5, init="random")
    a = HyperLearnDecomposition(**kw, random_state=42).fit_transform(x)
    b = HyperLearnDecomposition(**kw, random_state=42).fit_transform(x)
    c = HyperLearnDecomposition(**kw, random_state=43).fit_transform(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    x32 = sparse.COO.from_numpy(dense.astype(np.float32))
    out = HyperLearnDecomposition(rank=3, max_iter=5, random_state=0).fit_transform(x32)
    assert out.dtype == np.float32


def test_init_svd_and_given_arrays():
    factors, dense = _planted((10, 9, 8), 2, seed=9)
    x = sparse.COO.from_numpy(dense)
    svd = HyperLearnDecomposition(
        rank=2, loss="hypergraph", init="svd", max_iter=200, tol=1e-12
    ).fit(x)
    rel = np.linalg.norm(_cp_dense(svd.factors_) - dense) / np.linalg.norm(dense)
    assert rel < 1e-3
    given = HyperLearnDecomposition(rank=2, loss="hypergraph", init=factors, max_iter=1).fit(x)
    # Starting at the truth, one sweep stays there.
    np.testing.assert_allclose(_cp_dense(given.factors_), dense, rtol=1e-6, atol=1e-8)


def test_verbose_prints_each_sweep(capsys):
    _, dense = _planted((6, 5, 4), 2, seed=10)
    HyperLearnDecomposition(rank=2, max_iter=3, tol=0, verbose=1).fit(dense)
    out = capsys.readouterr().out
    assert out.count("] sweep") == 3 and "J =" in out


def test_devices_cpu_list():
    _, dense = _planted((6, 5, 4), 2, seed=11)
    model = HyperLearnDecomposition(rank=2, max_iter=3, devices=["cpu"] * 3).fit(dense)
    assert model.devices_ == ["cpu"] * 3


def test_score_higher_for_better_fit():
    _, dense = _planted((12, 10, 8), 3, seed=12)
    x = sparse.COO.from_numpy(dense)
    good = HyperLearnDecomposition(rank=3, loss="hypergraph", max_iter=200, random_state=0).fit(x)
    poor = HyperLearnDecomposition(rank=1, loss="hypergraph", max_iter=200, random_state=0).fit(x)
    assert good.score(x) > poor.score(x)
    assert good.score(x) <= 0
