"""A sparse hypergraph tensor travelling together with one graph per mode.

:class:`Hypergraph` bundles the K-th order adjacency tensor of a multimodal collection with the
intra-mode graphs (one per modality, or ``None``) and the original ids of the entities. It is the
object to hand to scikit-learn's cross-validation: ``GridSearchCV`` and friends index their ``X``
along the first axis (``X[idx, ...]``), and a :class:`Hypergraph` answers that by slicing the
tensor *and* the sample mode's graph together, so that a training fold never sees the graph of
entities it does not hold.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import sparse

from ._graph_origin import new_origin
from ._validation import check_coords_in_shape, check_int, check_laplacians, refuse_complex
from .graphs import normalized_laplacian

__all__ = ["Hypergraph"]

_GRAPH_KINDS = ("laplacian", "adjacency")


class Hypergraph:
    """Sparse K-th order tensor with one graph per mode and a sample mode.

    Parameters
    ----------
    tensor : sparse.COO, sparse.SparseArray, scipy sparse matrix or ndarray
        The hypergraph's adjacency tensor of shape ``(N_1, ..., N_K)``, ``K >= 2``. Anything that is
        not a ``sparse.COO`` is converted to one; the fill value must be 0.
    graphs : list of (scipy sparse matrix, pydata sparse, ndarray or None), optional
        One square ``(N_k, N_k)`` matrix per mode, ``None`` for a mode without a graph, in the index
        order of the tensor. ``None`` (the default) means no graph on any mode. Stored as CSR
        arrays: float32 ones stay float32, the others become float64. Complex ones are refused.
    graph_kind : {"laplacian", "adjacency"}, default="laplacian"
        What ``graphs`` hold. Adjacencies are kept as given and their normalized Laplacians
        ``I - D^{-1/2} W D^{-1/2}`` are derived on demand (:attr:`laplacians`).
    sample_mode : int, default=0
        The mode whose entities are the samples: ``len(H)`` counts them and ``H[idx]`` selects them.
    ids : list of (array-like or None), optional
        Per mode, the original id of each index (``ids[k][i]`` is the id of entity ``i`` of mode
        ``k``); ``None`` for a mode without ids.

    Attributes
    ----------
    tensor : sparse.COO
    graphs : list of (scipy.sparse.csr_array or None)
    graph_kind : str
    sample_mode : int
    ids : list of (ndarray or None)

    Notes
    -----
    **Slicing.** ``H[idx]`` (and ``H[idx, ...]``, which is how scikit-learn's ``_safe_indexing``
    asks) takes the entities ``idx`` of the *sample mode*, whatever its position in the tensor:
    scikit-learn always indexes the first axis, so for a :class:`Hypergraph` the first axis *means*
    the sample mode. ``idx`` may be an integer array (repeats allowed, as in numpy fancy indexing),
    a boolean mask, a slice or a single integer (which keeps the mode, with one entity). The result
    is a new :class:`Hypergraph` whose sample-mode entities are renumbered ``0..len(idx)-1`` in the
    order of ``idx``; the other modes, their graphs and ids are unchanged.

    The sample mode's graph becomes the sub-graph induced by ``idx``. With
    ``graph_kind="adjacency"`` the adjacency is sliced (``W[idx][:, idx]``) and the Laplacian is
    recomputed from it, so it is again a normalized Laplacian, with the sub-graph's own degrees.
    With ``graph_kind="laplacian"`` only ``L[idx][:, idx]`` can be formed: a principal sub-matrix of
    the original Laplacian (still symmetric positive semi-definite, so still a valid smoothness
    penalty, but its degrees are those of the whole graph). Give adjacencies to cross-validate.

    **Slices remember their place.** Every slice keeps, per mode with a graph, the positions of
    its entities in the graph this Hypergraph was built with (shared, never copied). An
    estimator fitted on one slice folds another slice of the same Hypergraph in with the new
    entities' edges to the fitted ones (``transform``, ``fold_in``; see the user guide's graphs
    page). ``marginalize_modes`` keeps the places of the modes it keeps.

    **Sample mode other than 0.** scikit-learn counts samples as ``X.shape[0]``
    (``_num_samples``), while ``len(H)`` counts the sample mode. The two agree only when
    ``sample_mode == 0``; to cross-validate over another mode, put that mode first in the tensor.
    """

    def __init__(
        self,
        tensor: Any,
        graphs: Sequence[Any] | None = None,
        *,
        graph_kind: str = "laplacian",
        sample_mode: int = 0,
        ids: Sequence[Any] | None = None,
    ) -> None:
        self._tensor = _check_tensor(tensor)
        shape = self._tensor.shape
        if graph_kind not in _GRAPH_KINDS:
            raise ValueError(f"graph_kind must be one of {_GRAPH_KINDS}, got {graph_kind!r}.")
        self._graph_kind = graph_kind
        self._graphs = _check_graphs(graphs, shape)
        if graph_kind == "laplacian":
            # The same checks the estimator applies (square, symmetric, signs, finite).
            check_laplacians(self._graphs, shape, "graphs")
        self._sample_mode = _check_mode(sample_mode, len(shape), "sample_mode")
        self._ids = _check_ids(ids, shape)
        # Where each slice's entities sit in these graphs: a fold-in of a slice then sees its
        # edges to the entities another slice was fitted on (see _graph_origin).
        self._origins = [None if g is None else new_origin(g, graph_kind) for g in self._graphs]
        # Normalized Laplacians of adjacency graphs by mode; after slicing, the sliced mode's
        # entry is dropped and recomputed on first use.
        self._laplacian_cache: dict[int, sp.csr_array] = {}
        if graph_kind == "adjacency":
            # Derive the Laplacians now so that a bad adjacency fails here, naming its mode.
            for k, w in enumerate(self._graphs):
                if w is None:
                    continue
                try:
                    self._laplacian_cache[k] = _laplacian(w)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"graphs[{k}] is not a valid adjacency: {exc}") from exc

    # ------------------------------------------------------------------ accessors
    @property
    def tensor(self) -> sparse.COO:
        """The adjacency tensor, a ``sparse.COO`` of shape :attr:`shape`."""
        return self._tensor

    @property
    def graphs(self) -> list[sp.csr_array | None]:
        """One graph per mode (as given, of kind :attr:`graph_kind`), ``None`` where absent."""
        return list(self._graphs)

    @property
    def graph_kind(self) -> str:
        """``"laplacian"`` or ``"adjacency"``: what :attr:`graphs` hold."""
        return self._graph_kind

    @property
    def laplacians(self) -> list[sp.csr_array | None]:
        """One graph Laplacian per mode, ``None`` for a mode without a graph.

        The given matrices when :attr:`graph_kind` is ``"laplacian"``; otherwise the normalized
        Laplacians of the adjacencies, derived once and cached.
        """
        if self._graph_kind == "laplacian":
            return list(self._graphs)
        for k, w in enumerate(self._graphs):
            if w is not None and k not in self._laplacian_cache:
                self._laplacian_cache[k] = _laplacian(w)
        return [self._laplacian_cache.get(k) for k in range(self.ndim)]

    @property
    def sample_mode(self) -> int:
        """The mode whose entities are the samples."""
        return self._sample_mode

    @property
    def ids(self) -> list[np.ndarray | None]:
        """Per mode, the original id of each index, or ``None``."""
        return list(self._ids)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the tensor."""
        return self._tensor.shape

    @property
    def ndim(self) -> int:
        """Order of the tensor (number of modes)."""
        return self._tensor.ndim

    @property
    def nnz(self) -> int:
        """Number of stored hyperedges."""
        return int(self._tensor.nnz)

    def __len__(self) -> int:
        return int(self._tensor.shape[self._sample_mode])

    def __repr__(self) -> str:
        graphs = ", ".join(
            "None" if g is None else f"{g.shape[0]}x{g.shape[1]}" for g in self._graphs
        )
        return (
            f"Hypergraph(shape={self.shape}, nnz={self.nnz}, sample_mode={self._sample_mode}, "
            f"graph_kind={self._graph_kind!r}, graphs=[{graphs}])"
        )

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key: Any) -> Hypergraph:
        if isinstance(key, tuple):
            if not key:
                raise IndexError("Hypergraph index must not be an empty tuple.")
            key, rest = key[0], key[1:]
            # scikit-learn writes X[idx, ...]; a full slice or Ellipsis on the other axes is a
            # no-op, anything else would select other modes, which H[...] does not do.
            if any(not _is_full(r) for r in rest) or len(rest) > self.ndim:
                raise IndexError(
                    "A Hypergraph is indexed along its sample mode only: use H[idx] or "
                    "H[idx, ...]; use H.take(idx, mode=k) for another mode."
                )
        return self.take(key)

    def take(self, indices: Any, *, mode: int | None = None) -> Hypergraph:
        """Keep the entities ``indices`` of one mode, renumbered in the order given.

        Parameters
        ----------
        indices : array-like of int or bool, slice or int
            Entities to keep: integer positions (repeats allowed, negative values count from the
            end), a boolean mask of length ``N_mode``, a slice, or one integer.
        mode : int, optional
            The mode to index; defaults to :attr:`sample_mode`.

        Returns
        -------
        Hypergraph
            The sub-hypergraph: tensor sliced along ``mode``, that mode's graph replaced by the
            induced sub-graph and its ids by ``ids[mode][indices]``; the rest is shared.
        """
        mode = self._sample_mode if mode is None else _check_mode(mode, self.ndim, "mode")
        try:
            idx = _check_indices(indices, self.shape[mode])
        except IndexError as exc:
            if mode != self._sample_mode or mode == 0:
                raise
            # The likely caller: a scikit-learn splitter, which counts X.shape[0] samples.
            raise IndexError(
                f"{exc} This Hypergraph's samples are mode {mode} (sample_mode={mode}), but "
                f"scikit-learn's splitters count X.shape[0] = {self.shape[0]} samples; to "
                "cross-validate over another mode, put it first in the tensor."
            ) from None
        graphs = list(self._graphs)
        if graphs[mode] is not None:
            graphs[mode] = graphs[mode][idx][:, idx]
        ids = list(self._ids)
        if ids[mode] is not None:
            ids[mode] = ids[mode][idx]
        # A Hypergraph pickled before slices had origins has none.
        origins = list(getattr(self, "_origins", None) or [None] * self.ndim)
        if origins[mode] is not None:
            origins[mode] = origins[mode].take(idx)
        out = Hypergraph.__new__(Hypergraph)
        out._tensor = _take_coo(self._tensor, mode, idx)
        out._graph_kind = self._graph_kind
        out._graphs = graphs
        out._sample_mode = self._sample_mode
        out._ids = ids
        out._origins = origins
        # The untouched modes keep their Laplacians; the sliced one is recomputed when asked for.
        out._laplacian_cache = {k: v for k, v in self._laplacian_cache.items() if k != mode}
        return out

    def index_of(self, mode: int, ids: Any) -> np.ndarray | int:
        """Indices of the entities with the original ``ids`` in ``mode``.

        Parameters
        ----------
        mode : int
            The mode to look up.
        ids : scalar or array-like
            Original ids, as stored in :attr:`ids`.

        Returns
        -------
        int or ndarray of int64
            An int for a scalar id, an array of the same shape otherwise. Where an id occurs more
            than once (after slicing with repeated indices), its first index is returned.
        """
        mode = _check_mode(mode, self.ndim, "mode")
        vocabulary = self._ids[mode]
        if vocabulary is None:
            raise ValueError(f"mode {mode} has no ids; give ids= when building the Hypergraph.")
        query = np.asarray(ids)
        found = _lookup(vocabulary, query.ravel())
        if (found < 0).any():
            missing = query.ravel()[found < 0][:5].tolist()
            raise KeyError(f"ids not found in mode {mode}: {missing}")
        return int(found[0]) if query.ndim == 0 else found.reshape(query.shape)

    # ------------------------------------------------------------------ builder
    @classmethod
    def from_edges(
        cls,
        table: Any,
        *,
        columns: Sequence[Any] | None = None,
        weights: Any = None,
        ids: Sequence[Any] | None = None,
        graphs: Sequence[Any] | None = None,
        graph_kind: str = "laplacian",
        sample_mode: int = 0,
    ) -> Hypergraph:
        """Build a hypergraph from a table of hyperedges, one row per hyperedge.

        Parameters
        ----------
        table : ndarray of shape (n_edges, n_columns) or pandas.DataFrame
            Each row lists the original ids of the entities a hyperedge joins, one column per mode.
        columns : list, optional
            The mode columns, in mode order: labels of a DataFrame or positions in an ndarray.
            Defaults to every column except the ``weights`` column.
        weights : column label or array-like of shape (n_edges,), optional
            Value of each hyperedge; defaults to 1 (a binary hypergraph).
        ids : list of (array-like or None), optional
            Per mode, the full list of entity ids, which fixes ``N_k`` and the index order (so that
            entities without hyperedges, e.g. graph nodes, get an index). ``None`` for a mode
            (or altogether) means the sorted unique ids found in the table.
        graphs : list of (sparse matrix or None), optional
            One graph per mode, in the encoded index order (``ids[k]``), see :class:`Hypergraph`.
        graph_kind : {"laplacian", "adjacency"}, default="laplacian"
            What ``graphs`` hold.
        sample_mode : int, default=0
            The mode whose entities are the samples.

        Returns
        -------
        Hypergraph
            With ``ids[k]`` mapping each index of mode ``k`` back to its original id.

        Notes
        -----
        Rows naming the same entities are one hyperedge: their weights are **summed** (with the
        default weights, a repeated hyperedge counts its occurrences). Drop duplicate rows first
        for a binary tensor. Stored values that sum to zero are kept as explicit entries.
        """
        mode_columns, values = _split_table(table, columns, weights)
        if mode_columns[0].shape[0] == 0:
            raise ValueError("table has no rows: a hypergraph needs at least one hyperedge.")
        vocabularies, coords = _encode_columns(mode_columns, ids)
        shape = tuple(len(v) for v in vocabularies)
        # has_duplicates=True makes pydata sparse sum the weights of repeated hyperedges.
        tensor = sparse.COO(np.stack(coords), values, shape=shape, has_duplicates=True)
        return cls(tensor, graphs, graph_kind=graph_kind, sample_mode=sample_mode, ids=vocabularies)


