"""skhyperlearn: HyperLearn representations of multimodal hypergraphs for scikit-learn."""

from ._decomposition import HyperLearnDecomposition

__version__ = "0.1.0"

__all__ = ["HyperLearnDecomposition", "__version__"]
