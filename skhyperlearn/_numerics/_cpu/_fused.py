"""Fused CPU kernels: one compiled pass over the stored entries, no chunk buffers.

torch offers no fused gather–multiply–scatter: on the CPU a mode-k MTTKRP in torch is a gather
of each other mode's factor rows into an ``(entries, R)`` buffer, their product, and a sparse
product to scatter it, each a pass over memory. At 10^5 entries those passes, not arithmetic,
are most of a sweep. Compiled with numba (already installed: ``sparse`` is built on it), the
same MTTKRP walks mode k's order once, row by row, multiplies the other modes' factor rows in
registers and adds them to the row's result: nothing but the output is written. The implicit
loss's pass (:func:`fused_implicit`) is the same walk adding each entry's weighted product and
its outer product into the row's linear term and Gram.

Rows are independent, so the row range is cut into parts of about equal entries, one per torch
thread (``torch.get_num_threads()``, which users and benchmarks already set); the kernel
releases the GIL and the parts run on a shared thread pool, which is safe from the concurrent
mode passes of the parallel schedule (numba's own threading layers are not, on every machine).

Everything here is optional: each function returns None when numba cannot be imported,
the tensor is not on the CPU, or the dtypes differ, and :mod:`.._kernels` falls back to torch.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = [
    "available",
    "fused_coupled_cg",
    "fused_implicit",
    "fused_implicit_apply",
    "fused_implicit_cg",
    "fused_implicit_rhs_diag",
    "fused_implicit_value",
    "fused_mttkrp",
]

#: Multiply-adds of a part (entries × work per entry) below which handing a part to another
#: thread costs more than it saves: waking a thread has a fixed cost, which a part must
#: outweigh (at 10^5 entries and rank 10 a second part made the sweep slower, at 2·10^5 faster).
_MIN_PART_WORK = 2**19
#: Set to False to force the torch kernels (tests compare the two; see also ``available``).
ENABLED = True

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def available() -> bool:
    """Whether the fused kernels can run here: numba installed, not switched off by
    ``ENABLED = False`` or the environment variable ``SKHYPERLEARN_NO_NUMBA=1``."""
    return ENABLED and os.environ.get("SKHYPERLEARN_NO_NUMBA") != "1" and _has_numba()


@functools.cache
def _has_numba() -> bool:
    return importlib.util.find_spec("numba") is not None


def _kernels() -> dict:
    from ._fused_numba import ROWS

    return ROWS


def _forget_pool() -> None:
    # A forked child inherits the pool object but not its threads: it would wait forever.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="skhl-fused"
                )
    return _pool


def _parts(
    rowptr: np.ndarray, work_per_entry: int, n_threads: int, row_work: int = 0
) -> list[tuple[int, int]]:
    """Cut the rows into at most ``n_threads`` runs of about equal work: ``work_per_entry``
    per entry, plus ``row_work`` per row (kernels with dense work per row)."""
    if row_work:
        rowptr = rowptr * work_per_entry + np.arange(rowptr.shape[0]) * row_work
        work_per_entry = 1
    nnz = int(rowptr[-1])
    n_parts = max(1, min(n_threads, nnz * work_per_entry // _MIN_PART_WORK))
    if n_parts == 1:
        return [(0, rowptr.shape[0] - 1)]
    cuts = np.searchsorted(rowptr, np.linspace(0, nnz, n_parts + 1)[1:-1], side="left")
    bounds = np.unique(np.concatenate([[0], cuts, [rowptr.shape[0] - 1]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _applies(tensor, factors: Sequence[torch.Tensor]) -> bool:
    if not available() or tensor.device.type != "cpu" or tensor.order not in (2, 3, 4):
        return False
    dtype = tensor.dtype
    if dtype not in (torch.float32, torch.float64) or any(
        a.dtype != dtype or a.device.type != "cpu" for a in factors
    ):
        return False
    # A caller that differentiates through the pass needs torch's kernels.
    return not (torch.is_grad_enabled() and any(a.requires_grad for a in factors))


def _mode_inputs(tensor, factors, mode: int, pad: int = 0) -> tuple[tuple, list]:
    """``(values, order, rowptr)`` of ``mode``'s walk over ``tensor`` and the other modes'
    ``[c_1, A_1, …]`` (numpy views), padded with empty pairs up to ``pad`` pairs."""
    coords, values, order = tensor.in_mode_order(mode)
    order_np = np.empty(0, dtype=np.int32) if order is None else order.numpy()
    others: list[np.ndarray] = []
    for j, a in enumerate(factors):
        if j != mode:
            others += [coords[j].numpy(), np.ascontiguousarray(a.detach().numpy())]
    while len(others) < 2 * pad:
        others += [np.empty(0, dtype=others[0].dtype), np.empty((0, 0), dtype=others[1].dtype)]
    return (values.numpy(), order_np, tensor.rowptr(mode).numpy()), others


def _run_split(kernel, parts: list[tuple[int, int]], before: tuple, after: tuple) -> None:
    """``kernel(*before, lo, hi, *after)`` for each ``(lo, hi)`` of ``parts`` on the shared
    pool (the calling thread takes the first)."""
    if len(parts) == 1:
        kernel(*before, *parts[0], *after)
        return
    pool = _executor()
    futures = [pool.submit(kernel, *before, lo, hi, *after) for lo, hi in parts[1:]]
    kernel(*before, *parts[0], *after)
    for f in futures:
        f.result()


def _split(tensor, mode: int, rowptr, work_per_entry: int, row_work: int = 0):
    """:func:`_parts` of ``tensor``'s rows in ``mode``, kept with the tensor."""
    key = ("parts", mode, work_per_entry, torch.get_num_threads())
    if row_work:
        key = (*key, row_work)
    return tensor.memo(key, lambda: _parts(rowptr, work_per_entry, key[3], row_work))


