"""Completion of partial hyperedges: scores of every entity of one mode, top k, filtering.

A query is a hyperedge with one member missing: its coordinates on every mode but ``mode``.
Its score against entity j of ``mode`` is the fitted model's value at the completed cell, for
all j at once: ``(⊛_{i≠mode} A_i[q_i]) A_modeᵀ`` plus the mean and biases where the model has
them. :func:`score_block` is the one place that turns a fitted model into such scores; every
ranking entry point (``score_mode``, ``recommend``, the metrics) goes through it, so a model
term added later is added there once.

A model fitted with ``projection_weight=w > 0`` (the sample mode's pairwise projections as data
terms) also predicts each pair (sample, mode-k entity) by ``⟨A_s[i], A_k[t]⟩``; its value at a
cell is then ``(1 − w)·CP + w/(K − 1)·Σ_{k≠s} ⟨A_s[e_s], A_k[e_k]⟩`` (PITF's pairwise score at
``w = 1``, the CP model's at ``w = 0``).

Queries are scored in chunks whose score block has a bounded size, so memory is
O(chunk × N_mode) whatever the number of queries; the dense tensor is never formed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sparse

__all__ = [
    "KnownHyperedges",
    "ScoringModel",
    "check_mode",
    "check_queries",
    "iter_scores",
    "score_block",
    "score_mode",
    "similar",
    "top_k",
]

#: Bytes of one chunk's score block (n_chunk × N_mode floats).
DEFAULT_SCORE_BYTES = 2**26


@dataclass(frozen=True)
class ScoringModel:
    """What the fitted model's value at a cell depends on: factors, biases and mean."""

    factors: list[np.ndarray]
    biases: list[np.ndarray] | None = None
    mean: float = 0.0
    #: ``(w, sample_mode)`` of a model with pairwise projection terms (None: CP only).
    pairwise: tuple[float, int] | None = None

    @classmethod
    def from_estimator(cls, estimator) -> ScoringModel:
        """The fitted terms of a :class:`~skhyperlearn.HyperLearnDecomposition`."""
        loss = getattr(estimator, "_loss_fit", None)
        pairwise = None
        if getattr(loss, "coupled", False) and len(estimator.factors_) > 2:
            pairwise = (float(loss.projection_weight), int(loss.sample_mode))
        factors, biases = list(estimator.factors_), estimator.biases_
        return cls(factors, biases, float(estimator.mean_), pairwise)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.shape[0] for a in self.factors)

    def with_rows(self, rows: dict | None) -> ScoringModel:
        """This model with mode j's entities replaced by ``rows[j]`` (factors, or (factors,
        biases)), e.g. entities folded in by ``fold_in``; checked against the model."""
        if not rows:
            return self
        factors = list(self.factors)
        biases = None if self.biases is None else list(self.biases)
        for j, given in rows.items():
            j = check_mode(j, len(factors), "rows")
            a, b = given if isinstance(given, tuple) else (given, None)
            a = np.asarray(a)
            rank = factors[j].shape[1]
            if a.ndim != 2 or a.shape[1] != rank or a.dtype.kind != "f":
                raise ValueError(
                    f"rows[{j}] must be a float array of shape (n, {rank}), got "
                    f"{a.dtype} {a.shape}."
                )
            factors[j] = a
            if biases is not None:
                if b is None or np.shape(b) != (a.shape[0],):
                    raise ValueError(
                        f"rows[{j}]: the model has biases, so give (factors, biases) with "
                        f"biases of shape ({a.shape[0]},), e.g. fold_in(..., return_bias=True)."
                    )
                biases[j] = np.asarray(b)
        return ScoringModel(factors, biases, self.mean, self.pairwise)


def check_mode(mode, order: int, name: str = "mode") -> int:
    """``mode`` as an int in [0, order), negative values counting from the end."""
    if isinstance(mode, bool) or not isinstance(mode, int | np.integer):
        raise TypeError(f"{name} must be an integer mode, got {type(mode).__name__}.")
    if not -order <= mode < order:
        raise ValueError(f"{name}={mode} is out of range for a model of order {order}.")
    return int(mode) % order


