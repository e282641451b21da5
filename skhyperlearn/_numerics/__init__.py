"""The numerics: tensors and matrices only, no graphs, networks or estimators.

One room per job, each importing only the rooms above it in this list:

- :mod:`._layout`: :class:`~._layout.SparseTensorData`, the stored entries held once (the
  caller's coordinates or a narrowest copy, a permutation and row pointer per mode, chunks
  gathered on visit); every pass reads it through its public methods (``in_mode_order``,
  ``rowptr``, ``layout``, ``workspace``, ``memo``).
- :mod:`._cpu`: the compiled CPU passes (numba; imported on first use, never by
  ``import skhyperlearn``). Each ``fused_*`` function returns None where it does not apply.
- :mod:`._kernels`: every pass over the stored entries in torch (any device, chunked), and
  the one dispatch per pass: each public kernel (``mttkrp``, ``implicit_normal_equations``,
  ``implicit_rhs_diag``, ``implicit_stored_apply``, ``implicit_stored_value``) first calls its
  compiled ``fused_*`` counterpart and runs the torch loop only when that returns None. There
  is one torch loop per pass, shared by every device, not one per backend that could drift.
- :mod:`._cg` (preconditioned CG over row-batched systems) and :mod:`._sparse` (scipy ↔ torch
  sparse matrices, the symmetric product, diagonals).

A device kernel (CUDA, Triton) goes in a room of its own, ``_numerics/_cuda/``, mirroring
:mod:`._cpu`: functions with the ``fused_*`` signatures of :mod:`._cpu._fused` that return None
unless the tensor and factors are on that device. It hooks into the same dispatch, the call at
the top of each public kernel of :mod:`._kernels` (``fused_mttkrp`` in ``mttkrp`` first), and
its tests compare it with the torch loop as ``tests/numerics/test_fused.py`` does for the CPU.
"""
