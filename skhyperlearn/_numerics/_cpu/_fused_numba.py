"""The compiled kernels of :mod:`._fused`, imported on first use (numba takes ~0.5 s to import).

One kernel per order: the other modes' index rows and factors are separate arguments, so the
compiler keeps them in registers and vectorises the rank loop (a tuple indexed at run time, or
the factors stacked into one array, ran 2–4 times slower). ``order`` empty: the entries are
already in the mode's order. Only fused multiply-adds are allowed ("contract"): no
reassociation, and NaN still propagates for the fault policy to see. ``cache=True``: compiled
once per machine and signature (a few seconds), then loaded from numba's cache.
"""

import numba
import numpy as np

__all__ = ["IMPLICIT_ROWS", "ROWS"]

_JIT = {"nogil": True, "cache": True, "fastmath": {"contract"}}


@numba.njit(**_JIT)
def _rows2(values, order, rowptr, lo, hi, out, c1, a1):
    in_order = order.shape[0] == 0
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            v, i1 = values[e], c1[e]
            for r in range(out.shape[1]):
                out[i, r] += v * a1[i1, r]


@numba.njit(**_JIT)
def _rows3(values, order, rowptr, lo, hi, out, c1, a1, c2, a2):
    in_order = order.shape[0] == 0
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            v, i1, i2 = values[e], c1[e], c2[e]
            for r in range(out.shape[1]):
                out[i, r] += v * a1[i1, r] * a2[i2, r]


@numba.njit(**_JIT)
def _rows4(values, order, rowptr, lo, hi, out, c1, a1, c2, a2, c3, a3):
    in_order = order.shape[0] == 0
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            v, i1, i2, i3 = values[e], c1[e], c2[e], c3[e]
            for r in range(out.shape[1]):
                out[i, r] += v * a1[i1, r] * a2[i2, r] * a3[i3, r]


#: ``ROWS[K](values, order, rowptr, lo, hi, out, c_1, A_1, …)`` adds rows ``lo … hi − 1`` of a
#: K-th order MTTKRP into ``out``, ``c_j``/``A_j`` being the other modes' indices and factors.
ROWS = {2: _rows2, 3: _rows3, 4: _rows4}


# The implicit loss's stored-entry normal equations: per entry the product h of the other
# modes' rows (into a scratch row), then linear[i] += (1 + w) h and grams[i] += w h hᵀ with
# w = conf · x. The full R×R outer product, not its triangle: the inner loop stays one
# contiguous, vectorised row of grams[i].


@numba.njit(**_JIT)
def _add_entry(i, v, conf, linear, grams, h):
    w = conf * v
    for p in range(h.shape[0]):
        linear[i, p] += (1.0 + w) * h[p]
        wp = w * h[p]
        for q in range(h.shape[0]):
            grams[i, p, q] += wp * h[q]


@numba.njit(**_JIT)
def _implicit2(values, order, rowptr, lo, hi, conf, linear, grams, c1, a1):
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            i1 = c1[e]
            for r in range(h.shape[0]):
                h[r] = a1[i1, r]
            _add_entry(i, values[e], conf, linear, grams, h)


@numba.njit(**_JIT)
def _implicit3(values, order, rowptr, lo, hi, conf, linear, grams, c1, a1, c2, a2):
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            i1, i2 = c1[e], c2[e]
            for r in range(h.shape[0]):
                h[r] = a1[i1, r] * a2[i2, r]
            _add_entry(i, values[e], conf, linear, grams, h)


@numba.njit(**_JIT)
def _implicit4(values, order, rowptr, lo, hi, conf, linear, grams, c1, a1, c2, a2, c3, a3):
    in_order = order.shape[0] == 0
    h = np.empty(linear.shape[1], dtype=linear.dtype)
    for i in range(lo, hi):
        for s in range(rowptr[i], rowptr[i + 1]):
            e = s if in_order else order[s]
            i1, i2, i3 = c1[e], c2[e], c3[e]
            for r in range(h.shape[0]):
                h[r] = a1[i1, r] * a2[i2, r] * a3[i3, r]
            _add_entry(i, values[e], conf, linear, grams, h)


#: ``IMPLICIT_ROWS[K](values, order, rowptr, lo, hi, conf, linear, grams, c_1, A_1, …)`` adds
#: rows ``lo … hi − 1`` of the implicit loss's normal equations into ``linear`` and ``grams``.
IMPLICIT_ROWS = {2: _implicit2, 3: _implicit3, 4: _implicit4}
