"""The compiled kernels of the implicit loss's matrix-free mode solve (see :mod:`._fused`).

Mode k's system for row i is ``(M + s·Σ_{e_k=i} w_e h_e h_eᵀ) a_i = s·Σ_{e_k=i} (1 + w_e) h_e``
with ``h_e`` the product of the other modes' rows at entry e, ``w_e = conf·x_e`` and ``M`` the
dense R×R part shared by every row (absent cells, ridge, floor). These kernels apply it without
forming a per-row Gram: ``O(R)`` work per entry instead of ``O(R²)``.

One kernel serves every order: the other modes' index rows and factors come as three pairs,
the unused ones empty, and the kernel's first argument is the compiled ``FILL[K − 2]`` that
forms ``h_e`` from them. numba compiles the kernel once per such function and inlines it (a
branch on the number of modes inside the entry loop, or one helper for all, ran 5–10 times
slower). ``order`` empty: the entries are already in the mode's order.
``cache=True`` as in :mod:`._fused_numba`; unlike there, reassociation is allowed besides fused
multiply-adds: these kernels take dot products over the rank (``h_eᵀ v`` per entry, ``M p`` per
row), which without it run one addition at a time (several times slower). It only reorders
each R-term sum, the same way on every call, and NaN still propagates (no ``nnan``).
"""

import numba
import numpy as np

__all__ = ["FILL", "row_apply", "row_cg", "row_rhs_diag", "row_value"]

_JIT = {"nogil": True, "cache": True, "fastmath": {"contract", "reassoc"}}


@numba.njit(**_JIT)
def _fill1(e, h, c1, a1, c2, a2, c3, a3):
    i1 = c1[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r]


@numba.njit(**_JIT)
def _fill2(e, h, c1, a1, c2, a2, c3, a3):
    i1, i2 = c1[e], c2[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r] * a2[i2, r]


@numba.njit(**_JIT)
def _fill3(e, h, c1, a1, c2, a2, c3, a3):
    i1, i2, i3 = c1[e], c2[e], c3[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r] * a2[i2, r] * a3[i3, r]


#: ``FILL[K - 1](e, h, c_1, A_1, …)``: ``h = Π_j A_j[c_j[e]]`` over the K − 1 other modes.
FILL = (_fill1, _fill2, _fill3)


@numba.njit(inline="always", **_JIT)
def _dot_row(h, y, i):
    # Summed in the factors' dtype (h[0] − h[0] is a zero of it): in float64 a float32 dot
    # product ran 1.5 times slower, converting every term.
    t = h[0] - h[0]
    for r in range(h.shape[0]):
        t += h[r] * y[i, r]
    return t


@numba.njit(**_JIT)
def row_rhs_diag(fill, values, order, rowptr, lo, hi, conf, linear, dsum, c1, a1, c2, a2, c3, a3):
    """``linear[i] = Σ (1 + w_e) h_e`` and ``dsum[i] = Σ w_e h_e²`` for rows ``lo … hi − 1``."""
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            fill(e, h, c1, a1, c2, a2, c3, a3)
            w = conf * values[e]
            for r in range(h.shape[0]):
                linear[i, r] += (1.0 + w) * h[r]
                dsum[i, r] += w * h[r] * h[r]