def _run_by_rows(
    kernel, tensor, factors, mode: int, outputs: tuple, work_per_entry: int, pad: int = 0,
    row_work: int = 0, packed: bool = False,
):  # fmt: skip
    """``kernel(values, order, rowptr, lo, hi, *outputs, c_1, A_1, …)`` over the rows of
    ``mode``, cut into parts run on the shared pool (the calling thread takes the first).
    ``pad``: empty ``c_j``/``A_j`` pairs are appended up to that many pairs; ``packed``: the
    pairs go as one tuple, ``kernel(…, *outputs, (c_1, A_1, …))``; ``row_work``: see
    :func:`_parts`."""
    head, others = _mode_inputs(tensor, factors, mode, pad)
    parts = _split(tensor, mode, head[2], work_per_entry, row_work)
    _run_split(kernel, parts, head, (*outputs, tuple(others)) if packed else (*outputs, *others))


def _rank(factors: Sequence[torch.Tensor], mode: int) -> int:
    return factors[(mode + 1) % len(factors)].shape[1]


def _np_dtype(tensor) -> np.dtype:
    return np.float32 if tensor.dtype == torch.float32 else np.float64


def fused_mttkrp(tensor, factors: Sequence[torch.Tensor], mode: int) -> torch.Tensor | None:
    """``X_(k) Ω_k`` in one compiled pass, or None where the fused kernel does not apply.

    ``tensor`` is a :class:`.._layout.SparseTensorData`. Sums are taken in the mode's order
    entry by entry, so results equal the torch kernel's to round-off, not bit for bit.
    """
    if not _applies(tensor, factors):
        return None
    rank = _rank(factors, mode)
    out = np.zeros((tensor.shape[mode], rank), dtype=_np_dtype(tensor))
    _run_by_rows(_kernels()[tensor.order], tensor, factors, mode, (out,), rank)
    return torch.from_numpy(out)


