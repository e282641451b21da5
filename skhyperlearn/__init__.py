"""skhyperlearn: HyperLearn representations of multimodal hypergraphs for scikit-learn.

Public names: :class:`HyperLearnDecomposition` (the estimator), :class:`Hypergraph` (a sparse
tensor with one graph per mode, sliced together), and the modules :mod:`skhyperlearn.graphs`
and :mod:`skhyperlearn.datasets`.
"""

from . import datasets, graphs
from ._completion import HyperLearnRegressor
from ._decomposition import HyperLearnDecomposition
from .hypergraph import Hypergraph

__version__ = "0.1.0"

__all__ = [
    "HyperLearnDecomposition",
    "HyperLearnRegressor",
    "Hypergraph",
    "__version__",
    "datasets",
    "graphs",
]
