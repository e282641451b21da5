"""Synthetic hypergraphs with planted, graph-smooth CP structure (the package's built-in data)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import sparse
from scipy.sparse.linalg import expm_multiply
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._validation import check_int
from ..graphs import knn_graph, normalized_laplacian

__all__ = ["make_hypergraph"]

# Enumerate every cell (instead of drawing and de-duplicating) when this is cheap.
_ENUMERATE_CELLS = 2**21
# Rounds of draw-and-deduplicate before topping up with uniform cells.
_MAX_ROUNDS = 64
# Cells per chunk when the CP value of every cell is computed.
_CHUNK = 2**18
# Spread of an entity's latent position around its community centre (centres are √2 apart).
_SPREAD = 0.25

_DESCR = """\
Synthetic hypergraph with planted structure (skhyperlearn.datasets.make_hypergraph).

Each mode k has N_k entities split into communities (``labels[k]``). Entities get latent
positions around their community centre; ``adjacencies[k]`` is the symmetric kNN graph of those
positions and ``laplacians[k]`` its normalized Laplacian. The planted factor matrix
``factors[k]`` (N_k × rank, non-negative) is a community profile plus per-entity noise,
low-pass filtered by the heat kernel exp(−smoothness · L_k), so it is smooth on the graph.
``tensor`` stores the chosen cells of the CP tensor [[A_1, …, A_K]]: for values="real" the CP
value (plus optional Gaussian noise), for values="binary" the value 1 at cells drawn with
probability proportional to the CP value.
"""


def _check_real(value, name: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}.")
    return float(value)


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise ValueError(f"shape must be a sequence of at least 2 ints, got {shape!r}.")
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 modes, got {len(shape)}.")
    out = []
    for k, n in enumerate(shape):
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 2:
            raise ValueError(f"shape[{k}] must be an integer >= 2, got {n!r}.")
        out.append(int(n))
    return tuple(out)


def _check_communities(n_communities, shape: tuple[int, ...], rank: int) -> list[int]:
    if n_communities is None:
        # one community per component, at least two so labels carry information
        return [min(max(rank, 2), n) for n in shape]
    if isinstance(n_communities, Integral) and not isinstance(n_communities, bool):
        n_communities = [n_communities] * len(shape)
    if isinstance(n_communities, (str, bytes)) or not isinstance(n_communities, Sequence):
        raise ValueError(
            f"n_communities must be an int or a sequence of ints, got {n_communities!r}."
        )
    if len(n_communities) != len(shape):
        raise ValueError(
            f"n_communities must have one entry per mode ({len(shape)}), got {len(n_communities)}."
        )
    out = []
    for k, (c, n) in enumerate(zip(n_communities, shape, strict=True)):
        c = check_int(c, f"n_communities[{k}]", 1)
        if c > n:
            raise ValueError(f"n_communities[{k}] = {c} exceeds shape[{k}] = {n}.")
        out.append(c)
    return out


def _n_entries(n_entries, density, shape: tuple[int, ...], rank: int) -> int:
    n_cells = math.prod(shape)
    if n_entries is not None and density is not None:
        raise ValueError("give at most one of n_entries and density.")
    if density is not None:
        density = _check_real(density, "density", 0.0, 1.0)
        if density == 0.0:
            raise ValueError("density must be in (0, 1], got 0.")
        return max(1, min(n_cells, round(density * n_cells)))
    if n_entries is None:
        # 5 % of the cells, but no more than ~20 entries per parameter of the planted model
        return max(1, min(n_cells, round(0.05 * n_cells), 20 * rank * sum(shape)))
    n_entries = check_int(n_entries, "n_entries", 1)
    if n_entries > n_cells:
        raise ValueError(f"n_entries = {n_entries} exceeds the number of cells {n_cells}.")
    return n_entries


# --------------------------------------------------------------------------------------------
# Planted structure
# --------------------------------------------------------------------------------------------


def _plant_mode(n: int, n_comm: int, rank: int, n_neighbors: int, smoothness: float, rng):
    """Labels, latent positions, kNN adjacency, Laplacian and smooth factor of one mode."""
    labels = rng.permutation(np.arange(n) % n_comm)
    # community centres at the vertices of a simplex (at least 2-D so kNN has room)
    dim = max(n_comm, 2)
    centres = np.eye(n_comm, dim)
    positions = centres[labels] + _SPREAD * rng.standard_normal((n, dim))
    adjacency = knn_graph(positions, min(n_neighbors, n - 1))
    laplacian = normalized_laplacian(adjacency)

    # home[j, r]: component r is community j's own, so communities show in the factors;
    # every community owns a component and every component an owner
    j, r = np.meshgrid(np.arange(n_comm), np.arange(rank), indexing="ij")
    home = ((r % n_comm == j) | (j % rank == r)).astype(float)
    # a community loads mostly on its own components: a weak background keeps the planted CP
    # values contrasted, so CP-weighted hyperedges concentrate inside community blocks
    profile = home + rng.uniform(0.0, 0.15, (n_comm, rank))
    # within a community: a smooth function of the latent position (neighbours in the graph are
    # close in latent space, so it varies slowly along edges) plus rough per-entity noise
    offsets = (positions - centres[labels]) / _SPREAD
    drift = 0.5 + 0.5 * np.tanh(offsets @ rng.standard_normal((dim, rank)) / np.sqrt(dim))
    signal = profile[labels] * (0.5 + drift) + rng.uniform(0.0, 0.2, (n, rank))
    # heat kernel exp(−τL) = e^{−τ} exp(τ D^{-1/2} W D^{-1/2}) is entrywise non-negative
    factor = np.clip(expm_multiply(-smoothness * laplacian, signal), 0.0, None)
    factor /= factor.max()
    return labels, positions, adjacency, laplacian, factor


def _cp_at(factors: list[np.ndarray], coords: np.ndarray) -> np.ndarray:
    """CP values ``Σ_r Π_k A_k[i_k, r]`` at the rows of ``coords`` (n, K)."""
    prod = factors[0][coords[:, 0]].copy()
    for k in range(1, len(factors)):
        prod *= factors[k][coords[:, k]]
    return prod.sum(axis=1)


# --------------------------------------------------------------------------------------------
# Choosing the cells
# --------------------------------------------------------------------------------------------


def _keys(coords: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One comparable key per cell (linear index, or the raw index bytes if that overflows)."""
    if math.prod(shape) < 2**62:
        return np.ravel_multi_index(tuple(coords.T), shape)
    rows = np.ascontiguousarray(coords, dtype=np.int64)
    return rows.view(np.dtype((np.void, 8 * rows.shape[1]))).ravel()


