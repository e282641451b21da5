"""A mode's rows split over the ranks of the sharded schedule: each rank solves a block of them.

With the entries sharded, every rank used to solve every row of a mode from the same reduced
sums: the passes over the entries fell as 1/W, the solves did not, and at a large mode's size
the solves set the round. Here rank r owns rows ``[r·b, (r + 1)·b)`` (``b = ⌈N/W⌉``; the last
blocks may be short or empty). The stored entries' partial sums go to the rows' owners with one
``reduce_scatter`` (half the bytes of the ``all_reduce`` it replaces), each rank solves its
block (the solves of :mod:`.losses` are written over "the rows this process holds":
:class:`~.._numerics._rows.AllRows`), and one ``all_gather`` gives every rank the new factor
matrix, which its entries' next pass needs whole. Inside a coupled solve (a graph, or the
implicit loss's CG) each CG step gathers its direction (an N × R block: the Laplacian's rows and
the stored entries touch every row) and sums its inner products (a few numbers).

Which solves are split over two ranks or more (:func:`solve_rows`): those without a graph and
the implicit loss's CG always (their messages are no larger than the replicated solve's); an
exact solve coupled by a graph when its mode holds at least :data:`SPLIT_MIN_CELLS` numbers
(N·R), where a CG step's arithmetic outweighs the gather it adds. Below that the mode's partial
sums are all-reduced and every rank solves all its rows (:class:`ReplicatedRows`), the
per-modality ownership that pays for small modes. ``SKHYPERLEARN_SPLIT_SOLVES=all`` or
``none`` overrides the rule (tests, benchmarks, a network whose latency or bandwidth the rule's
assumptions do not fit).
"""

from __future__ import annotations

import os
import warnings

import torch

from .._numerics._rows import AllRows, LaplacianRows, laplacian_scale
from .._numerics._sparse import csr_diagonal

__all__ = [
    "SPLIT_MIN_CELLS", "ReplicatedRows", "RowBlock", "solve_rows", "split_gram_hadamard",
    "split_policy",
]  # fmt: skip

#: An exact mode solve coupled by a graph is split over the ranks from this many numbers (N·R)
#: up. Not tuned: from the cost of one CG step, about (2·degree + 10) flops per number (30 at
#: degree 10, 15–30 ms on one core at 2^20 numbers), against what splitting adds to the step,
#: three collectives (≤ 3 ms at the 0.5–0.9 ms each measured between two gloo ranks on one
#: machine) and a gather of 8 bytes per number ((W − 1)/W of 8 MB: ≤ 8 ms at 1 GB/s).
SPLIT_MIN_CELLS = 2**20
_POLICIES = ("auto", "all", "none")


def split_policy() -> str:
    """``SKHYPERLEARN_SPLIT_SOLVES`` (``auto`` when unset); a clear error for another value."""
    policy = os.environ.get("SKHYPERLEARN_SPLIT_SOLVES", "auto")
    if policy not in _POLICIES:
        raise ValueError(
            f"SKHYPERLEARN_SPLIT_SOLVES={policy!r} is not one of {list(_POLICIES)} (which mode "
            "solves the sharded schedule splits over the ranks)."
        )
    return policy


class RowBlock(AllRows):
    """This rank's block of a mode's ``n`` rows; the hooks of :class:`AllRows` as collectives.

    ``comm`` is the fit's :class:`~._shard_comm.ShardComm` (its failures are raised as
    :class:`~._distributed.DistributedFault`).
    """

    whole = False

    def __init__(self, comm, n: int, mode: int) -> None:
        self.comm, self.n, self.mode = comm, n, mode
        # At least one row per block: collectives of empty buffers are not portable.
        self.size = max(1, -(-n // comm.world_size))
        self.start = min(comm.rank * self.size, n)
        self.stop = min(self.start + self.size, n)
        self._laplacians: dict[int, tuple[torch.Tensor, LaplacianRows]] = {}

    def count(self, n: int) -> int:
        return self.stop - self.start

    def local(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[self.start : self.stop]

    def gather(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        return self.comm.gather_rows(t, self.size, self.n, f"mode {self.mode}'s rows", self.mode)

    def scatter_sum(self, t: torch.Tensor, what: str) -> torch.Tensor:
        """This block's rows of ``t`` (one row per row of the mode) summed over the ranks."""
        what = f"mode {self.mode}'s {what}"
        return self.comm.scatter_sum(t, self.size, self.stop - self.start, what, self.mode)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        (out,), _ = self.comm.sum([t], [], f"mode {self.mode}'s solve")
        return out

    def max(self, x: float) -> float:
        return self.comm.max(x, f"mode {self.mode}'s solve")

    def any(self, flag: bool) -> bool:
        return self.comm.max(float(flag), f"mode {self.mode}'s solve") > 0.0

    def laplacian(self, lap: torch.Tensor | None) -> LaplacianRows | None:
        if lap is None:
            return None
        # Kept per Laplacian (the fit's, and a fold-in's union graph): slicing costs a pass.
        held = self._laplacians.get(id(lap))
        if held is None or held[0] is not lap:
            held = (lap, self._rows_of(lap))
            self._laplacians[id(lap)] = held
        return held[1]

    def _rows_of(self, lap: torch.Tensor) -> LaplacianRows:
        crow = lap.crow_indices()[self.start : self.stop + 1]
        lo, hi = int(crow[0]), int(crow[-1])
        with warnings.catch_warnings():
            # torch calls CSR "beta" (see _numerics/_sparse.py: only CSR @ dense is used).
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            rows = torch.sparse_csr_tensor(
                crow - lo, lap.col_indices()[lo:hi], lap.values()[lo:hi],
                size=(self.stop - self.start, lap.shape[1]), check_invariants=False,
            )  # fmt: skip
        # Every rank holds the whole Laplacian: the scale needs no message.
        diag = csr_diagonal(lap)
        return LaplacianRows(rows, diag[self.start : self.stop], laplacian_scale(lap, diag))


class ReplicatedRows(AllRows):
    """Every row of the mode on every rank: the partial sums are all-reduced and each rank
    solves the whole mode (the sharded schedule's choice for small coupled modes)."""

    def __init__(self, comm, mode: int) -> None:
        self.comm, self.mode = comm, mode

    def scatter_sum(self, t: torch.Tensor, what: str) -> torch.Tensor:
        (out,), _ = self.comm.sum([t], [], f"mode {self.mode}'s {what}")
        return out


def solve_rows(comm, n: int, mode: int, cells: int, coupled: bool, policy: str) -> AllRows:
    """The rows of mode ``mode`` (``n`` rows, ``cells`` numbers) this rank's solve holds.

    ``coupled``: an exact solve whose rows a graph couples (each CG step then gathers the mode).
    """
    # One rank gains nothing from blocks (its one block is the mode): "auto" keeps it whole.
    pays = comm.world_size > 1 and (not coupled or cells >= SPLIT_MIN_CELLS)
    split = policy == "all" or (policy == "auto" and pays)
    return RowBlock(comm, n, mode) if split else ReplicatedRows(comm, mode)


def split_gram_hadamard(factors, mode: int, blocks: list[RowBlock]) -> torch.Tensor:
    """``⊛_{j≠mode} A_jᵀA_j``, each Gram summed from the ranks' row blocks (one all_reduce)."""
    parts = []
    for j, a in enumerate(factors):
        if j != mode:
            own = blocks[j].local(a)
            parts.append(own.T @ own)
    summed = blocks[mode].sum(torch.stack(parts))
    out = summed[0]
    for g in summed[1:]:
        out = out * g
    return out
