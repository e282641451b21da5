"""Dataset loaders (read from a local path) and the synthetic hypergraph generator."""

from ._crossed import make_crossed_hypergraph
from ._lastfm import load_lastfm2k
from ._movielens import get_data_home, load_monti_movielens, load_movielens100k
from ._synthetic import make_hypergraph

__all__ = [
    "get_data_home",
    "load_lastfm2k",
    "load_monti_movielens",
    "load_movielens100k",
    "make_crossed_hypergraph",
    "make_hypergraph",
]
