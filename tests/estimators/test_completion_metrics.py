"""Filtered ranking metrics against hand-computed values, the hyperedge splitter's folds, the
ranker in GridSearchCV."""

from __future__ import annotations

import numpy as np
import pytest
import sparse
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, cross_val_score

from skhyperlearn import HyperedgeRanker, HyperLearnDecomposition
from skhyperlearn.metrics import (
    filtered_ranks,
    hits_at_k,
    make_completion_scorer,
    mean_reciprocal_rank,
    ndcg_at_k,
    rank_scores,
)
from skhyperlearn.model_selection import HyperedgeSplit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_metrics_of_ranks_by_hand():
    ranks = [1, 2, 4, 20]
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0.25 + 0.05) / 4)
    assert hits_at_k(ranks, 1) == 0.25
    assert hits_at_k(ranks, 4) == 0.75
    assert ndcg_at_k(ranks, 3) == pytest.approx((1 + 1 / np.log2(3)) / 4)
    assert ndcg_at_k(ranks, 10) == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(5)) / 4)


@pytest.mark.parametrize("bad", [[], [0.5], [np.nan], [np.inf]])
def test_metrics_refuse_bad_ranks(bad):
    with pytest.raises(ValueError, match="ranks"):
        mean_reciprocal_rank(bad)


def test_metrics_refuse_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        hits_at_k([1], 0)


class _Fixed(BaseEstimator):
    """A 'fitted' estimator with hand-set factors: rank 1, so scores are products."""

    def __init__(self, factors=(), hyperedges=()):
        self.factors_ = [np.asarray(a, float)[:, None] for a in factors]
        self.biases_ = None
        self.mean_ = 0.0
        self._fit_hyperedges = np.asarray(hyperedges)

    def fit(self):  # check_is_fitted asks for an estimator
        return self

    def __sklearn_is_fitted__(self):
        return True


def test_filtered_ranks_by_hand():
    # Scores of completing (i, ·) on mode 1: a[i] * b = a[i] * [5, 4, 3, 2, 1] (a > 0).
    model = _Fixed([[1.0, 2.0], [5, 4, 3, 2, 1]], hyperedges=[[0, 0], [1, 1]])
    held = np.array([[0, 2], [0, 3], [1, 0]])
    raw = filtered_ranks(model, held, 1, known=None)
    np.testing.assert_array_equal(raw, [3, 4, 1])
    # Filtered: (0, 0) is known (train) and (0, 2) is another held-out answer of query 0.
    got = filtered_ranks(model, held, 1)
    np.testing.assert_array_equal(got, [2, 2, 1])
    # Known given explicitly, "train" left out: only the held-out answers filter each other.
    got = filtered_ranks(model, held, 1, known=[np.zeros((0, 2), int)])
    np.testing.assert_array_equal(got, [3, 3, 1])


def test_ties_count_half():
    model = _Fixed([[1.0], [1, 1, 1, 1]], hyperedges=np.zeros((0, 2), int))
    assert filtered_ranks(model, [[0, 2]], 1)[0] == 2.5  # three others tie: 1 + 3/2


def test_completion_scorer_by_hand():
    model = _Fixed([[1.0, 2.0], [5, 4, 3, 2, 1]], hyperedges=[[0, 0], [1, 1]])
    held = np.array([[0, 2], [0, 3], [1, 0]])
    assert make_completion_scorer("mrr", mode=1)(model, held) == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert make_completion_scorer("hits@1", mode=1)(model, held) == pytest.approx(1 / 3)
    expected = (2 / np.log2(3) + 1) / 3
    assert make_completion_scorer("ndcg@2", mode=1)(model, held) == pytest.approx(expected)


@pytest.mark.parametrize("metric", ["auc", "hits", "mrr@3", "ndcg@x", "hits@0"])
def test_completion_scorer_refuses_unknown_metrics(metric):
    with pytest.raises(ValueError, match="metric"):
        make_completion_scorer(metric)


