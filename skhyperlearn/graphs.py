"""Intra-modality graphs: adjacency → normalized Laplacian, kNN graphs, co-occurrence graphs.

Every function here returns a ``scipy.sparse.csr_array`` of ``float64``; nothing is densified
except a small dense ``adjacency`` handed in by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import sparse
from numpy.typing import ArrayLike
from scipy.sparse import csgraph
from sklearn.neighbors import kneighbors_graph
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._validation import check_coords_in_shape, check_int, refuse_complex

__all__ = [
    "cooccurrence_graph",
    "graph_laplacians",
    "knn_graph",
    "normalized_laplacian",
]

#: Relative tolerance of the symmetry check, ``max|W − Wᵀ| ≤ tol · max|W|``.
SYMMETRY_RTOL = 1e-8


# --------------------------------------------------------------------------------------------
# Laplacian
# --------------------------------------------------------------------------------------------


def _as_adjacency(adjacency, *, copy: bool) -> sp.csr_array:
    """``adjacency`` as float64 CSR, private unless ``copy=False`` and no conversion was needed."""
    if isinstance(adjacency, sparse.SparseArray):
        if adjacency.ndim != 2:
            raise ValueError(f"adjacency must be 2-D, got {adjacency.ndim} dimensions.")
        adjacency = (
            adjacency.tocsr() if hasattr(adjacency, "tocsr") else adjacency.to_scipy_sparse()
        )
    if sp.issparse(adjacency):
        if adjacency.ndim != 2:
            raise ValueError(f"adjacency must be 2-D, got {adjacency.ndim} dimensions.")
        dtype, shape = adjacency.dtype, adjacency.shape
    else:
        if hasattr(adjacency, "__array__") or isinstance(adjacency, (list, tuple)):
            arr = np.asarray(adjacency)
        else:
            raise TypeError(
                "adjacency must be a scipy sparse matrix/array or a dense array, "
                f"got {type(adjacency).__name__}."
            )
        if arr.ndim != 2:
            raise ValueError(f"adjacency must be 2-D, got {arr.ndim} dimensions.")
        dtype, shape = arr.dtype, arr.shape
    refuse_complex(dtype, "adjacency")
    if dtype.kind not in "biuf":
        raise TypeError(f"adjacency must hold real numbers, got dtype {dtype}.")
    if shape[0] != shape[1]:
        raise ValueError(f"adjacency must be square, got shape {shape}.")
    if shape[0] == 0:
        raise ValueError("adjacency is empty (0 nodes).")

    if sp.issparse(adjacency):
        W = sp.csr_array(adjacency, dtype=np.float64)
        parts = [getattr(adjacency, name, None) for name in ("data", "indices", "indptr")]
        owned = not any(
            isinstance(p, np.ndarray) and np.shares_memory(p, q)
            for p in parts
            for q in (W.data, W.indices, W.indptr)
        )
    else:
        W = sp.csr_array(arr.astype(np.float64, copy=False))
        owned = True  # built from a dense array: always new memory
    if not owned and copy:
        W = W.copy()
    return W


def _check_adjacency_values(W: sp.csr_array) -> float:
    """Check finiteness, signs and symmetry of a CSR adjacency; return ``max|W − Wᵀ|``."""
    data = W.data
    if not np.all(np.isfinite(data)):
        raise ValueError("adjacency contains NaN or infinite values.")
    if data.size and data.min() < 0:
        raise ValueError(f"adjacency has negative weights (min {data.min():.3g}).")
    scale = float(data.max()) if data.size else 0.0
    asym = abs(W - W.T)
    gap = float(asym.max()) if asym.nnz else 0.0
    if gap > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"adjacency is not symmetric: max|W - W.T| = {gap:.3g} exceeds "
            f"{SYMMETRY_RTOL:g} × max|W| = {SYMMETRY_RTOL * scale:.3g}."
        )
    return gap


def _rescale_weights(W: sp.csr_array) -> None:
    """Divide W, in place, by the power of two nearest its largest weight.

    The normalized Laplacian does not change when W is scaled, but its degrees overflow for
    weights near 1e308 (the graph silently became the identity) and lose precision for
    subnormal ones; a power of two scales every weight exactly.
    """
    if W.data.size == 0:
        return
    top = float(W.data.max())
    if top > 0:
        W.data = np.ldexp(W.data, -int(np.frexp(top)[1]))


@validate_params(
    # copy is read as a truth value, as before: 0 or None still mean False
    {"adjacency": ["array-like", "sparse matrix"], "copy": "no_validation"},
    prefer_skip_nested_validation=True,
)
def normalized_laplacian(
    adjacency: ArrayLike | sp.sparray | sp.spmatrix | sparse.SparseArray, *, copy: bool = True
) -> sp.csr_array:
    """Symmetric normalized Laplacian ``L = I − D^{-1/2} W D^{-1/2}`` of a weighted graph.

    Parameters
    ----------
    adjacency : {array-like, scipy sparse, sparse.SparseArray} of shape (n_nodes, n_nodes)
        Symmetric adjacency ``W`` with finite, non-negative (bool, int or float) weights.
        Symmetry is checked up to a relative tolerance (``SYMMETRY_RTOL``); a nearly symmetric
        input is replaced by ``(W + Wᵀ)/2`` so the result is exactly symmetric.
    copy : bool, default=True
        If True, ``adjacency`` is never modified. If False and ``adjacency`` already is a
        ``float64`` CSR matrix/array, its buffers may be reused and overwritten to save memory
        (the convention of :func:`scipy.sparse.csgraph.laplacian`); other inputs are converted
        into new memory and never modified.

    Returns
    -------
    laplacian : scipy.sparse.csr_array of shape (n_nodes, n_nodes), dtype float64
        Symmetric positive semi-definite, eigenvalues in ``[0, 2]``.

    Raises
    ------
    TypeError
        If ``adjacency`` is not an array or holds non-real values.
    ValueError
        If ``adjacency`` is not 2-D and square, is empty, has NaN/inf or negative weights, or is
        not symmetric.

    Notes
    -----
    Conventions inherited from :func:`scipy.sparse.csgraph.laplacian` with ``normed=True``:

    - self-loops (the diagonal of ``W``) are ignored;
    - an isolated node (zero degree) gets an all-zero row and column, diagonal included, so its
      term in ``tr(AᵀLA)`` vanishes and the graph leaves that entity unregularised.

    Examples
    --------
    >>> import numpy as np
    >>> normalized_laplacian(np.array([[0.0, 1.0], [1.0, 0.0]])).toarray()
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    W = _as_adjacency(adjacency, copy=copy)
    gap = _check_adjacency_values(W)
    if gap > 0:
        W = sp.csr_array((W + W.T) * 0.5)
    _rescale_weights(W)
    # W is a private copy unless the caller allowed overwriting (copy=False): work in place
    return _symmetric_laplacian(csgraph.laplacian(W, normed=True, copy=False))


