"""The stored entries of a sparse tensor, laid out once for every pass over them.

The entries are held once: one ``(K, nnz)`` index array (the caller's int32 or int64 one when it
already has that layout, else a copy in the narrowest integer type that holds every mode, int32
below 2^31) and the values, in storage order. A mode-k pass needs the entries
grouped by mode k's index, so each mode whose indices are not already sorted gets a stable
permutation (int32 below 2^31 entries) and every mode a row pointer over its ``N_k`` indices;
a chunk of mode k's order is gathered from the single copy into per-thread buffers when it is
visited, and carries a CSR matrix (rows = mode k's indices in the chunk, columns = the chunk's
entries).
Memory is at most ``K·4 + 8`` bytes per entry for the copy (none when the coordinates and values
are the caller's) plus 4 per permuted mode, instead of a sorted copy of everything per mode.

The passes over this layout live in :mod:`._kernels` (torch, any device) and :mod:`._cpu`
(compiled CPU passes); they read it through its public methods only.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DEFAULT_CHUNK_BYTES", "SparseTensorData", "chunk_entries", "index_dtype"]

#: Budget in bytes for the largest temporary built from a chunk of entries.
DEFAULT_CHUNK_BYTES = 64 * 2**20

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


def chunk_entries(width: int, itemsize: int, chunk_bytes: int) -> int:
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
        rowptr = tensor.rowptr(mode)
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
        crow = t.rowptr(self.mode)[row_start : row_stop + 1].clamp(start, stop) - start
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
        self._memo: dict = {}  # small per-mode data of the compiled passes (see .memo)
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
                            rows, self.rowptr(mode), self.chunk_bytes, index_dtype(self.nnz)
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

    def in_mode_order(self, mode: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
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

    def rowptr(self, mode: int) -> torch.Tensor:
        """``rowptr[i]`` = number of entries whose ``mode`` index is below i (int64)."""
        ptr = self._rowptrs.get(mode)
        if ptr is None:
            counts = torch.bincount(self.coords_t[mode], minlength=self.shape[mode])
            ptr = torch.zeros(self.shape[mode] + 1, dtype=torch.int64, device=self.device)
            torch.cumsum(counts, 0, out=ptr[1:])
            self._rowptrs[mode] = ptr
        return ptr

    def memo(self, key: tuple, make):
        """The value kept under ``key``, built by ``make()`` on first use.

        The compiled passes keep small per-mode data here (how the rows are cut over threads),
        so it lives and dies with the entries it describes.
        """
        value = self._memo.get(key)
        if value is None:
            value = self._memo[key] = make()
        return value

    def layout(self, mode: int, width: int) -> _Layout:
        """The entries in ``mode``'s order in chunks sized for ``width`` numbers per entry.

        The sort is done once per mode; chunks are gathered from the single copy when visited.
        """
        n_per = chunk_entries(width, self.values.element_size(), self.chunk_bytes)
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
