"""Initial factors: random, truncated SVD of the sparse unfoldings, or given by the user.

Also the policy of ``init="auto"`` (:func:`resolve_init`): which start, and whether exact sweeps
polish it before the chosen solver runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from ._problem import Problem, State

# Exact products of dimensions: numpy's int64 products wrap above 2^63 cells.
n_cells = math.prod

__all__ = ["initial_state", "resolve_init", "svd_factors"]

# init="auto" starts from the truncated SVD only while svds stays cheap next to the fit.
_AUTO_SVD_MAX_ENTRIES = 2_000_000
_AUTO_SVD_MAX_ORDER = 4


def _min_unfolding_dim(shape: Sequence[int]) -> int:
    """The smallest dimension of any mode unfolding: svds needs a rank below it."""
    total = n_cells(shape)
    return min(min(n, total // n) for n in shape)


def _unfoldings_indexable(shape: Sequence[int]) -> bool:
    """Whether every unfolding's columns can be numbered in int64 (scipy's largest index)."""
    return all(n_cells(shape) // n <= np.iinfo(np.int64).max for n in shape)


def resolve_init(init, solver: str, shape: Sequence[int], nnz: int, rank: int):
    """What ``init`` means for this fit: ``(start, exact_sweeps)``.

    ``start`` is "svd", "random" or the user's arrays; ``exact_sweeps`` says whether exact
    sweeps from it come first (``init="exact_sweeps"``, and ``"auto"`` for the HyperLearn
    solver). ``"svd"`` under "auto" and "exact_sweeps" falls back to "random" where svds cannot
    produce the rank or would cost more than the fit (above 2·10⁶ stored entries or order 4).
    """
    if not isinstance(init, str):
        return init, False
    can_svd = (
        _unfoldings_indexable(shape)
        and rank < _min_unfolding_dim(shape)
        and nnz <= _AUTO_SVD_MAX_ENTRIES
        and len(shape) <= _AUTO_SVD_MAX_ORDER
    )
    if init == "auto":
        init = "exact_sweeps" if solver == "hyperlearn" else ("svd" if can_svd else "random")
    if init == "exact_sweeps":
        return ("svd" if can_svd else "random"), True
    return init, False


def _unfolding(coords: np.ndarray, values: np.ndarray, shape: Sequence[int], mode: int):
    """The sparse mode-``mode`` unfolding ``X_(k)`` restricted to its non-empty columns.

    Columns without a stored entry change neither the left singular vectors nor the singular
    values, and keeping them would make ``X_(k)ᵀ v`` a dense vector as long as the product of
    the other modes (5·10¹⁰ numbers for a 4th-order Last.fm unfolding): the columns are
    renumbered over the distinct ones present, at most one per stored entry.
    """
    others = [j for j in range(len(shape)) if j != mode]
    if n_cells([shape[j] for j in others]) <= np.iinfo(np.int64).max:
        linear = np.ravel_multi_index(
            tuple(coords[:, j] for j in others), [shape[j] for j in others]
        )
        _, cols = np.unique(linear, return_inverse=True)
    else:  # no linear index fits: distinct rows of the other modes' coordinates instead
        _, cols = np.unique(coords[:, others], axis=0, return_inverse=True)
    cols = cols.ravel()
    n_cols = int(cols.max()) + 1 if cols.size else 0
    return sp.csr_array(
        (values.astype(np.float64), (coords[:, mode], cols)), shape=(shape[mode], n_cols)
    )


# Unfoldings up to this many cells are decomposed densely (exact, and ARPACK dislikes tiny ones).
_DENSE_SVD_CELLS = 1_000_000


def _leading_left_singular(unf, rank: int, random_state: np.random.RandomState):
    """Top ``rank`` left singular vectors and values of a sparse unfolding."""
    n, m = unf.shape
    # With no more non-empty columns than the rank, the dense unfolding is no larger than the
    # factor matrix it yields.
    if n * m <= _DENSE_SVD_CELLS or m <= rank:
        u, s, _ = np.linalg.svd(unf.toarray(), full_matrices=False)
        missing = rank - u.shape[1]
        if missing > 0:  # directions the data does not reach: zero columns, zero values
            u = np.hstack([u, np.zeros((n, missing))])
            s = np.concatenate([s, np.zeros(missing)])
        return u[:, :rank], s[:rank]
    # Eigenvectors of X Xᵀ through products with X and Xᵀ: memory O(nnz + N_k·rank), never the
    # right singular vectors, which for a wide unfolding would dwarf the tensor.
    op = LinearOperator((n, n), matvec=lambda x: unf @ (unf.T @ x), dtype=np.float64)
    vals, vecs = eigsh(op, k=rank, v0=random_state.uniform(-1, 1, n))
    return vecs, np.sqrt(np.clip(vals, 0.0, None))


def svd_factors(
    coords: np.ndarray,
    values: np.ndarray,
    shape: Sequence[int],
    rank: int,
    random_state: np.random.RandomState,
) -> list[np.ndarray]:
    """Leading left singular vectors of each sparse unfolding, scaled by a root of σ."""
    factors = []
    for k in range(len(shape)):
        unf = _unfolding(coords, values, shape, k)
        full = (shape[k], n_cells(shape) // shape[k])
        if rank >= min(full):
            raise ValueError(
                f"rank={rank} cannot be produced by init='svd': the mode-{k} unfolding has shape "
                f"{full} and svds needs rank < {min(full)}. Use init='random' or a "
                "smaller rank."
            )
        u, s = _leading_left_singular(unf, rank, random_state)
        order = np.argsort(s)[::-1]
        u, s = u[:, order], s[order]
        # Sign convention so that the result does not depend on the solver's internals.
        signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(rank)])
        signs[signs == 0] = 1
        factors.append(u * signs * np.sqrt(s) ** (1.0 / max(len(shape) - 1, 1)))
    return factors


def _random_factors(shape, rank, scale, random_state) -> list[np.ndarray]:
    return [random_state.uniform(0.0, 1.0, (n, rank)) * scale for n in shape]


def initial_state(
    problem: Problem,
    init,
    rank: int,
    random_state: np.random.RandomState,
    coords: np.ndarray,
    values: np.ndarray,
) -> State:
    """Factors (and zero biases) to start from, placed on each mode's device."""
    shape = problem.shape
    if isinstance(init, str):
        if init == "svd":
            arrays = svd_factors(coords, values, shape, rank, random_state)
        else:
            # Scale so that [[A]] has roughly the magnitude of the stored values.
            typical = float(np.sqrt(np.mean(values.astype(np.float64) ** 2)))
            scale = (max(typical, np.finfo(np.float64).tiny) / rank) ** (1.0 / len(shape)) * 2.0
            arrays = _random_factors(shape, rank, scale, random_state)
    else:
        arrays = [np.array(a, dtype=np.float64) for a in init]
    factors = problem.place(arrays)
    biases = None
    mean = 0.0
    if problem.bias:
        biases = [
            torch.zeros(n, dtype=problem.dtype, device=dev)
            for n, dev in zip(shape, problem.devices, strict=False)
        ]
        mean = float(values.mean())
    return State(factors, biases, mean)
