"""
Quickstart: what the graphs and the higher-order relations each add
===================================================================

The built-in task (``make_crossed_hypergraph``, no download): 300 images × 30 tags × 30
users, three hyperedges (image, tag, user) per image, a fifth of them noise. An image's class
is told by *which user gave it which tag* — each group of users gives the tags its own
meaning — and by no pair of modalities: the image × tag and image × user matrices (a
modality summed out) say nothing about it. Each modality also has a kNN graph (think visual
similarity of the images) that is informative but joins some images of different classes.

``HyperLearnDecomposition`` learns one factor matrix per modality from the tensor and the
graphs, without the labels. Its model runs from the tensor's own CP term
(``projection_weight=0``: the higher-order relations) to the hypergraph's pairwise projections
(``projection_weight=1``, the default: image × tag and image × user, where the classes of real
tagging and rating data live). This data is the case the default does not cover: the script
prints the 5-fold accuracy of a LogisticRegression on the image factors of the tensor term
with graphs and without them (the tensor alone), of the defaults (the projections with
graphs), of the graph alone (a spectral embedding of the image graph), of the pairs alone
(TruncatedSVD of the image × tag and image × user matrices) and of random features, all of the
same width, and draws the image factors of the tensor term with and without graphs (2-D PCA,
coloured by class) into ``examples/_out/quickstart.png`` (``--out``; needs matplotlib).

Run (about 20 s of CPU time, start-up and compilation included; ``--quick``: 3 folds instead
of 5)::

    python examples/quickstart.py
    python examples/quickstart.py --quick
    python examples/quickstart.py --rank 12 --seed 1
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import spectral_embedding
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_crossed_hypergraph

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the examples from their folder, without __file__
    HERE = Path.cwd()


def pair_matrix(tensor, mode: int) -> sp.csr_array:
    """Images × ``mode`` counts: the hypergraph with every other modality summed out."""
    coords = tensor.coords
    shape = (tensor.shape[0], tensor.shape[mode])
    out = sp.csr_array((tensor.data, (coords[0], coords[mode])), shape=shape)
    out.sum_duplicates()
    return out


def representations(data, rank: int, seed: int) -> dict:
    """Every representation of the images compared, each ``rank`` wide."""
    X = data.tensor
    # The tensor's own term: the classes are in which user gave which tag, in no pair.
    model = HyperLearnDecomposition(
        rank=rank, laplacians=data.laplacians, projection_weight=0.0, random_state=seed
    )
    tic = time.perf_counter()
    images = model.fit_transform(X)
    print(
        f"\nfitted in {time.perf_counter() - tic:.1f} s ({model.n_iter_} sweeps, loss "
        f"{model.loss_!r}); J from {model.loss_history_[0]:.4g} to "
        f"{model.loss_history_[-1]:.4g}"
    )
    for k, name in enumerate(["images", "tags", "users"]):
        print(f"  factors_[{k}] ({name}): shape {model.factors_[k].shape}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        tensor_alone = HyperLearnDecomposition(
            rank=rank, projection_weight=0.0, random_state=seed
        ).fit_transform(X)
    for w in caught:  # said once, in the output, rather than as a traceback-like warning
        print(f"  the same without graphs: {w.message}")
    defaults = HyperLearnDecomposition(rank=rank, laplacians=data.laplacians, random_state=seed)
    graph = sp.csr_matrix(data.adjacencies[0])
    return {
        "HyperLearn: tensor + graphs": images,
        "HyperLearn: tensor alone (no graphs)": tensor_alone,
        "HyperLearn defaults: projections + graphs": defaults.fit_transform(X),
        "graph alone: spectral embedding": spectral_embedding(
            graph, n_components=rank, random_state=seed
        ),
        "pairs alone: SVD of image × tag": TruncatedSVD(rank, random_state=seed).fit_transform(
            pair_matrix(X, 1)
        ),
        "pairs alone: SVD of image × user": TruncatedSVD(rank, random_state=seed).fit_transform(
            pair_matrix(X, 2)
        ),
        "random features": np.random.default_rng(seed).standard_normal(images.shape),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Quickstart on the built-in crossed hypergraph")
    parser.add_argument("--rank", type=int, default=8, help="components R (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="3 folds instead of 5")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "_out" / "quickstart.png",
        help="where the figure goes (default: examples/_out/quickstart.png)",
    )
    args = parser.parse_args(argv)
    folds = 3 if args.quick else 5

    data = make_crossed_hypergraph(random_state=args.seed)  # images × tags × users
    X, labels = data.tensor, data.labels[0]
    print(
        f"hypergraph: shape {X.shape}, {X.nnz} stored hyperedges "
        f"({X.nnz / np.prod(X.shape):.2%} of the cells), one kNN graph per modality, "
        f"{len(np.unique(labels))} image classes"
    )
    features = representations(data, args.rank, args.seed)

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=args.seed)
    chance = np.bincount(labels).max() / len(labels)
    print(f"\nimage classes, LogisticRegression {folds}-fold accuracy (chance {chance:.3f}):")
    scores = {}
    for name, values in features.items():
        fold_scores = cross_val_score(clf, values, labels, cv=cv)
        scores[name] = fold_scores.mean()
        print(f"  {name:42s} {fold_scores.mean():.3f} ± {fold_scores.std():.3f}")
    both, tensor, projections, graph, *pairs, _ = scores.values()
    print(
        f"\nthe graphs add {both - tensor:+.3f} to the tensor alone, the higher-order "
        f"relations {both - graph:+.3f} to the graph alone; the best pair matrix is "
        f"{max(pairs) - chance:+.3f} from chance, and the defaults' projections "
        f"{projections - chance:+.3f} (here the tensor term, projection_weight=0, is the model)"
    )
    names = ["HyperLearn: tensor + graphs", "HyperLearn: tensor alone (no graphs)"]
    plot({name: features[name] for name in names}, labels, args.out)


def plot(representations: dict, labels: np.ndarray, path: Path):
    """2-D PCA of each image representation, coloured by class."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nno figure: matplotlib is not installed (pip install -e '.[examples]')")
        return None
    fig, axes = plt.subplots(1, len(representations), figsize=(5 * len(representations), 4.2))
    for ax, (name, features) in zip(axes, representations.items(), strict=True):
        points = PCA(2, random_state=0).fit_transform(StandardScaler().fit_transform(features))
        for c in np.unique(labels):
            ax.scatter(*points[labels == c].T, s=14, label=f"class {c}")
        ax.set_title(name)
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