# ---------------------------------------------------------------------- validation helpers
def _check_tensor(tensor: Any) -> sparse.COO:
    if sp.issparse(tensor) or isinstance(tensor, sparse.SparseArray):
        refuse_complex(tensor.dtype, "tensor")  # before any conversion keeps or drops it
    if isinstance(tensor, sparse.COO):
        coo = tensor
    elif isinstance(tensor, sparse.SparseArray):
        coo = tensor.asformat("coo")
    elif sp.issparse(tensor):
        coo = sparse.COO.from_scipy_sparse(tensor)
    elif tensor is None or isinstance(tensor, (str, bytes)):
        raise TypeError(f"tensor must be a sparse.COO or array-like, got {type(tensor).__name__}.")
    else:
        arr = np.asarray(tensor)
        refuse_complex(arr.dtype, "tensor")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"tensor must hold real numbers, got dtype {arr.dtype}.")
        coo = sparse.COO.from_numpy(arr)
    if coo.dtype.kind not in "biuf":
        raise TypeError(f"tensor must hold real numbers, got dtype {coo.dtype}.")
    if coo.ndim < 2:
        raise ValueError(f"tensor must have at least 2 modes, got shape {coo.shape}.")
    if coo.fill_value != 0:
        raise ValueError(f"tensor must have fill_value 0, got {coo.fill_value!r}.")
    check_coords_in_shape(coo.coords, coo.shape, "tensor")
    if not np.isfinite(coo.data).all():
        raise ValueError("tensor contains NaN or infinity among its stored values.")
    return coo


