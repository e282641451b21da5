"""Graph Laplacians as torch sparse CSR tensors, and the sparse products the solvers need.

Both the objective (graph term) and the diffusion blocks (Chebyshev recurrence) multiply by a
Laplacian; they share this module so that the objective does not depend on the network.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["csr_diagonal", "csr_to_torch", "laplacian_to_torch", "symmetric_spmm"]


def csr_to_torch(
    matrix, dtype: torch.dtype, device: torch.device | str | None = None
) -> torch.Tensor:
    """A scipy sparse (or dense) square matrix as a canonical torch CSR tensor on ``device``."""
    csr = sp.csr_array(matrix, dtype=np.float64)
    # torch assumes canonical CSR (sorted, unique column indices per row) without checking it.
    csr.sum_duplicates()
    csr.sort_indices()
    with warnings.catch_warnings():
        # torch calls CSR support "beta"; only its stable core (CSR @ dense, autograd to the
        # dense operand) is used. Silenced here, where the tensors are built, not process-wide.
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        warnings.filterwarnings("ignore", message=".*Sparse invariant checks are implicitly.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data).to(dtype),
            size=csr.shape,
            check_invariants=False,
        ).to(device)


def laplacian_to_torch(lap, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """A mode's Laplacian (or None for a mode without a graph) on that mode's device."""
    return None if lap is None else csr_to_torch(lap, dtype, device)


def csr_diagonal(lap: torch.Tensor) -> torch.Tensor:
    """Diagonal of a torch CSR matrix, without densifying it."""
    crow, col, val = lap.crow_indices(), lap.col_indices(), lap.values()
    rows = torch.repeat_interleave(
        torch.arange(lap.shape[0], device=val.device), crow[1:] - crow[:-1]
    )
    diag = torch.zeros(lap.shape[0], dtype=val.dtype, device=val.device)
    on = rows == col
    return diag.index_add_(0, rows[on], val[on])


class _SymmetricSpMM(torch.autograd.Function):
    """``L @ x`` for a symmetric sparse ``L``, whose backward is ``L @ grad``.

    torch's generic backward of CSR @ dense transposes and re-sorts ``L`` on every call; a graph
    Laplacian is symmetric (validated up front), so the forward product serves again.
    """

    @staticmethod
    def forward(ctx, lap: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.lap = lap
        return lap @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.lap @ grad


def symmetric_spmm(lap: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``lap @ x`` for a symmetric sparse ``lap``, differentiable in ``x`` at forward's cost."""
    if not x.requires_grad:
        return lap @ x
    return _SymmetricSpMM.apply(lap, x)
