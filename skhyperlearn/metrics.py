"""Filtered ranking metrics for hyperedge completion, and a scorer for ``GridSearchCV``.

Completion is evaluated as in knowledge-graph link prediction (Bordes et al. 2013): each
held-out hyperedge becomes a query (its coordinates off one mode), every entity of that mode is
scored, and the rank of the true one is kept. *Filtered*: the other known completions of the
same query (hyperedges of the training data, of the other held-out ones, or any given) are
removed from the candidates first, so that a model is not penalised for ranking another true
answer above this one. From the ranks: mean reciprocal rank (MRR), Hits@k and NDCG@k (one
relevant entity per query: ``1 / log2(1 + rank)`` within the top k).

Ties count half: a rank is ``1 + #(better) + #(equal)/2``, the expected rank when ties are
broken at random, so a constant model scores as chance and never as perfect.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike

from . import _ranking

__all__ = [
    "filtered_ranks",
    "hits_at_k",
    "make_completion_scorer",
    "mean_reciprocal_rank",
    "ndcg_at_k",
    "rank_scores",
]


def _check_ranks(ranks) -> np.ndarray:
    r = np.asarray(ranks, dtype=float).reshape(-1)
    if r.size == 0:
        raise ValueError("ranks is empty: there is nothing to average.")
    if not np.all(np.isfinite(r)) or r.min() < 1:
        raise ValueError("ranks must be finite and >= 1 (rank 1 is the best).")
    return r


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    return int(k)


def mean_reciprocal_rank(ranks: ArrayLike) -> float:
    """Mean of ``1 / rank`` over the queries.

    Parameters
    ----------
    ranks : array-like of float, shape (n_queries,)
        The rank of each query's true entity (1 is the best), e.g. from :func:`filtered_ranks`.

    Returns
    -------
    float
    """
    return float(np.mean(1.0 / _check_ranks(ranks)))


def hits_at_k(ranks: ArrayLike, k: int = 10) -> float:
    """Share of the queries whose true entity ranks k-th or better."""
    return float(np.mean(_check_ranks(ranks) <= _check_k(k)))


def ndcg_at_k(ranks: ArrayLike, k: int = 10) -> float:
    """NDCG@k with one relevant entity per query: mean of ``1 / log2(1 + rank)`` if
    ``rank <= k``, else 0 (the ideal DCG is 1)."""
    r = _check_ranks(ranks)
    gain = np.where(r <= _check_k(k), 1.0 / np.log2(1.0 + r), 0.0)
    return float(np.mean(gain))


def _known_parts(estimator, known, shape) -> list[np.ndarray]:
    parts = known if isinstance(known, list | tuple) else [known]
    out = []
    for part in parts:
        if isinstance(part, str):
            if part != "train":
                raise ValueError(f'known must hold "train", coordinates or tensors, got {part!r}.')
            out.append(_ranking.fitted_hyperedges(estimator))
        elif part is not None:
            out.append(_ranking.known_coords(part, shape, "known"))
    return out


def filtered_ranks(
    estimator,
    coords: ArrayLike,
    mode: int,
    *,
    known="train",
    chunk_size: int | None = None,
) -> np.ndarray:
    """The filtered rank of each hyperedge's member of ``mode`` among all entities of ``mode``.

    Parameters
    ----------
    estimator : HyperLearnDecomposition or HyperedgeRanker
        A fitted model (a ranker's inner estimator is used).
    coords : array-like of int, shape (n, K)
        The held-out hyperedges; ``coords[:, mode]`` is the entity to find.
    mode : int
        The mode completed.
    known : "train", None, array-like of shape (m, K), sparse.COO, or a list of those
        Hyperedges whose completions are filtered out of the candidates: ``"train"``, the
        hyperedges the estimator was fitted on. ``coords`` are added to them (the other
        held-out answers of a query are filtered too), and each query's own answer stays a
        candidate. None: the raw ranking, nothing filtered.
    chunk_size : int, default=None
        Queries scored at once (see ``HyperLearnDecomposition.score_mode``).

    Returns
    -------
    ndarray of float, shape (n,)
        Ranks, 1 the best; ties count half (see the module docstring).
    """
    estimator = getattr(estimator, "estimator_", estimator)
    model, q, mode, chunk = _ranking.prepare(estimator, coords, mode, None, chunk_size)
    target = _ranking.check_queries(q, model.shape, None, "coords")[:, mode]
    index = None
    if known is not None:
        parts = [*_known_parts(estimator, known, model.shape), q]
        index = _ranking.KnownHyperedges(np.concatenate(parts), model.shape, mode)
    ranks = np.empty(q.shape[0])
    for rows, block in _ranking.iter_scores(model, q, mode, chunk):
        exclude = None if index is None else index.pairs(q[rows])
        ranks[rows] = _ranks(block, target[rows], exclude)
    return ranks


def _ranks(block: np.ndarray, target: np.ndarray, exclude) -> np.ndarray:
    """Ranks of ``target`` in each row of ``block`` (overwritten), ``exclude`` pairs out."""
    idx = np.arange(block.shape[0])
    true_score = block[idx, target].copy()
    if exclude is not None:
        block[exclude] = -np.inf
    block[idx, target] = np.nan  # the answer itself is neither better nor equal
    better = (block > true_score[:, None]).sum(1)
    equal = (block == true_score[:, None]).sum(1)
    return 1.0 + better + 0.5 * equal


def rank_scores(
    y_score: ArrayLike, y_true: ArrayLike, *, exclude: ArrayLike | None = None
) -> np.ndarray:
    """The rank of each row's true column among its scores, ``exclude`` filtered out.

    The ranking rule of :func:`filtered_ranks` for scores from anywhere (a baseline, another
    library), so that they are ranked exactly as the estimator's are.

    Parameters
    ----------
    y_score : array-like of shape (n, N)
        Scores of every candidate for each query (higher is better).
    y_true : array-like of int, shape (n,)
        The true candidate of each query.
    exclude : array-like of bool, shape (n, N), default=None
        Candidates removed before ranking (known answers); the true one never is.

    Returns
    -------
    ndarray of float, shape (n,)
    """
    block = np.array(y_score, dtype=float)
    target = np.asarray(y_true)
    if block.ndim != 2 or target.shape != (block.shape[0],):
        raise ValueError(
            f"y_score must be (n, N) and y_true (n,), got {block.shape} and {target.shape}."
        )
    if target.dtype.kind not in "iu" or (
        target.size and (target.min() < 0 or target.max() >= block.shape[1])
    ):
        raise ValueError(f"y_true must hold column indices in [0, {block.shape[1]}).")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != block.shape:
            raise ValueError(f"exclude must have shape {block.shape}, got {exclude.shape}.")
    return _ranks(block, target, exclude)


_METRICS = {"mrr": mean_reciprocal_rank, "hits": hits_at_k, "ndcg": ndcg_at_k}


def _parse_metric(metric: str):
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string, got {type(metric).__name__}.")
    name, _, k = metric.partition("@")
    if name not in _METRICS or (name == "mrr") != (k == ""):
        raise ValueError(f'metric must be "mrr", "hits@k" or "ndcg@k", got {metric!r}.')
    if name == "mrr":
        return mean_reciprocal_rank
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric {metric!r}: k must be a positive integer.")
    return lambda ranks: _METRICS[name](ranks, int(k))


def make_completion_scorer(metric: str = "mrr", *, mode: int | None = None, known="train"):
    """A scorer ``scorer(estimator, X, y=None)`` of filtered completion, for ``GridSearchCV``.

    Parameters
    ----------
    metric : {"mrr", "hits@k", "ndcg@k"}, default="mrr"
        The metric of the filtered ranks (``"hits@10"``, ``"ndcg@5"``, …); higher is better.
    mode : int, default=None
        The mode completed; None: the estimator's ``mode`` (a
        :class:`~skhyperlearn.HyperedgeRanker`'s).
    known : default="train"
        As in :func:`filtered_ranks`; the scored fold's hyperedges are always added.

    Returns
    -------
    callable
        ``scorer(estimator, X, y=None) -> float`` with X the held-out hyperedges' coordinates.
    """
    score = _parse_metric(metric)
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, Integral)):
        raise TypeError(f"mode must be None or an integer, got {mode!r}.")

    def scorer(estimator, X, y=None) -> float:
        m = getattr(estimator, "mode", None) if mode is None else mode
        if m is None:
            raise ValueError("make_completion_scorer(mode=None) needs an estimator with a mode.")
        return score(filtered_ranks(estimator, X, m, known=known))

    return scorer
