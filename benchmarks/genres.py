"""ML-100K movie genres from learned movie representations (multi-label, 19 genres).

Each movie gets a representation from the ratings alone, then a one-vs-rest LogisticRegression
predicts its 19 genre flags; the score is the average precision (macro over genres and micro
over all movie-genre pairs) of 5-fold cross-validation over the movies.

Representations, all with the same number of components:

- **HyperLearn**: ``HyperLearnDecomposition`` of the binary movie × user × rating-level tensor
  (hyperedge (m, u, r) when user u gave movie m the rating r ∈ 1..5; ``loss="hypergraph"``), with
  a movie co-occurrence graph (:func:`skhyperlearn.graphs.cooccurrence_graph` on the movie mode:
  two movies are linked by the number of (user, rating) contexts they share, cosine-normalised,
  kept to each movie's 10 strongest links) and Monti et al.'s 10-NN *user* graph
  (``load_monti_movielens().user_adjacency``, built from user demographics). Monti's *movie* graph
  is not used: it is built from item features that include the genres, which would leak the
  labels;
- **CP**: the same estimator and tensor without graphs (``laplacians=None``);
- **TruncatedSVD** and **NMF** of the movie × user rating matrix (ratings 1..5, 0 where unrated);
- **random**: Gaussian features, the floor.

The representations are learned once, without the labels, on all 100,000 ratings of ``u.data``
(a transductive protocol, the same for every method); only the classifier is cross-validated.

Writes its table into ``benchmarks/README.md`` (section ``genres``)::

    python benchmarks/genres.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sparse
import torch
from sklearn.decomposition import NMF, TruncatedSVD
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import load_monti_movielens, load_movielens100k
from skhyperlearn.graphs import cooccurrence_graph, normalized_laplacian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, text_table, write_readme_section

HERE = Path(__file__).resolve().parent
README_HEADER = "# skhyperlearn benchmarks\n"


def default_data_home() -> Path:
    env = os.environ.get("SKHYPERLEARN_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def build_inputs(data_home: Path, n_neighbors: int):
    """The rating tensor, the two graphs, the rating matrix and the genre labels."""
    ml = load_movielens100k(data_home, split=None)  # all of u.data
    users, movies = ml.train_coords[:, 0], ml.train_coords[:, 1]
    levels = ml.train_values.astype(np.int64) - 1
    shape = (ml.n_items, ml.n_users, 5)
    tensor = sparse.COO(
        np.stack([movies, users, levels]), np.ones(len(levels)), shape=shape, has_duplicates=False
    )
    movie_graph = cooccurrence_graph(tensor, 0, n_neighbors=n_neighbors, normalize="cosine")
    monti = load_monti_movielens(data_home=data_home)
    if monti.shape != (ml.n_users, ml.n_items):
        raise ValueError(f"Monti's split has shape {monti.shape}, ML-100K {ml.shape}.")
    laplacians = [
        normalized_laplacian(movie_graph),
        normalized_laplacian(monti.user_adjacency),
        None,
    ]
    ratings = sp.csr_array((ml.train_values, (movies, users)), shape=(ml.n_items, ml.n_users))
    return tensor, laplacians, ratings, ml.genres.astype(np.int64), ml.genre_names


def representations(tensor, laplacians, ratings, rank: int, max_iter: int, lam: float):
    """(name, fit function) for every method; each function returns the movie features."""

    def hyperlearn(laps):
        def fit():
            model = HyperLearnDecomposition(
                rank=rank, lam=lam, laplacians=laps, max_iter=max_iter, random_state=0
            )
            return model.fit_transform(tensor), model.n_iter_

        return fit

    def svd():
        return TruncatedSVD(rank, random_state=0).fit_transform(ratings), None

    def nmf():
        model = NMF(rank, init="nndsvda", max_iter=500, random_state=0)
        return model.fit_transform(ratings), model.n_iter_

    def random():
        return np.random.default_rng(0).standard_normal((ratings.shape[0], rank)), None

    return [
        ("HyperLearn (movie co-occurrence + Monti user graph)", hyperlearn(laplacians)),
        ("CP (same estimator, no graphs)", hyperlearn(None)),
        ("TruncatedSVD of movie × user ratings", svd),
        ("NMF of movie × user ratings", nmf),
        ("random features", random),
    ]


def genre_scores(features: np.ndarray, labels: np.ndarray, n_splits: int = 5) -> dict:
    """Mean and std over folds of macro / micro average precision of one-vs-rest LR.

    Macro averages over the genres that have a positive movie in the test fold ("unknown" has
    two movies in all); micro pools every movie-genre pair of the fold.
    """
    clf = OneVsRestClassifier(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)))
    macro, micro = [], []
    for train, test in KFold(n_splits, shuffle=True, random_state=0).split(features):
        clf.fit(features[train], labels[train])
        scores = clf.decision_function(features[test])
        y = labels[test]
        present = y.sum(0) > 0
        macro.append(average_precision_score(y[:, present], scores[:, present], average="macro"))
        micro.append(average_precision_score(y, scores, average="micro"))
    return {
        "macro": float(np.mean(macro)),
        "macro_std": float(np.std(macro)),
        "micro": float(np.mean(micro)),
        "micro_std": float(np.std(micro)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding ml-100k/, mgcnn/")
    parser.add_argument("--ranks", type=int, nargs="+", default=[10, 32])
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--n-neighbors", type=int, default=10, help="movie co-occurrence kNN")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())

    data_home = args.data if args.data is not None else default_data_home()
    tensor, laplacians, ratings, labels, _names = build_inputs(data_home, args.n_neighbors)
    print(
        f"tensor {tensor.shape} with {tensor.nnz} hyperedges; movie graph "
        f"{laplacians[0].nnz - laplacians[0].shape[0]} off-diagonal links; "
        f"{labels.shape[1]} genres, {labels.sum()} movie-genre pairs",
        flush=True,
    )
    prevalence = labels.mean(0)
    rows = []
    for rank in args.ranks:
        for name, fit in representations(
            tensor, laplacians, ratings, rank, args.max_iter, args.lam
        ):
            tic = time.perf_counter()
            features, n_iter = fit()
            elapsed = time.perf_counter() - tic
            s = genre_scores(features, labels)
            row = {
                "method": name,
                "rank": rank,
                "macro": f"{s['macro']:.3f} ± {s['macro_std']:.3f}",
                "micro": f"{s['micro']:.3f} ± {s['micro_std']:.3f}",
                "time": f"{elapsed:.1f}",
                "iters": "-" if n_iter is None else str(n_iter),
            }
            rows.append(row)
            print(text_table([row], COLUMNS).splitlines()[-1], flush=True)
    print()
    print(text_table(rows, COLUMNS))

    info = machine_info(["skhyperlearn", "torch", "numpy", "scipy", "scikit-learn", "sparse"])
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    content = f"""## Movie genres from learned representations (ML-100K)

