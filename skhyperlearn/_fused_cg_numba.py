"""The compiled kernels of the implicit loss's matrix-free mode solve (see :mod:`._fused`).

Mode k's system for row i is ``(M + s·Σ_{e_k=i} w_e h_e h_eᵀ) a_i = s·Σ_{e_k=i} (1 + w_e) h_e``
with ``h_e`` the product of the other modes' rows at entry e, ``w_e = conf·x_e`` and ``M`` the
dense R×R part shared by every row (absent cells, ridge, floor). These kernels apply it without
forming a per-row Gram: ``O(R)`` work per entry instead of ``O(R²)``.

One kernel serves every order: the other modes' index rows and factors come as three pairs,
the unused ones empty (``c.shape[0] == 0``); the branch is the same for every entry, and the
rank loops stay vectorised. ``order`` empty: the entries are already in the mode's order. As in
:mod:`._fused_numba`, only fused multiply-adds are allowed and ``cache=True``.
"""

import numba
import numpy as np

__all__ = ["row_apply", "row_cg", "row_rhs_diag", "row_value"]

_JIT = {"nogil": True, "cache": True, "fastmath": {"contract"}}


@numba.njit(**_JIT)
def _other_rows(e, h, c1, a1, c2, a2, c3, a3):
    """``h = A_1[c_1[e]] ∘ A_2[c_2[e]] ∘ A_3[c_3[e]]`` over the pairs that are not empty."""
    i1 = c1[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r]
    if c2.shape[0]:
        i2 = c2[e]
        for r in range(h.shape[0]):
            h[r] *= a2[i2, r]
    if c3.shape[0]:
        i3 = c3[e]
        for r in range(h.shape[0]):
            h[r] *= a3[i3, r]


@numba.njit(**_JIT)
def _dot_row(h, y, i):
    t = 0.0
    for r in range(h.shape[0]):
        t += h[r] * y[i, r]
    return t


@numba.njit(**_JIT)
def row_rhs_diag(values, order, rowptr, lo, hi, conf, linear, dsum, c1, a1, c2, a2, c3, a3):
    """``linear[i] = Σ (1 + w_e) h_e`` and ``dsum[i] = Σ w_e h_e²`` for rows ``lo … hi − 1``."""
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            _other_rows(e, h, c1, a1, c2, a2, c3, a3)
            w = conf * values[e]
            for r in range(h.shape[0]):
                linear[i, r] += (1.0 + w) * h[r]
                dsum[i, r] += w * h[r] * h[r]


@numba.njit(**_JIT)
def row_apply(values, order, rowptr, lo, hi, conf, y, out, c1, a1, c2, a2, c3, a3):
    """``out[i] = Σ w_e (h_eᵀ y_i) h_e``: the stored entries' share of the operator."""
    in_order = order.shape[0] == 0
    h = np.empty(y.shape[1], dtype=y.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            _other_rows(e, h, c1, a1, c2, a2, c3, a3)
            t = conf * values[e] * _dot_row(h, y, i)
            for r in range(h.shape[0]):
                out[i, r] += t * h[r]


@numba.njit(**_JIT)
def row_value(values, order, rowptr, lo, hi, conf, a, out, c1, a1, c2, a2, c3, a3):
    """``out[i] = Σ (w_e t_e² − 2(1 + w_e) t_e)``, ``t_e = h_eᵀ a_i``: the row's stored share of
    the data term (its constant and its absent-cell Gram added by the caller)."""
    in_order = order.shape[0] == 0
    h = np.empty(a.shape[1], dtype=a.dtype)
    for i in range(lo, hi):
        total = 0.0
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            _other_rows(e, h, c1, a1, c2, a2, c3, a3)
            w = conf * values[e]
            t = _dot_row(h, a, i)
            total += w * t * t - 2.0 * (1.0 + w) * t
        out[i] = total


@numba.njit(**_JIT)
def _stored_apply(values, order, rowptr, i, conf, v, out, h, c1, a1, c2, a2, c3, a3):
    """``out = Σ_{e_k=i} w_e (h_eᵀ v) h_e`` for one row (``v``, ``out`` rank-vectors)."""
    in_order = order.shape[0] == 0
    out[:] = 0.0
    for s in range(rowptr[i], rowptr[i + 1]):
        e = s if in_order else order[s]
        _other_rows(e, h, c1, a1, c2, a2, c3, a3)
        t = 0.0
        for r in range(h.shape[0]):
            t += h[r] * v[r]
        t *= conf * values[e]
        for r in range(h.shape[0]):
            out[r] += t * h[r]


@numba.njit(**_JIT)
def _row_setup(values, order, rowptr, i, conf, dense, ws, x, b, q, d, h, c1, a1, c2, a2, c3, a3):
    """One pass over row i's entries: right-hand side ``b``, Jacobi diagonal ``d`` and
    ``q = Σ w_e (h_eᵀ x_i) h_e``; returns ``‖b‖²``."""
    in_order = order.shape[0] == 0
    b[:] = 0.0
    q[:] = 0.0
    d[:] = 0.0
    for s in range(rowptr[i], rowptr[i + 1]):
        e = s if in_order else order[s]
        _other_rows(e, h, c1, a1, c2, a2, c3, a3)
        w = conf * values[e]
        t = w * _dot_row(h, x, i)
        for r in range(h.shape[0]):
            b[r] += (1.0 + w) * h[r]
            q[r] += t * h[r]
            d[r] += w * h[r] * h[r]
    bb = 0.0
    for r in range(h.shape[0]):
        b[r] *= ws
        bb += b[r] * b[r]
        d[r] = dense[r, r] + ws * d[r]
    return bb


@numba.njit(**_JIT)
def row_cg(values, order, rowptr, lo, hi, conf, dense, ws, tol, steps, x, c1, a1, c2, a2, c3, a3):
    """At most ``steps`` Jacobi-preconditioned CG steps on each row's system, from ``x[i]``
    (overwritten), stopping a row once its residual is below ``tol`` times its ``‖b‖``."""
    rank = x.shape[1]
    work = np.empty((7, rank), dtype=x.dtype)
    h, b, q, d, r, z, p = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    tol2 = tol * tol
    for i in range(lo, hi):
        bb = _row_setup(values, order, rowptr, i, conf, dense, ws, x, b, q, d, h,
                        c1, a1, c2, a2, c3, a3)  # fmt: skip
        rz = 0.0
        for k in range(rank):
            acc = b[k] - ws * q[k]
            for j in range(rank):
                acc -= dense[k, j] * x[i, j]
            r[k] = acc
            z[k] = r[k] / d[k]
            p[k] = z[k]
            rz += r[k] * z[k]
        for _ in range(steps):
            rr = 0.0
            for k in range(rank):
                rr += r[k] * r[k]
            if rr <= tol2 * bb:
                break
            _stored_apply(values, order, rowptr, i, conf, p, q, h, c1, a1, c2, a2, c3, a3)
            pap = 0.0
            for k in range(rank):
                acc = ws * q[k]
                for j in range(rank):
                    acc += dense[k, j] * p[j]
                q[k] = acc
                pap += p[k] * acc
            if not pap > 0.0:
                break
            step = rz / pap
            rz_new = 0.0
            for k in range(rank):
                x[i, k] += step * p[k]
                r[k] -= step * q[k]
                z[k] = r[k] / d[k]
                rz_new += r[k] * z[k]
            beta = rz_new / rz if rz > 0.0 else 0.0
            for k in range(rank):
                p[k] = z[k] + beta * p[k]
            rz = rz_new
