"""Sparse tensor kernels over the stored entries, in torch.

Everything here works on the coordinates and values of the stored entries and on the factor
matrices; no dense tensor, unfolding or Khatri–Rao product is ever formed. Work over the entries
is chunked so that the largest temporary is ``chunk_size × R`` numbers whatever the tensor size.

The entries are held once: one ``(K, nnz)`` index array (the caller's int32 or int64 one when it
already has that layout, else a copy in the narrowest integer type that holds every mode, int32
below 2^31) and the values, in storage order. A mode-k pass needs the entries
grouped by mode k's index, so each mode whose indices are not already sorted gets a stable
permutation (int32 below 2^31 entries) and every mode a row pointer over its ``N_k`` indices;
a chunk of mode k's order is gathered from the single copy into per-thread buffers when it is
visited, and carries a CSR matrix (rows = mode k's indices in the chunk, columns = the chunk's
entries). A mode-k pass is then: gather the other modes' factor rows, multiply, and one
sparse-times-dense product, which is the fastest scatter-add torch offers on CPU and GPU alike.
On the CPU, :func:`mttkrp` first tries the compiled kernel of :mod:`._fused`, which does the
same in one pass without the gather buffers.
Memory is at most ``K·4 + 8`` bytes per entry for the copy (none when the coordinates and values
are the caller's) plus 4 per permuted mode, instead of a sorted copy of everything per mode.

These kernels know nothing of graphs, networks or estimators.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._fused import (
    fused_implicit,
    fused_implicit_apply,
    fused_implicit_rhs_diag,
    fused_implicit_value,
    fused_mttkrp,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "SparseTensorData",
    "cp_values",
    "gram_hadamard",
    "hypergraph_sq_error",
    "implicit_normal_equations",
    "implicit_rhs_diag",
    "implicit_sq_error",
    "implicit_stored_apply",
    "implicit_stored_value",
    "inner_product",
    "mode_normal_equations",
    "mttkrp",
    "observed_sq_error",
    "small_matmul",
]

#: Budget in bytes for the largest temporary built from a chunk of entries.
DEFAULT_CHUNK_BYTES = 64 * 2**20
#: Rows of the other factors gathered per block into the second gather buffer, in bytes.
_GATHER_BLOCK_BYTES = 2**20

# torch warns once per process that CSR support is "beta"; the kernels only use its stable core.
# The first CSR tensor is built with that warning silenced, locally: no process-wide filter.
_CSR_WARNED = threading.Event()
_CSR_LOCK = threading.Lock()


def _sparse_csr(crow, col, values, size) -> torch.Tensor:
    if not _CSR_WARNED.is_set():
        with _CSR_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            out = torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
            _CSR_WARNED.set()
            return out
    return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def _chunk_entries(width: int, itemsize: int, chunk_bytes: int) -> int:
    """Entries per chunk so that a ``(chunk, width)`` temporary stays within ``chunk_bytes``."""
    return max(1024, chunk_bytes // max(1, width * itemsize))


def index_dtype(extent: int) -> torch.dtype:
    """The narrowest index type torch gathers with that holds ``0 … extent − 1``."""
    return torch.int32 if extent <= 2**31 - 1 else torch.int64


@dataclass
class _Chunk:
    """A run of entries in one mode's sorted order, with its scatter matrix."""

    row_start: int
    row_stop: int
    coords: torch.Tensor  # (K, n), sorted by the mode; one contiguous row per mode
    values: torch.Tensor  # (n,)
    crow: torch.Tensor  # CSR row pointer, rows local to [row_start, row_stop)
    col: torch.Tensor  # CSR column indices (0..n-1)

    def scatter(self, weights: torch.Tensor) -> torch.Tensor:
        """The CSR matrix ``S`` with ``S[i - row_start, e] = weights[e]`` for entry e in row i."""
        n_rows = self.row_stop - self.row_start
        return _sparse_csr(self.crow, self.col, weights, (n_rows, weights.shape[0]))


