"""A hypergraph whose classes only the higher-order relations and the graphs reveal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import sparse
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._validation import check_int
from ..graphs import knn_graph, normalized_laplacian
from ._synthetic import _check_real, _check_shape, _first_distinct

__all__ = ["make_crossed_hypergraph"]

# Rounds of draw-and-deduplicate before giving up on finding enough distinct cells.
_MAX_ROUNDS = 64

_DESCR = """\
Synthetic hypergraph with crossed classes (skhyperlearn.datasets.make_crossed_hypergraph).

Every mode's entities fall into C groups (``labels[k]``); the sample mode's groups are its
classes. A hyperedge joins a sample of class c, entities of groups a_1, …, a_{K-2} in the
modes 1 … K-2 (uniform) and an entity of group (c + a_1 + … + a_{K-2}) mod C in the last mode
(think images × tags × users: each user group gives the tags its own meaning). Every pair of
modes, and every K-1 of them, is independent of the class: the sample × tag and sample × user
matrices (any mode summed out) carry nothing about it; only the whole hyperedge does. A
fraction ``noise`` of the hyperedges is drawn uniformly instead. Each mode's graph is the
symmetric kNN graph of latent positions around its group's centre (``spread`` sets how far the
groups overlap, so how many edges join two groups): informative, not exact.
"""


def _positions(labels: np.ndarray, n_groups: int, spread: float, rng) -> np.ndarray:
    """Latent positions: the group's centre (a simplex vertex, √2 apart) plus noise."""
    dim = max(n_groups, 2)
    return np.eye(n_groups, dim)[labels] + spread * rng.standard_normal((labels.size, dim))


def _draw(labels: list[np.ndarray], members: list, size: int, noise: float, rng) -> np.ndarray:
    """``size`` hyperedges (size, K), drawn with replacement by the crossed rule or uniformly."""
    n_groups = len(members[0])
    sample = rng.randint(0, labels[0].size, size=size)
    free = [rng.randint(0, n_groups, size=size) for _ in range(len(labels) - 2)]
    last = (labels[0][sample] + sum(free, np.zeros(size, dtype=np.int64))) % n_groups
    coords = np.empty((size, len(labels)), dtype=np.int64)
    coords[:, 0] = sample
    for k, group in enumerate([*free, last], start=1):
        for g in range(n_groups):
            rows = np.flatnonzero(group == g)
            coords[rows, k] = rng.choice(members[k][g], size=rows.size)
    uniform = rng.random_sample(size) < noise
    for k, lab in enumerate(labels):
        coords[uniform, k] = rng.randint(0, lab.size, size=int(uniform.sum()))
    return coords


