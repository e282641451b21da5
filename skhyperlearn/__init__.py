"""skhyperlearn: HyperLearn representations of multimodal hypergraphs for scikit-learn."""

__version__ = "0.1.0"