class _Workspace:
    """Buffers of one thread, reused across chunks and passes, grown when a pass needs more.

    Fresh multi-MB temporaries per chunk cost page faults; keeping one set per thread (the
    parallel schedule runs passes concurrently) bounds them by the chunk budget.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, n: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self._bufs.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            del buf
            self._bufs.pop(name, None)
            buf = torch.empty(n, dtype=dtype, device=self.device)
            self._bufs[name] = buf
        return buf[:n]

    def arange(self, n: int) -> torch.Tensor:
        """``0 … n − 1`` in int64 (the CSR column indices of every chunk)."""
        buf = self._bufs.get("arange")
        if buf is None or buf.numel() < n:
            self._bufs.pop("arange", None)
            buf = torch.arange(n, dtype=torch.int64, device=self.device)
            self._bufs["arange"] = buf
        return buf[:n]


class _Layout:
    """Mode ``mode``'s order of the entries cut into chunks of at most ``n_per`` entries.

    Only the chunk boundaries are stored; a chunk's coordinates and values are gathered from
    the single copy when it is visited.
    """

    def __init__(self, tensor: SparseTensorData, mode: int, n_per: int) -> None:
        # The tensor caches its layouts: a strong reference back would make a cycle that keeps
        # every entry alive after the fit until the garbage collector happens to run.
        self.tensor = weakref.proxy(tensor)
        self.mode = mode
        self.n_per = n_per
        nnz = tensor.nnz
        rowptr = tensor._rowptr(mode)
        starts = torch.arange(0, nnz, n_per, dtype=torch.int64, device=rowptr.device)
        stops = (starts + n_per).clamp_max(nnz)
        # The row holding sorted position s is the last i with rowptr[i] <= s.
        first = torch.searchsorted(rowptr, starts, right=True) - 1
        last = torch.searchsorted(rowptr, stops - 1, right=True) - 1
        self.spans = list(
            zip(starts.tolist(), stops.tolist(), first.tolist(), (last + 1).tolist(), strict=True)
        )

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> _Chunk:
        return self.chunk(i, None)

    def __iter__(self):
        return (self.chunk(i, None) for i in range(len(self.spans)))

    def chunks(self, ws: _Workspace | None, *, own_mode: bool = True):
        """The chunks in order; with ``ws`` each is built in that workspace's buffers (so a
        chunk is valid only until the next one is produced). ``own_mode=False`` leaves the
        chunk's row of this mode's indices unfilled (a plain MTTKRP never reads it)."""
        return (self.chunk(i, ws, own_mode=own_mode) for i in range(len(self.spans)))

    def chunk(self, i: int, ws: _Workspace | None, *, own_mode: bool = True) -> _Chunk:
        start, stop, row_start, row_stop = self.spans[i]
        t = self.tensor
        n = stop - start
        source, source_values, perm = t.in_mode_order(self.mode)
        if perm is None:
            coords = source[:, start:stop]
            values = source_values[start:stop]
        else:
            p = perm[start:stop]
            if ws is None:
                coords = t.coords_t.index_select(1, p)
                values = t.values.index_select(0, p)
            else:
                k = t.order
                coords = ws.get("coords", k * n, t.coords_t.dtype).view(k, n)
                for j in range(k):
                    if j == self.mode and not own_mode:
                        continue
                    torch.index_select(t.coords_t[j], 0, p, out=coords[j])
                values = ws.get("values", n, t.values.dtype)
                torch.index_select(t.values, 0, p, out=values)
        # A row split across chunks has its pointer clipped to this chunk's entries.
        crow = t._rowptr(self.mode)[row_start : row_stop + 1].clamp(start, stop) - start
        col = ws.arange(n) if ws is not None else torch.arange(n, device=t.device)
        return _Chunk(row_start, row_stop, coords, values, crow, col)


class SparseTensorData:
    """Stored entries of a sparse K-th order tensor, laid out for the kernels.

    Parameters
    ----------
    coords : torch.Tensor of shape (nnz, K) or (K, nnz) with ``transposed=True``, integer
        Coordinates of the stored entries (duplicates must already be summed). They are kept as
        one contiguous index vector per mode, the layout gathers are fastest on: int32 or int64
        as given (no copy when already laid out so: a narrowed copy of an int64 array the
        caller keeps would only add memory), other integer types in the narrowest index type.
    values : torch.Tensor of shape (nnz,)
        Their values, in the working dtype; kept as given (never written to).
    shape : tuple of int
        Shape of the tensor.
    chunk_bytes : int
        Memory budget for the temporaries of one chunk of entries.
    """

    def __init__(
        self,
        coords: torch.Tensor,
        values: torch.Tensor,
        shape: Sequence[int],
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        *,
        transposed: bool = False,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        coords_t = coords if transposed else coords.T
        if coords_t.dtype not in (torch.int32, torch.int64) or not coords_t.is_contiguous():
            # A copy is made anyway: in the narrowest index type.
            coords_t = coords_t.to(index_dtype(max(self.shape, default=1))).contiguous()
        self.coords_t = coords_t
        self.values = values
        self.chunk_bytes = int(chunk_bytes)
        self._layouts: dict[tuple[int, int], _Layout] = {}
        self._perms: dict[int, torch.Tensor | None] = {}
        self._rowptrs: dict[int, torch.Tensor] = {}
        self._sorted: dict[int, tuple[torch.Tensor, torch.Tensor] | None] = {}
        self._workspaces: dict[int, _Workspace] = {}
        self._cache: dict = {}  # small per-mode data of the fused kernels (see ._fused)
        self._lock = threading.Lock()
        self.norm_sq = float(torch.dot(values, values)) if values.numel() else 0.0
        self._value_sum: float | None = None

    @classmethod
    def from_numpy(
        cls,
        coords: np.ndarray,
        values: np.ndarray,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> SparseTensorData:
        """Build from ``(nnz, K)`` integer coordinates and ``(nnz,)`` values held in numpy.

        Nothing is copied on the CPU when ``coords`` is the transpose of a C-contiguous
        ``(K, nnz)`` int32 or int64 array (as :func:`check_tensor` returns) and ``values`` are
        already in ``dtype``; the arrays are then shared, and never written to.
        """
        shape = tuple(int(s) for s in shape)
        coords_t = np.asarray(coords).T
        shared = coords_t.dtype in (np.dtype(np.int32), np.dtype(np.int64))
        if not (shared and coords_t.flags.c_contiguous):
            idx = np.int32 if index_dtype(max(shape, default=1)) == torch.int32 else np.int64
            coords_t = np.ascontiguousarray(coords_t, dtype=idx)
        with warnings.catch_warnings():
            # Read-only arrays are shared on purpose: the kernels never write to them.
            warnings.filterwarnings("ignore", message=".*not writable.*")
            c = torch.as_tensor(coords_t, device=device)
            v = torch.as_tensor(np.ascontiguousarray(values), device=device).to(dtype)
        return cls(c, v, shape, chunk_bytes, transposed=True)

    @property
    def coords(self) -> torch.Tensor:
        """The ``(nnz, K)`` coordinates (a view)."""
        return self.coords_t.T

    @property
    def value_sum(self) -> float:
        """``Σ_e x_e`` over the stored entries, summed once (the implicit loss's constant)."""
        if self._value_sum is None:
            self._value_sum = float(self.values.sum())
        return self._value_sum

    @property
    def order(self) -> int:
        return len(self.shape)

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def to(self, device: torch.device | str) -> SparseTensorData:
        """A copy on ``device`` (permutations are rebuilt there lazily)."""
        device = torch.device(device)
        if device == self.device:
            return self
        # A copy is made anyway: in the narrowest index type.
        return SparseTensorData(
            self.coords_t.to(device, index_dtype(max(self.shape, default=1))),
            self.values.to(device),
            self.shape,
            self.chunk_bytes,
            transposed=True,
        )

    def _perm(self, mode: int) -> torch.Tensor | None:
        """Stable order of the entries by ``mode``'s index; None when storage order is it."""
        if mode not in self._perms:
            with self._lock:
                if mode not in self._perms:
                    rows = self.coords_t[mode]
                    if self.nnz < 2 or bool((rows[1:] >= rows[:-1]).all()):
                        perm = None
                    else:
                        perm = _stable_order(
                            rows, self._rowptr(mode), self.chunk_bytes, index_dtype(self.nnz)
                        )
                    self._perms[mode] = perm
        return self._perms[mode]

    def _sorted_copy(self, mode: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Mode ``mode``'s order of the coordinates and values, gathered once; None unless small.

        Gathering every chunk when it is visited costs a tenth of a sweep at 10^5 entries. A
        sorted copy costs ``K·idx + itemsize`` bytes per entry and permuted mode, so it is kept
        only while all of it stays within a sixteenth of the chunk budget (4 MiB by default,
        about 10^5 entries): larger tensors keep holding their entries once.
        """
        if mode not in self._sorted:
            perm = self._perm(mode)
            per_entry = self.order * self.coords_t.element_size() + self.values.element_size()
            copy = None
            if perm is not None and self.nnz * per_entry <= self.chunk_bytes // 16:
                copy = (self.coords_t.index_select(1, perm), self.values.index_select(0, perm))
            self._sorted[mode] = copy
        return self._sorted[mode]

    def in_mode_order(
        self, mode: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(coords_t, values, perm)`` to read the entries in ``mode``'s order from: position s
        of that order is entry ``perm[s]`` of the arrays, or entry s itself when ``perm`` is
        None (storage order is already the mode's, or a small tensor's sorted copy)."""
        perm = self._perm(mode)
        if perm is None:
            return self.coords_t, self.values, None
        copy = self._sorted_copy(mode)
        if copy is not None:
            return copy[0], copy[1], None
        return self.coords_t, self.values, perm

    def _rowptr(self, mode: int) -> torch.Tensor:
        """``rowptr[i]`` = number of entries whose ``mode`` index is below i (int64)."""
        ptr = self._rowptrs.get(mode)
        if ptr is None:
            counts = torch.bincount(self.coords_t[mode], minlength=self.shape[mode])
            ptr = torch.zeros(self.shape[mode] + 1, dtype=torch.int64, device=self.device)
            torch.cumsum(counts, 0, out=ptr[1:])
            self._rowptrs[mode] = ptr
        return ptr

    def layout(self, mode: int, width: int) -> _Layout:
        """The entries in ``mode``'s order in chunks sized for ``width`` numbers per entry.

        The sort is done once per mode; chunks are gathered from the single copy when visited.
        """
        n_per = _chunk_entries(width, self.values.element_size(), self.chunk_bytes)
        key = (mode, n_per)
        lay = self._layouts.get(key)
        if lay is None:
            self._perm(mode)
            lay = _Layout(self, mode, n_per)
            self._layouts[key] = lay
        return lay

    def workspace(self) -> _Workspace:
        """This thread's buffers."""
        key = threading.get_ident()
        ws = self._workspaces.get(key)
        if ws is None:
            ws = _Workspace(self.device)
            self._workspaces[key] = ws
        return ws


def _stable_order(
    keys: torch.Tensor, rowptr: torch.Tensor, chunk_bytes: int, dtype: torch.dtype
) -> torch.Tensor:
    """``argsort(keys, stable=True)`` in ``dtype``, by a counting sort over chunks of ``keys``.

    ``rowptr`` holds where each key's run starts in the sorted order. Each chunk is sorted on
    its own and its entries are placed after those of earlier chunks with the same key, so the
    temporaries stay within the chunk budget instead of a full int64 permutation and the sort's
    own buffers (about 24 bytes per entry for a global ``argsort``).
    """
    nnz = keys.shape[0]
    perm = torch.empty(nnz, dtype=dtype, device=keys.device)
    cursor = rowptr[:-1].clone()  # next free position of each key
    # A step's temporaries take about 64 bytes per key (sorted keys, order, positions, run
    # starts, destinations): a step of chunk_bytes / 128 keys keeps them within half the
    # budget, as they coexist with the chunk buffers of the pass that asked for the order.
    step = max(2**16, chunk_bytes // 128)
    ones = torch.ones(min(step, nnz), dtype=torch.int64, device=keys.device)
    narrow = index_dtype(cursor.shape[0])
    for start in range(0, nnz, step):
        stop = min(start + step, nnz)
        k = keys[start:stop]
        # Sorting the narrow keys themselves (int32 even when the caller's indices are int64)
        # is several times faster than an int64 argsort.
        ks, order = torch.sort(k.to(narrow), stable=True)
        pos = torch.arange(stop - start, device=keys.device)
        new_run = torch.ones_like(ks, dtype=torch.bool)
        new_run[1:] = ks[1:] != ks[:-1]
        # Rank of each entry inside its run of equal keys in this chunk.
        run_first = torch.cummax(torch.where(new_run, pos, 0), 0).values
        dest = cursor.index_select(0, ks) + (pos - run_first)
        perm.index_copy_(0, dest, (order + start).to(dtype))
        cursor.index_add_(0, k, ones[: k.shape[0]])
    return perm


def _gather_product(
    coords: torch.Tensor, factors: Sequence[torch.Tensor], skip: int | None
) -> torch.Tensor:
    """Row-wise product of the factor rows at ``coords`` (K, n), over every mode but ``skip``."""
    out = None
    for j, a in enumerate(factors):
        if j == skip:
            continue
        g = a.index_select(0, coords[j])
        out = g if out is None else out.mul_(g)
    return out


def _workspace(tensor: SparseTensorData, n: int, width: int):
    """This thread's ``(n, width)`` product buffer and its block buffer, grown when needed.

    The block buffer holds at most :data:`_GATHER_BLOCK_BYTES`: the other factors' rows are
    gathered into it block by block (see :func:`_gather_product_into`).
    """
    ws = tensor.workspace()
    rows = min(n, max(1, _GATHER_BLOCK_BYTES // (width * tensor.values.element_size())))
    return (
        ws.get("h", n * width, tensor.dtype).view(n, width),
        ws.get("tmp", rows * width, tensor.dtype).view(rows, width),
    )


def _gather_product_into(
    coords: torch.Tensor,
    factors: Sequence[torch.Tensor],
    skip: int | None,
    out: torch.Tensor,
    tmp: torch.Tensor,
) -> torch.Tensor:
    """:func:`_gather_product` written into preallocated ``out``.

    The first factor's rows are gathered into ``out``; the others are gathered into ``tmp``
    (any number of rows) one block of rows at a time and multiplied into ``out``'s block, in
    the same order as :func:`_gather_product` (so the same numbers). A chunk-sized second
    buffer would double the chunk memory, and a small block is still in cache when multiplied.
    """
    others = [j for j in range(len(factors)) if j != skip]
    torch.index_select(factors[others[0]], 0, coords[others[0]], out=out)
    if len(others) == 1:
        return out
    n, step = out.shape[0], tmp.shape[0]
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = out[start:stop]
        for j in others[1:]:
            g = tmp[: stop - start]
            torch.index_select(factors[j], 0, coords[j, start:stop], out=g)
            block.mul_(g)
    return out


#: Multiply-adds up to which a CPU product of a sweep runs on the calling thread (in numpy).
_ONE_THREAD_WORK = 2**21


def numpy_ready(t: torch.Tensor) -> bool:
    """Whether numpy can work on ``t``'s memory as it is: a CPU float32 or float64 tensor."""
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


def small_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``, on the calling thread when it is a small product of CPU tensors.

    A sweep's dense products are (N, R) × (R, R) or an R×R Gram. Small ones, in torch, are a
    parallel region each: its other threads sleep through the compiled MTTKRP that runs between
    two of them and must be woken, and on a shared machine a busy core holds the product up.
    Timed inside 10^5-entry fits (rank 10, 2 threads) a Gram took 0.2 ms this way and 1–5 ms in
    torch. Larger products, GPU tensors and anything that autograd records stay in torch.
    """
    work = a.shape[0] * a.shape[1] * b.shape[1]
    if (
        work <= _ONE_THREAD_WORK
        and numpy_ready(a)
        and numpy_ready(b)
        and a.dtype == b.dtype
        and not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad))
    ):
        return torch.from_numpy(a.detach().numpy() @ b.detach().numpy())
    return a @ b


def gram_hadamard(factors: Sequence[torch.Tensor], skip: int | None = None) -> torch.Tensor:
    """``⊛_{j≠skip} A_jᵀ A_j``: the R×R Gram of the Khatri–Rao product, without forming it."""
    out = None
    for j, a in enumerate(factors):
        if j == skip:
            continue
        g = small_matmul(a.T, a)
        out = g if out is None else out * g
    return out


def mttkrp(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
) -> torch.Tensor:
    """``X_(k) Ω_k``, the matricized tensor times Khatri–Rao product, for ``mode`` k.

    One pass over the stored entries: gather the other modes' rows, multiply, scatter-add
    (fused into one compiled pass on the CPU, see :mod:`._fused`).
    """
    fused = fused_mttkrp(tensor, factors, mode)
    if fused is not None:
        return fused
    rank = factors[(mode + 1) % len(factors)].shape[1]
    out = torch.zeros(tensor.shape[mode], rank, dtype=tensor.dtype, device=tensor.device)
    # A plain MTTKRP never reads the chunk's own-mode indices: leave them ungathered.
    chunks = tensor.layout(mode, rank).chunks(tensor.workspace(), own_mode=False)
    for chunk in chunks:
        if tensor.order > 2 and factors[mode].dtype == tensor.dtype:
            h = _gather_product_into(
                chunk.coords, factors, mode, *_workspace(tensor, chunk.coords.shape[1], rank)
            )
        else:
            h = _gather_product(chunk.coords, factors, mode)
        out[chunk.row_start : chunk.row_stop] += chunk.scatter(chunk.values) @ h
    return out


def cp_values(
    coords: torch.Tensor,
    factors: Sequence[torch.Tensor],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """``[[A_1, …, A_K]]`` at the ``(n, K)`` coordinates: ``Σ_r Π_k A_k[c_k, r]``."""
    rank = factors[0].shape[1]
    n = coords.shape[0]
    coords_t = coords.T.contiguous()
    out = torch.empty(n, dtype=factors[0].dtype, device=factors[0].device)
    step = _chunk_entries(rank, factors[0].element_size(), chunk_bytes)
    for start in range(0, n, step):
        stop = min(start + step, n)
        out[start:stop] = _gather_product(coords_t[:, start:stop], factors, None).sum(1)
    return out


def _stored_predictions(tensor: SparseTensorData, factors: Sequence[torch.Tensor]):
    """``(start, stop, coords, [[A]] at those entries)`` chunk by chunk in storage order.

    The sweeps' gather buffers, not fresh (chunk, R) temporaries: no page faults per chunk,
    and no second set of buffers beside the sweeps' when the fit's J is evaluated.
    """
    rank = factors[0].shape[1]
    step = _chunk_entries(rank, tensor.values.element_size(), tensor.chunk_bytes)
    own = all(a.dtype == tensor.dtype and a.device == tensor.device for a in factors)
    for start in range(0, tensor.nnz, step):
        stop = min(start + step, tensor.nnz)
        coords = tensor.coords_t[:, start:stop]
        if own:
            h = _gather_product_into(coords, factors, None, *_workspace(tensor, stop - start, rank))
        else:
            h = _gather_product(coords, factors, None)
        yield start, stop, coords, h.sum(1)


def inner_product(tensor: SparseTensorData, factors: Sequence[torch.Tensor]) -> float:
    """``⟨X, [[A]]⟩`` over the stored entries."""
    total = 0.0
    for start, stop, _, pred in _stored_predictions(tensor, factors):
        total += float(torch.dot(pred, tensor.values[start:stop]))
    return total


def hypergraph_sq_error(tensor: SparseTensorData, factors: Sequence[torch.Tensor]) -> float:
    """``‖X − [[A]]‖²`` over every cell, absent cells counting as zeros.

    Uses ``‖X‖² − 2⟨X,[[A]]⟩ + 1ᵀ(⊛_k A_kᵀA_k)1``, so only the stored entries are visited.
    """
    inner = inner_product(tensor, factors)
    model_sq = float(gram_hadamard(factors).sum())
    # Cancellation can leave a tiny negative number when the fit is exact.
    return max(tensor.norm_sq - 2.0 * inner + model_sq, 0.0)


def _entry_offsets(
    coords: torch.Tensor,
    biases: Sequence[torch.Tensor | None] | None,
    mean: float,
    skip: int | None = None,
) -> torch.Tensor:
    """``mean + Σ_{j≠skip} b_j[c_j]`` at each coordinate, given as ``(K, n)``."""
    out = torch.full((coords.shape[1],), float(mean), dtype=torch.float64, device=coords.device)
    if biases is not None:
        for j, b in enumerate(biases):
            if b is not None and j != skip:
                out = out.to(b.dtype) + b.index_select(0, coords[j])
    return out


def observed_residuals(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None = None,
    mean: float = 0.0,
) -> torch.Tensor:
    """``x_e − (mean + Σ_k b_k[e_k] + [[A]]_e)`` at every stored entry, in storage order."""
    pred = cp_values(tensor.coords, factors, tensor.chunk_bytes)
    offset = _entry_offsets(tensor.coords_t, biases, mean).to(pred.dtype)
    return tensor.values - pred - offset


def observed_sq_error(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None = None,
    mean: float = 0.0,
) -> float:
    """``Σ_{e stored} (x_e − prediction_e)²``: the completion (masked) loss.

    Summed chunk by chunk in storage order, so no residual vector over all entries is formed.
    """
    total = 0.0
    for start, stop, c, pred in _stored_predictions(tensor, factors):
        r = tensor.values[start:stop] - pred - _entry_offsets(c, biases, mean).to(pred.dtype)
        total += float(torch.dot(r, r))
    return total


def mode_normal_equations(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
    biases: Sequence[torch.Tensor | None] | None = None,
    mean: float = 0.0,
    with_bias: bool = False,
    return_target_sq: bool = False,
):
    """Per-row normal equations of the masked least-squares problem in ``A_mode``.

    For row i of mode k, with ``h_e = Π_{j≠k} A_j[e_j]`` (augmented with a trailing 1 when
    ``with_bias``, so that the row's bias is solved jointly) and target
    ``y_e = x_e − mean − Σ_{j≠k} b_j[e_j]``, returns ``rhs[i] = Σ_{e_k=i} y_e h_e`` of shape
    (N_k, R') and ``grams[i] = Σ_{e_k=i} h_e h_eᵀ`` of shape (N_k, R', R'), in one pass.
    With ``return_target_sq`` also returns ``Σ_e y_e²`` (the constant of the quadratic).
    """
    rank = factors[mode].shape[1]
    width = rank + int(with_bias)
    n = tensor.shape[mode]
    rhs = torch.zeros(n, width, dtype=tensor.dtype, device=tensor.device)
    grams = torch.zeros(n, width, width, dtype=tensor.dtype, device=tensor.device)
    target_sq = 0.0
    # No per-entry R×R temporary: a chunk's widest one is its padded (entries, R) gather.
    for chunk in tensor.layout(mode, 4 * width).chunks(tensor.workspace()):
        h = _gather_product(chunk.coords, factors, mode)
        if with_bias:
            h = torch.cat([h, torch.ones_like(h[:, :1])], 1)
        y = chunk.values - _entry_offsets(chunk.coords, biases, mean, skip=mode).to(h.dtype)
        rows = slice(chunk.row_start, chunk.row_stop)
        rhs[rows] += chunk.scatter(y) @ h
        if return_target_sq:
            target_sq += float(torch.dot(y, y))
        _add_row_grams(grams[rows], chunk.crow, h, tensor.chunk_bytes)
    if return_target_sq:
        return rhs, grams, target_sq
    return rhs, grams


def implicit_normal_equations(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
    confidence: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored entries' share of the implicit-feedback normal equations in ``A_mode``.

    With ``h_e = Π_{j≠k} A_j[e_j]`` and weights ``w_e = confidence · x_e``, returns
    ``linear[i] = Σ_{e_k=i} (1 + w_e) h_e`` of shape (N_k, R) and
    ``grams[i] = Σ_{e_k=i} w_e h_e h_eᵀ`` of shape (N_k, R, R), in one pass; the absent cells'
    share (the Gram of the Khatri–Rao product) is added by the caller. On the CPU one compiled
    pass (:func:`._fused.fused_implicit`).
    """
    fused = fused_implicit(tensor, factors, mode, confidence)
    if fused is not None:
        return fused
    rank = factors[mode].shape[1]
    n = tensor.shape[mode]
    linear = torch.zeros(n, rank, dtype=tensor.dtype, device=tensor.device)
    grams = torch.zeros(n, rank, rank, dtype=tensor.dtype, device=tensor.device)
    # No per-entry R×R temporary: a chunk's widest one is its padded (entries, R) gather.
    for chunk in tensor.layout(mode, 4 * rank).chunks(tensor.workspace()):
        h = _gather_product(chunk.coords, factors, mode)
        w = chunk.values * confidence
        rows = slice(chunk.row_start, chunk.row_stop)
        linear[rows] += chunk.scatter(1.0 + w) @ h
        _add_row_grams(grams[rows], chunk.crow, h.mul_(w.sqrt_()[:, None]), tensor.chunk_bytes)
    return linear, grams


def _implicit_chunks(tensor: SparseTensorData, factors, mode: int, confidence: float):
    """``(rows, h, w)`` per chunk of mode ``mode``'s order: the entries' rows, their products
    of the other modes' rows and their weights ``confidence · x_e``."""
    rank = factors[mode].shape[1]
    for chunk in tensor.layout(mode, 4 * rank).chunks(tensor.workspace()):
        yield chunk, _gather_product(chunk.coords, factors, mode), chunk.values * confidence


def implicit_rhs_diag(
    tensor: SparseTensorData, factors: Sequence[torch.Tensor], mode: int, confidence: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``linear[i] = Σ_{e_k=i} (1 + w_e) h_e`` and ``dsum[i] = Σ_{e_k=i} w_e h_e²``, (N_k, R).

    The right-hand side and the stored share of the Jacobi diagonal of the implicit loss's
    matrix-free mode solve: :func:`implicit_normal_equations` without the per-row Grams.
    """
    fused = fused_implicit_rhs_diag(tensor, factors, mode, confidence)
    if fused is not None:
        return fused
    shape = (tensor.shape[mode], factors[mode].shape[1])
    linear = torch.zeros(shape, dtype=tensor.dtype, device=tensor.device)
    dsum = torch.zeros_like(linear)
    for chunk, h, w in _implicit_chunks(tensor, factors, mode, confidence):
        rows = slice(chunk.row_start, chunk.row_stop)
        linear[rows] += chunk.scatter(1.0 + w) @ h
        dsum[rows] += chunk.scatter(w) @ (h * h)
    return linear, dsum


def implicit_stored_apply(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
    confidence: float,
    y: torch.Tensor,
) -> torch.Tensor:
    """``out[i] = Σ_{e_k=i} w_e (h_eᵀ y_i) h_e``: the stored entries' share of the implicit
    loss's mode operator applied to ``y`` (N_k, R), ``O(R)`` work per entry."""
    fused = fused_implicit_apply(tensor, factors, mode, confidence, y)
    if fused is not None:
        return fused
    out = torch.zeros_like(y)
    for chunk, h, w in _implicit_chunks(tensor, factors, mode, confidence):
        t = (h * y.index_select(0, chunk.coords[mode])).sum(1).mul_(w)
        out[chunk.row_start : chunk.row_stop] += chunk.scatter(t) @ h
    return out


def implicit_stored_value(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
    confidence: float,
    a: torch.Tensor,
) -> torch.Tensor:
    """``Σ_e (w_e t_e² − 2(1 + w_e) t_e)`` with ``t_e = h_eᵀ a_{e_k}``: the stored entries'
    share of the implicit data term in mode ``mode``'s factors ``a`` (differentiable in ``a``)."""
    fused = fused_implicit_value(tensor, factors, mode, confidence, a)
    if fused is not None:
        return torch.tensor(fused, dtype=a.dtype, device=a.device)
    total = a.new_zeros(())
    for chunk, h, w in _implicit_chunks(tensor, factors, mode, confidence):
        t = (h * a.index_select(0, chunk.coords[mode])).sum(1)
        total = total + (w * t * t - 2.0 * (1.0 + w) * t).sum()
    return total


def _add_row_grams(out: torch.Tensor, crow: torch.Tensor, g: torch.Tensor, budget: int) -> None:
    """``out[i] += Σ_{crow[i] ≤ e < crow[i+1]} g_e g_eᵀ`` for rows of consecutive entries.

    Rows are grouped by their number of entries rounded up to a power of two and each group is
    one batched ``GᵀG`` over its rows zero-padded to that length: BLAS products instead of an
    R×R outer product per entry (about 20 times faster at R = 32), at most twice the entries'
    size in padding, and the batch's Grams cut to fit ``budget`` bytes.
    """
    n, rank = g.shape
    padded = torch.cat([g, g.new_zeros(1, rank)])  # row n: the zero the padding points at
    counts = crow[1:] - crow[:-1]
    bucket = torch.zeros_like(counts)
    occupied = counts > 0
    bucket[occupied] = torch.ceil(torch.log2(counts[occupied].to(torch.float64))).long() + 1
    max_rows = max(1, budget // (rank * rank * g.element_size()))
    for b in torch.unique(bucket[occupied]).tolist():
        length = 1 << (b - 1)
        offsets = torch.arange(length, device=g.device)
        members = torch.nonzero(bucket == b).squeeze(1)
        per_row = length * rank * g.element_size()
        for rows in members.split(max(1, min(max_rows, budget // per_row))):
            idx = crow[rows, None] + offsets
            idx = torch.where(offsets < counts[rows, None], idx, n)
            block = padded.index_select(0, idx.reshape(-1)).view(rows.shape[0], length, rank)
            out.index_add_(0, rows, torch.bmm(block.transpose(1, 2), block))


def implicit_sq_error(
    tensor: SparseTensorData, factors: Sequence[torch.Tensor], confidence: float
) -> float:
    """``Σ_all cells (p − x̂)² + Σ_stored confidence·x_e (1 − x̂_e)²``, ``p`` = 1 where stored.

    The all-cells sum is ``nnz − 2 Σ_stored x̂_e + 1ᵀ(⊛_k A_kᵀA_k)1``: only the stored entries
    are visited, chunk by chunk in storage order.
    """
    pred_sum = 0.0
    weighted = 0.0
    for start, stop, _, pred in _stored_predictions(tensor, factors):
        r = 1.0 - pred
        pred_sum += float(pred.sum())
        weighted += float(torch.dot(tensor.values[start:stop] * r, r))
    model_sq = float(gram_hadamard(factors).sum())
    # Cancellation can leave a tiny negative number when the presence fit is exact.
    return max(tensor.nnz - 2.0 * pred_sum + model_sq, 0.0) + confidence * weighted
