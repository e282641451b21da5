"""The compiled kernels of the implicit loss's matrix-free mode solve (see :mod:`._fused`).

Mode k's system for row i is ``(M + s·Σ_{e_k=i} w_e h_e h_eᵀ) a_i = s·Σ_{e_k=i} (1 + w_e) h_e``
with ``h_e`` the product of the other modes' rows at entry e, ``w_e = conf·x_e`` and ``M`` the
dense R×R part shared by every row (absent cells, ridge, floor). These kernels apply it without
forming a per-row Gram: ``O(R)`` work per entry instead of ``O(R²)``.

One kernel serves every order: the other modes' index rows and factors come as one tuple
``others = (c_1, A_1, …)``, whose length is part of its type, so :func:`part_fill` picks the
order's ``FILL[K − 2]`` when numba compiles the kernel, and both are inlined into the entry
loop (a branch on the number of modes inside the loop, or one helper for all, ran 5–10 times
slower; the gather as a function called per entry 2–13 times). The gather is not an
argument: a compiled function passed as one put its type in the cache's key, which no later
process matched, so every process compiled the kernels again and added them to the
cache's index (and saving that index could fail). ``order`` empty: the entries are already in
the mode's order.
:func:`row_cg` solves a sum of such terms of one factor matrix (the projection terms' coupled
solve: the tensor and its pair matrices, each with its own weight): its parts are a tuple,
unrolled at compile time (``literal_unroll``), each gathering with its own order's ``FILL``
(:func:`part_fill`); one term is a tuple of one.
``cache=True`` as in :mod:`._fused_numba`; unlike there, reassociation is allowed besides fused
multiply-adds: these kernels take dot products over the rank (``h_eᵀ v`` per entry, ``M p`` per
row), which without it run one addition at a time (several times slower). It only reorders
each R-term sum, the same way on every call, and NaN still propagates (no ``nnan``).
"""

import numba
import numpy as np
from numba import literal_unroll
from numba.extending import overload

__all__ = ["FILL", "part_fill", "row_apply", "row_cg", "row_rhs_diag", "row_value"]

_JIT = {"nogil": True, "cache": True, "fastmath": {"contract", "reassoc"}}
#: Bytes per thread of a row's cached entry products in :func:`row_cg` (about an L2 cache):
#: a longer row's remaining entries are gathered at each step, as without the cache. Read by
#: :func:`._fused.fused_implicit_cg` at each call (tests shrink it).
CACHE_BYTES = 2**20


@numba.njit(inline="always", **_JIT)
def _fill1(e, h, c1, a1, c2, a2, c3, a3):
    i1 = c1[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r]


@numba.njit(inline="always", **_JIT)
def _fill2(e, h, c1, a1, c2, a2, c3, a3):
    i1, i2 = c1[e], c2[e]
    for r in range(h.shape[0]):
        h[r] = a1[i1, r] * a2[i2, r]


@numba.njit(inline="always", **_JIT)
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
def row_rhs_diag(values, order, rowptr, lo, hi, conf, linear, dsum, others):
    """``linear[i] = Σ (1 + w_e) h_e`` and ``dsum[i] = Σ w_e h_e²`` for rows ``lo … hi − 1``."""
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            part_fill(e, h, others)
            w = conf * values[e]
            for r in range(h.shape[0]):
                linear[i, r] += (1.0 + w) * h[r]
                dsum[i, r] += w * h[r] * h[r]