def _first_distinct(coords: np.ndarray, shape: tuple[int, ...], n: int) -> np.ndarray:
    """The first ``n`` distinct cells in draw order (successive sampling without replacement)."""
    _, first = np.unique(_keys(coords, shape), return_index=True)
    first.sort()
    return coords[first[:n]]


def _draw_uniform(shape: tuple[int, ...], size: int, rng) -> np.ndarray:
    return np.column_stack([rng.randint(0, n, size=size) for n in shape]).astype(np.int64)


def _draw_cp(factors: list[np.ndarray], size: int, rng) -> np.ndarray:
    """``size`` cells drawn with probability proportional to their CP value (with replacement).

    Since ``[[A]]_i = Σ_r Π_k A_k[i_k, r]``, draw a component ``r`` with weight
    ``Π_k Σ_i A_k[i, r]``, then each index ``i_k`` independently with weight ``A_k[i_k, r]``.
    """
    sums = np.stack([A.sum(axis=0) for A in factors])  # (K, R)
    weight = sums.prod(axis=0)
    if weight.sum() <= 0:
        return _draw_uniform(tuple(A.shape[0] for A in factors), size, rng)
    comp = rng.choice(weight.size, size=size, p=weight / weight.sum())
    coords = np.empty((size, len(factors)), dtype=np.int64)
    for r in np.flatnonzero(weight > 0):
        rows = np.flatnonzero(comp == r)
        for k, A in enumerate(factors):
            coords[rows, k] = rng.choice(A.shape[0], size=rows.size, p=A[:, r] / sums[k, r])
    return coords


def _draw_mixture(factors, shape, size: int, noise: float, rng) -> np.ndarray:
    """Each draw: uniform cell with probability ``noise``, else proportional to the CP value."""
    uniform = rng.random_sample(size) < noise
    coords = np.empty((size, len(shape)), dtype=np.int64)
    coords[uniform] = _draw_uniform(shape, int(uniform.sum()), rng)
    coords[~uniform] = _draw_cp(factors, int((~uniform).sum()), rng)
    return coords


