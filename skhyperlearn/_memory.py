"""How much memory a fit needs, estimated before any work starts."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["UNLIMITED", "available_bytes", "estimate_fit_bytes", "format_bytes", "parse_bytes"]

#: ``max_memory=UNLIMITED`` turns the memory guard off (no limit, not even the machine's).
UNLIMITED = "unlimited"

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
# Resident memory the first optimizer step brings into a process whatever the data size (torch
# imports its compiler stack with the optimizer, and the autograd engine its workspaces);
# measured at 80-140 MiB on torch 2.13.
_HYPERLEARN_FIXED = 160 * 2**20


def parse_bytes(value, name: str = "max_memory") -> int:
    """``4_000_000_000``, ``"4GB"``, ``"512 MiB"`` or ``"1.5G"`` as a number of bytes."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes or a string like '4GB', got a bool.")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}.")
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", value, re.IGNORECASE)
        if match and float(match.group(1)) > 0:
            return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
        raise ValueError(f"{name}={value!r} is not a size such as '4GB', '512MiB' or 2**30.")
    raise TypeError(f"{name} must be a number of bytes or a string like '4GB', got {value!r}.")


def _read_int(path: str, field: str | None = None) -> int | None:
    """An integer from a /proc or /sys file (a ``field: N kB`` line when ``field``), or None."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    if field is not None:
        found = re.search(rf"^{field}:\s*(\d+)\s*kB", text, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else None
    text = text.strip()
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """What the process's memory cgroup (v2, else v1) still allows, or None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        # v1 writes a huge number for "no limit"; v2 writes "max" (not an integer).
        if limit is not None and usage is not None and limit < 2**60:
            return max(limit - usage, 0)
    return None


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable, bounded by its cgroup's limit.

    Falls back to the free physical pages (``os.sysconf``) where /proc/meminfo is missing,
    and to None (unknown: no check) where neither can be read.
    """
    room = _read_int("/proc/meminfo", "MemAvailable")
    if room is None:
        try:
            room = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            room = None
    cgroup = _cgroup_room()
    if cgroup is not None:
        room = cgroup if room is None else min(room, cgroup)
    return room


def format_bytes(n: float) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{int(n)} B"


def estimate_fit_bytes(
    shape: Sequence[int],
    nnz: int,
    rank: int,
    itemsize: int,
    *,
    loss_bytes: int,
    entrywise: bool = False,
    solver: str,
    concurrent: bool = False,
    chunk_bytes: int,
    laplacian_nnz: Sequence[int] = (),
    n_devices: int = 1,
    n_terms: int = 5,
    hidden: int = 32,
    n_steps: int = 10,
) -> int:
    """Peak bytes of a fit: the stored entries once, per-mode permutations, factors, buffers.

    The terms follow what the engine allocates: one copy of the stored entries (coordinates in
    the narrowest index type, int32 below 2^31, and the values, counted even when they are the
    caller's array), a permutation per mode except the first (the validated entries are in
    row-major order, so already sorted by mode 0), one copy of both per further device in use,
    a row pointer per mode, the chunk temporaries (bounded by ``chunk_bytes``: the gather
    buffers of each thread, the chunk's gathered indices and values, the chunked counting
    sort that builds a permutation, and a small tensor's sorted copies, a sixteenth of
    ``chunk_bytes`` per mode at most), the factors and their working copies, the loss's own
    buffers (``loss_bytes``: per-row Gram matrices for the observed loss), the Laplacians, and
    for the HyperLearn solver the activations autograd keeps for ``n_steps`` diffusion steps
    (the stacked Chebyshev terms and the LSTM gates). The largest transient over all entries
    is added once: sorting unsorted or duplicated input during validation, or, for an
    entry-wise loss (``entrywise``), the held-out split and the residual vectors.
    """
    order = len(shape)
    idx = 4 if max(shape, default=1) <= 2**31 - 1 else 8
    pidx = 4 if nnz <= 2**31 - 1 else 8
    entries = nnz * (order * idx + itemsize)
    perms = max(order - 1, 0) * nnz * pidx
    data = n_devices * (entries + perms)
    rowptrs = 16 * (sum(shape) + order)
    # Validation of unsorted input: linear index, its order, the sorted index, sort buffers.
    transient = 32 * nnz
    if entrywise:
        # A held-out split copies the training entries; the mean update forms residuals.
        transient = max(transient, entries + 24 * nnz)
    # Gather buffers (two per thread: one thread per mode when the schedule runs the modes of a
    # round at once, ``concurrent``), the chunk's indices and values, the scatter product, and
    # a permutation's sort buffers.
    threads = order if concurrent else 1
    chunk_work = (3 * threads + 3) * chunk_bytes
    factors = 6 * sum(shape) * rank * itemsize
    # The loss's own buffers (per-row Grams for the observed loss): Loss.buffer_bytes.
    solver_bufs = loss_bytes
    graphs = sum(n * (16 + itemsize) for n in laplacian_nnz)
    if solver == "hyperlearn":
        per_row = n_steps * (n_terms * rank + 8 * hidden + 2 * rank) + 4 * n_terms * rank
        solver_bufs = max(solver_bufs, 0) + 2 * max(shape) * per_row * itemsize
        # The parallel schedule trains every block at once.
        solver_bufs += sum(shape) * per_row * itemsize + _HYPERLEARN_FIXED
    return int(data + rowptrs + transient + chunk_work + factors + solver_bufs + graphs)