def fused_implicit(
    tensor, factors: Sequence[torch.Tensor], mode: int, confidence: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The implicit loss's stored-entry normal equations in one compiled pass, or None.

    ``linear[i] = Σ_{e_k=i} (1 + c·x_e) h_e`` and ``grams[i] = Σ_{e_k=i} c·x_e h_e h_eᵀ`` with
    ``h_e`` the product of the other modes' rows (see
    :func:`.._kernels.implicit_normal_equations`, which tries this first).
    """
    if not _applies(tensor, factors):
        return None
    from ._fused_numba import IMPLICIT_ROWS

    rank = _rank(factors, mode)
    n = tensor.shape[mode]
    dtype = _np_dtype(tensor)
    linear = np.zeros((n, rank), dtype=dtype)
    grams = np.zeros((n, rank, rank), dtype=dtype)
    outputs = (dtype(confidence), linear, grams)
    # About R² multiply-adds per entry (the Gram's outer product), R more for the linear term.
    _run_by_rows(IMPLICIT_ROWS[tensor.order], tensor, factors, mode, outputs, rank * (rank + 2))
    return torch.from_numpy(linear), torch.from_numpy(grams)


# The matrix-free mode solve of the implicit loss (kernels in ._fused_cg_numba): O(R) work per
# stored entry and pass, no per-row Gram.


def _run_rows(name, tensor, factors, mode: int, outputs: tuple, work_per_entry: int, row_work=0):
    from . import _fused_cg_numba

    kernel = getattr(_fused_cg_numba, name)
    _run_by_rows(kernel, tensor, factors, mode, outputs, work_per_entry, 0, row_work, packed=True)


def fused_implicit_rhs_diag(tensor, factors, mode: int, confidence: float):
    """``linear[i] = Σ_{e_k=i} (1 + w_e) h_e`` and ``dsum[i] = Σ_{e_k=i} w_e h_e²`` (the Jacobi
    diagonal's stored share) in one compiled pass, or None where it does not apply."""
    if not _applies(tensor, factors):
        return None
    n, rank = tensor.shape[mode], _rank(factors, mode)
    dtype = _np_dtype(tensor)
    linear, dsum = np.zeros((n, rank), dtype=dtype), np.zeros((n, rank), dtype=dtype)
    _run_rows("row_rhs_diag", tensor, factors, mode, (dtype(confidence), linear, dsum), 3 * rank)
    return torch.from_numpy(linear), torch.from_numpy(dsum)


def fused_implicit_apply(tensor, factors, mode: int, confidence: float, y: torch.Tensor):
    """``out[i] = Σ_{e_k=i} w_e (h_eᵀ y_i) h_e`` in one compiled pass, or None."""
    if not _applies(tensor, [*factors, y]):
        return None
    dtype = _np_dtype(tensor)
    out = np.zeros(tuple(y.shape), dtype=dtype)
    y_np = np.ascontiguousarray(y.detach().numpy())
    rank = y.shape[1]
    _run_rows("row_apply", tensor, factors, mode, (dtype(confidence), y_np, out), 3 * rank)
    return torch.from_numpy(out)


def fused_implicit_value(tensor, factors, mode: int, confidence: float, a: torch.Tensor):
    """``Σ_e (w_e t_e² − 2(1 + w_e) t_e)`` with ``t_e = h_eᵀ a_{e_k}``, or None."""
    if not _applies(tensor, [*factors, a]):
        return None
    dtype = _np_dtype(tensor)
    out = np.zeros(tensor.shape[mode], dtype=np.float64)
    a_np = np.ascontiguousarray(a.detach().numpy())
    outputs = (dtype(confidence), a_np, out)
    _run_rows("row_value", tensor, factors, mode, outputs, 2 * a.shape[1])
    return float(out.sum())


def fused_implicit_cg(
    tensor, factors, mode: int, confidence: float, system, x0, steps: int, jacobi: bool
):
    """Per-row CG (Jacobi-preconditioned with ``jacobi``) on the implicit loss's mode systems,
    or None.

    ``system = (dense, ws, tol)``: row i's system is
    ``A_i x_i = (dense + ws·Σ_{e_k=i} w_e h_e h_eᵀ) x_i = ws·Σ_{e_k=i} (1 + w_e) h_e = b_i``; at
    most ``steps`` steps from ``x0`` (not modified), a row stopping once its residual is below
    ``tol`` times its first. Returns the solution and ``f[i] = ½ x_iᵀA_i x_i − b_iᵀx_i``.
    """
    dense, ws, tol = system
    part = (tensor, factors, mode, confidence, ws)
    return fused_coupled_cg([part], (dense, tol), x0, steps, jacobi)


def fused_coupled_cg(parts, system, x0, steps: int, jacobi: bool):
    """:func:`fused_implicit_cg` on the sum of several implicit terms of one factor matrix, or
    None where a part's compiled pass does not apply.

    ``parts``: ``(tensor, factors, mode, confidence, ws)`` each (its entries, its factors, the
    solved matrix's mode in it, its weights ``w_e = confidence·x_e``, its weight ``ws``);
    ``system = (dense, tol)``: row i's system is ``(dense + Σ_p ws_p Σ_{e_k=i} w_e h_e h_eᵀ) x_i
    = Σ_p ws_p Σ_{e_k=i} (1 + w_e) h_e``, one CG per row over every part's entries of the row
    (their products cached together), no per-part ``N × R`` buffer.
    """
    dense, tol = system
    if not parts or not all(_applies(t, [*fs, x0, dense]) for t, fs, *_ in parts):
        return None
    dtype = _np_dtype(parts[0][0])
    x = np.array(x0.detach().numpy(), dtype=dtype, order="C", copy=True)
    f = np.zeros(x.shape[0], dtype=np.float64)
    d = np.ascontiguousarray(dense.detach().numpy())
    from ._fused_cg_numba import CACHE_BYTES, row_cg

    rank, passes = x.shape[1], int(steps) + 1
    inputs = [_mode_inputs(t, fs, k) for t, fs, k, *_ in parts]
    compiled = tuple(
        (*head, dtype(conf), dtype(ws), tuple(others))
        for (head, others), (*_, conf, ws) in zip(inputs, parts, strict=True)
    )
    # A row's dense R × R product per step costs about 8 times an entry's R-vector work per
    # multiply-add (measured on Last.fm's artists, R = 32: 1.9 µs per row against 23 ns per
    # entry); weighed as equal, the rows split unevenly (13 against 22 ms on two threads).
    work = (3 * rank * passes, 8 * rank * rank * passes)
    if len(parts) == 1:
        total = inputs[0][0][2]
        split = _split(parts[0][0], parts[0][2], total, *work)
    else:
        total = np.sum([head[2] for head, _ in inputs], axis=0, dtype=np.int64)
        split = _parts(total, work[0], torch.get_num_threads(), work[1])
    after = (d, dtype(tol), int(steps), bool(jacobi), int(CACHE_BYTES), x, f)
    _run_split(row_cg, split, (compiled, total), after)
    return torch.from_numpy(x), torch.from_numpy(f)