def _sample_cells(factors, shape, n_entries: int, values: str, noise: float, rng) -> np.ndarray:
    """``n_entries`` distinct cells (n, K): uniform for "real", CP-weighted for "binary"."""
    n_cells = math.prod(shape)
    weighted = values == "binary"
    if n_cells <= _ENUMERATE_CELLS or 4 * n_entries > n_cells:
        if not weighted:
            linear = rng.choice(n_cells, size=n_entries, replace=False)
            return np.column_stack(np.unravel_index(linear, shape)).astype(np.int64)
        # successive sampling over all cells at once: keep the n smallest Exp(1)/p keys
        # (Efraimidis–Spirakis), p = the per-draw mixture of CP-proportional and uniform
        keys = np.empty(n_cells)
        total = 0.0
        for start in range(0, n_cells, _CHUNK):
            stop = min(n_cells, start + _CHUNK)
            idx = np.column_stack(np.unravel_index(np.arange(start, stop), shape))
            keys[start:stop] = _cp_at(factors, idx)
            total += keys[start:stop].sum()
        p = (1 - noise) * keys / total + noise / n_cells if total > 0 else np.full(n_cells, 1.0)
        with np.errstate(divide="ignore"):
            keys = rng.standard_exponential(n_cells) / p
        linear = np.argpartition(keys, n_entries - 1)[:n_entries] if n_entries < n_cells else None
        linear = np.arange(n_cells) if linear is None else np.sort(linear)
        return np.column_stack(np.unravel_index(linear, shape)).astype(np.int64)

    # large tensor, few entries: draw with replacement and keep first occurrences
    drawn = np.empty((0, len(shape)), dtype=np.int64)
    chosen = drawn
    for _ in range(_MAX_ROUNDS):
        missing = n_entries - chosen.shape[0]
        if missing == 0:
            return chosen
        size = int(1.2 * missing) + 64
        if weighted:
            new = _draw_mixture(factors, shape, size, noise, rng)
        else:
            new = _draw_uniform(shape, size, rng)
        drawn = np.vstack([chosen, new])
        chosen = _first_distinct(drawn, shape, n_entries)
    # CP mass too concentrated to find enough distinct cells: top up uniformly
    while chosen.shape[0] < n_entries:  # pragma: no cover - needs extremely peaked factors
        new = _draw_uniform(shape, 2 * (n_entries - chosen.shape[0]) + 64, rng)
        chosen = _first_distinct(np.vstack([chosen, new]), shape, n_entries)
    return chosen


# --------------------------------------------------------------------------------------------
# Public generator
# --------------------------------------------------------------------------------------------


def _checked_params(
    shape,
    rank,
    n_entries,
    density,
    values,
    noise,
    n_neighbors,
    smoothness,
    n_communities,
    random_state,
) -> dict:
    """``make_hypergraph``'s checks, in order, on its ``locals()``; returns ``_generate``'s."""
    shape = _check_shape(shape)
    rank = check_int(rank, "rank", 1)
    n_entries = _n_entries(n_entries, density, shape, rank)
    if values not in ("binary", "real"):
        raise ValueError(f"values must be 'binary' or 'real', got {values!r}.")
    noise = _check_real(noise, "noise", 0.0, 1.0 if values == "binary" else math.inf)
    n_neighbors = check_int(n_neighbors, "n_neighbors", 1)
    smoothness = _check_real(smoothness, "smoothness", 0.0)
    communities = _check_communities(n_communities, shape, rank)
    rng = check_random_state(random_state)
    return dict(
        shape=shape,
        rank=rank,
        n_entries=n_entries,
        values=values,
        noise=noise,
        n_neighbors=n_neighbors,
        smoothness=smoothness,
        communities=communities,
        rng=rng,
    )


