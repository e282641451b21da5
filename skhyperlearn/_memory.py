"""How much memory a fit needs, estimated before any work starts."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["estimate_fit_bytes", "format_bytes", "parse_bytes"]

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
    solver: str,
    chunk_bytes: int,
    laplacian_nnz: Sequence[int] = (),
    n_devices: int = 1,
    n_terms: int = 5,
    hidden: int = 32,
    n_steps: int = 10,
) -> int:
    """Peak bytes of a fit: stored entries × modes, per-mode layouts, factors, solver buffers.

    The terms follow what the engine allocates: the coordinates and values of the stored
    entries (one copy per device in use), a sorted copy of them per mode (coordinates,
    values and scatter indices), the chunk temporaries (bounded by ``chunk_bytes`` each, a few
    alive at once), the factors and their working copies, the loss's own buffers
    (``loss_bytes``: per-row Gram matrices for the observed loss), the Laplacians, and for the
    HyperLearn solver the activations autograd keeps for ``n_steps`` diffusion steps (the
    stacked Chebyshev terms and the LSTM gates).
    """
    order = len(shape)
    entries = nnz * (order * 8 + itemsize)
    # The validated numpy copy stays alive through the fit, and building a mode's layout holds
    # the sort permutation and the sorted copy while its chunks are cut.
    validated = nnz * (order * 8 + itemsize)
    sorting = nnz * (order * 8 + itemsize + 8)
    layouts = order * nnz * (order * 8 + itemsize + 8)
    # Per mode and its chunks: the gathered product, its copy for the scatter, the output rows.
    chunk_work = 4 * chunk_bytes
    factors = 6 * sum(shape) * rank * itemsize
    # The loss's own buffers (per-row Grams for the observed loss): Loss.buffer_bytes.
    solver_bufs = loss_bytes
    graphs = sum(n * (16 + itemsize) for n in laplacian_nnz)
    if solver == "hyperlearn":
        per_row = n_steps * (n_terms * rank + 8 * hidden + 2 * rank) + 4 * n_terms * rank
        solver_bufs = max(solver_bufs, 0) + 2 * max(shape) * per_row * itemsize
        # The parallel schedule trains every block at once.
        solver_bufs += sum(shape) * per_row * itemsize + _HYPERLEARN_FIXED
    return int(
        n_devices * entries
        + validated
        + sorting
        + layouts
        + chunk_work
        + factors
        + solver_bufs
        + graphs
    )
