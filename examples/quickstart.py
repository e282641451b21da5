"""
Quickstart: a representation of every modality of a synthetic hypergraph
========================================================================

``make_hypergraph`` plants graph-smooth CP structure in a sparse 3rd-order binary tensor (think
images × tags × users) and gives each modality a kNN graph and community labels.
``HyperLearnDecomposition`` learns one factor matrix per modality from the tensor and the graphs.
The script prints

- the shapes of the learned factors (one ``(N_k, rank)`` matrix per modality),
- the objective J at the initial factors and after fitting (recomputed here, in a few lines of
  numpy, from the stored entries only: the tensor is never densified),
- how well the planted communities of the sample mode are recovered: the 5-fold accuracy of a
  LogisticRegression on the learned factors, against the same without graphs (plain CP) and
  against random features of the same width,

and draws the sample-mode factors (2-D PCA, coloured by planted community) with and without
graphs, into ``examples/_out/quickstart.png`` (``--out``; needs matplotlib).

Run (under a minute on a laptop; ``--quick``: at most 20 sweeps, 3 folds)::

    python examples/quickstart.py
    python examples/quickstart.py --quick
    python examples/quickstart.py --rank 6 --lam 0.5 --seed 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the examples from their folder, without __file__
    HERE = Path.cwd()


def objective(tensor, factors, laplacians, lam, confidence, alpha):
    """J of the default loss (``loss="implicit"``), without densifying X.

    The data term is ``(Σ_all cells (p − x̂)² + Σ_stored c·x (1 − x̂)²) / (1 + c)`` with p = 1 at
    the stored cells; ``Σ_all x̂²`` is ``1ᵀ (⊛_k A_kᵀ A_k) 1``, a Hadamard product of R × R Gram
    matrices, so only the stored entries are visited.
    """
    coords, values = tensor.coords, tensor.data
    at_entries = np.prod([a[c] for a, c in zip(factors, coords, strict=True)], axis=0).sum(1)
    gram = np.prod([a.T @ a for a in factors], axis=0)
    every_cell = len(values) - 2.0 * at_entries.sum() + gram.sum()
    stored = confidence * values @ (1.0 - at_entries) ** 2
    data = (every_cell + stored) / (1.0 + confidence)
    graph = sum(0.5 * np.sum(a * (lap @ a)) for a, lap in zip(factors, laplacians, strict=True))
    ridge = alpha * sum(np.sum(a * a) for a in factors)
    return lam * data + graph + ridge


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Quickstart on a synthetic hypergraph")
    parser.add_argument("--rank", type=int, default=4, help="components R (default 4)")
    parser.add_argument("--lam", type=float, default=1.0, help="weight of the data term")
    parser.add_argument("--alpha", type=float, default=0.03, help="ridge (the loss's default)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="at most 20 sweeps, 3 folds")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "_out" / "quickstart.png",
        help="where the figure goes (default: examples/_out/quickstart.png)",
    )
    args = parser.parse_args(argv)
    max_iter, folds = (20, 3) if args.quick else (500, 5)

    data = make_hypergraph(random_state=args.seed)  # the defaults: 60 × 50 × 40, planted rank 4
    X, laplacians, labels = data.tensor, data.laplacians, data.labels[0]
    print(
        f"hypergraph: shape {X.shape}, {X.nnz} stored hyperedges "
        f"({X.nnz / np.prod(X.shape):.1%} of the cells), graphs with "
        f"{[int(lap.nnz) for lap in laplacians]} non-zeros, "
        f"{len(np.unique(labels))} communities in the sample mode"
    )

    # Explicit initial factors, so that J can be evaluated before fitting too.
    rng = np.random.default_rng(args.seed)
    scale = (1.0 / args.rank) ** (1.0 / X.ndim) * 2.0
    init = [rng.uniform(0.0, 1.0, (n, args.rank)) * scale for n in X.shape]

    model = HyperLearnDecomposition(
        rank=args.rank,
        lam=args.lam,
        alpha=args.alpha,
        laplacians=laplacians,
        init=init,
        max_iter=max_iter,
        random_state=args.seed,
    )
    tic = time.perf_counter()
    samples = model.fit_transform(X)
    elapsed = time.perf_counter() - tic

    print(f"\nfitted in {elapsed:.2f} s, {model.n_iter_} sweeps of exact block updates")
    for k, a in enumerate(model.factors_):
        print(f"  factors_[{k}]: shape {a.shape}")
    print(f"loss {model.loss_!r}, confidence {model.confidence_:.1f} (from the sparsity of X)")
    j0 = objective(X, init, laplacians, args.lam, model.confidence_, args.alpha)
    j1 = objective(X, model.factors_, laplacians, args.lam, model.confidence_, args.alpha)
    print(f"J at the initial factors: {j0:12.4f}")
    print(
        f"J after fitting:          {j1:12.4f}  (the estimator's last sweep: "
        f"{model.loss_history_[-1]:.4f})"
    )

    plain = HyperLearnDecomposition(
        rank=args.rank, lam=args.lam, alpha=args.alpha, max_iter=max_iter, random_state=args.seed
    )
    plain_samples = plain.fit_transform(X)
    noise = np.random.default_rng(args.seed).standard_normal(samples.shape)

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=args.seed)
    print(
        f"\nsample-mode communities, LogisticRegression {folds}-fold accuracy (chance: "
        f"{np.bincount(labels).max() / len(labels):.3f}, the majority community):"
    )
    for name, features in [
        ("HyperLearn factors (with graphs)", samples),
        ("plain CP factors (no graphs)", plain_samples),
        ("random features", noise),
    ]:
        scores = cross_val_score(clf, features, labels, cv=cv)
        print(f"  {name:34s} {scores.mean():.3f} ± {scores.std():.3f}")
    plot({"with graphs": samples, "plain CP (no graphs)": plain_samples}, labels, args.out)


def plot(representations: dict, labels: np.ndarray, path: Path):
    """2-D PCA of each sample-mode representation, coloured by planted community."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nno figure: matplotlib is not installed (pip install -e '.[examples]')")
        return None
    fig, axes = plt.subplots(1, len(representations), figsize=(5 * len(representations), 4.2))
    for ax, (name, features) in zip(axes, representations.items(), strict=True):
        points = PCA(2, random_state=0).fit_transform(StandardScaler().fit_transform(features))
        for c in np.unique(labels):
            ax.scatter(*points[labels == c].T, s=14, label=f"community {c}")
        ax.set_title(f"sample-mode factors, {name}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nfigure saved to {path}")
    return fig


if __name__ == "__main__":
    main()
