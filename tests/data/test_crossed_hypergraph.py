"""make_crossed_hypergraph: the class is in the whole hyperedge, in no pair of modes."""

from __future__ import annotations

import numpy as np
import pytest

from skhyperlearn.datasets import make_crossed_hypergraph


def _rule_holds(data) -> np.ndarray:
    """Per hyperedge: is the last mode's group (c + Σ free groups) mod C?"""
    groups = [lab[c] for lab, c in zip(data.labels, data.tensor.coords, strict=True)]
    n_groups = int(data.labels[0].max()) + 1
    return (groups[-1] - groups[0] - sum(groups[1:-1])) % n_groups == 0


@pytest.mark.parametrize("shape", [(120, 12, 9), (90, 9, 12, 6)])
def test_every_noise_free_hyperedge_follows_the_crossed_rule(shape):
    data = make_crossed_hypergraph(shape, 3, n_entries=2000, noise=0.0, random_state=0)
    assert data.tensor.shape == shape and data.tensor.nnz == 2000
    np.testing.assert_array_equal(data.tensor.data, 1.0)
    assert _rule_holds(data).all()
    # the groups are balanced and every mode has its symmetric graph
    for lab, adj, n in zip(data.labels, data.adjacencies, shape, strict=True):
        np.testing.assert_array_equal(np.bincount(lab), np.full(3, n // 3))
        assert adj.shape == (n, n) and abs(adj - adj.T).max() == 0


def test_no_pair_of_modes_tells_the_class():
    data = make_crossed_hypergraph((150, 30, 30), 3, n_entries=20000, noise=0.0, random_state=1)
    classes = data.labels[0][data.tensor.coords[0]]
    for k in (1, 2):
        groups = data.labels[k][data.tensor.coords[k]]
        for c in range(3):
            share = np.bincount(groups[classes == c], minlength=3) / np.sum(classes == c)
            # uniform over the other mode's groups whatever the class (binomial error ~0.006)
            np.testing.assert_allclose(share, 1 / 3, atol=0.03)
    # ... while the whole hyperedge gives the class away
    assert _rule_holds(data).all()


def test_noise_draws_uniform_hyperedges():
    data = make_crossed_hypergraph((150, 30, 30), 3, n_entries=6000, noise=1.0, random_state=2)
    # a uniform hyperedge follows the rule by chance, one time in three
    assert abs(_rule_holds(data).mean() - 1 / 3) < 0.03
    mixed = make_crossed_hypergraph((150, 30, 30), 3, n_entries=6000, noise=0.3, random_state=2)
    assert abs(_rule_holds(mixed).mean() - (0.7 + 0.3 / 3)) < 0.03


def test_seed_fixes_everything_and_the_default_is_three_per_sample():
    a, b = make_crossed_hypergraph(random_state=5), make_crossed_hypergraph(random_state=5)
    assert a.tensor.nnz == 3 * 300
    np.testing.assert_array_equal(a.tensor.coords, b.tensor.coords)
    for x, y in zip(a.adjacencies, b.adjacencies, strict=True):
        assert abs(x - y).max() == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (30, 10)}, "at least 3 modes"),
        ({"shape": (30, 2, 10)}, r"shape\[1\]"),
        ({"n_communities": 1}, "n_communities"),
        ({"shape": (6, 6, 6), "n_entries": 37}, "n_entries"),
        ({"noise": 1.5}, "noise"),
        ({"spread": -1.0}, "spread"),
        ({"n_communities": True}, "n_communities"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_crossed_hypergraph(**kwargs)
