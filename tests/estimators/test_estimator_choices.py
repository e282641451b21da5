"""Documented estimator choices against references: ``lam="auto"`` per loss and factor scale
(the same fit as the documented number passed explicitly), and ``score`` on folded-in rows
equal to the negative mean squared error of ``reconstruct`` (biases included)."""

from __future__ import annotations

import numpy as np
import pytest
import sparse

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.graphs import knn_graph, normalized_laplacian

SHAPE = (16, 12, 8)


def _tensor(values="positive"):
    rng = np.random.default_rng(0)
    coords = np.unique(np.stack([rng.integers(0, n, 300) for n in SHAPE]), axis=1)
    planted = [rng.uniform(0.2, 1.0, (n, 2)) for n in SHAPE]
    vals = np.einsum("er,er,er->e", *(a[c] for a, c in zip(planted, coords, strict=True)))
    if values == "ratings":
        vals = 3.0 + vals + 0.2 * rng.normal(size=vals.shape)
    return sparse.COO(coords, vals, shape=SHAPE)


def _laplacians():
    rng = np.random.default_rng(1)
    return [normalized_laplacian(knn_graph(rng.normal(size=(n, 3)), 3)) for n in SHAPE]


def _fit(values="positive", **params):
    base = dict(rank=3, laplacians=_laplacians(), max_iter=3, tol=0.0, random_state=0)
    return HyperLearnDecomposition(**{**base, **params}).fit(_tensor(values))


@pytest.mark.parametrize(
    ("params", "documented"),
    [
        (dict(loss="implicit"), 1.0),
        (dict(loss="implicit", projection_weight=0.0, factor_scale="solved"), 1.0),
        (dict(loss="implicit", projection_weight=0.0, factor_scale="free"), 1.0),
        (dict(loss="hypergraph"), 1.0),
        (dict(loss="hypergraph", factor_scale="solved"), 1.0),
        (dict(loss="observed", laplacians=None, alpha=0.01, values="ratings"), 0.1),
    ],
    ids=[
        "implicit-projections", "implicit-solved", "implicit-free", "hypergraph",
        "hypergraph-solved", "observed",
    ],
)  # fmt: skip
def test_lam_auto_is_the_documented_value(params, documented):
    auto = _fit(**params)
    explicit = _fit(**params, lam=documented)
    for a, b in zip(auto.factors_, explicit.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    # The comparison can fail: another λ gives another fit.
    other = _fit(**params, lam=documented * 7.0)
    assert not np.allclose(other.factors_[0], auto.factors_[0])


@pytest.mark.parametrize(
    ("params", "unit"),
    [
        (dict(loss="implicit"), 0.1),
        (dict(loss="implicit", projection_weight=0.5), 0.1),
        (dict(loss="implicit", projection_weight=0.0), 30.0),
        (dict(loss="implicit", projection_weight=0.0, factor_scale="free"), 1.0),
        (dict(loss="hypergraph"), 1.0),
    ],
    ids=["projections", "mixed", "solved", "free", "hypergraph"],
)
def test_J_weighs_the_data_term_by_lam_in_the_models_unit(params, unit):
    seen = []
    _fit(**params, lam=2.0, callback=lambda info: seen.append(dict(info)))
    assert seen
    for info in seen:
        expected = 2.0 * unit * info["data"] + info["graph"] + info["ridge"]
        assert info["loss"] == pytest.approx(expected, rel=1e-12)
        # The unit is not 1 by accident of the parts: the data term is there.
        assert info["data"] > 0


def _rows(X, rows):
    """The sub-tensor of sample-mode rows ``rows``, renumbered 0..len(rows)-1."""
    keep = np.isin(X.coords[0], rows)
    coords = X.coords[:, keep].copy()
    coords[0] = np.searchsorted(rows, coords[0])
    return sparse.COO(coords, X.data[keep], shape=(len(rows), *X.shape[1:])), X.coords[:, keep]


def test_score_on_folded_in_rows_is_minus_the_mse_of_reconstruct_with_biases():
    X = _tensor("ratings")
    # No graph on the sample mode: each row's fold-in is its own solve, as in fit's last one.
    laps = _laplacians()
    laps[0] = None
    model = HyperLearnDecomposition(
        rank=3, loss="observed", bias=True, lam=1.0, alpha=0.05, laplacians=laps, max_iter=4,
        tol=0.0, early_stopping=False, random_state=0,
    ).fit(X)  # fmt: skip
    assert np.abs(model.biases_[0]).max() > 1e-3  # the sample mode's bias matters here
    rows = np.array([1, 4, 5, 9, 13])
    sub, original = _rows(X, rows)
    mse = np.mean((model.reconstruct(original.T) - sub.data) ** 2)
    np.testing.assert_allclose(model.score(sub), -mse, rtol=1e-8)
    np.testing.assert_allclose(model.transform(sub), model.factors_[0][rows], rtol=1e-8, atol=1e-10)
    # On the training X itself too.
    full = np.mean((model.reconstruct(X.coords.T) - X.data) ** 2)
    np.testing.assert_allclose(model.score(X), -full, rtol=1e-8)


def test_score_of_the_hypergraph_loss_runs_over_every_cell():
    X = _tensor()
    laps = _laplacians()
    laps[0] = None
    model = HyperLearnDecomposition(
        rank=3, loss="hypergraph", laplacians=laps, max_iter=4, tol=0.0, random_state=0
    ).fit(X)
    rows = np.array([0, 2, 3, 11])
    sub, _ = _rows(X, rows)
    cells = np.argwhere(np.ones(X.shape, dtype=bool))
    dense = np.zeros(X.shape)
    dense[tuple(X.coords)] = X.data
    keep = np.isin(cells[:, 0], rows)
    mse = np.mean((model.reconstruct(cells[keep]) - dense[tuple(cells[keep].T)]) ** 2)
    np.testing.assert_allclose(model.score(sub), -mse, rtol=1e-8)
