"""``loss="implicit"``: kernels against dense einsum, the loss against the hypergraph loss it
generalises, and what the confidence does to a fit.

The solver side (exact mode solve against a dense Newton step, J against a dense J, the diffusion
blocks' training loss against J) is covered for every registered loss in test_references.py.
"""

import itertools

import numpy as np
import pytest
import sparse
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._numerics._kernels import (
    SparseTensorData,
    implicit_normal_equations,
    implicit_sq_error,
)
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.solvers.losses import get_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (9, 7, 6)


@pytest.fixture(params=["fused", "torch"])
def kernel_path(request, monkeypatch):
    """The stored-entry pass both ways: compiled (where it applies) and torch's chunked one,
    which the default CG mode solve no longer reaches in a fit."""
    from skhyperlearn._numerics._cpu import _fused

    if request.param == "fused" and not _fused.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_fused, "ENABLED", request.param == "fused")
    return request.param


def _counts(seed=0, shape=SHAPE, density=0.15):
    rng = np.random.default_rng(seed)
    x = sparse.random(shape, density=density, random_state=seed)
    return sparse.COO(x.coords, rng.integers(1, 5, x.nnz).astype(float), shape=shape)


def _factors(seed=1, rank=3, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return [torch.as_tensor(rng.normal(0, 0.5, (n, rank))) for n in shape]


@pytest.mark.parametrize("confidence", [0.0, 2.5, 40.0])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_normal_equations_match_dense_einsum(confidence, mode, kernel_path):
    x = _counts()
    factors = _factors()
    data = SparseTensorData.from_numpy(x.coords.T, x.data, SHAPE, chunk_bytes=2**12)
    linear, grams = implicit_normal_equations(data, factors, mode, confidence)
    dense = np.moveaxis(x.todense(), mode, 0)
    others = [f.numpy() for k, f in enumerate(factors) if k != mode]
    h = np.einsum("jr,kr->jkr", *others)
    presence = (dense != 0).astype(float)
    weight = confidence * dense
    np.testing.assert_allclose(
        linear.numpy(), np.einsum("ijk,jkr->ir", (1 + weight) * presence, h), atol=1e-12
    )
    np.testing.assert_allclose(
        grams.numpy(), np.einsum("ijk,jkr,jks->irs", weight, h, h), atol=1e-12
    )


def test_normal_equations_with_rows_split_across_chunks(kernel_path):
    """7 000 entries in chunks of 1 024: rows straddle chunk boundaries, counts 0 … ~400."""
    shape = (40, 30, 20)
    rng = np.random.default_rng(4)
    dense = (rng.random(shape) < np.linspace(0.0, 0.9, shape[0])[:, None, None]) * rng.integers(
        1, 4, shape
    )
    x = sparse.COO.from_numpy(dense.astype(float))
    factors = _factors(seed=5, rank=4, shape=shape)
    data = SparseTensorData.from_numpy(x.coords.T, x.data, shape, chunk_bytes=2**10)
    linear, grams = implicit_normal_equations(data, factors, 0, 2.0)
    h = np.einsum("jr,kr->jkr", factors[1].numpy(), factors[2].numpy())
    np.testing.assert_allclose(
        linear.numpy(), np.einsum("ijk,jkr->ir", (dense != 0) * (1 + 2.0 * dense), h), atol=1e-10
    )
    np.testing.assert_allclose(
        grams.numpy(), np.einsum("ijk,jkr,jks->irs", 2.0 * dense, h, h), rtol=1e-12, atol=1e-10
    )


def test_row_grams_by_padded_batches_match_a_loop():
    """Counts 0, 1, 2, 3, 5, 64, 65, 300 (every padding case) and a budget of a few Grams."""
    from skhyperlearn._numerics._kernels import _add_row_grams

    counts = [0, 1, 2, 3, 5, 64, 65, 300, 0, 1]
    crow = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]))
    g = torch.as_tensor(np.random.default_rng(6).normal(size=(int(crow[-1]), 5)))
    out = torch.ones(len(counts), 5, 5, dtype=torch.float64)
    _add_row_grams(out, crow, g, budget=3 * 25 * 8)
    expected = np.stack([
        1.0 + g[a:b].numpy().T @ g[a:b].numpy() for a, b in itertools.pairwise(crow.tolist())
    ])  # fmt: skip
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernels", ["compiled", "torch"])
@pytest.mark.parametrize("confidence", [0.0, 3.0])
def test_sq_error_matches_dense_einsum(confidence, kernels, monkeypatch):
    if kernels == "torch":
        monkeypatch.setenv("SKHYPERLEARN_NO_NUMBA", "1")
    x = _counts(seed=2)
    factors = _factors(seed=3)
    data = SparseTensorData.from_numpy(x.coords.T, x.data, SHAPE, chunk_bytes=2**12)
    model = np.einsum("ir,jr,kr->ijk", *(f.numpy() for f in factors))
    dense = x.todense()
    presence = (dense != 0).astype(float)
    expected = ((presence - model) ** 2).sum() + (confidence * dense * (1 - model) ** 2).sum()
    assert implicit_sq_error(data, factors, confidence) == pytest.approx(expected, rel=1e-12)


