"""``--warm``: the compiled kernels a fit calls, compiled into numba's cache before the ranks start.

The CPU kernels are compiled on first use and cached on disk (``cache=True``, in the package's
``__pycache__`` or ``NUMBA_CACHE_DIR``). A group launched on a cold cache has every rank
compile the same kernels at once: seconds of compiler time and compiler memory per rank, and
the ranks race to write the same cache files. ``python -m skhyperlearn.distributed --warm``
with the options of the fit fits the same estimator once on a tiny tensor of the data's
order, dtypes and graphed modes: every kernel the real fit calls is then in the cache, and each
rank only loads it. Nothing of the data is read but its description (a folder's manifest, or
the ``--synthetic`` shape).

Under torchrun the same command measures the runtime every rank carries before any data:
the imports, the process group and the compiled kernels loaded (``--stats``).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import sparse

__all__ = ["tiny_hypergraph", "warm_fit"]

#: Side of every mode of the tiny tensor, and its number of stored entries.
_SIDE, _ENTRIES = 4, 8


def tiny_hypergraph(order: int, dtype, index_dtype, graphed: list[bool]):
    """A ``4 × … × 4`` tensor of 8 entries (values 1) in the given dtypes, a path graph's
    Laplacian on every graphed mode."""
    from ..hypergraph import Hypergraph

    rng = np.random.default_rng(0)
    cells = np.sort(rng.choice(_SIDE**order, size=_ENTRIES, replace=False))
    coords = np.array(np.unravel_index(cells, (_SIDE,) * order), dtype=index_dtype)
    tensor = sparse.COO(
        coords, np.ones(_ENTRIES, dtype=dtype), shape=(_SIDE,) * order,
        has_duplicates=False, sorted=True,
    )  # fmt: skip
    path = sp.diags([np.ones(_SIDE - 1), np.ones(_SIDE - 1)], [-1, 1], format="csr")
    lap = sp.csr_array(sp.diags(np.asarray(path.sum(axis=1)).ravel()) - path)
    graphs = [lap.copy() if g else None for g in graphed]
    return Hypergraph(tensor, graphs if any(graphed) else None)


def warm_fit(estimator_params: dict, order: int, dtype, index_dtype, graphed: list[bool]):
    """Fit the estimator (one round) on :func:`tiny_hypergraph`; its warnings are dropped
    (a tiny tensor is no data). Returns the fitted estimator."""
    from .. import HyperLearnDecomposition

    params = dict(estimator_params, max_iter=1, verbose=0)
    X = tiny_hypergraph(order, dtype, index_dtype, graphed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HyperLearnDecomposition(**params).fit(X)