def check_queries(queries, shape, mode: int | None, name: str = "queries") -> np.ndarray:
    """Queries as an int64 (n, K) array, every column but ``mode`` (None: every column)
    inside ``shape``."""
    q = np.asarray(queries)
    order = len(shape)
    if q.ndim == 1 and q.shape[0] == order:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != order:
        raise ValueError(f"{name} must have shape (n, {order}), got {q.shape}.")
    if q.dtype.kind not in "iu":
        if q.dtype.kind != "f" or (q.size and not np.all(np.mod(q, 1) == 0)):
            raise TypeError(f"{name} must hold integer coordinates, got dtype {q.dtype}.")
    q = q.astype(np.int64)
    others = [j for j in range(order) if j != mode]
    for j in others:
        col = q[:, j]
        if col.size and (col.min() < 0 or col.max() >= shape[j]):
            raise ValueError(
                f"{name}[:, {j}] holds indices outside [0, {shape[j]}) (mode {j}'s entities)."
            )
    return q


def _partial(model: ScoringModel, queries: np.ndarray, mode: int):
    """Each query's Hadamard row of the other modes and its offset (mean + their biases)."""
    h = None
    for j, a in enumerate(model.factors):
        if j != mode:
            rows = a[queries[:, j]]
            h = rows if h is None else h * rows
    offset = np.full(queries.shape[0], model.mean, dtype=h.dtype)
    if model.biases is not None:
        for j, b in enumerate(model.biases):
            if j != mode:
                offset = offset + b[queries[:, j]]
    return h, offset


def score_block(model: ScoringModel, queries: np.ndarray, mode: int) -> np.ndarray:
    """The model's value at every completion of each query: shape (n, N_mode).

    The one scoring rule: the CP term, plus the global mean and every mode's bias when the
    model has them. ``queries`` are checked (int64) coordinates; column ``mode`` is ignored.
    """
    h, offset = _partial(model, queries, mode)
    scores = h @ model.factors[mode].T
    if model.pairwise is not None:
        _add_pairwise(scores, model, queries, mode)
    scores += offset[:, None]
    if model.biases is not None:
        scores += model.biases[mode][None, :]
    return scores


def _add_pairwise(scores: np.ndarray, model: ScoringModel, queries: np.ndarray, mode: int):
    """``scores ← (1 − w)·scores + w/(K − 1)·Σ_k ⟨A_s[q_s], A_k[q_k]⟩`` (see the module doc),
    in place; for a query the pairs without ``mode`` are one number each."""
    w, s = model.pairwise
    order = len(model.factors)
    share = w / (order - 1)
    scores *= 1.0 - w
    if mode == s:
        for k in range(order):
            if k != s:
                scores += share * (model.factors[k][queries[:, k]] @ model.factors[s].T)
        return
    sample = model.factors[s][queries[:, s]]
    scores += share * (sample @ model.factors[mode].T)
    for k in range(order):
        if k not in (s, mode):
            pair = np.einsum("nr,nr->n", sample, model.factors[k][queries[:, k]])
            scores += share * pair[:, None]


