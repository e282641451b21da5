"""The hypergraph's pairwise projections as extra data terms of the implicit loss.

``projection_weight=w`` (``w`` in [0, 1]) makes the implicit data term

``(1 − w)·T(A) + w · Σ_{k≠s} m_k · P_k(A_s, A_k)``

where ``T`` is the implicit loss of the K-way tensor under the CP model, ``s`` the sample mode
and ``P_k`` the same implicit loss of the projection ``M_k = Σ_{modes ∉ {s, k}} X`` (the sample ×
mode-k matrix, the hypergraph's clique expansion restricted to pairs with the sample mode:
presence of a pair, its summed values as confidences) under the bilinear model ``A_s A_kᵀ``.
Both share the factors. ``m_k = m = nnz(X) / Σ_j nnz(M_j)`` is fixed on the training X, so
that at all-zero factors the tensor term and the projection terms together weigh the same
(``nnz(X)`` each, on binary X) and ``w`` moves the data between them without changing λ's
meaning. Every distinct pair weighs alike, as every hyperedge does in the tensor's term (the
clique expansion's rule): a mode of a few entities (five rating levels) yields few pairs and
so a small share, instead of half the data term as an equal share per mode would give it.
``w = 0`` is the CP model of the tensor (computed as before); ``w = 1`` the coupled 2-way
factorization of the sample mode's projections with a shared sample factor, the model of
implicit ALS on ``M_k`` (the baselines' matrix), one per other mode; PITF (Rendle &
Schmidt-Thieme 2010) scores tagging hypergraphs by such pairwise terms.

Why only the pairs with the sample mode: the representation scored downstream is the sample
mode's, the 2-way baselines factor exactly these matrices, and a new sample's projections are
computed from its own entries (``transform``). Pairs between two context modes would add terms
that reach the sample mode only through the other factors.

The model has no free scale once ``0 < w < 1`` (the tensor fixes ``a_s a_k a_j``, the
projections ``a_s a_k`` and ``a_s a_j``, hence every factor's scale), so the factors are solved
as they are (``factor_scale="free"``): normalizing the modes not being solved would change the
projections' model. The projections are sparse matrices with at most nnz(X) entries each, built
once per tensor copy.
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from ..._numerics._cg import pcg, relative_floor, ridge_floor
from ..._numerics._cpu._fused import fused_coupled_cg
from ..._numerics._kernels import (
    SparseTensorData,
    implicit_rhs_diag,
    implicit_sq_error,
    implicit_stored_apply,
    small_matmul,
)
from ..._numerics._layout import index_dtype
from ..._numerics._sparse import csr_diagonal
from ._base import ModeQuadratic
from ._matrix_free import data_term_from_cg
from ._rowwise import RowwiseQuadratic

__all__ = [
    "CoupledOperatorQuadratic",
    "PairConstants",
    "combine_rowwise",
    "pair_constants",
    "pair_tensors",
]


#: The projections of each tensor copy, by sample mode (gone with the tensor).
_PAIRS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _pair_keys(coords_t: torch.Tensor, values: torch.Tensor, shape, s: int, k: int):
    """Distinct (sample, mode-k) pairs of the stored entries and their summed values."""
    keys = coords_t[s].long() * int(shape[k]) + coords_t[k].long()
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    sums = torch.zeros(uniq.shape[0], dtype=values.dtype, device=values.device)
    sums.index_add_(0, inverse, values)
    return uniq, sums


def pair_tensors(tensor: SparseTensorData, sample_mode: int) -> dict[int, SparseTensorData]:
    """The projections ``M_k`` (sample × mode k, other modes summed out) of ``tensor``, by k.

    Built once per tensor (and per sample mode) and kept while the tensor lives.
    """
    with _LOCK:  # the parallel schedule's modes ask from their own threads
        cached = _PAIRS.setdefault(tensor, {}).get(sample_mode)
        if cached is None:
            cached = _PAIRS[tensor][sample_mode] = _build_pairs(tensor, sample_mode)
    return cached


def _build_pairs(tensor: SparseTensorData, sample_mode: int) -> dict[int, SparseTensorData]:
    out = {}
    s, shape = sample_mode, tensor.shape
    for k in range(tensor.order):
        if k == s:
            continue
        uniq, sums = _pair_keys(tensor.coords_t, tensor.values, shape, s, k)
        idx = index_dtype(max(shape[s], shape[k], 1))
        coords_t = torch.stack([uniq // shape[k], uniq % shape[k]]).to(idx).contiguous()
        out[k] = SparseTensorData(
            coords_t, sums, (shape[s], shape[k]), tensor.chunk_bytes, transposed=True
        )
    return out


@dataclass(frozen=True)
class PairConstants:
    """What a projection term keeps from the training X: its confidence, the typical stored
    value its weights are relative to, and its share ``m_k`` (see the module docstring)."""

    confidence: float
    typical: float
    share: float
    #: Distinct pairs on the training X: what the term holds (the memory estimate counts it).
    n_pairs: int = 0


def pair_constants(
    coords: np.ndarray, values: np.ndarray, shape, sample_mode: int, confidence, rule
) -> dict[int, PairConstants]:
    """Each projection's constants on the training X; ``confidence="auto"`` resolved by
    ``rule(cells_per_entry, median)`` as for the tensor itself."""
    with warnings.catch_warnings():
        # Read-only arrays are only read here.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        coords_t = torch.as_tensor(np.ascontiguousarray(np.asarray(coords).T))
        vals = torch.as_tensor(np.asarray(values, dtype=np.float64))
    nnz = max(int(vals.shape[0]), 1)
    others = [k for k in range(len(shape)) if k != sample_mode]
    sums_of = {k: _pair_keys(coords_t, vals, shape, sample_mode, k)[1] for k in others}
    share = nnz / max(sum(int(v.shape[0]) for v in sums_of.values()), 1)
    out = {}
    for k, sums in sums_of.items():
        n_pairs = max(int(sums.shape[0]), 1)
        if confidence == "auto":
            cells = float(shape[sample_mode]) * float(shape[k])
            typical = float(np.median(sums.numpy())) if sums.numel() else 1.0
            conf, typical = rule(cells / n_pairs, typical), typical
        else:
            conf, typical = float(confidence), 1.0
        out[k] = PairConstants(conf, typical, share, n_pairs)
    return out


def combine_rowwise(mode: int, const: float, parts) -> RowwiseQuadratic:
    """``const + Σ weight·part`` of per-row-Gram quadratics (the exact mode solve)."""
    linear = gram = None
    for weight, part in parts:
        const += weight * part.const
        linear = part.linear * weight if linear is None else linear.add_(part.linear, alpha=weight)
        gram = part.gram * weight if gram is None else gram.add_(part.gram, alpha=weight)
    return RowwiseQuadratic(mode, const, linear, gram)


def pair_error(tensor: SparseTensorData, factors, constants: PairConstants) -> float:
    """A projection's implicit data term at ``factors`` (sample's, mode k's)."""
    c = constants.confidence
    return implicit_sq_error(tensor, factors, c) / (1.0 + c * constants.typical)


