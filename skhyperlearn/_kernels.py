"""Sparse tensor kernels over the stored entries, in torch.

Everything here works on the coordinates and values of the stored entries and on the factor
matrices; no dense tensor, unfolding or Khatri–Rao product is ever formed. Work over the entries
is chunked so that the largest temporary is ``chunk_size × R`` numbers whatever the tensor size.

For each mode the entries are kept sorted by that mode's index, split into chunks, and each chunk
carries a CSR matrix (rows = that mode's indices in the chunk, columns = the chunk's entries). A
mode-k pass is then: gather the other modes' factor rows, multiply, and one sparse-times-dense
product, which is the fastest scatter-add torch offers on CPU and GPU alike.

These kernels know nothing of graphs, networks or estimators.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "SparseTensorData",
    "cp_values",
    "gram_hadamard",
    "hypergraph_sq_error",
    "inner_product",
    "mode_normal_equations",
    "mttkrp",
    "observed_sq_error",
]

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


def _chunk_entries(width: int, itemsize: int, chunk_bytes: int) -> int:
    """Entries per chunk so that a ``(chunk, width)`` temporary stays within ``chunk_bytes``."""
    return max(1024, chunk_bytes // max(1, width * itemsize))


@dataclass
class _Chunk:
    """A run of entries sorted by one mode, with its scatter matrix."""

    row_start: int
    row_stop: int
    coords: torch.Tensor  # (K, n) int64, sorted by the mode; one contiguous row per mode
    values: torch.Tensor  # (n,)
    crow: torch.Tensor  # CSR row pointer, rows local to [row_start, row_stop)
    col: torch.Tensor  # CSR column indices (0..n-1)

    def scatter(self, weights: torch.Tensor) -> torch.Tensor:
        """The CSR matrix ``S`` with ``S[i - row_start, e] = weights[e]`` for entry e in row i."""
        n_rows = self.row_stop - self.row_start
        return _sparse_csr(self.crow, self.col, weights, (n_rows, weights.shape[0]))


class SparseTensorData:
    """Stored entries of a sparse K-th order tensor, laid out for the kernels.

    Parameters
    ----------
    coords : torch.Tensor of shape (nnz, K) or (K, nnz) with ``transposed=True``, int64
        Coordinates of the stored entries (duplicates must already be summed). They are kept as
        one contiguous index vector per mode, the layout gathers are fastest on.
    values : torch.Tensor of shape (nnz,)
        Their values, in the working dtype.
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
        self.coords_t = (coords if transposed else coords.T).contiguous()
        self.values = values
        self.shape = tuple(int(s) for s in shape)
        self.chunk_bytes = int(chunk_bytes)
        self._layouts: dict[int, list[_Chunk]] = {}
        # Gather buffers reused across chunks and passes, one pair per thread (the parallel
        # schedule runs passes concurrently): fresh multi-MB temporaries cost page faults.
        self._workspaces: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.norm_sq = float(torch.dot(values, values)) if values.numel() else 0.0

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
        """Build from ``(nnz, K)`` integer coordinates and ``(nnz,)`` values held in numpy."""
        c = torch.as_tensor(np.ascontiguousarray(coords, dtype=np.int64), device=device)
        v = torch.as_tensor(np.ascontiguousarray(values), device=device).to(dtype)
        return cls(c, v, shape, chunk_bytes)

    @property
    def coords(self) -> torch.Tensor:
        """The ``(nnz, K)`` coordinates (a view)."""
        return self.coords_t.T

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
        """A copy on ``device`` (layouts are rebuilt there lazily)."""
        device = torch.device(device)
        if device == self.device:
            return self
        return SparseTensorData(
            self.coords_t.to(device),
            self.values.to(device),
            self.shape,
            self.chunk_bytes,
            transposed=True,
        )

    def layout(self, mode: int, width: int) -> list[_Chunk]:
        """The entries sorted by ``mode`` in chunks sized for ``width`` numbers per entry.

        The sort is done once per mode; the chunking is redone only when a wider pass needs
        smaller chunks.
        """
        n_per = _chunk_entries(width, self.values.element_size(), self.chunk_bytes)
        cached = self._layouts.get(mode)
        if cached is not None and all(c.coords.shape[0] <= n_per for c in cached):
            return cached
        order = torch.argsort(self.coords_t[mode], stable=True)
        coords = self.coords_t.index_select(1, order)
        values = self.values.index_select(0, order)
        chunks = []
        for start in range(0, self.nnz, n_per):
            stop = min(start + n_per, self.nnz)
            c = coords[:, start:stop].contiguous()
            rows = c[mode]
            row_start = int(rows[0])
            row_stop = int(rows[-1]) + 1
            local = rows - row_start
            counts = torch.bincount(local, minlength=row_stop - row_start)
            crow = torch.zeros(row_stop - row_start + 1, dtype=torch.int64, device=self.device)
            torch.cumsum(counts, 0, out=crow[1:])
            col = torch.arange(stop - start, dtype=torch.int64, device=self.device)
            chunks.append(_Chunk(row_start, row_stop, c, values[start:stop], crow, col))
        self._layouts[mode] = chunks
        return chunks


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
    """Two ``(n, width)`` buffers of this thread, grown when a pass needs more."""
    key = threading.get_ident()
    bufs = tensor._workspaces.get(key)
    if bufs is None or bufs[0].numel() < n * width:
        # A layout's first chunk is its largest, so one allocation serves the whole pass.
        bufs = tuple(
            torch.empty(n * width, dtype=tensor.dtype, device=tensor.device) for _ in range(2)
        )
        tensor._workspaces[key] = bufs
    return bufs[0][: n * width].view(n, width), bufs[1][: n * width].view(n, width)