def _symmetric_laplacian(L) -> sp.csr_array:
    """csgraph's Laplacian made exactly symmetric, float64 CSR with sorted indices.

    csgraph scales w_ij by d_i^{-1/2} then d_j^{-1/2}: the rounding differs between (i, j) and
    (j, i); averaging with the transpose makes L exactly symmetric for CG and eigensolvers.
    """
    L = sp.csr_array(L, dtype=np.float64)
    L = sp.csr_array((L + L.T) * 0.5)
    L.eliminate_zeros()
    L.sort_indices()
    if not np.all(np.isfinite(L.data)):  # pragma: no cover - guarded by the checks above
        raise FloatingPointError("normalized Laplacian has non-finite entries.")
    return L


@validate_params(
    # the body's message ("a list of adjacency matrices") says more than "a Sequence"; skipping
    # the nested checks keeps each entry's message, prefixed with its position
    {"adjacencies": "no_validation"},
    prefer_skip_nested_validation=True,
)
def graph_laplacians(adjacencies: Sequence) -> list[sp.csr_array | None]:
    """Normalized Laplacian of each adjacency in a list, keeping ``None`` entries as ``None``.

    Parameters
    ----------
    adjacencies : sequence of {scipy sparse, ndarray, None}
        One adjacency per mode; ``None`` for a mode without a graph.

    Returns
    -------
    laplacians : list of {scipy.sparse.csr_array, None}
        ``normalized_laplacian(W)`` for each entry, ``None`` where the entry is ``None``.

    Raises
    ------
    TypeError, ValueError
        As :func:`normalized_laplacian`, with the offending position ``adjacencies[k]`` named.
    """
    if isinstance(adjacencies, (str, bytes)) or not isinstance(adjacencies, Sequence):
        raise TypeError(
            f"adjacencies must be a list of adjacency matrices, got {type(adjacencies).__name__}."
        )
    out: list[sp.csr_array | None] = []
    for k, W in enumerate(adjacencies):
        if W is None:
            out.append(None)
            continue
        try:
            out.append(normalized_laplacian(W))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"adjacencies[{k}]: {exc}") from exc
    return out