def test_confidence_zero_is_the_hypergraph_loss_on_binary_data():
    """At c = 0 the target is presence and every cell weighs 1: the paper's objective."""
    data = make_hypergraph((12, 10, 8), rank=3, n_entries=150, random_state=0)
    init = [f for f in HyperLearnDecomposition(3, max_iter=1, random_state=0).fit(
        data.tensor).factors_]  # fmt: skip
    common = dict(rank=3, laplacians=data.laplacians, lam=0.8, alpha=0.05, init=init,
                  max_iter=15, tol=0.0, cg_tol=1e-12, factor_scale="free")  # fmt: skip
    plain = HyperLearnDecomposition(loss="hypergraph", **common).fit(data.tensor)
    # The same exact sweeps: the CG solve (the default) takes other steps.
    implicit = HyperLearnDecomposition(
        loss="implicit", confidence=0.0, mode_solve="exact", projection_weight=0.0, **common
    ).fit(data.tensor)
    np.testing.assert_allclose(implicit.loss_history_, plain.loss_history_, rtol=1e-9)
    for a, b in zip(implicit.factors_, plain.factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_data_term_at_zero_factors_is_the_weighted_mass():
    """Divided by 1 + c: a stored 1 weighs 1 and J(0) = λ·nnz on binary data, whatever c."""
    data = make_hypergraph((12, 10, 8), rank=3, n_entries=150, random_state=1)
    zeros = [np.zeros((n, 3)) for n in (12, 10, 8)]
    # The tensor term alone (λ's unit 1 with the free scale), then the projection terms (the
    # default: unit 0.1), which together weigh nnz at zero factors too.
    # (The projections' summed counts weigh more than their pairs once c > 0 and the typical
    # value is not the median's: with c = 0 every pair weighs 1.)
    for weight, unit, confidences in ((0.0, 1.0, (0.0, 5.0, 100.0)), (1.0, 0.1, (0.0,))):
        for confidence in confidences:
            history = []
            HyperLearnDecomposition(
                3, lam=2.0, alpha=0.0, loss="implicit", confidence=confidence, init=zeros,
                max_iter=1, tol=0.0, projection_weight=weight, factor_scale="free",
                callback=lambda info, seen=history: seen.append(info["loss"]),
            ).fit(data.tensor)  # fmt: skip
            # All-zero factors are a fixed point of the exact updates (every right-hand side
            # is 0).
            assert history == [pytest.approx(2.0 * unit * data.tensor.nnz, rel=1e-12)]
    loss = get_loss("implicit", confidence=7.0)
    assert loss.confidence == 7.0 and not loss.entrywise and not loss.fits_bias


def test_stored_entries_are_fitted_closer_as_confidence_grows():
    """The point of the weights: predictions at the stored hyperedges rise towards 1."""
    data = make_hypergraph((40, 30, 20), rank=4, n_entries=600, noise=0.3, random_state=2)
    coords = tuple(data.tensor.coords)
    means = []
    for confidence in (0.0, 3.0, 30.0):
        model = HyperLearnDecomposition(
            4, loss="implicit", confidence=confidence, alpha=0.01, max_iter=30, random_state=0
        ).fit(data.tensor)
        means.append(float(np.einsum("ir,jr,kr->ijk", *model.factors_)[coords].mean()))
    assert means[0] < means[1] < means[2] <= 1.05
    assert means[2] - means[0] > 0.2


def test_confidence_is_checked_and_ignored_by_the_other_losses():
    data = make_hypergraph((10, 8, 6), rank=2, n_entries=80, random_state=0)
    with pytest.raises(InvalidParameterError, match="'confidence' parameter"):
        HyperLearnDecomposition(loss="implicit", confidence=-1.0).fit(data.tensor)
    with pytest.raises(InvalidParameterError, match="'confidence' parameter"):
        HyperLearnDecomposition(confidence="high").fit(data.tensor)
    a, b = (
        HyperLearnDecomposition(2, loss="hypergraph", confidence=c, max_iter=5, random_state=0)
        for c in (1.0, 50.0)
    )
    a.fit(data.tensor)
    b.fit(data.tensor)
    assert a.confidence_ is None
    for fa, fb in zip(a.factors_, b.factors_, strict=True):
        np.testing.assert_array_equal(fa, fb)


def test_negative_values_are_refused_before_any_work():
    x = _counts(seed=4)
    values = x.data.copy()
    values[3] = -1.0
    bad = sparse.COO(x.coords, values, shape=x.shape)
    before = bad.data.copy()
    model = HyperLearnDecomposition(3, loss="implicit")
    with pytest.raises(ValueError, match=r"loss='implicit'.*non-negative.*-1\.0"):
        model.fit(bad)
    np.testing.assert_array_equal(bad.data, before)
    assert not hasattr(model, "factors_")
    # the paper's loss takes any real values, and the default loss picks it for signed data
    HyperLearnDecomposition(3, loss="hypergraph", max_iter=2, tol=0.0).fit(bad)
    assert HyperLearnDecomposition(3, max_iter=2, tol=0.0).fit(bad).loss_ == "hypergraph"


@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_both_solvers_fit_and_transform(solver):
    data = make_hypergraph((20, 15, 10), rank=3, n_entries=300, random_state=3)
    model = HyperLearnDecomposition(
        3, loss="implicit", laplacians=data.laplacians, solver=solver, max_iter=4,
        n_terms=2, hidden=4, n_steps=1, random_state=0, tol=0.0,
    )  # fmt: skip
    out = model.fit_transform(data.tensor)
    assert out.shape == (20, 3) and np.isfinite(out).all()
    assert np.all(np.diff(model.loss_history_) <= 1e-9 * abs(model.loss_history_[0])) or (
        solver == "hyperlearn"
    )
    assert (
        model.memory_estimate_
        > HyperLearnDecomposition(
            3,
            loss="hypergraph",
            laplacians=data.laplacians,
            solver=solver,
            max_iter=1,
            n_terms=2,
            hidden=4,
            n_steps=1,
        )
        .fit(data.tensor)
        .memory_estimate_
    )


def test_auto_resolves_the_loss_and_the_confidence_on_the_training_data():
    data = make_hypergraph((20, 15, 10), rank=3, n_entries=300, random_state=5)
    x = data.tensor
    # The tensor term's confidence (each projection term resolves its own: test_projections).
    kw = dict(max_iter=3, tol=0.0, random_state=0, projection_weight=0.0)
    model = HyperLearnDecomposition(3, **kw).fit(x)
    assert model.loss_ == "implicit"
    assert model.confidence_ == pytest.approx(3.0 * np.sqrt(20 * 15 * 10 / x.nnz), rel=1e-12)
    # transform folds new entities in with the fitted confidence, not one of the new X
    same = HyperLearnDecomposition(3, confidence=model.confidence_, **kw).fit(x)
    few = x[:4]
    np.testing.assert_array_equal(model.transform(few), same.transform(few))
    sparser = HyperLearnDecomposition(3, confidence=2 * model.confidence_, **kw).fit(x)
    assert not np.allclose(model.transform(few), sparser.transform(few))


def test_auto_confidence_is_relative_to_the_typical_stored_value():
    # Counts (values 1..5, median 3): X and 1000·X must weigh their entries alike under the
    # defaults, so every fitted factor is the same up to rounding.
    data = make_hypergraph((20, 15, 10), rank=3, n_entries=300, random_state=5)
    x = data.tensor
    rng = np.random.default_rng(0)
    counts = sparse.COO(x.coords, rng.integers(1, 6, x.nnz).astype(np.float64), shape=x.shape)
    fits = [
        HyperLearnDecomposition(3, max_iter=20, tol=0.0, random_state=0).fit(c * counts)
        for c in (1.0, 1000.0)
    ]
    assert fits[1].confidence_ == pytest.approx(fits[0].confidence_ / 1000, rel=1e-12)
    assert fits[0].confidence_ == pytest.approx(
        3.0 * np.sqrt(20 * 15 * 10 / x.nnz) / np.median(counts.data), rel=1e-12
    )
    for a, b in zip(fits[0].factors_, fits[1].factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    few = counts[:4]
    np.testing.assert_allclose(
        fits[0].transform(few), fits[1].transform(1000.0 * few), rtol=1e-6, atol=1e-9
    )
    # An explicit confidence stays absolute: 1000·X then weighs its entries 1000 times more.
    fixed = [
        HyperLearnDecomposition(3, confidence=5.0, max_iter=20, tol=0.0, random_state=0).fit(
            c * counts
        )
        for c in (1.0, 1000.0)
    ]
    assert not np.allclose(fixed[0].factors_[0], fixed[1].factors_[0], rtol=1e-3)