def _distinct_cells(labels, members, shape, n_entries: int, noise: float, rng) -> np.ndarray:
    chosen = np.empty((0, len(shape)), dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        missing = n_entries - chosen.shape[0]
        if missing == 0:
            return chosen
        new = _draw(labels, members, int(1.2 * missing) + 64, noise, rng)
        chosen = _first_distinct(np.vstack([chosen, new]), shape, n_entries)
    raise ValueError(  # pragma: no cover - needs n_entries near the number of allowed cells
        f"n_entries = {n_entries}: not enough distinct hyperedges found; ask for fewer."
    )


@validate_params(
    # Bounds that depend on other parameters (n_communities <= every N_k, n_entries <= the
    # cells) and the refusal of booleans stay in the body, as does the type of shape.
    {
        "shape": "no_validation",
        "n_communities": [Interval(Integral, 2, None, closed="left")],
        "n_entries": [Interval(Integral, 1, None, closed="left"), None],
        "noise": [Interval(Real, 0, 1, closed="both")],
        "spread": [Interval(Real, 0, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "random_state": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def make_crossed_hypergraph(
    shape: Sequence[int] = (300, 30, 30),
    n_communities: int = 3,
    *,
    n_entries: int | None = None,
    noise: float = 0.2,
    spread: float = 0.6,
    n_neighbors: int = 8,
    random_state: int | np.random.RandomState | None = None,
) -> Bunch:
    """Sparse K-th order hypergraph whose sample classes no pair of modes reveals.

    A hyperedge (sample, tag, user) of a sample of class c joins a tag of group a and a user
    of group (c + a) mod C, so the class is in the combination only: summed over any mode,
    the hypergraph says nothing about it (the model is in ``DESCR``). Each mode has a kNN
    graph that is informative but not exact. Built to show what the graphs and the
    higher-order relations each add (``examples/quickstart.py``).

    Parameters
    ----------
    shape : sequence of int, default=(300, 30, 30)
        ``(N_1, …, N_K)``, K >= 3 modes (mode 0 holds the samples), every ``N_k >=
        n_communities``.
    n_communities : int, default=3
        Groups C >= 2 in every mode; the sample mode's groups are the classes.
    n_entries : int, optional
        Distinct stored hyperedges, at most half of the ``prod(shape) / C`` cells that follow
        the rule; default three per sample (``3 · N_1``).
    noise : float, default=0.2
        The fraction in [0, 1] of hyperedges drawn uniformly at random instead.
    spread : float, default=0.6
        Standard deviation of the latent positions around their group's centre (centres are
        √2 apart); the larger, the more kNN edges join two groups.
    n_neighbors : int, default=8
        Neighbours per entity in each mode's kNN graph (capped at ``N_k − 1``).
    random_state : int, RandomState instance or None, default=None
        Seed; the output is deterministic for a fixed seed.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``tensor`` (sparse.COO, binary float64, coalesced); lists of K: symmetric kNN
        ``adjacencies`` and normalized ``laplacians`` (csr_array), int64 ``labels`` (groups;
        ``labels[0]`` are the classes), ``latent_positions``; ``shape``, ``DESCR``.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.

    Examples
    --------
    >>> data = make_crossed_hypergraph(random_state=0)
    >>> data.tensor.shape, data.tensor.nnz
    ((300, 30, 30), 900)
    """
    return _generate(**_checked_params(**locals()))


def _checked_params(shape, n_communities, n_entries, noise, spread, n_neighbors, random_state):
    """``make_crossed_hypergraph``'s checks, in order; returns ``_generate``'s arguments."""
    shape = _check_shape(shape)
    if len(shape) < 3:
        raise ValueError(f"shape must have at least 3 modes, got {len(shape)}.")
    n_groups = check_int(n_communities, "n_communities", 2)
    for k, n in enumerate(shape):
        if n < n_groups:
            raise ValueError(f"shape[{k}] = {n} is below n_communities = {n_groups}.")
    n_entries = 3 * shape[0] if n_entries is None else check_int(n_entries, "n_entries", 1)
    # One cell in C follows the rule; asking for at most half of those keeps the draws cheap.
    if n_entries > math.prod(shape) // (2 * n_groups):
        raise ValueError(
            f"n_entries = {n_entries} exceeds half the {math.prod(shape) // n_groups} cells "
            f"that follow the crossed rule in shape {shape} with {n_groups} communities."
        )
    return dict(
        shape=shape,
        n_groups=n_groups,
        n_entries=n_entries,
        noise=_check_real(noise, "noise", 0.0, 1.0),
        spread=_check_real(spread, "spread", 0.0),
        n_neighbors=check_int(n_neighbors, "n_neighbors", 1),
        rng=check_random_state(random_state),
    )


def _generate(shape, n_groups, n_entries, noise, spread, n_neighbors, rng) -> Bunch:
    """The groups, positions and graphs of every mode, then the hyperedges."""
    labels = [rng.permutation(np.arange(n) % n_groups) for n in shape]
    positions = [_positions(lab, n_groups, spread, rng) for lab in labels]
    adjacencies = [knn_graph(p, min(n_neighbors, p.shape[0] - 1)) for p in positions]
    members = [[np.flatnonzero(lab == g) for g in range(n_groups)] for lab in labels]
    coords = _distinct_cells(labels, members, shape, n_entries, noise, rng)
    tensor = sparse.COO(coords.T, np.ones(n_entries), shape=shape, has_duplicates=False)
    return Bunch(
        tensor=tensor,
        adjacencies=adjacencies,
        laplacians=[normalized_laplacian(a) for a in adjacencies],
        labels=[lab.astype(np.int64) for lab in labels],
        latent_positions=positions,
        shape=shape,
        DESCR=_DESCR,
    )