@dataclass
class CoupledOperatorQuadratic(ModeQuadratic):
    """``const + Σ weight·part`` of matrix-free implicit quadratics, solved by one CG.

    Each part is an :class:`~._matrix_free.ImplicitOperatorQuadratic` in its own tensor's
    local mode; they all act on the same factor matrix (this quadratic's ``mode``).
    """

    mode: int
    const: float
    parts: list = field(default_factory=list)  # (weight, ImplicitOperatorQuadratic)
    steps: int = 3
    #: ``(solution, value there)`` of the last compiled solve: the schedule asks for that value.
    _solved: tuple | None = field(default=None, repr=False)

    def value(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if self._solved is not None and a is self._solved[0]:
            return torch.tensor(self._solved[1], dtype=a.dtype, device=a.device)
        total = a.new_tensor(self.const)
        for weight, part in self.parts:
            total = total + weight * part.value(a)
        return total

    def _dense(self, lap, lam: float, alpha: float):
        """The rows' shared matrix ``Σ 2λ·s_i·w_i G_i + 2αI`` plus the relative floor, the
        parts' weights ``2λ s_i w_i`` and the floor."""
        dense, weights = None, []
        for weight, part in self.parts:
            ws = 2.0 * lam * part.scale * weight
            weights.append(ws)
            g = part.gram * ws
            dense = g if dense is None else dense.add_(g)
        dense.diagonal().add_(2.0 * alpha)
        scale = float(dense.diagonal().abs().max())
        if lap is not None and lap.shape[0]:
            scale = max(scale, float(csr_diagonal(lap).abs().max()))
        floor = relative_floor(dense.dtype, scale)
        dense.diagonal().add_(floor)
        return dense, weights, floor

    def _rhs_diag(self, weights):
        """The right-hand side and the Jacobi diagonal's stored share (one pass per part)."""
        rhs = diag = None
        for ws, (_, part) in zip(weights, self.parts, strict=True):
            linear, dsum = implicit_rhs_diag(part.tensor, part.factors, part.mode, part.confidence)
            rhs = linear.mul_(ws) if rhs is None else rhs.add_(linear, alpha=ws)
            diag = dsum.mul_(ws) if diag is None else diag.add_(dsum, alpha=ws)
        return rhs, diag

    def _fused_solve(self, dense, weights, ridge: float, lam: float, system):
        """The compiled per-row CG over every part's entries (no graph), or None; keeps the
        solution's value (``_solved``) from CG's per-row objectives, as the tensor-only solve."""
        x0, steps, cold, cg_tol = system
        parts = [
            (part.tensor, part.factors, part.mode, part.confidence, ws)
            for ws, (_, part) in zip(weights, self.parts, strict=True)
        ]
        fused = fused_coupled_cg(parts, (dense, cg_tol), x0, steps, cold)
        if fused is None:
            return None
        x, f = fused
        # Each part's ws_i is 2λ·s_i·w_i: dividing by 2λ leaves each data term weighted by
        # its scale and weight, as the parts' constants are.
        data = data_term_from_cg(x, f, ridge, 2.0 * lam)
        consts = sum(w * part.scale * part.const for w, part in self.parts)
        self._solved = (x, self.const + consts + data)
        return x

    def solve(self, lap, lam, alpha, warm, cg_tol, cg_maxiter, *, shift=None):
        dense, weights, floor = self._dense(lap, lam, alpha)
        first = self.parts[0][1]
        n, rank = first.tensor.shape[first.mode], dense.shape[0]
        x0 = warm[0] if warm is not None else dense.new_zeros(n, rank)
        steps = self.steps if warm is not None else cg_maxiter
        cg_tol = max(cg_tol, ridge_floor(dense.dtype))
        if lap is None and shift is None:
            system = (x0, steps, warm is None, cg_tol)
            x = self._fused_solve(dense, weights, 2.0 * alpha + floor, lam, system)
            if x is not None:
                return x, None
        b, diag = self._rhs_diag(weights)
        if shift is not None:
            b.sub_(shift)
        diag.add_(dense.diagonal())

        def op(y: torch.Tensor) -> torch.Tensor:
            out = small_matmul(y, dense)
            for ws, (_, part) in zip(weights, self.parts, strict=True):
                args = (part.tensor, part.factors, part.mode, part.confidence)
                out.add_(implicit_stored_apply(*args, y), alpha=ws)
            return out if lap is None else out.add_(lap @ y)

        if lap is None:
            # Independent rows: one CG each (columns of the transposed block), Jacobi when cold
            # as the tensor-only solve does.
            diag_t = diag.T if warm is None else torch.ones_like(diag.T)
            x = pcg(
                lambda yt: op(yt.T.contiguous()).T, b.T, x0.T, lambda r: r / diag_t,
                tol=cg_tol, maxiter=steps, per_column=True,
            )  # fmt: skip
            return x.T.contiguous(), None
        diag += csr_diagonal(lap)[:, None]
        x = pcg(op, b, x0, lambda r: r / diag, tol=cg_tol, maxiter=steps, per_column=False)
        return x, None


def coupled_terms(loss, tensor: SparseTensorData, factors, mode: int, part_of):
    """The coupled data term's parts in mode ``mode``: ``(const, [(weight, part)])``.

    ``part_of(tensor, factors, local_mode, confidence, typical)`` builds one term's quadratic
    (the loss's own, matrix-free or per-row Gram); the terms that do not involve ``mode``
    (a projection onto another mode) are constants at the current factors.
    """
    s, w = loss.sample_mode, loss.projection_weight
    parts, const = [], 0.0
    if w < 1.0:
        parts.append((1.0 - w, part_of(tensor, factors, mode, loss.confidence, loss.typical)))
    for k, pair in pair_tensors(tensor, s).items():
        constants = loss.pair_constants[k]
        weight = w * constants.share
        if weight == 0.0:
            continue
        two = [factors[s], factors[k]]
        if mode in (s, k):
            local = 0 if mode == s else 1
            parts.append(
                (weight, part_of(pair, two, local, constants.confidence, constants.typical))
            )
        else:
            const += weight * pair_error(pair, two, constants)
    return const, parts


def coupled_error(loss, tensor: SparseTensorData, factors) -> float:
    """The coupled data term at ``factors`` (the tensor's and the projections' terms)."""
    s, w = loss.sample_mode, loss.projection_weight
    total = 0.0
    if w < 1.0:
        scale = 1.0 + loss.confidence * loss.typical
        total += (1.0 - w) * implicit_sq_error(tensor, factors, loss.confidence) / scale
    for k, pair in pair_tensors(tensor, s).items():
        constants = loss.pair_constants[k]
        if w > 0.0:
            total += w * constants.share * pair_error(pair, [factors[s], factors[k]], constants)
    return total


def cells_rule(multiplier: float):
    """``confidence="auto"``'s rule: ``multiplier·sqrt(cells per stored entry) / median``."""

    def rule(cells_per_entry: float, typical: float) -> float:
        return multiplier * math.sqrt(cells_per_entry) / typical

    return rule