def _check_graphs(graphs: Sequence[Any] | None, shape: tuple[int, ...]) -> list:
    if graphs is None:
        return [None] * len(shape)
    if sp.issparse(graphs) or isinstance(graphs, np.ndarray) or not isinstance(graphs, Sequence):
        raise TypeError(
            f"graphs must be a list of {len(shape)} matrices (None for a mode without a graph), "
            f"got {type(graphs).__name__}."
        )
    if len(graphs) != len(shape):
        raise ValueError(
            f"graphs has {len(graphs)} entries but the tensor has {len(shape)} modes; "
            "give one graph (or None) per mode."
        )
    return [_check_graph(g, k, n) for k, (g, n) in enumerate(zip(graphs, shape, strict=True))]


def _check_graph(graph: Any, k: int, n: int) -> sp.csr_array | None:
    if graph is None:
        return None
    where = f"graphs[{k}]"
    if isinstance(graph, sparse.SparseArray):
        # pydata sparse, as normalized_laplacian accepts it (np.asarray would refuse to densify).
        if graph.ndim != 2:
            raise ValueError(f"{where} must be 2-D, got {graph.ndim} dimensions.")
        graph = graph.asformat("coo").to_scipy_sparse()
    if sp.issparse(graph):
        refuse_complex(graph.dtype, where)  # the float64 copy below would drop it silently
    else:
        arr = np.asarray(graph)
        refuse_complex(arr.dtype, where)
        if arr.dtype.kind not in "biuf" or arr.ndim != 2:
            raise TypeError(
                f"{where} must be a 2-D real matrix or None, got {type(graph).__name__} "
                f"with shape {arr.shape} and dtype {arr.dtype}."
            )
        graph = arr
    # Copy, so that later slicing or format changes never reach the caller's matrix. float32
    # stays float32: the Laplacian checks' tolerances follow the precision it was made in.
    dtype = np.float32 if graph.dtype == np.float32 else np.float64
    mat = sp.csr_array(graph, dtype=dtype, copy=True)
    if mat.shape != (n, n):
        raise ValueError(
            f"{where} has shape {mat.shape}, but mode {k} of the tensor has {n} entities; "
            f"expected ({n}, {n})."
        )
    if not np.isfinite(mat.data).all():
        raise ValueError(f"{where} contains NaN or infinity.")
    return mat


