"""skhyperlearn: HyperLearn representations of multimodal hypergraphs for scikit-learn.

Public names: :class:`HyperLearnDecomposition` (the estimator), :class:`HyperLearnRegressor`
(the same engine as a regressor over entries), :class:`Hypergraph` (a sparse tensor with one
graph per mode, sliced together), :class:`HyperedgeRanker` (a decomposition fitted on hyperedge
coordinates and scored by completion, for ``GridSearchCV``), and the modules
:mod:`skhyperlearn.graphs`, :mod:`skhyperlearn.datasets`, :mod:`skhyperlearn.metrics` (filtered
ranking metrics) and :mod:`skhyperlearn.model_selection` (hyperedge splitters).

Every public name is loaded on first access (PEP 562): ``import skhyperlearn`` imports neither
torch nor scikit-learn, so that a script, a test collector or a documentation build pays for
torch only when it first touches an estimator. :mod:`skhyperlearn.graphs`,
:mod:`skhyperlearn.hypergraph` and :mod:`skhyperlearn.datasets` never import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> (module, attribute); attribute None means the module itself.
_LAZY = {
    "HyperLearnDecomposition": ("._decomposition", "HyperLearnDecomposition"),
    "HyperLearnRegressor": ("._completion", "HyperLearnRegressor"),
    "HyperedgeRanker": ("._hyperedge_ranker", "HyperedgeRanker"),
    "Hypergraph": (".hypergraph", "Hypergraph"),
    "datasets": (".datasets", None),
    "graphs": (".graphs", None),
    "metrics": (".metrics", None),
    "model_selection": (".model_selection", None),
    "preprocessing": (".preprocessing", None),
}

__all__ = [
    "HyperLearnDecomposition",
    "HyperLearnRegressor",
    "HyperedgeRanker",
    "Hypergraph",
    "__version__",
    "datasets",
    "graphs",
    "metrics",
    "model_selection",
    "preprocessing",
]

if TYPE_CHECKING:  # static analysers and IDEs see the names without the lazy loader
    from . import datasets, graphs, metrics, model_selection, preprocessing
    from ._completion import HyperLearnRegressor
    from ._decomposition import HyperLearnDecomposition
    from ._hyperedge_ranker import HyperedgeRanker
    from .hypergraph import Hypergraph


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    # Cache it: later accesses are plain attribute lookups, never this function again.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