# --------------------------------------------------------------------------------------------
# kNN graph
# --------------------------------------------------------------------------------------------


# Metrics whose distances scale with the features (cosine: do not change at all).
_HOMOGENEOUS_METRICS = {"minkowski", "euclidean", "l2", "manhattan", "l1", "cityblock"}
_HOMOGENEOUS_METRICS |= {"chebyshev", "infinity", "cosine"}


def _rescaled_features(X, metric):
    """Features divided by a power of two near their largest magnitude, and that power.

    Neighbours do not change when every feature is scaled, but distances of features near
    1e200 overflow (and near 1e-200 underflow) when squared; a power of two scales exactly.
    Other metrics (callables, Mahalanobis, ...) are left alone, with unit 1.
    """
    if not isinstance(metric, str) or metric not in _HOMOGENEOUS_METRICS:
        return X, 1.0
    values = X.data if sp.issparse(X) else X
    top = float(np.abs(values).max()) if values.size else 0.0
    if top == 0.0:
        return X, 1.0
    exponent = int(np.frexp(top)[1])
    if sp.issparse(X):
        X = X.copy()  # never the caller's buffers
        X.data = np.ldexp(X.data, -exponent)
    else:
        X = np.ldexp(X, -exponent)
    return X, 1.0 if metric == "cosine" else float(np.ldexp(1.0, exponent))


def _gaussian_weights(d: np.ndarray, sigma: float | None, unit: float) -> np.ndarray:
    """Weights ``exp(−d² / (2σ²))`` of kNN distances ``d`` given in units of ``unit``.

    Apart from ``knn_graph`` because the bandwidth has its own rules: the weights depend on
    ``d / sigma`` only, so a given ``sigma`` is brought to the same unit as ``d``.
    """
    if sigma is None:
        positive = d[d > 0]
        sigma = float(np.median(positive)) if positive.size else 1.0
    else:
        sigma = float(sigma) / unit
    # keep far neighbours as (tiny) edges rather than letting exp underflow drop them
    return np.maximum(np.exp(-(d**2) / (2.0 * sigma**2)), np.finfo(np.float64).tiny)


