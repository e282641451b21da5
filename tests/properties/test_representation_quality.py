"""What the representations owe their users: no silent collapse, and λ that means something."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.graphs import normalized_laplacian


@pytest.fixture(scope="module")
def planted():
    return make_hypergraph(shape=(40, 30, 20), rank=3, random_state=0)


def test_collapse_to_zero_warns_naming_the_cause(planted):
    # The paper's formulation: the scale moves to wherever the ridge is cheapest, down to zero.
    model = HyperLearnDecomposition(
        rank=3,
        lam=1e-3,
        alpha=5.0,
        laplacians=planted.laplacians,
        max_iter=20,
        random_state=0,
        factor_scale="free",
        projection_weight=0.0,
    )
    with pytest.warns(UserWarning, match=r"collapsed to zero.*alpha=5\.0.*lam=0\.001"):
        model.fit(planted.tensor)
    assert max(np.abs(a).max() for a in model.factors_) < 1e-12


def test_collapse_warning_names_lam_as_given_not_in_the_models_unit(planted):
    # The default model weighs the data by 0.1·λ; the message names the λ the user passed.
    zeros = [np.zeros((n, 3)) for n in planted.tensor.shape]
    model = HyperLearnDecomposition(rank=3, lam=2.0, alpha=0.0, init=zeros, max_iter=1)
    with pytest.warns(UserWarning, match=r"collapsed to zero.*at lam=2; raise lam"):
        model.fit(planted.tensor)


def test_solved_scale_does_not_collapse_where_the_free_scale_does(planted):
    """With the scale on the solved mode, the same weights give a small but real model."""
    model = HyperLearnDecomposition(
        rank=3,
        lam=1e-3 / 30,
        alpha=5.0,
        laplacians=planted.laplacians,
        max_iter=20,
        random_state=0,
        factor_scale="solved",
        projection_weight=0.0,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*collapsed.*")
        model.fit(planted.tensor)
    assert model.factor_scale_ == "solved"
    sample = model.factors_[0]
    assert np.isfinite(sample).all() and np.abs(sample).max() > 1e-8
    # Every other mode's columns have unit norm: the sample mode carries the scale.
    for a in model.factors_[1:]:
        np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, rtol=1e-10)


def test_no_collapse_warning_on_a_fit_that_explains_the_data(planted):
    model = HyperLearnDecomposition(
        rank=3, lam=1.0, alpha=0.1, laplacians=planted.laplacians, max_iter=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*collapsed.*")
        model.fit(planted.tensor)
    assert max(np.abs(a).max() for a in model.factors_) > 1e-3


def _final_parts(planted, lam: float, loss: str = "hypergraph") -> dict:
    parts = {}

    def keep(info):
        parts.update({k: info[k] for k in ("data", "graph", "ridge")})

    HyperLearnDecomposition(
        rank=3,
        lam=lam,
        loss=loss,
        alpha=0.1,
        laplacians=planted.laplacians,
        max_iter=80,
        tol=1e-9,
        init="random",
        random_state=0,
        callback=keep,
    ).fit(planted.tensor)
    return parts


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("loss", ["hypergraph", "implicit"])
def test_lam_trades_data_fit_against_the_penalties_monotonically(planted, loss):
    """Raising λ (weight of the data term) never worsens the fit nor lowers the penalties.

    At the minimiser of λ·data + penalty, data(λ) is non-increasing and penalty(λ)
    non-decreasing in λ; block coordinate descent reaches a local minimiser, hence the slack.
    """
    lams = [1e-2, 1e-1, 1.0, 10.0, 100.0]
    parts = [_final_parts(planted, lam, loss) for lam in lams]
    data = np.array([p["data"] for p in parts])
    penalty = np.array([p["graph"] + p["ridge"] for p in parts])
    slack = 1e-3
    assert np.all(np.diff(data) <= slack * data[:-1]), data
    assert np.all(np.diff(penalty) >= -slack * penalty[1:]), penalty
    # The extremes differ: λ is not scaled away when the ridge holds the factors' scale.
    assert data[0] > 1.05 * data[-1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_complete_graph_on_a_level_mode_pulls_its_columns_to_their_mean():
    """The graph benchmarks/README.md gives ML-100K's rating levels: the smaller λ (or the
    larger the graph's weight), the closer every column of that mode's factor comes to
    constant (the mode summed out), and without the graph the columns vary freely."""
    data = make_hypergraph(shape=(40, 30, 5), rank=3, random_state=0)
    levels = normalized_laplacian(np.ones((5, 5)) - np.eye(5))

    def spread(lam, laplacian):
        model = HyperLearnDecomposition(
            rank=3,
            lam=lam / 30,
            laplacians=[None, None, laplacian],
            max_iter=60,
            random_state=0,
            projection_weight=0.0,  # the tensor term's level mode; λ's unit 30
        ).fit(data.tensor)
        c = model.factors_[2]
        return np.linalg.norm(c - c.mean(axis=0)) / np.linalg.norm(c)

    spreads = np.array([spread(lam, levels) for lam in (0.01, 0.1, 1.0, 10.0, 100.0)])
    assert np.all(np.diff(spreads) > 0), spreads
    assert spreads[0] < 0.02, spreads
    assert spread(1.0, None) > 10 * spreads[2]
    # Weighted far above λ, the graph ties the levels: the factor is constant down each column.
    assert spread(100.0, 1e4 * levels) < 1e-3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_hyperlearn_solver_ties_levels_with_a_weighted_graph():
    """The weighted Laplacian the user guide suggests works with the diffusion blocks too:
    their Chebyshev operator is rescaled by the Laplacian's own bound, not by 2 (with 2 the
    terms grew as the weight's powers and the levels stayed apart: spread 0.07)."""
    data = make_hypergraph(shape=(40, 30, 5), rank=3, random_state=0)
    levels = 1e4 * normalized_laplacian(np.ones((5, 5)) - np.eye(5))
    model = HyperLearnDecomposition(
        rank=3,
        solver="hyperlearn",
        laplacians=[data.laplacians[0], None, levels],
        max_iter=8,
        n_steps=4,
        init_iter=5,
        random_state=0,
    ).fit(data.tensor)
    c = model.factors_[2]
    assert np.isfinite(c).all()
    assert np.linalg.norm(c - c.mean(axis=0)) / np.linalg.norm(c) < 1e-3


def test_verbose_two_draws_progress_bars_instead_of_lines(planted, capsys):
    HyperLearnDecomposition(rank=3, max_iter=4, tol=0, random_state=0, verbose=2).fit(
        planted.tensor
    )
    out, err = capsys.readouterr()
    assert "training" in err and "4/4" in err and "J=" in err
    assert "sweep    1" not in out  # the per-iteration lines give way to the bar
    assert "stopped after 4 iterations: max_iter" in out