def _post_coords(seed=0):
    """(user, artist, tag) hyperedges: 30 posts of 1–4 tags."""
    rng = np.random.default_rng(seed)
    rows = []
    for post in range(30):
        user, artist = post % 7, post % 5 + 5 * (post // 15)
        for tag in rng.choice(8, rng.integers(1, 5), replace=False):
            rows.append((user, artist, tag))
    return np.unique(np.array(rows), axis=0)


def test_splitter_holds_out_one_member_of_every_group_per_fold():
    coords = _post_coords()
    groups = {tuple(r) for r in coords[:, :2]}
    sizes = {g: int(np.sum((coords[:, :2] == g).all(1))) for g in groups}
    split = HyperedgeSplit(mode=2, n_splits=3, random_state=0)
    assert split.get_n_splits() == 3
    tests = []
    for train, test in split.split(coords):
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(coords)
        held = [tuple(r) for r in coords[test, :2]]
        # One per group with at least two members, none from the others.
        assert sorted(held) == sorted(g for g in groups if sizes[g] >= 2)
        tests.append(set(test.tolist()))
    # Groups of three or more hold out three different members over the three folds.
    for g, n in sizes.items():
        rows = np.flatnonzero((coords[:, :2] == g).all(1))
        picked = [t & set(rows.tolist()) for t in tests]
        if n >= 3:
            assert len(set.union(*picked)) == 3
    again = [t.tolist() for _, t in split.split(coords)]
    assert again == [sorted(t) for t in tests]  # the same folds for the same random_state


def test_splitter_min_group_size_and_bad_parameters():
    coords = _post_coords()
    _, test = next(HyperedgeSplit(mode=2, min_group_size=1, random_state=0).split(coords))
    assert len(test) == len(np.unique(coords[:, :2], axis=0))
    with pytest.raises(ValueError, match="n_splits"):
        next(HyperedgeSplit(mode=2, n_splits=0).split(coords))
    with pytest.raises(ValueError, match="mode=3"):
        next(HyperedgeSplit(mode=3).split(coords))
    with pytest.raises(ValueError, match="X must be hyperedge coordinates"):
        next(HyperedgeSplit(mode=0).split(np.arange(4)))


def test_ranker_scores_its_held_out_hyperedges_and_grid_searches():
    coords = _post_coords()
    shape = tuple(coords.max(0) + 1)
    ranker = HyperedgeRanker(
        HyperLearnDecomposition(rank=2, max_iter=3, tol=0.0, random_state=0), shape=shape, mode=2
    )
    cv = HyperedgeSplit(mode=2, n_splits=2, random_state=0)
    train, test = next(cv.split(coords))
    ranker.fit(coords[train])
    assert ranker.estimator_.tensor_shape_ == shape
    expected = mean_reciprocal_rank(filtered_ranks(ranker.estimator_, coords[test], 2))
    assert ranker.score(coords[test]) == pytest.approx(expected)
    ids, _ = ranker.recommend(coords[test][:3], k=2)
    train_set = {tuple(r) for r in coords[train]}
    for q, row in zip(coords[test][:3], ids, strict=True):
        assert all((q[0], q[1], t) not in train_set for t in row)
    scores = cross_val_score(ranker, coords, cv=cv, scoring=make_completion_scorer("hits@3"))
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(ranker, {"estimator__rank": [1, 2]}, cv=cv).fit(coords)
    assert search.best_params_["estimator__rank"] in (1, 2)
    assert search.best_estimator_.estimator_.rank == search.best_params_["estimator__rank"]


def test_ranker_default_model_is_the_cp_term_and_scores_triples_jointly():
    """Without an estimator the ranker fits the tensor's CP term (projection_weight=0), whose
    score of a completion is the CP model's value at the cell (a dense einsum here)."""
    coords = _post_coords()
    shape = tuple(coords.max(0) + 1)
    ranker = HyperedgeRanker(shape=shape, mode=2).fit(coords)
    model = ranker.estimator_
    assert model.projection_weight == 0.0
    dense = np.einsum("ir,jr,kr->ijk", *model.factors_)
    queries = coords[:4]
    got = model.score_mode(queries, 2)
    np.testing.assert_allclose(got, dense[queries[:, 0], queries[:, 1]], rtol=1e-10)


def test_ranker_refuses_bad_input():
    with pytest.raises(ValueError, match="X must be hyperedge coordinates"):
        HyperedgeRanker().fit(np.arange(3))
    with pytest.raises(ValueError, match=r"shape=\(2, 2\) has 2 modes"):
        HyperedgeRanker(shape=(2, 2)).fit(np.zeros((3, 3), int))
    with pytest.raises(ValueError, match=r"X\[:, 1\] holds indices"):
        HyperedgeRanker(shape=(2, 2, 2)).fit(np.array([[0, 5, 0]]))
    with pytest.raises(ValueError, match="mode=4"):
        HyperedgeRanker(mode=4).fit(np.zeros((3, 3), int))


def test_filtered_ranks_accepts_a_coo_of_known_hyperedges():
    model = _Fixed([[1.0, 2.0], [5, 4, 3, 2, 1]], hyperedges=np.zeros((0, 2), int))
    known = sparse.COO(np.array([[0], [0]]), [1.0], shape=(2, 5))
    np.testing.assert_array_equal(filtered_ranks(model, [[0, 2]], 1, known=known), [2])


def test_rank_scores_by_hand_and_as_filtered_ranks():
    scores = np.array([[5.0, 4, 3, 2, 1], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(rank_scores(scores, [2, 0]), [3, 3])
    exclude = np.zeros_like(scores, bool)
    exclude[0, [0, 2]] = True  # the true one (2) stays a candidate
    np.testing.assert_array_equal(rank_scores(scores, [2, 0], exclude=exclude), [2, 3])
    model = _Fixed([[1.0, 2.0], [5, 4, 3, 2, 1]], hyperedges=[[0, 0], [1, 1]])
    held = np.array([[0, 2], [0, 3], [1, 0]])
    mask = np.zeros((3, 5), bool)
    mask[0, [0, 3]] = mask[1, [0, 2]] = mask[2, 1] = True
    np.testing.assert_array_equal(
        rank_scores(np.outer([1, 1, 2], [5, 4, 3, 2, 1]), held[:, 1], exclude=mask),
        filtered_ranks(model, held, 1),
    )
    with pytest.raises(ValueError, match="y_true"):
        rank_scores(scores, [5, 0])
    with pytest.raises(ValueError, match="exclude must have shape"):
        rank_scores(scores, [0, 0], exclude=np.zeros((1, 5), bool))
