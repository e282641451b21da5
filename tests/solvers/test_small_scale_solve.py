"""The exact graph-mode solve at any scale: a system whose every entry is tiny (tiny X, a
Laplacian scaled down) is solved as exactly as one of unit scale, against solve_sylvester."""

from __future__ import annotations

import numpy as np
import pytest
import sparse
from scipy.linalg import solve_sylvester

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.graphs import knn_graph, normalized_laplacian

SHAPE = (12, 9, 7)


@pytest.mark.parametrize("c", [1.0, 1e-6])
def test_the_sample_modes_final_solve_matches_solve_sylvester(c):
    rng = np.random.default_rng(0)
    coords = np.unique(np.stack([rng.integers(0, n, 200) for n in SHAPE]), axis=1)
    X = sparse.COO(coords, c * rng.uniform(0.5, 1.5, coords.shape[1]), shape=SHAPE)
    # A Laplacian of the system's own tiny scale: every diagonal entry of the solve is small.
    lap = c * normalized_laplacian(knn_graph(rng.normal(size=(SHAPE[0], 3)), 3)).toarray()
    model = HyperLearnDecomposition(
        rank=2, loss="hypergraph", lam=1.0, alpha=0.0, laplacians=[lap, None, None],
        factor_scale="free", max_iter=2, tol=0.0, cg_tol=1e-14, random_state=0,
    ).fit(X)  # fmt: skip
    a1, a2 = model.factors_[1], model.factors_[2]
    dense = X.todense()
    mttkrp = np.einsum("ijk,jr,kr->ir", dense, a1, a2)
    gram = (a1.T @ a1) * (a2.T @ a2)
    # Stationarity of λ‖X − [[A]]‖² + ½ tr(AᵀLA) in A_0: L A + 2λ A G = 2λ MTTKRP.
    ref = solve_sylvester(lap, 2.0 * gram, 2.0 * mttkrp)
    np.testing.assert_allclose(model.factors_[0], ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())