@numba.njit(**_JIT)
def row_apply(fill, values, order, rowptr, lo, hi, conf, y, out, c1, a1, c2, a2, c3, a3):
    """``out[i] = Σ w_e (h_eᵀ y_i) h_e``: the stored entries' share of the operator."""
    in_order = order.shape[0] == 0
    h = np.empty(y.shape[1], dtype=y.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            fill(e, h, c1, a1, c2, a2, c3, a3)
            t = conf * values[e] * _dot_row(h, y, i)
            for r in range(h.shape[0]):
                out[i, r] += t * h[r]


@numba.njit(**_JIT)
def row_value(fill, values, order, rowptr, lo, hi, conf, a, out, c1, a1, c2, a2, c3, a3):
    """``out[i] = Σ (w_e t_e² − 2(1 + w_e) t_e)``, ``t_e = h_eᵀ a_i``: the row's stored share of
    the data term (its constant and its absent-cell Gram added by the caller)."""
    in_order = order.shape[0] == 0
    h = np.empty(a.shape[1], dtype=a.dtype)
    for i in range(lo, hi):
        total = 0.0
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            fill(e, h, c1, a1, c2, a2, c3, a3)
            w = conf * values[e]
            t = _dot_row(h, a, i)
            total += w * t * t - 2.0 * (1.0 + w) * t
        out[i] = total


@numba.njit(inline="always", **_JIT)
def _stored_apply(fill, values, order, rowptr, i, conf, v, out, h, c1, a1, c2, a2, c3, a3):
    """``out = Σ_{e_k=i} w_e (h_eᵀ v) h_e`` for one row (``v``, ``out`` rank-vectors)."""
    in_order = order.shape[0] == 0
    out[:] = 0.0
    for s in range(rowptr[i], rowptr[i + 1]):
        e = s if in_order else order[s]
        fill(e, h, c1, a1, c2, a2, c3, a3)
        t = h[0] - h[0]
        for r in range(h.shape[0]):
            t += h[r] * v[r]
        t *= conf * values[e]
        for r in range(h.shape[0]):
            out[r] += t * h[r]


@numba.njit(inline="always", **_JIT)
def _row_setup(fill, values, order, rowptr, i, conf, ws, jacobi, x, r, d, h,
               c1, a1, c2, a2, c3, a3):  # fmt: skip
    """One pass over row i's entries: ``r = b − ws·Σ w_e (h_eᵀ x_i) h_e`` (the residual but for
    its dense part), with ``jacobi`` ``d = Σ w_e h_e²`` (the Jacobi diagonal's stored share);
    returns ``bᵀx_i``."""
    in_order = order.shape[0] == 0
    r[:] = 0.0
    d[:] = 0.0
    bx = 0.0
    for s in range(rowptr[i], rowptr[i + 1]):
        e = s if in_order else order[s]
        fill(e, h, c1, a1, c2, a2, c3, a3)
        w = conf * values[e]
        t = _dot_row(h, x, i)
        bx += (1.0 + w) * t
        coef = ws * (1.0 + w - w * t)
        for k in range(h.shape[0]):
            r[k] += coef * h[k]
        if jacobi:
            for k in range(h.shape[0]):
                d[k] += w * h[k] * h[k]
    return ws * bx


@numba.njit(inline="always", **_JIT)
def _dense_times(dense, v, out):
    """``out += dense @ v`` for symmetric ``dense``: one contiguous axpy per row of it, which
    vectorises (a dot product per output ran an order of magnitude slower)."""
    for j in range(out.shape[0]):
        vj = v[j]
        for k in range(out.shape[0]):
            out[k] += dense[j, k] * vj


@numba.njit(**_JIT)
def row_cg(fill, values, order, rowptr, lo, hi, conf, dense, ws, tol, steps, jacobi, x, f,
           c1, a1, c2, a2, c3, a3):  # fmt: skip
    """At most ``steps`` CG steps on each row's system
    ``A_i x_i = (dense + ws·Σ w_e h_e h_eᵀ) x_i = ws·Σ (1 + w_e) h_e = b_i``, from ``x[i]``
    (overwritten), a row stopping once its residual is below ``tol`` times its first one;
    Jacobi-preconditioned with ``jacobi``.

    ``f[i]`` receives ``½ x_iᵀ A_i x_i − b_iᵀ x_i`` at the final ``x_i``, from CG's own
    recurrences (each step lowers it by ``½ step · rᵀz``): the data term without another pass.
    """
    rank = x.shape[1]
    work = np.empty((6, rank), dtype=x.dtype)
    h, d, r, z, p, q = work[0], work[1], work[2], work[3], work[4], work[5]
    for i in range(lo, hi):
        bx = _row_setup(
            fill, values, order, rowptr, i, conf, ws, jacobi, x, r, d, h, c1, a1, c2, a2, c3, a3
        )
        # p holds dense·x_i for a moment: r is then the full residual.
        p[:] = 0.0
        _dense_times(dense, x[i], p)
        rz, rr, rx = 0.0, 0.0, 0.0
        for k in range(rank):
            r[k] -= p[k]
            d[k] = dense[k, k] + ws * d[k] if jacobi else 1.0
            z[k] = r[k] / d[k]
            p[k] = z[k]
            rz += r[k] * z[k]
            rr += r[k] * r[k]
            rx += r[k] * x[i, k]
        # f(x) = ½xᵀ(b − r) − bᵀx = −½(bᵀx + rᵀx).
        fi = -0.5 * (bx + rx)
        limit = tol * tol * rr
        for _ in range(steps):
            if rr <= limit or not rz > 0.0:
                break
            step, rz_new, rr = _cg_step(
                fill, values, order, rowptr, i, conf, dense, ws, x, r, z, p, q, d, h, rz,
                c1, a1, c2, a2, c3, a3,
            )  # fmt: skip
            if step == 0.0:
                break
            fi -= 0.5 * step * rz
            rz = rz_new
        f[i] = fi


@numba.njit(inline="always", **_JIT)
def _cg_step(fill, values, order, rowptr, i, conf, dense, ws, x, r, z, p, q, d, h, rz,
             c1, a1, c2, a2, c3, a3):  # fmt: skip
    """One PCG step of row i in place (``q`` scratch); returns the step, the new ``rᵀz`` and
    ``rᵀr``."""
    rank = p.shape[0]
    _stored_apply(fill, values, order, rowptr, i, conf, p, q, h, c1, a1, c2, a2, c3, a3)
    for k in range(rank):
        q[k] *= ws
    _dense_times(dense, p, q)
    pap = 0.0
    for k in range(rank):
        pap += p[k] * q[k]
    if not pap > 0.0:
        return 0.0, rz, 0.0
    step = rz / pap
    rz_new, rr = 0.0, 0.0
    for k in range(rank):
        x[i, k] += step * p[k]
        r[k] -= step * q[k]
        z[k] = r[k] / d[k]
        rz_new += r[k] * z[k]
        rr += r[k] * r[k]
    beta = rz_new / rz
    for k in range(rank):
        p[k] = z[k] + beta * p[k]
    return step, rz_new, rr