@numba.njit(**_JIT)
def row_apply(values, order, rowptr, lo, hi, conf, y, out, others):
    """``out[i] = Σ w_e (h_eᵀ y_i) h_e``: the stored entries' share of the operator."""
    in_order = order.shape[0] == 0
    h = np.empty(y.shape[1], dtype=y.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            part_fill(e, h, others)
            t = conf * values[e] * _dot_row(h, y, i)
            for r in range(h.shape[0]):
                out[i, r] += t * h[r]


@numba.njit(**_JIT)
def row_value(values, order, rowptr, lo, hi, conf, a, out, others):
    """``out[i] = Σ (w_e t_e² − 2(1 + w_e) t_e)``, ``t_e = h_eᵀ a_i``: the row's stored share of
    the data term (its constant and its absent-cell Gram added by the caller)."""
    in_order = order.shape[0] == 0
    h = np.empty(a.shape[1], dtype=a.dtype)
    for i in range(lo, hi):
        total = 0.0
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            part_fill(e, h, others)
            w = conf * values[e]
            t = _dot_row(h, a, i)
            total += w * t * t - 2.0 * (1.0 + w) * t
        out[i] = total


def part_fill(e, h, others):
    """``h = Π_j A_j[c_j[e]]`` over a part's ``others = (c_1, A_1, …)`` (compiled code only):
    ``FILL`` chosen by the tuple's length when numba types the call, so each part of
    :func:`row_cg` gathers with its own order's loop."""
    raise NotImplementedError("part_fill runs inside compiled kernels only")


@overload(part_fill, jit_options=_JIT, inline="always")
def _part_fill(e, h, others):
    n = len(others)
    if n == 2:
        return lambda e, h, others: _fill1(
            e, h, others[0], others[1], None, None, None, None
        )  # fmt: skip
    if n == 4:
        return lambda e, h, others: _fill2(
            e, h, others[0], others[1], others[2], others[3], None, None
        )  # fmt: skip
    if n == 6:
        return lambda e, h, others: _fill3(
            e, h, others[0], others[1], others[2], others[3], others[4], others[5]
        )  # fmt: skip
    return None


@numba.njit(**_JIT)
def _stored_apply(parts, i, v, out, h, t, hbuf, wbuf, cached):
    """``out = Σ_p ws_p Σ_{e_k=i} w_e (h_eᵀ v) h_e`` over the parts for one row (``v``,
    ``out`` rank-vectors, ``t`` scratch); part p's first ``cached[p]`` entries read ``h_e`` and
    ``w_e`` from :func:`_row_setup`'s cache, in the parts' order."""
    out[:] = 0.0
    used, index = 0, 0
    # literal_unroll: a body per part's types (its order's gather); kept to one call, which
    # the unroller requires of a body defining variables.
    for part in literal_unroll(parts):
        _part_apply(part, i, v, out, h, t, hbuf, wbuf, used, cached[index])
        used += cached[index]
        index += 1


@numba.njit(**_JIT)
def _part_apply(part, i, v, out, h, t, hbuf, wbuf, used, n_cached):
    """``out += ws Σ_{e_k=i} w_e (h_eᵀ v) h_e`` of one part, its first ``n_cached`` entries from
    ``hbuf[used:]``/``wbuf[used:]``."""
    values, order, rowptr, conf, ws, others = part
    in_order = order.shape[0] == 0
    t[:] = 0.0
    for j in range(used, used + n_cached):
        he = hbuf[j]
        dot = he[0] - he[0]
        for r in range(he.shape[0]):
            dot += he[r] * v[r]
        dot *= wbuf[j]
        for r in range(he.shape[0]):
            t[r] += dot * he[r]
    for s in range(rowptr[i] + n_cached, rowptr[i + 1]):
        e = s if in_order else order[s]
        part_fill(e, h, others)
        dot = h[0] - h[0]
        for r in range(h.shape[0]):
            dot += h[r] * v[r]
        dot *= conf * values[e]
        for r in range(h.shape[0]):
            t[r] += dot * h[r]
    # Weighted once per part (a single part: its sum times ws, as one term's operator).
    for r in range(out.shape[0]):
        out[r] += ws * t[r]


@numba.njit(**_JIT)
def _row_setup(parts, i, jacobi, dense, x, r, d, h, t, hbuf, wbuf, cached, bx):
    """One pass over row i's entries of every part: ``r = b − Σ_p ws_p Σ w_e (h_eᵀ x_i) h_e``
    (the residual but for its dense part), with ``jacobi`` ``d = diag(dense) + Σ_p ws_p Σ w_e
    h_e²`` (the Jacobi diagonal); ``bx[p]`` receives part p's ``bᵀx_i / ws_p``. The row's first
    ``len(wbuf)`` entries, in the parts' order, keep ``h_e`` and ``w_e`` in ``hbuf``/``wbuf``
    for the CG steps (``cached[p]`` of part p): gathering the other modes' rows again at every
    step, from memory rather than cache, was most of the solve's time at 10⁷ entries."""
    r[:] = 0.0
    if jacobi:
        for k in range(d.shape[0]):
            d[k] = dense[k, k]
    used, index = 0, 0
    for part in literal_unroll(parts):
        bx[index], n_cached = _part_setup(part, i, jacobi, x, r, d, h, t, hbuf, wbuf, used)
        cached[index] = n_cached
        used += n_cached
        index += 1


@numba.njit(**_JIT)
def _part_weights(parts, out):
    """``out[p] = ws_p``."""
    index = 0
    for part in literal_unroll(parts):
        out[index] = part[4]
        index += 1


@numba.njit(**_JIT)
def _part_setup(part, i, jacobi, x, r, d, h, t, hbuf, wbuf, used):
    """:func:`_row_setup` of one part, caching from ``hbuf[used:]``: returns its ``bᵀx_i / ws``
    and how many of its entries were cached."""
    values, order, rowptr, conf, ws, others = part
    in_order = order.shape[0] == 0
    t[:] = 0.0
    bx = 0.0
    start = rowptr[i]
    for s in range(start, rowptr[i + 1]):
        e = s if in_order else order[s]
        j = used + s - start
        he = hbuf[j] if j < wbuf.shape[0] else h
        part_fill(e, he, others)
        w = conf * values[e]
        if j < wbuf.shape[0]:
            wbuf[j] = w
        tx = _dot_row(he, x, i)
        bx += (1.0 + w) * tx
        coef = ws * (1.0 + w - w * tx)
        for k in range(he.shape[0]):
            r[k] += coef * he[k]
        if jacobi:
            for k in range(he.shape[0]):
                t[k] += w * he[k] * he[k]
    if jacobi:
        for k in range(d.shape[0]):
            d[k] += ws * t[k]
    return bx, min(rowptr[i + 1] - start, wbuf.shape[0] - used)


@numba.njit(inline="always", **_JIT)
def _dense_times(dense, v, out):
    """``out += dense @ v`` for symmetric ``dense``: one contiguous axpy per row of it, which
    vectorises (a dot product per output ran an order of magnitude slower)."""
    for j in range(out.shape[0]):
        vj = v[j]
        for k in range(out.shape[0]):
            out[k] += dense[j, k] * vj


@numba.njit(**_JIT)
def row_cg(parts, total, lo, hi, dense, tol, steps, jacobi, cache_bytes, x, f):
    """At most ``steps`` CG steps on each row's system
    ``A_i x_i = (dense + Σ_p ws_p Σ_{e_k=i} w_e h_e h_eᵀ) x_i = Σ_p ws_p Σ (1 + w_e) h_e = b_i``
    over the ``parts`` (each ``(values, order, rowptr, conf, ws, (c_1, A_1, …))``: one tensor's
    entries in the solved mode's order, its weights ``w_e = conf·x_e``, its other modes;
    ``total`` the parts' summed row pointer), from ``x[i]`` (overwritten), a row stopping once
    its residual is below ``tol`` times its first one; Jacobi-preconditioned with ``jacobi``.

    ``f[i]`` receives ``½ x_iᵀ A_i x_i − b_iᵀ x_i`` at the final ``x_i``, from CG's own
    recurrences (each step lowers it by ``½ step · rᵀz``): the data term without another pass.
    """
    rank = x.shape[1]
    work = np.empty((7, rank), dtype=x.dtype)
    h, d, r, z, p, q, t = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    longest = 0
    for i in range(lo, hi):
        longest = max(longest, total[i + 1] - total[i])
    cache = min(longest, max(1, cache_bytes // (rank * x.itemsize)))
    hbuf = np.empty((cache, rank), dtype=x.dtype)
    wbuf = np.empty(cache, dtype=x.dtype)
    cached = np.zeros(len(parts), dtype=np.int64)
    weights, bx = np.empty(len(parts)), np.empty(len(parts))
    _part_weights(parts, weights)
    for i in range(lo, hi):
        _row_setup(parts, i, jacobi, dense, x, r, d, h, t, hbuf, wbuf, cached, bx)
        # p holds dense·x_i for a moment: r is then the full residual.
        p[:] = 0.0
        _dense_times(dense, x[i], p)
        rz, rr, rx = 0.0, 0.0, 0.0
        for k in range(rank):
            r[k] -= p[k]
            d[k] = d[k] if jacobi else 1.0
            z[k] = r[k] / d[k]
            p[k] = z[k]
            rz += r[k] * z[k]
            rr += r[k] * r[k]
            rx += r[k] * x[i, k]
        # f(x) = ½xᵀ(b − r) − bᵀx = −½(bᵀx + rᵀx), bᵀx = Σ_p ws_p bx_p.
        bxs = 0.0
        for j in range(len(parts)):
            bxs += weights[j] * bx[j]
        fi = -0.5 * (bxs + rx)
        limit = tol * tol * rr
        for _ in range(steps):
            if rr <= limit or not rz > 0.0:
                break
            step, rz_new, rr = _cg_step(parts, i, dense, x, r, z, p, q, d, h, t, rz, hbuf, wbuf,
                                        cached)  # fmt: skip
            if step == 0.0:
                break
            fi -= 0.5 * step * rz
            rz = rz_new
        f[i] = fi


@numba.njit(inline="always", **_JIT)
def _cg_step(parts, i, dense, x, r, z, p, q, d, h, t, rz, hbuf, wbuf, cached):
    """One PCG step of row i in place (``q``, ``t`` scratch); returns the step, the new
    ``rᵀz`` and ``rᵀr``."""
    rank = p.shape[0]
    _stored_apply(parts, i, p, q, h, t, hbuf, wbuf, cached)
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
