"""The loss interface: a new loss is one class plus its registration.

The toy loss below is written the way a new loss would be (as a module of
``skhyperlearn/solvers/losses/`` plus one import line in its ``__init__``): a hypergraph loss
whose cells weigh ``w`` each. It touches no other file, and the estimator fits with it; the
fit must equal the hypergraph loss's with ``lam`` multiplied by ``w``.
"""

import numpy as np
import pytest

from skhyperlearn import HyperLearnDecomposition, HyperLearnRegressor
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.solvers.losses import LOSSES, Loss, get_loss, register_loss
from skhyperlearn.solvers.losses._hypergraph import HypergraphQuadratic

W = 3.0


class _WeightedCells(Loss):
    """``w · ‖X − [[A]]‖²``: the hypergraph loss with every cell weighing ``w``."""

    name = "toy-weighted-cells"
    default_lam = 1.0 / W

    def quadratic(self, tensor, factors, mode, biases=None, mean=0.0, with_bias=False):
        quad = get_loss("hypergraph").quadratic(tensor, factors, mode)
        return HypergraphQuadratic(mode, W * quad.const, W * quad.linear, W * quad.gram)

    def error(self, tensor, factors, biases=None, mean=0.0):
        return W * get_loss("hypergraph").error(tensor, factors)


@pytest.fixture
def toy_loss():
    register_loss(_WeightedCells)
    yield _WeightedCells.name
    from skhyperlearn.solvers.losses._base import LOSS_CHOICES, LOSS_NAMES

    del LOSSES[_WeightedCells.name]
    LOSS_NAMES.discard(_WeightedCells.name)
    LOSS_CHOICES.discard(_WeightedCells.name)


@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_a_registered_loss_fits_through_the_estimator(toy_loss, solver):
    data = make_hypergraph((20, 15, 10), rank=3, n_entries=400, random_state=0)
    kw = dict(rank=3, laplacians=data.laplacians, max_iter=6, tol=0, random_state=0)
    if solver == "hyperlearn":
        kw.update(solver=solver, n_terms=2, hidden=4, n_steps=1, init_iter=2)
    toy = HyperLearnDecomposition(loss=toy_loss, **kw).fit(data.tensor)
    ref = HyperLearnDecomposition(loss="hypergraph", lam=1.0, **kw).fit(data.tensor)
    # lam="auto" is 1/w for the toy loss, so λ·w = 1: the same J as the reference.
    for a, b in zip(toy.factors_, ref.factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(toy.loss_history_, ref.loss_history_, rtol=1e-9)
    assert toy.score(data.tensor) == pytest.approx(W * ref.score(data.tensor), rel=1e-9)


def test_unregistered_loss_is_refused_naming_the_parameter():
    data = make_hypergraph((8, 6, 5), rank=2, random_state=0)
    with pytest.raises(ValueError, match="'loss' parameter"):
        HyperLearnDecomposition(loss="toy-weighted-cells").fit(data.tensor)
    with pytest.raises(ValueError, match=r"loss='nope' is not one of"):
        get_loss("nope")


def test_the_registry_holds_the_shipped_losses():
    assert {"hypergraph", "observed"} <= set(LOSSES)
    observed = get_loss("observed")
    assert observed.entrywise and observed.fits_bias
    assert (
        observed.buffer_bytes((10, 20), 3, 8)
        > 0
        == get_loss("hypergraph").buffer_bytes((10, 20), 3, 8)
    )
    # The regressor is the observed loss's: it has no loss parameter to change.
    assert "loss" not in HyperLearnRegressor().get_params()
