"""The exact solver: block coordinate descent with an exact solve per mode.

For ``loss="hypergraph"`` the mode-k optimum satisfies the Sylvester equation
``Lₖ A + A (2λGₖ + 2αI) = 2λ MTTKRPₖ``. Diagonalising ``Gₖ = V diag(g) Vᵀ`` splits it into R
shifted sparse systems ``(Lₖ + (2λg_r + 2α) I) y_r = (2λ MTTKRPₖ V)_r``, solved together by a
column-batched conjugate gradient warm-started at the current factors.

For ``loss="observed"`` each row has its own Gram matrix; the block operator
``A ↦ Lₖ A + 2λ rowwise(A) + 2αA`` is still SPD and CG on it (block-Jacobi preconditioned) solves
the mode exactly — GRALS generalised to K modes; biases are solved jointly as an extra column.

Warm-started CG lowers the quadratic it minimises at every iteration, so J never increases from
one sweep to the next even when CG stops at its tolerance.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .._kernels import observed_residuals
from ._monitor import end_of_iteration
from ._problem import Problem, State
from ._quadratic import ModeQuadratic, mode_quadratic

__all__ = ["run_als", "solve_mode", "update_mean"]

# Relative floor on the diagonal of each system: keeps a mode solvable when its Gram matrix is
# singular (rank above a mode's size, rows without entries) without visibly changing J.
_RIDGE_FLOOR = 1e-10


def _ridge_floor(dtype: torch.dtype) -> float:
    # In float32 a 1e-10 floor is below rounding and leaves singular rows singular.
    return max(_RIDGE_FLOOR, 100 * torch.finfo(dtype).eps)


def _pcg(
    op: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x: torch.Tensor,
    precond: Callable[[torch.Tensor], torch.Tensor],
    *,
    tol: float,
    maxiter: int,
    per_column: bool,
) -> tuple[torch.Tensor, int]:
    """Preconditioned CG; ``per_column`` runs one independent CG per column of ``b``."""

    def dot(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (u * w).sum(0) if per_column else (u * w).sum()

    r = b - op(x)
    z = precond(r)
    p = z.clone()
    rz = dot(r, z)
    target = tol * torch.sqrt(dot(b, b)).clamp_min(torch.finfo(b.dtype).tiny)
    it = 0
    for it in range(1, maxiter + 1):
        active = torch.sqrt(dot(r, r)) > target
        if not bool(active.any()):
            it -= 1
            break
        ap = op(p)
        pap = dot(p, ap)
        step = torch.where(active & (pap > 0), rz / torch.where(pap > 0, pap, 1), 0)
        x = x + step * p
        r = r - step * ap
        z = precond(r)
        rz_new = dot(r, z)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1), 0)
        p = z + beta * p
        rz = rz_new
    return x, it


def _solve_hypergraph_mode(
    lap: torch.Tensor | None,
    gram: torch.Tensor,
    m: torch.Tensor,
    lam: float,
    alpha: float,
    a0: torch.Tensor | None,
    cg_tol: float,
    cg_maxiter: int,
) -> torch.Tensor:
    g, v = torch.linalg.eigh(gram)
    shifts = 2.0 * lam * g.clamp_min(0) + 2.0 * alpha
    rhs = 2.0 * lam * (m @ v)
    floor = _ridge_floor(gram.dtype) * max(float(shifts.max()), 1.0)
    if lap is None:
        # Pseudo-inverse on the null space of G: those directions carry no data.
        safe = torch.where(shifts > floor, shifts, 1)
        y = torch.where(shifts > floor, rhs / safe, 0)
        return y @ v.T
    shifts = shifts + floor
    diag = _csr_diagonal(lap)[:, None] + shifts

    def op(y: torch.Tensor) -> torch.Tensor:
        return lap @ y + y * shifts

    y0 = torch.zeros_like(rhs) if a0 is None else a0 @ v
    y, _ = _pcg(op, rhs, y0, lambda r: r / diag, tol=cg_tol, maxiter=cg_maxiter, per_column=True)
    return y @ v.T


def _csr_diagonal(lap: torch.Tensor) -> torch.Tensor:
    """Diagonal of a torch CSR matrix, without densifying it."""
    crow, col, val = lap.crow_indices(), lap.col_indices(), lap.values()
    rows = torch.repeat_interleave(
        torch.arange(lap.shape[0], device=val.device), crow[1:] - crow[:-1]
    )
    diag = torch.zeros(lap.shape[0], dtype=val.dtype, device=val.device)
    on = rows == col
    return diag.index_add_(0, rows[on], val[on])


def _solve_observed_mode(
    lap: torch.Tensor | None,
    rhs: torch.Tensor,
    grams: torch.Tensor,
    rank: int,
    lam: float,
    alpha: float,
    a0: torch.Tensor | None,
    cg_tol: float,
    cg_maxiter: int,
) -> torch.Tensor:
    n, width, _ = grams.shape
    eye = torch.eye(width, dtype=grams.dtype, device=grams.device)
    system = 2.0 * lam * grams + 2.0 * alpha * eye
    scale = float(system.diagonal(dim1=1, dim2=2).abs().max()) if n else 1.0
    system = system + _ridge_floor(grams.dtype) * max(scale, 1.0) * eye
    b = 2.0 * lam * rhs
    if lap is None:
        return torch.linalg.solve(system, b.unsqueeze(-1)).squeeze(-1)
    lap_diag = torch.zeros(n, width, dtype=grams.dtype, device=grams.device)
    lap_diag[:, :rank] = _csr_diagonal(lap)[:, None]
    chol = torch.linalg.cholesky(system + torch.diag_embed(lap_diag))

    def op(y: torch.Tensor) -> torch.Tensor:
        out = torch.bmm(system, y.unsqueeze(-1)).squeeze(-1)
        out[:, :rank] += lap @ y[:, :rank]
        return out

    def precond(r: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(r.unsqueeze(-1), chol).squeeze(-1)

    y0 = torch.zeros_like(b) if a0 is None else a0
    y, _ = _pcg(op, b, y0, precond, tol=cg_tol, maxiter=cg_maxiter, per_column=False)
    return y


def solve_mode(
    problem: Problem,
    state: State,
    mode: int,
    *,
    warm: bool = True,
    cg_tol: float = 1e-8,
    cg_maxiter: int = 500,
    laplacian: torch.Tensor | str | None = "problem",
) -> tuple[torch.Tensor, torch.Tensor | None, ModeQuadratic]:
    """The exact minimiser of J over mode ``mode``'s factors (and bias), others fixed.

    Returns the new factor matrix, the new bias (or None) and the mode's quadratic, which lets
    the caller evaluate J without another pass. ``laplacian`` overrides the mode's graph (used to
    fold in new entities).
    """
    quad = mode_quadratic(problem, state, mode)
    lap = problem.laplacians[mode] if isinstance(laplacian, str) else laplacian
    current = state.factors[mode].to(problem.devices[mode])
    rank = current.shape[1]
    if problem.loss == "hypergraph":
        a = _solve_hypergraph_mode(
            lap,
            quad.gram,
            quad.linear,
            problem.lam,
            problem.alpha,
            current if warm else None,
            cg_tol,
            cg_maxiter,
        )
        return a, None, quad
    a0 = None
    if warm:
        a0 = current
        if problem.bias:
            a0 = torch.cat([current, state.biases[mode].to(current.device)[:, None]], 1)
    y = _solve_observed_mode(
        lap, quad.linear, quad.gram, rank, problem.lam, problem.alpha, a0, cg_tol, cg_maxiter
    )
    if problem.bias:
        return y[:, :rank].contiguous(), y[:, rank].contiguous(), quad
    return y, None, quad


def update_mean(problem: Problem, state: State) -> float:
    """The exact minimiser of J over the global mean (observed loss with biases)."""
    factors = problem.gather(0, state.factors)
    biases = problem.gather(0, state.biases)
    res = observed_residuals(problem.data(0), factors, biases, state.mean)
    return state.mean + float(res.mean())


def run_als(
    problem: Problem,
    state: State,
    *,
    mode_order: list[int],
    max_iter: int,
    tol: float,
    cg_tol: float = 1e-8,
    cg_maxiter: int = 500,
    callback: Callable[[int, dict, State], bool | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[State, list[float], int]:
    """Sweeps of exact mode updates in ``mode_order`` until J stalls.

    Stops when the relative decrease of J falls below ``tol`` or after ``max_iter`` sweeps,
    or when ``callback(sweep, info, state)`` returns True. Returns the state, J after each
    sweep and the number of sweeps run.
    """
    history: list[float] = []
    n_iter = 0
    last = mode_order[-1]
    for sweep in range(1, max_iter + 1):
        tic = time.perf_counter()
        if problem.bias:
            state.mean = update_mean(problem, state)
        finite = True
        for k in mode_order:
            a, b, quad = solve_mode(problem, state, k, cg_tol=cg_tol, cg_maxiter=cg_maxiter)
            state.factors[k] = a
            if b is not None:
                state.biases[k] = b
            # Stop at the first non-finite block: the next mode's solve would fail on it.
            if not (bool(torch.isfinite(a).all()) and (b is None or bool(torch.isfinite(b).all()))):
                finite = False
                break
        if not finite:
            nan = float("nan")
            info = {"loss": nan, "data": nan, "graph": nan, "ridge": nan}
            info["time"] = time.perf_counter() - tic
            history.append(nan)
            n_iter = sweep
            if callback is not None:
                callback(sweep, info, state)
            break
        # The last mode's quadratic gives the data term at the new state without another pass.
        data_error = max(float(quad.value(state.factors[last], b)), 0.0)
        info = problem.objective(state, data_error)
        info["time"] = time.perf_counter() - tic
        n_iter = sweep
        if end_of_iteration(
            "sweep", sweep, info, state, history, tol=tol, log=log, callback=callback
        ):
            break
    return state, history, n_iter