def _check_mode(mode: Any, ndim: int, name: str) -> int:
    mode = check_int(mode, name)
    if not -ndim <= mode < ndim:
        raise ValueError(f"{name} must be in [0, {ndim}) for a tensor of order {ndim}, got {mode}.")
    return int(mode) % ndim


def _check_ids(ids: Sequence[Any] | None, shape: tuple[int, ...]) -> list:
    if ids is None:
        return [None] * len(shape)
    if isinstance(ids, (str, bytes, np.ndarray)) or not isinstance(ids, Sequence):
        raise TypeError(f"ids must be a list of {len(shape)} arrays (or None), one per mode.")
    if len(ids) != len(shape):
        raise ValueError(f"ids has {len(ids)} entries but the tensor has {len(shape)} modes.")
    out = []
    for k, (vocab, n) in enumerate(zip(ids, shape, strict=True)):
        if vocab is None:
            out.append(None)
            continue
        arr = np.array(vocab)  # a copy: the caller's list or array stays theirs
        if arr.shape != (n,):
            raise ValueError(
                f"ids[{k}] has shape {arr.shape}; expected ({n},), one id per entity of mode {k}."
            )
        out.append(arr)
    return out


def _check_indices(key: Any, n: int) -> np.ndarray:
    """Turn a slice, int, integer array or boolean mask into non-negative int64 positions."""
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    if isinstance(key, (bool, np.bool_)):
        raise IndexError("A single boolean is not a valid Hypergraph index; use a mask.")
    if isinstance(key, numbers.Integral):
        key = [key]
    arr = np.asarray(key)
    if arr.size == 0 and arr.dtype.kind not in "biu":
        arr = arr.astype(np.int64)  # [] comes as float64
    if arr.ndim != 1:
        raise IndexError(f"Hypergraph indices must be 1-D, got shape {arr.shape}.")
    if arr.dtype.kind == "b":
        if arr.shape[0] != n:
            raise IndexError(f"boolean mask has length {arr.shape[0]}; expected {n}.")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"Hypergraph indices must be integers or booleans, got dtype {arr.dtype}.")
    # Compared before the cast: a uint64 index beyond int64 would wrap to a negative one,
    # which counts from the end.
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise IndexError(f"index out of range for a mode of {n} entities.")
    arr = arr.astype(np.int64)
    return np.where(arr < 0, arr + n, arr)


