"""Type aliases of the public API's annotations."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import sparse

from .hypergraph import Hypergraph

#: What ``fit``/``transform`` accept as X: a pydata-sparse tensor, a dense array, a scipy sparse
#: matrix (the order-2 case) or a :class:`~skhyperlearn.Hypergraph`. A runtime alias (not only a
#: string) so that ``typing.get_type_hints`` and the documentation resolve it.
TensorLike = sparse.SparseArray | np.ndarray | sp.sparray | sp.spmatrix | Hypergraph