def chunk_rows(n_entities: int, chunk_size: int | None) -> int:
    """Queries per chunk: given, or so that one score block stays near DEFAULT_SCORE_BYTES."""
    if chunk_size is not None:
        return chunk_size
    return max(1, DEFAULT_SCORE_BYTES // (8 * max(n_entities, 1)))


def iter_scores(
    model: ScoringModel, queries: np.ndarray, mode: int, chunk_size: int | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, scores)`` per chunk of queries: the positions and their score block."""
    step = chunk_rows(model.shape[mode], chunk_size)
    for start in range(0, queries.shape[0], step):
        rows = slice(start, min(start + step, queries.shape[0]))
        yield rows, score_block(model, queries[rows], mode)


def score_mode(model: ScoringModel, queries, mode: int, chunk_size=None) -> np.ndarray:
    """Scores of every entity of ``mode`` for each query, shape (n_queries, N_mode)."""
    dtype = model.factors[mode].dtype
    out = np.empty((queries.shape[0], model.shape[mode]), dtype=dtype)
    for rows, block in iter_scores(model, queries, mode, chunk_size):
        out[rows] = block
    return out


def _linear_keys(other: np.ndarray, dims: list[int]) -> np.ndarray:
    """One int64 key per row of the other modes' coordinates (their linear index)."""
    if not dims:
        return np.zeros(len(other), np.int64)
    return np.ravel_multi_index(tuple(other.T), dims).astype(np.int64)


class KnownHyperedges:
    """Known hyperedges grouped by their coordinates off ``mode``, for exact filtering.

    ``pairs(queries)`` gives, for each query, the entities of ``mode`` that complete it into a
    known hyperedge, as (query position, entity) pairs. The known hyperedges are sorted once,
    so each chunk of queries costs a binary search.
    """

    def __init__(self, coords: np.ndarray, shape, mode: int) -> None:
        self.mode = mode
        self._others = [j for j in range(len(shape)) if j != mode]
        self._dims = [int(shape[j]) for j in self._others]
        coords = np.asarray(coords, dtype=np.int64)
        # Too many cells for an int64 linear index: number the distinct rows instead.
        self._linear = float(np.prod(np.array(self._dims, dtype=float))) < 2.0**62
        if self._linear:
            keys = _linear_keys(coords[:, self._others], self._dims)
        else:
            self._rows, keys = np.unique(coords[:, self._others], axis=0, return_inverse=True)
            keys = keys.reshape(-1).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._ids = coords[order, mode]

    def _query_keys(self, queries: np.ndarray) -> np.ndarray:
        other = queries[:, self._others]
        if self._linear:
            return _linear_keys(other, self._dims)
        # Rows never seen among the known hyperedges get key -1, which matches nothing.
        pos = np.searchsorted(self._view(self._rows), self._view(other))
        pos = np.minimum(pos, len(self._rows) - 1)
        found = (self._rows[pos] == other).all(1) if len(self._rows) else np.zeros(len(other), bool)
        return np.where(found, pos, -1)

    @staticmethod
    def _view(rows: np.ndarray) -> np.ndarray:
        """Rows as one comparable (lexicographic, non-negative ints) structured scalar each."""
        rows = np.ascontiguousarray(rows, dtype=">i8")
        return rows.view([("", ">i8")] * rows.shape[1]).reshape(-1)

    def pairs(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        query_keys = self._query_keys(queries)
        lo = np.searchsorted(self._keys, query_keys, side="left")
        hi = np.searchsorted(self._keys, query_keys, side="right")
        counts = hi - lo
        rows = np.repeat(np.arange(len(queries)), counts)
        # Positions lo..hi-1 of every query, concatenated without a Python loop.
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        return rows, self._ids[starts + np.arange(counts.sum())]


def known_coords(known, shape, name: str = "exclude") -> np.ndarray:
    """Coordinates (m, K) of known hyperedges from an array of coordinates or a COO tensor."""
    if isinstance(known, sparse.SparseArray):
        if tuple(known.shape) != tuple(shape):
            raise ValueError(f"{name} has shape {known.shape}, expected {tuple(shape)}.")
        return np.asarray(known.coords.T, dtype=np.int64)
    coords = np.asarray(known)
    if coords.size == 0:
        return np.zeros((0, len(shape)), np.int64)
    return check_queries(coords, shape, None, name)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and scores of the k best columns of each row, best first (-1 / -inf past the
    candidates left after filtering)."""
    k_eff = min(k, scores.shape[1])
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1)
    best = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(best) & (best < 0)] = -1
    return ids, best


def recommend(
    model: ScoringModel,
    queries: np.ndarray,
    mode: int,
    k: int,
    known: KnownHyperedges | None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k entities of ``mode`` per query, known completions excluded."""
    n = queries.shape[0]
    ids = np.empty((n, k), dtype=np.int64)
    best = np.empty((n, k), dtype=model.factors[mode].dtype)
    for rows, block in iter_scores(model, queries, mode, chunk_size):
        if known is not None:
            r, c = known.pairs(queries[rows])
            block[r, c] = -np.inf
        ids[rows], best[rows] = top_k(block, k)
    return ids, best


def similar(
    factors: np.ndarray, ids: np.ndarray, k: int, chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``factors`` with the highest cosine to each row ``ids`` (itself left out)."""
    norms = np.linalg.norm(factors, axis=1)
    unit = factors / np.where(norms > 0, norms, 1.0)[:, None]
    n = ids.shape[0]
    out_ids = np.empty((n, k), dtype=np.int64)
    out = np.empty((n, k), dtype=factors.dtype)
    step = chunk_rows(factors.shape[0], chunk_size)
    for start in range(0, n, step):
        chunk = ids[start : start + step]
        block = unit[chunk] @ unit.T
        block[np.arange(len(chunk)), chunk] = -np.inf
        out_ids[start : start + step], out[start : start + step] = top_k(block, k)
    return out_ids, out


# ---------------------------------------------------------------- the estimator's entry points
def _check_chunk(chunk_size) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise TypeError(f"chunk_size must be None or an integer, got {chunk_size!r}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    return int(chunk_size)


def _check_k(k, n: int, mode: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an integer, got {k!r}.")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be in [1, {n}] (mode {mode} has {n} entities).")
    return int(k)


def fitted_hyperedges(estimator) -> np.ndarray:
    """The coordinates of the hyperedges ``estimator`` was fitted on."""
    coords = getattr(estimator, "_fit_hyperedges", None)
    if coords is None and getattr(estimator, "_sharded", False):
        raise ValueError(
            f'exclude="train" needs the fitted hyperedges, but {type(estimator).__name__} was '
            "fitted with its entries sharded over the ranks (schedule="
            f"{estimator.schedule!r}): each rank held only its share, so none keeps them; "
            "pass exclude= the known hyperedges' coordinates (or None)."
        )
    if coords is None:
        raise ValueError(
            'exclude="train" needs the fitted hyperedges, which this estimator does not hold '
            "(fitted by an older version); refit it, or pass exclude=None or the known "
            "hyperedges' coordinates."
        )
    return coords


def prepare(estimator, queries, mode, rows=None, chunk_size=None):
    """The fitted model (``rows`` substituted), checked queries, mode and chunk size."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    if rows is not None and not isinstance(rows, dict):
        raise TypeError(
            f"rows must be None or a dict {{mode: factors}}, got {type(rows).__name__}."
        )
    model = ScoringModel.from_estimator(estimator).with_rows(rows)
    mode = check_mode(mode, len(model.factors))
    chunk = _check_chunk(chunk_size)
    return model, check_queries(queries, model.shape, mode), mode, chunk


def resolve_exclude(estimator, exclude, model: ScoringModel, mode: int, rows):
    """The known hyperedges to filter out (None for none), from ``exclude``."""
    if exclude is None:
        return None
    if isinstance(exclude, str):
        if exclude != "train":
            raise ValueError(f'exclude must be "train", None or coordinates, got {exclude!r}.')
        if rows:
            raise ValueError(
                'exclude="train" names the fitted entities, but rows= replaces some: pass the '
                "new entities' known hyperedges (e.g. the X given to fold_in) or None."
            )
        return KnownHyperedges(fitted_hyperedges(estimator), model.shape, mode)
    return KnownHyperedges(known_coords(exclude, model.shape), model.shape, mode)


def estimator_recommend(estimator, queries, mode, k, exclude, rows, chunk_size):
    """``HyperLearnDecomposition.recommend``: every check before any scoring."""
    model, q, mode, chunk = prepare(estimator, queries, mode, rows, chunk_size)
    k = _check_k(k, model.shape[mode], mode)
    known = resolve_exclude(estimator, exclude, model, mode, rows)
    return recommend(model, q, mode, k, known, chunk)


def estimator_similar(estimator, mode, ids, k, chunk_size):
    """``HyperLearnDecomposition.similar``: every check before any scoring."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    mode = check_mode(mode, len(estimator.factors_))
    factors = estimator.factors_[mode]
    n = factors.shape[0]
    ids = np.asarray(ids)
    scalar = ids.ndim == 0
    ids = ids.reshape(-1)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must hold integer entity ids, got dtype {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"ids must be in [0, {n}) (mode {mode}'s entities).")
    if n < 2:
        raise ValueError(f"mode {mode} has {n} entity: nothing to compare it with.")
    k = _check_k(k, n - 1, mode)
    out_ids, out = similar(factors, ids.astype(np.int64), k, _check_chunk(chunk_size))
    return (out_ids[0], out[0]) if scalar else (out_ids, out)