def _gather_product_into(
    coords: torch.Tensor,
    factors: Sequence[torch.Tensor],
    skip: int,
    out: torch.Tensor,
    tmp: torch.Tensor,
) -> torch.Tensor:
    """:func:`_gather_product` written into preallocated ``out`` (using ``tmp``)."""
    first = True
    for j, a in enumerate(factors):
        if j == skip:
            continue
        if first:
            torch.index_select(a, 0, coords[j], out=out)
            first = False
        else:
            torch.index_select(a, 0, coords[j], out=tmp)
            out.mul_(tmp)
    return out


def gram_hadamard(factors: Sequence[torch.Tensor], skip: int | None = None) -> torch.Tensor:
    """``⊛_{j≠skip} A_jᵀ A_j``: the R×R Gram of the Khatri–Rao product, without forming it."""
    out = None
    for j, a in enumerate(factors):
        if j == skip:
            continue
        g = a.T @ a
        out = g if out is None else out * g
    return out


def mttkrp(
    tensor: SparseTensorData,
    factors: Sequence[torch.Tensor],
    mode: int,
) -> torch.Tensor:
    """``X_(k) Ω_k``, the matricized tensor times Khatri–Rao product, for ``mode`` k.

    One pass over the stored entries: gather the other modes' rows, multiply, scatter-add.
    """
    rank = factors[(mode + 1) % len(factors)].shape[1]
    out = torch.zeros(tensor.shape[mode], rank, dtype=tensor.dtype, device=tensor.device)
    for chunk in tensor.layout(mode, rank):
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


def inner_product(tensor: SparseTensorData, factors: Sequence[torch.Tensor]) -> float:
    """``⟨X, [[A]]⟩`` over the stored entries."""
    total = 0.0
    rank = factors[0].shape[1]
    step = _chunk_entries(rank, tensor.values.element_size(), tensor.chunk_bytes)
    for start in range(0, tensor.nnz, step):
        stop = min(start + step, tensor.nnz)
        v = _gather_product(tensor.coords_t[:, start:stop], factors, None).sum(1)
        total += float(torch.dot(v, tensor.values[start:stop]))
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
    """``Σ_{e stored} (x_e − prediction_e)²``: the completion (masked) loss."""
    r = observed_residuals(tensor, factors, biases, mean)
    return float(torch.dot(r, r))


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
    grams = torch.zeros(n, width * width, dtype=tensor.dtype, device=tensor.device)
    target_sq = 0.0
    for chunk in tensor.layout(mode, width * width):
        h = _gather_product(chunk.coords, factors, mode)
        if with_bias:
            h = torch.cat([h, torch.ones_like(h[:, :1])], 1)
        y = chunk.values - _entry_offsets(chunk.coords, biases, mean, skip=mode).to(h.dtype)
        rows = slice(chunk.row_start, chunk.row_stop)
        rhs[rows] += chunk.scatter(y) @ h
        if return_target_sq:
            target_sq += float(torch.dot(y, y))
        outer = (h[:, :, None] * h[:, None, :]).reshape(h.shape[0], width * width)
        grams[rows] += chunk.scatter(torch.ones_like(y)) @ outer
    if return_target_sq:
        return rhs, grams.reshape(n, width, width), target_sq
    return rhs, grams.reshape(n, width, width)