def _generate(
    shape, rank, n_entries, values, noise, n_neighbors, smoothness, communities, rng
) -> Bunch:
    """The planted modes, then the cells and their values: the work behind the checks."""
    modes = [
        _plant_mode(n, c, rank, n_neighbors, smoothness, rng)
        for n, c in zip(shape, communities, strict=True)
    ]
    labels, positions, adjacencies, laplacians, factors = (
        list(t) for t in zip(*modes, strict=True)
    )

    coords = _sample_cells(factors, shape, n_entries, values, noise, rng)
    if values == "real":
        data = _cp_at(factors, coords)
        if noise > 0:
            data = data + noise * data.std() * rng.standard_normal(data.size)
    else:
        data = np.ones(coords.shape[0])
    # cells are distinct: let COO only sort them
    tensor = sparse.COO(coords.T, data, shape=shape, has_duplicates=False, sorted=False)
    return Bunch(
        tensor=tensor,
        adjacencies=adjacencies,
        laplacians=laplacians,
        factors=factors,
        labels=[lab.astype(np.int64) for lab in labels],
        latent_positions=positions,
        shape=shape,
        rank=rank,
        DESCR=_DESCR,
    )


@validate_params(
    # Bounds that depend on other parameters (n_entries <= prod(shape), noise <= 1 for binary
    # values, n_communities <= N_k) and the refusal of booleans stay in the body, as does the
    # type of shape (its message says what a shape is).
    {
        "shape": "no_validation",
        "rank": [Interval(Integral, 1, None, closed="left")],
        "n_entries": [Interval(Integral, 1, None, closed="left"), None],
        "density": [Interval(Real, 0, 1, closed="right"), None],
        "values": [StrOptions({"binary", "real"})],
        "noise": [Interval(Real, 0, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "smoothness": [Interval(Real, 0, None, closed="left")],
        "n_communities": [Integral, Sequence, None],
        # check_random_state also takes the np.random module, which "random_state" refuses
        "random_state": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def make_hypergraph(
    shape: Sequence[int] = (60, 50, 40),
    rank: int = 4,
    *,
    n_entries: int | None = None,
    density: float | None = None,
    values: str = "binary",
    noise: float = 0.0,
    n_neighbors: int = 8,
    smoothness: float = 2.0,
    n_communities: int | Sequence[int] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> Bunch:
    """Random sparse K-th order hypergraph with planted, graph-smooth CP factors.

    Each mode's factor is smooth on a kNN graph of its communities; the model is in ``DESCR``.

    Parameters
    ----------
    shape : sequence of int, default=(60, 50, 40)
        ``(N_1, …, N_K)``, K >= 2 modes, every ``N_k >= 2``.
    rank : int, default=4
        Number of planted CP components R >= 1.
    n_entries : int, optional
        Distinct stored cells in ``[1, prod(shape)]``; default 5 % of cells, ≤ ``20·R·sum(shape)``.
    density : float, optional
        Alternative to ``n_entries``: the fraction of cells stored, in (0, 1].
    values : {"binary", "real"}, default="binary"
        ``"real"``: uniform cells store their CP value ``Σ_r Π_k A_k[i_k, r]`` (completion).
        ``"binary"``: cells drawn, without replacement, with probability ∝ CP value store 1.0.
    noise : float, default=0.0
        ``"real"``: Gaussian noise of standard deviation ``noise · std(values)`` is added.
        ``"binary"``: the fraction in [0, 1] of draws made uniformly at random instead.
    n_neighbors : int, default=8
        Neighbours per entity in each mode's kNN graph (capped at ``N_k − 1``).
    smoothness : float, default=2.0
        Heat-kernel time ``τ >= 0`` of the factors' low-pass filter ``exp(−τ L_k)``.
    n_communities : int or sequence of int, optional
        Communities per mode (one int for all), each ``<= N_k``; default ``min(max(rank, 2), N_k)``.
    random_state : int, RandomState instance or None, default=None
        Seed; the output is deterministic for a fixed seed.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``tensor`` (sparse.COO, float64, coalesced); lists of K: symmetric kNN ``adjacencies``
        and normalized ``laplacians`` (csr_array), planted ``factors`` (N_k, rank), int64
        ``labels`` (communities), ``latent_positions`` (N_k, d_k); ``shape``, ``rank``, ``DESCR``.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.

    Examples
    --------
    >>> make_hypergraph((30, 20, 10), rank=3, n_entries=500, random_state=0).tensor.nnz
    500
    """
    return _generate(**_checked_params(**locals()))
