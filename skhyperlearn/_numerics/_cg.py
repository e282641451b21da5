"""Preconditioned conjugate gradients on a matrix of right-hand sides (the exact mode solves)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["pcg", "relative_floor", "ridge_floor"]

# Relative floor on the diagonal of each system: keeps a mode solvable when its Gram matrix is
# singular (rank above a mode's size, rows without entries) without visibly changing J.
_RIDGE_FLOOR = 1e-10


def ridge_floor(dtype: torch.dtype) -> float:
    """The relative diagonal floor of a mode's system in ``dtype``."""
    # In float32 a 1e-10 floor is below rounding and leaves singular rows singular.
    return max(_RIDGE_FLOOR, 100 * torch.finfo(dtype).eps)


def relative_floor(dtype: torch.dtype, scale: float) -> float:
    """The diagonal floor of a system whose largest diagonal entry is ``scale``.

    Relative to the system, never absolute: an absolute floor would swamp the systems of data
    scaled by 1e-10 (all-zero factors) and the fit would depend on the scale of X. A system
    that is all zeros gets the smallest normal number, which only keeps divisions defined.
    """
    tiny = torch.finfo(dtype).tiny
    return max(ridge_floor(dtype) * scale, tiny) if math.isfinite(scale) else tiny


def pcg(
    op: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x: torch.Tensor,
    precond: Callable[[torch.Tensor], torch.Tensor],
    *,
    tol: float,
    maxiter: int,
    per_column: bool,
    allsum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    allany: Callable[[bool], bool] | None = None,
) -> torch.Tensor:
    """Preconditioned CG from ``x``; ``per_column`` runs one independent CG per column of ``b``.

    Warm-started CG lowers the quadratic it minimises at every iteration, so J never increases
    from one sweep to the next even when CG stops at its tolerance.

    When other processes hold other rows of the system (the sharded schedule's split solves),
    ``allsum`` sums the partial inner products over them; when they hold other *columns* of a
    ``per_column`` solve (independent systems), ``allany`` takes the stopping test together, so
    that every process runs as many steps (``op`` may be a collective).
    """

    def dots(*pairs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        # One reduction for the inner products a step needs at once (one message when shared).
        got = [(u * w).sum(0) if per_column else (u * w).sum() for u, w in pairs]
        if allsum is None:
            return got
        return list(allsum(torch.stack(got)).unbind())

    def anyone(active: torch.Tensor) -> bool:
        flag = bool(active.any())
        return flag if allany is None else allany(flag)

    r = b - op(x)
    z = precond(r)
    p = z.clone()
    bb, rr, rz = dots((b, b), (r, r), (r, z))
    target = tol * torch.sqrt(bb).clamp_min(torch.finfo(b.dtype).tiny)
    for _ in range(maxiter):
        active = torch.sqrt(rr) > target
        if not anyone(active):
            break
        ap = op(p)
        (pap,) = dots((p, ap))
        step = torch.where(active & (pap > 0), rz / torch.where(pap > 0, pap, 1), 0)
        x = x + step * p
        r = r - step * ap
        z = precond(r)
        rr, rz_new = dots((r, r), (r, z))
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1), 0)
        p = z + beta * p
        rz = rz_new
    return x
