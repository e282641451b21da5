"""Compiled CPU passes over the stored entries (numba), imported only when a pass first runs.

:mod:`._fused` decides when they apply (CPU, order 2–4, one dtype, no autograd) and splits the
rows over threads; :mod:`._fused_numba` (MTTKRP, the implicit loss's pass) and
:mod:`._fused_cg_numba` (the implicit loss's matrix-free mode solve) hold the compiled loops.
"""