`python benchmarks/genres.py --data ../shared/data` — multi-label classification of the
{labels.shape[1]} genre flags of the {labels.shape[0]} ML-100K movies from a representation of
each movie learned from the ratings alone. All {tensor.nnz:,} ratings of `u.data` form a binary
movie × user × rating-level tensor (shape {tensor.shape}; hyperedge (m, u, r) when user u rated
movie m with r). HyperLearn (`loss="hypergraph"`, `lam={args.lam}`, exact solver, at most
{args.max_iter} sweeps) uses a movie co-occurrence graph (`cooccurrence_graph` on the movie mode:
shared (user, rating) contexts, cosine-normalised, {args.n_neighbors} strongest links per movie)
and Monti et al.'s 10-NN user graph (from user demographics); Monti's movie graph is *not* used,
as it comes from item features that include the genres. CP is the same estimator without graphs;
TruncatedSVD and NMF factor the 1682 × 943 rating matrix (0 where unrated). Each representation is
learned once, without labels (transductive, the same for all), then a one-vs-rest
`StandardScaler + LogisticRegression` is scored by 5-fold cross-validation over the movies:
average precision, macro over genres present in the test fold and micro over all movie-genre
pairs (mean ± std over folds). Chance level: macro ≈ {prevalence[1:].mean():.3f} (mean genre
prevalence), micro ≈ {labels.mean():.3f}. "time" is the fit of the representation in seconds;
"iters" the sweeps (HyperLearn, CP) or iterations (NMF).

{markdown_table(rows, COLUMNS, align={"rank": "r", "time": "r", "iters": "r"})}

Machine: {info["cpu"]}, {info["cores"]} cores, {info.get("memory", "?")}; Python {info["python"]};
{versions}; torch intra-op threads: {args.threads}. Load average (1, 5, 15 min) before:
{load_before}; after: {load_after} — times are from a machine shared with other jobs.
"""
    if not args.no_readme:
        write_readme_section(args.readme, "genres", content, README_HEADER)
        print(f"\nwrote the 'genres' section of {args.readme}")


COLUMNS = [
    ("method", "representation"),
    ("rank", "components"),
    ("macro", "AP macro"),
    ("micro", "AP micro"),
    ("time", "time (s)"),
    ("iters", "iters"),
]


if __name__ == "__main__":
    main()
