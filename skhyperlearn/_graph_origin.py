"""Where a sliced Hypergraph's entities sit in the graph it was sliced from.

A fold-in of new entities (``transform``, ``fold_in``) would otherwise see only the sub-graph
among them: a test movie's edges to the training movies are dropped by ``H[test]``, so the
graph term cannot pull it towards the neighbours it was fitted beside. Each ``Hypergraph``
remembers, per mode with a graph, the graph it was first built with and the positions of its
entities in it (``GraphOrigin``); a fitted estimator keeps its training X's origins, and
:func:`fold_in_blocks` gives the fold-in the graph over the union of new and fitted entities,
split into the new rows' block and their block against the fitted rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .graphs import normalized_laplacian

__all__ = ["FoldInBlocks", "GraphOrigin", "fold_in_blocks", "new_origin"]


@dataclass(frozen=True)
class GraphOrigin:
    """One mode's entities as positions in the graph the Hypergraph was built with.

    ``token`` names that first Hypergraph (every slice of it, pickled or not, carries the same
    one); ``graph`` is its graph as given (``kind`` "adjacency" or "laplacian"), shared by
    every slice, never modified.
    """

    token: str
    graph: sp.csr_array
    kind: str
    positions: np.ndarray

    def take(self, idx: np.ndarray) -> GraphOrigin:
        """The origin of the entities ``idx`` of this one."""
        return GraphOrigin(self.token, self.graph, self.kind, self.positions[idx])


def new_origin(graph: sp.csr_array, kind: str) -> GraphOrigin:
    """The origin of a graph given to a new Hypergraph: every entity at its own position."""
    return GraphOrigin(uuid.uuid4().hex, graph, kind, np.arange(graph.shape[0]))


@dataclass(frozen=True)
class FoldInBlocks:
    """The new rows' Laplacian ``L_xx`` and their block ``L_xt`` against the fitted rows
    ``rows`` (indices into the fitted factor matrix) of the union's Laplacian."""

    own: sp.csr_array
    cross: sp.csr_array
    rows: np.ndarray


def fold_in_blocks(fitted: GraphOrigin | None, new: GraphOrigin | None) -> FoldInBlocks | None:
    """The graph of the union of ``new``'s entities and the fitted ones outside them.

    None when the two come from different Hypergraphs (or either has no origin), or when no
    fitted entity lies outside the new ones: folding in the training entities themselves then
    sees exactly the graph it was fitted with, so ``transform(X_train)`` equals
    ``fit_transform(X_train)``. With adjacencies the union's normalized Laplacian has the
    union's degrees; a Laplacian given as such is restricted to the union (its principal
    sub-matrix, as ``Hypergraph.take`` slices it).
    """
    if fitted is None or new is None or fitted.token != new.token:
        return None
    rows = np.flatnonzero(~np.isin(fitted.positions, new.positions))
    if rows.size == 0:
        return None
    union = np.concatenate([new.positions, fitted.positions[rows]])
    block = fitted.graph[union][:, union]
    lap = normalized_laplacian(block) if fitted.kind == "adjacency" else sp.csr_array(block)
    n = new.positions.shape[0]
    return FoldInBlocks(sp.csr_array(lap[:n][:, :n]), sp.csr_array(lap[:n][:, n:]), rows)