@validate_params(
    {
        "features": ["array-like", "sparse matrix"],
        # the upper bound n_samples - 1 depends on features: checked in the body
        "n_neighbors": [Integral],
        "metric": [str, callable],
        "mode": [StrOptions({"connectivity", "distance"})],
        "sigma": [Interval(Real, 0, None, closed="neither"), None],
    },
    # kneighbors_graph validates the metric's name: its own check must run
    prefer_skip_nested_validation=False,
)
def knn_graph(
    features: ArrayLike | sp.sparray | sp.spmatrix,
    n_neighbors: int = 10,
    *,
    metric: str = "euclidean",
    mode: str = "connectivity",
    sigma: float | None = None,
) -> sp.csr_array:
    """Symmetric k-nearest-neighbour adjacency of the rows of ``features``.

    Parameters
    ----------
    features : {array-like, scipy sparse} of shape (n_samples, n_features)
        One row per entity.
    n_neighbors : int, default=10
        Neighbours per node, ``1 <= n_neighbors < n_samples``.
    metric : str, default="euclidean"
        Any metric accepted by :func:`sklearn.neighbors.kneighbors_graph`.
    mode : {"connectivity", "distance"}, default="connectivity"
        ``"connectivity"`` gives weight 1 to every edge; ``"distance"`` gives the Gaussian weight
        ``exp(−d² / (2σ²))`` of the distance ``d``.
    sigma : float, optional
        Bandwidth of the Gaussian weights (``mode="distance"`` only). Default: the median of the
        positive kNN distances.

    Returns
    -------
    adjacency : scipy.sparse.csr_array of shape (n_samples, n_samples), dtype float64
        ``max(W, Wᵀ)`` of the directed kNN graph ``W``: symmetric, no self-loops, every node has
        at least ``n_neighbors`` neighbours.
    """
    X = check_array(features, accept_sparse="csr", dtype=np.float64, input_name="features")
    n_samples = X.shape[0]
    if n_samples < 2:
        raise ValueError(f"features must have at least 2 samples, got {n_samples}.")
    n_neighbors = check_int(n_neighbors, "n_neighbors", 1, n_samples - 1)
    if mode not in ("connectivity", "distance"):
        raise ValueError(f"mode must be 'connectivity' or 'distance', got {mode!r}.")
    if sigma is not None:
        if mode != "distance":
            raise ValueError("sigma is only used with mode='distance'.")
        if not isinstance(sigma, Real) or not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}.")

    X, unit = _rescaled_features(X, metric)
    G = kneighbors_graph(X, n_neighbors, mode=mode, metric=metric)
    G = sp.csr_array(G, dtype=np.float64)
    if mode == "distance":
        G.data = _gaussian_weights(G.data, sigma, unit)
    else:
        G.data[:] = 1.0
    W = G.maximum(G.T).tocsr()
    W.setdiag(0.0)
    W.eliminate_zeros()
    W.sort_indices()
    return sp.csr_array(W)


# --------------------------------------------------------------------------------------------
# Co-occurrence graph
# --------------------------------------------------------------------------------------------


def _check_stored_values(data: np.ndarray) -> None:
    """Real, finite stored values: a NaN is not an absent entry, nor a present one."""
    refuse_complex(data.dtype, "tensor")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError("tensor contains NaN or infinity among its stored values.")


def _tensor_coords(tensor) -> tuple[np.ndarray, tuple[int, ...]]:
    """Coordinates (K, nnz) of the non-zero stored entries and the shape of ``tensor``."""
    if isinstance(tensor, sparse.SparseArray):
        coo = tensor if isinstance(tensor, sparse.COO) else tensor.asformat("coo")
        keep = coo.data != coo.fill_value
        if coo.fill_value != 0:
            raise ValueError(f"tensor must have fill value 0, got {coo.fill_value!r}.")
        _check_stored_values(coo.data)
        check_coords_in_shape(coo.coords, coo.shape, "tensor")
        return np.asarray(coo.coords)[:, keep], tuple(int(s) for s in coo.shape)
    if sp.issparse(tensor):
        if tensor.ndim != 2:
            raise ValueError(f"tensor must be 2-D when scipy sparse, got {tensor.ndim} dimensions.")
        m = sp.coo_array(tensor)
        _check_stored_values(m.data)
        check_coords_in_shape(np.stack([m.row, m.col]), m.shape, "tensor")
        keep = m.data != 0
        coords = np.vstack([m.row[keep], m.col[keep]]).astype(np.int64)
        return coords, tuple(int(s) for s in m.shape)
    raise TypeError(
        "tensor must be a sparse.COO tensor or a scipy sparse matrix, "
        f"got {type(tensor).__name__}; dense tensors are not densified here on purpose."
    )


