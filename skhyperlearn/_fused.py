"""Fused CPU kernels: one compiled pass over the stored entries, no chunk buffers.

torch offers no fused gather–multiply–scatter: on the CPU a mode-k MTTKRP in torch is a gather
of each other mode's factor rows into an ``(entries, R)`` buffer, their product, and a sparse
product to scatter it, each a pass over memory. At 10^5 entries those passes, not arithmetic,
are most of a sweep. Compiled with numba (already installed: ``sparse`` is built on it), the
same MTTKRP walks mode k's order once, row by row, multiplies the other modes' factor rows in
registers and adds them to the row's result: nothing but the output is written.

Rows are independent, so the row range is cut into parts of about equal entries, one per torch
thread (``torch.get_num_threads()``, which users and benchmarks already set); the kernel
releases the GIL and the parts run on a shared thread pool, which is safe from the concurrent
mode passes of the parallel schedule (numba's own threading layers are not, on every machine).

Everything here is optional: :func:`fused_mttkrp` returns None when numba cannot be imported,
the tensor is not on the CPU, or the dtypes differ, and :mod:`._kernels` falls back to torch.
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

__all__ = ["available", "fused_mttkrp"]

#: Multiply-adds (entries × rank) of a part: about half a millisecond of the kernel, below
#: which handing a part to another thread costs more than it saves (at 10^5 entries and rank
#: 10 a second part made the sweep slower; at 2·10^5 it made the pass 1.1–1.4 times faster).
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


def _parts(rowptr: np.ndarray, rank: int, n_threads: int) -> list[tuple[int, int]]:
    """Cut the rows into at most ``n_threads`` runs of about equal numbers of entries."""
    nnz = int(rowptr[-1])
    n_parts = max(1, min(n_threads, nnz * rank // _MIN_PART_WORK))
    if n_parts == 1:
        return [(0, rowptr.shape[0] - 1)]
    cuts = np.searchsorted(rowptr, np.linspace(0, nnz, n_parts + 1)[1:-1], side="left")
    bounds = np.unique(np.concatenate([[0], cuts, [rowptr.shape[0] - 1]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def fused_mttkrp(tensor, factors: Sequence[torch.Tensor], mode: int) -> torch.Tensor | None:
    """``X_(k) Ω_k`` in one compiled pass, or None where the fused kernel does not apply.

    ``tensor`` is a :class:`._kernels.SparseTensorData`. Sums are taken in the mode's order
    entry by entry, so results equal the torch kernel's to round-off, not bit for bit.
    """
    if not available() or tensor.device.type != "cpu" or tensor.order not in (2, 3, 4):
        return None
    dtype = tensor.dtype
    if dtype not in (torch.float32, torch.float64) or any(
        a.dtype != dtype or a.device.type != "cpu" for a in factors
    ):
        return None
    if torch.is_grad_enabled() and any(a.requires_grad for a in factors):
        return None  # the caller differentiates through the product: torch's kernels
    kernel = _kernels()[tensor.order]
    rank = factors[(mode + 1) % len(factors)].shape[1]
    coords, values, order = tensor.in_mode_order(mode)
    order_np = np.empty(0, dtype=np.int32) if order is None else order.numpy()
    others: list[np.ndarray] = []
    for j, a in enumerate(factors):
        if j != mode:
            others += [coords[j].numpy(), np.ascontiguousarray(a.detach().numpy())]
    rowptr = tensor._rowptr(mode).numpy()
    out = np.zeros((tensor.shape[mode], rank), dtype=others[1].dtype)
    key = ("parts", mode, rank, torch.get_num_threads())
    parts = tensor._cache.get(key)
    if parts is None:
        parts = tensor._cache[key] = _parts(rowptr, rank, key[-1])
    head = (values.numpy(), order_np, rowptr)
    if len(parts) == 1:
        kernel(*head, 0, tensor.shape[mode], out, *others)
    else:
        pool = _executor()
        futures = [pool.submit(kernel, *head, lo, hi, out, *others) for lo, hi in parts[1:]]
        kernel(*head, *parts[0], out, *others)
        for f in futures:
            f.result()
    return torch.from_numpy(out)
