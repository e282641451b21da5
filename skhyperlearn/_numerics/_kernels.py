"""Sparse tensor kernels over the stored entries, in torch.

Everything here works on the coordinates and values of the stored entries and on the factor
matrices; no dense tensor, unfolding or Khatri–Rao product is ever formed. Work over the entries
is chunked so that the largest temporary is ``chunk_size × R`` numbers whatever the tensor size.

The entries are read from :class:`._layout.SparseTensorData` (held once, a permutation per
mode, chunks gathered on visit). A mode-k pass is: gather the other modes' factor rows,
multiply, and one sparse-times-dense product, which is the fastest scatter-add torch offers on
CPU and GPU alike. Each public pass here is also the dispatch: it first tries the compiled
pass of :mod:`._cpu` (``fused_*``, None where it does not apply) and otherwise runs the torch
loop below, on any device.

These kernels know nothing of graphs, networks or estimators.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._cpu._fused import (
    fused_implicit,
    fused_implicit_apply,
    fused_implicit_rhs_diag,
    fused_implicit_value,
    fused_mttkrp,
)
from ._layout import DEFAULT_CHUNK_BYTES, SparseTensorData, chunk_entries

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

#: Rows of the other factors gathered per block into the second gather buffer, in bytes.
_GATHER_BLOCK_BYTES = 2**20


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
    two of them and must be woken, and on a shared machine a busy core holds the product up:
    the wake-up costs more than a product this small on one thread. Larger products, GPU
    tensors and anything that autograd records stay in torch.
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
    step = chunk_entries(rank, factors[0].element_size(), chunk_bytes)
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
    step = chunk_entries(rank, tensor.values.element_size(), tensor.chunk_bytes)
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
    are visited. On the CPU one compiled pass gives the stored entries' share
    (:func:`implicit_stored_value` in mode 0); elsewhere torch's chunks in storage order. J is
    asked for every round and, for a projection's term, at every mode solve that does not
    involve it, where torch's gather of each chunk's factor rows cost more than the solve.
    """
    model_sq = float(gram_hadamard(factors).sum())
    stored = fused_implicit_value(tensor, factors, 0, confidence, factors[0])
    if stored is not None:
        # Cancellation can leave a tiny negative number when the fit is exact.
        return max(tensor.nnz + confidence * tensor.value_sum + stored + model_sq, 0.0)
    pred_sum = 0.0
    weighted = 0.0
    for start, stop, _, pred in _stored_predictions(tensor, factors):
        r = 1.0 - pred
        pred_sum += float(pred.sum())
        weighted += float(torch.dot(tensor.values[start:stop] * r, r))
    # Cancellation can leave a tiny negative number when the presence fit is exact.
    return max(tensor.nnz - 2.0 * pred_sum + model_sq, 0.0) + confidence * weighted