def _normalize_mode(m, order: int, name: str) -> int:
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, Integral):
        raise TypeError(f"{name} must be an integer mode index, got {m!r}.")
    m = check_int(m, name)
    if not -order <= m < order:
        raise ValueError(f"{name} must be in [{-order}, {order - 1}] for an order-{order} tensor.")
    return int(m) % order


def _context_ids(coords: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Dense ids ``0..n_contexts-1`` of the context tuples (rows of ``coords``)."""
    if float(np.prod([float(s) for s in shape])) < 2.0**62:
        keys = np.ravel_multi_index(tuple(coords), shape)
    else:  # linear index would overflow int64: compare the index tuples as raw bytes
        rows = np.ascontiguousarray(coords.T.astype(np.int64))
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, inverse = np.unique(keys, return_inverse=True)
    return inverse.ravel()


def _top_k_per_row(W: sp.csr_array, k: int) -> sp.csr_array:
    """Keep the ``k`` largest weights of each row (ties: smaller column index first)."""
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    order = np.lexsort((W.indices, -W.data, rows))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - W.indptr[rows[order]]
    keep = rank < k
    return sp.csr_array(
        (W.data[keep], (rows[keep], W.indices[keep])), shape=W.shape, dtype=np.float64
    )


def _check_cooccurrence(tensor, mode, other_modes, n_neighbors, normalize):
    """``cooccurrence_graph``'s checks in their order: coordinates, shape, modes, n_neighbors."""
    coords, shape = _tensor_coords(tensor)
    order = len(shape)
    if order < 2:
        raise ValueError(f"tensor must have at least 2 modes, got {order}.")
    mode = _normalize_mode(mode, order, "mode")
    others = _context_modes(other_modes, mode, order)
    if n_neighbors is not None:
        n_neighbors = check_int(n_neighbors, "n_neighbors", 1)
    if normalize not in (None, "cosine", "jaccard"):
        raise ValueError(f"normalize must be None, 'cosine' or 'jaccard', got {normalize!r}.")
    return coords, shape, mode, others, n_neighbors


def _context_modes(other_modes, mode: int, order: int) -> list[int]:
    """The context modes, ``other_modes`` checked against ``mode`` (default: all the others)."""
    if other_modes is None:
        return [m for m in range(order) if m != mode]
    if isinstance(other_modes, (str, bytes)) or not isinstance(other_modes, Sequence):
        raise TypeError(f"other_modes must be a sequence of ints, got {other_modes!r}.")
    others = [_normalize_mode(m, order, "other_modes") for m in other_modes]
    if not others:
        raise ValueError("other_modes must name at least one mode.")
    if mode in others:
        raise ValueError(f"other_modes must not contain mode {mode}.")
    if len(set(others)) != len(others):
        raise ValueError(f"other_modes has repeated modes: {list(other_modes)}.")
    return others


def _shared_contexts(coords: np.ndarray, shape, mode: int, others: list[int]):
    """``B Bᵀ`` less its diagonal ``|C_i|`` (returned too: the normalizations need it).

    ``B`` is the binary incidence of ``mode``'s entities (rows) and the context tuples of
    ``others`` (columns), built from the stored entries ``coords`` (K, nnz) only.
    """
    n_nodes = shape[mode]
    contexts = _context_ids(coords[others], tuple(shape[m] for m in others))
    n_contexts = int(contexts.max()) + 1
    B = sp.csr_array(
        (np.ones(contexts.size), (coords[mode], contexts)), shape=(n_nodes, n_contexts)
    )
    B.sum_duplicates()
    B.data[:] = 1.0  # an entity meets a context once, however many entries repeat it

    W = sp.csr_array(B @ B.T)
    sizes = W.diagonal()  # |C_i|
    W.setdiag(0.0)
    W.eliminate_zeros()
    return W, sizes


def _normalize_counts(W: sp.csr_array, sizes: np.ndarray, normalize: str) -> None:
    """Shared-context counts of ``W`` divided in place by the cosine or Jaccard denominator."""
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    cols = W.indices
    if normalize == "cosine":
        W.data = W.data / np.sqrt(sizes[rows] * sizes[cols])
    else:
        W.data = W.data / (sizes[rows] + sizes[cols] - W.data)


@validate_params(
    {
        # the body names the accepted types and why a dense array is refused
        "tensor": "no_validation",
        # the range of a mode depends on the tensor's order: checked in the body
        "mode": [Integral],
        "other_modes": [Sequence, None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), None],
        "normalize": [StrOptions({"cosine", "jaccard"}), None],
    },
    prefer_skip_nested_validation=True,
)
def cooccurrence_graph(
    tensor: sparse.SparseArray | sp.sparray | sp.spmatrix,
    mode: int,
    *,
    other_modes: Sequence[int] | None = None,
    n_neighbors: int | None = None,
    normalize: str | None = None,
) -> sp.csr_array:
    """Adjacency of one mode's entities from their shared contexts in a sparse tensor.

    A *context* of a stored non-zero entry is the tuple of its indices in ``other_modes``. Two
    entities of ``mode`` are linked with weight the number of distinct contexts they share:
    with the binary incidence matrix ``B`` (entities × contexts), ``W = B Bᵀ`` without its
    diagonal. Only the stored entries are touched; the tensor is never densified.

    Parameters
    ----------
    tensor : sparse.COO of order K >= 2, or scipy sparse 2-D matrix/array
        The hypergraph tensor; a scipy matrix is the order-2 case (rows are mode 0). Entries
        stored with value 0 are ignored.
    mode : int
        The mode whose entities become the graph's nodes (negative values count from the end).
    other_modes : sequence of int, optional
        Modes that define a context. Default: every mode except ``mode``.
    n_neighbors : int, optional
        If given, keep only the ``n_neighbors`` heaviest edges of each node, then symmetrise
        with ``max(W, Wᵀ)`` (so a node may end up with more).
    normalize : {None, "cosine", "jaccard"}, default=None
        ``None``: raw counts ``|C_i ∩ C_j|``. ``"cosine"``: ``|C_i ∩ C_j| / sqrt(|C_i| |C_j|)``.
        ``"jaccard"``: ``|C_i ∩ C_j| / |C_i ∪ C_j|``. ``C_i`` is the context set of entity ``i``.

    Returns
    -------
    adjacency : scipy.sparse.csr_array of shape (N_mode, N_mode), dtype float64
        Symmetric, non-negative, zero diagonal.

    Notes
    -----
    ``B Bᵀ`` has one non-zero per pair of entities sharing a context: a context shared by ``m``
    entities adds ``m²`` entries, so very popular contexts make the product dense-ish. Restrict
    ``other_modes`` or drop such contexts beforehand when that is a concern.
    """
    coords, shape, mode, others, n_neighbors = _check_cooccurrence(
        tensor, mode, other_modes, n_neighbors, normalize
    )
    n_nodes = shape[mode]
    if coords.shape[1] == 0:
        return sp.csr_array((n_nodes, n_nodes), dtype=np.float64)
    W, sizes = _shared_contexts(coords, shape, mode, others)
    if normalize is not None:
        _normalize_counts(W, sizes, normalize)
    if n_neighbors is not None:
        W = _top_k_per_row(W, n_neighbors)
        W = sp.csr_array(W.maximum(W.T))
    W.sort_indices()
    return sp.csr_array(W, dtype=np.float64)