def _laplacian(adjacency: sp.csr_array) -> sp.csr_array:
    # An empty selection (H[[]]) leaves a graph with no nodes, which has an empty Laplacian.
    if adjacency.shape[0] == 0:
        return sp.csr_array((0, 0), dtype=np.float64)
    return normalized_laplacian(adjacency)


def _is_full(key: Any) -> bool:
    return key is Ellipsis or (isinstance(key, slice) and key == slice(None))


# ---------------------------------------------------------------------- slicing
def _take_coo(tensor: sparse.COO, mode: int, idx: np.ndarray) -> sparse.COO:
    """``tensor`` restricted to positions ``idx`` of ``mode``, like ``np.take`` (repeats allowed).

    Each stored entry is emitted once per occurrence of its coordinate in ``idx``; the work is
    linear in the number of stored entries (a sort of ``idx`` and two binary searches).
    """
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    coords = tensor.coords
    lo = np.searchsorted(sorted_idx, coords[mode], side="left")
    hi = np.searchsorted(sorted_idx, coords[mode], side="right")
    counts = hi - lo
    entry = np.repeat(np.arange(coords.shape[1]), counts)
    # Position of each emitted copy inside its run of equal indices.
    offsets = np.arange(entry.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    new_coords = coords[:, entry].astype(np.int64)
    new_coords[mode] = order[np.repeat(lo, counts) + offsets]
    shape = list(tensor.shape)
    shape[mode] = idx.shape[0]
    return sparse.COO(
        new_coords,
        tensor.data[entry],
        shape=tuple(shape),
        has_duplicates=False,
        sorted=False,
        fill_value=tensor.fill_value,
    )


# ---------------------------------------------------------------------- builder helpers
def _split_table(table: Any, columns: Any, weights: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Mode columns (1-D arrays) and float64 weights from a DataFrame or a 2-D array."""
    is_frame = hasattr(table, "iloc") and hasattr(table, "columns")
    labels = list(table.columns) if is_frame else None
    if not is_frame:
        table = np.asarray(table)
        if table.ndim != 2:
            raise ValueError(f"table must be 2-D (n_edges, n_columns), got shape {table.shape}.")
        labels = list(range(table.shape[1]))
    weight_label = None
    if weights is not None and np.ndim(weights) == 0:
        if weights not in labels:
            raise ValueError(f"weights={weights!r} is not a column of table ({labels}).")
        weight_label = weights
    if columns is None:
        columns = [c for c in labels if weight_label is None or c != weight_label]
    elif isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
        raise TypeError(f"columns must be a list of column labels, got {type(columns).__name__}.")
    missing = [c for c in columns if c not in labels]
    if missing:
        raise ValueError(f"columns {missing} are not columns of table ({labels}).")
    if len(columns) < 2:
        raise ValueError(f"columns must name at least 2 modes, got {list(columns)}.")

    def get(label: Any) -> np.ndarray:
        return table[label].to_numpy() if is_frame else table[:, label]

    mode_columns = [get(c) for c in columns]
    n = mode_columns[0].shape[0]
    if weights is None:
        raw = np.ones(n)
    elif weight_label is not None:
        raw = get(weight_label)
    else:
        raw = np.asarray(weights)
    if raw.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), one per row of table, got {raw.shape}.")
    refuse_complex(raw.dtype, "weights")
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("weights must be numeric.") from exc
    if not np.isfinite(values).all():
        raise ValueError("weights contain NaN or infinity.")
    return mode_columns, values


def _encode(column: np.ndarray, vocabulary: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Map one column of ids to 0..N-1: sorted unique ids, or positions in ``vocabulary``."""
    if _has_missing(column):
        raise ValueError(f"column {k} of table contains missing ids (NaN or None).")
    if vocabulary is None:
        try:
            vocab, codes = np.unique(column, return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"ids in column {k} of table cannot be sorted: {exc}") from exc
        return vocab, codes.reshape(-1).astype(np.int64)
    vocab = np.array(vocabulary)
    if vocab.ndim != 1:
        raise ValueError(f"ids[{k}] must be 1-D, got shape {vocab.shape}.")
    if np.unique(vocab).shape[0] != vocab.shape[0]:
        raise ValueError(f"ids[{k}] contains repeated ids.")
    codes = _lookup(vocab, column)
    if (codes < 0).any():
        unknown = column[codes < 0][:5].tolist()
        raise ValueError(f"column {k} of table has ids missing from ids[{k}]: {unknown}")
    return vocab, codes


def _encode_columns(mode_columns: list, ids) -> tuple[list, list]:
    """Each mode column's vocabulary and codes, ``ids`` checked against the number of columns."""
    order = len(mode_columns)
    if ids is None:
        ids = [None] * order
    elif isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or len(ids) != order:
        raise ValueError(f"ids must be a list of {order} entries (one per mode column).")
    vocabularies, coords = [], []
    for k, (column, vocabulary) in enumerate(zip(mode_columns, ids, strict=True)):
        vocab, codes = _encode(column, vocabulary, k)
        vocabularies.append(vocab)
        coords.append(codes)
    return vocabularies, coords


def _lookup(vocabulary: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each query id in ``vocabulary`` (first occurrence), -1 where absent."""
    missing = np.full(query.shape, -1, dtype=np.int64)
    if len(vocabulary) == 0:
        return missing
    order = np.argsort(vocabulary, kind="stable")
    try:
        pos = np.minimum(np.searchsorted(vocabulary, query, sorter=order), len(vocabulary) - 1)
        found = order[pos]
        hit = np.asarray(vocabulary[found] == query, dtype=bool)
    except (TypeError, ValueError, np.exceptions.DTypePromotionError):
        return missing  # ids of incomparable types: nothing can match
    return np.where(hit, found, missing)


def _has_missing(column: np.ndarray) -> bool:
    """Whether ``column`` holds a missing id: NaN, NaT, None or pandas' NA."""
    if column.dtype.kind in "fc":
        return bool(np.isnan(column).any())
    if column.dtype.kind in "mM":
        return bool(np.isnat(column).any())
    if column.dtype.kind == "O":
        return any(_is_missing(v) for v in column)
    return False


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        # NaN and NaT (numpy's, pandas') are the values unequal to themselves.
        return bool(value != value)
    except (TypeError, ValueError):
        # pandas' NA: its comparisons return NA, whose truth value is ambiguous.
        return type(value).__name__ == "NAType"
