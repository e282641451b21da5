"""The data side against brute force: Hypergraph index bounds and the kNN graph's default σ."""

from __future__ import annotations

import numpy as np
import pytest
import sparse

from skhyperlearn.graphs import knn_graph
from skhyperlearn.hypergraph import Hypergraph


def _hypergraph(shape=(6, 5, 4)):
    rng = np.random.default_rng(0)
    coords = np.unique(np.stack([rng.integers(0, n, 40) for n in shape]), axis=1)
    return Hypergraph(sparse.COO(coords, 1.0, shape=shape))


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_indices_at_or_past_a_modes_size_are_refused(mode):
    H = _hypergraph()
    n = H.shape[mode]
    for bad in ([0, n], [n], [n + 3], [-n - 1]):
        with pytest.raises(IndexError, match="out of range"):
            H.take(bad, mode=mode)
    # The extremes inside the range are kept, negative ones counted from the end.
    ok = H.take([0, n - 1, -n], mode=mode)
    assert ok.shape[mode] == 3


def test_getitem_refuses_the_sample_modes_size():
    H = _hypergraph()
    n = H.shape[0]
    with pytest.raises(IndexError, match="out of range"):
        H[[0, n]]
    with pytest.raises(IndexError, match="out of range"):
        H[n]
    assert H[[n - 1]].shape[0] == 1


def _brute_force_knn(features, k):
    d = np.sqrt(((features[:, None, :] - features[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(features)), k)
    return rows, nearest.ravel(), d[rows, nearest.ravel()]


@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e150])
def test_default_sigma_is_the_median_of_the_knn_distances(scale):
    rng = np.random.default_rng(0)
    # Skewed distances, so that their median and mean differ.
    features = rng.lognormal(sigma=1.5, size=(30, 2)) * scale
    k = 4
    rows, cols, dist = _brute_force_knn(features, k)
    sigma = np.median(dist)
    w = np.zeros((30, 30))
    w[rows, cols] = np.exp(-(dist**2) / (2.0 * sigma**2))
    w = np.maximum(w, w.T)
    got = knn_graph(features, k, mode="distance").toarray()
    np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-300)
    assert abs(np.mean(dist) - sigma) > 0.1 * sigma
