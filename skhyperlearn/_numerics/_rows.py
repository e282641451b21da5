"""Which rows of a mode's system this process solves: all of them, or a block of them.

A mode's exact solve is written once, over the rows this process holds. In one process that is
every row and each hook below is the identity (:data:`ALL_ROWS`). Under the sharded schedule
each rank holds a contiguous block of rows (``solvers/_sharded_rows.py`` implements the same
hooks with collectives): the solve's row sums are summed over the ranks, its stopping decisions
taken together, and its result gathered, so that the ranks share the work of one solve instead
of each repeating it.
"""

from __future__ import annotations

import torch

from ._sparse import csr_diagonal

__all__ = ["ALL_ROWS", "AllRows", "LaplacianRows", "laplacian_diagonal", "laplacian_scale"]


class AllRows:
    """Every row of the system is here: gathering, slicing and reducing change nothing."""

    start = 0
    #: Whether every row is here (the solves skip their shared sums and stopping tests then).
    whole = True

    def count(self, n: int) -> int:
        """How many of a mode's ``n`` rows this process holds."""
        return n

    def local(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """The rows of ``t`` (one per row of the mode) this process holds."""
        return t

    def gather(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """Every row, from each process's block (the inverse of :meth:`local`)."""
        return t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the processes that hold the mode's rows."""
        return t

    def max(self, x: float) -> float:
        """The largest ``x`` of those processes."""
        return x

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any of them (a stopping test taken together)."""
        return flag

    def laplacian(self, lap: torch.Tensor | None):
        """The rows of the mode's Laplacian this process applies (None without a graph)."""
        return lap


ALL_ROWS = AllRows()


class LaplacianRows:
    """Rows ``start:start + n`` of a Laplacian (an n × N CSR matrix) with their diagonal.

    ``lap @ y`` takes every row of ``y`` (gathered) and gives the block's rows of the product.
    ``scale`` is the largest |diagonal| over every row: the solves' relative floors come from
    it, the same on every process.
    """

    def __init__(self, rows: torch.Tensor, diagonal: torch.Tensor, scale: float) -> None:
        self.rows = rows
        self.diagonal = diagonal
        self.scale = scale

    def __matmul__(self, y: torch.Tensor) -> torch.Tensor:
        return self.rows @ y


def laplacian_diagonal(lap) -> torch.Tensor:
    """The diagonal of the rows of ``lap`` this process holds."""
    return lap.diagonal if isinstance(lap, LaplacianRows) else csr_diagonal(lap)


def laplacian_scale(lap, diagonal: torch.Tensor | None = None) -> float:
    """``max |diag(lap)|`` over every row of the mode (0 for a mode without rows);
    ``diagonal``: this process's :func:`laplacian_diagonal`, when already computed."""
    if isinstance(lap, LaplacianRows):
        return lap.scale
    diag = csr_diagonal(lap) if diagonal is None else diagonal
    return float(diag.abs().max()) if diag.numel() else 0.0
