"""
Pipeline and GridSearchCV: tune rank and λ for a downstream classifier
======================================================================

The samples are the entities of mode 0 of a hypergraph (say images, linked to tags and users);
their labels are the planted communities of ``make_hypergraph``. The data travel as a
:class:`~skhyperlearn.hypergraph.Hypergraph`, which slices the tensor *and* the sample mode's
graph together: every cross-validation fold is fitted on its own entities with the sub-graph
they induce, and the held-out entities are folded in with theirs. Nothing about the test
entities leaks into training.

The script

1. splits the entities into a training and a test part (``train_test_split`` on the Hypergraph),
2. runs ``GridSearchCV(Pipeline([HyperLearnDecomposition, LogisticRegression]))`` over
   ``rank`` and ``lam`` on the training part and prints the grid,
3. reports the test accuracy of the refitted best pipeline, and of the same pipeline on the
   tensor without graphs (plain CP) for comparison.

Run (about a minute; ``--quick``: a 2 × 2 grid, 2 folds, at most 10 sweeps per fit)::

    python examples/pipeline_gridsearch.py
    python examples/pipeline_gridsearch.py --quick
    python examples/pipeline_gridsearch.py --n-entries 2000 --noise 0.3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.hypergraph import Hypergraph


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pipeline + GridSearchCV over rank and λ")
    parser.add_argument("--n-entries", type=int, default=4000, help="stored hyperedges")
    parser.add_argument("--noise", type=float, default=0.2, help="share of random hyperedges")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="small grid, 2 folds, 10 sweeps")
    args = parser.parse_args(argv)
    if args.quick:
        grid = {"hyperlearn__rank": [2, 4], "hyperlearn__lam": [0.1, 1.0]}
        folds, max_iter = 2, 10
    else:
        grid = {"hyperlearn__rank": [2, 4, 8], "hyperlearn__lam": [0.1, 1.0, 10.0]}
        folds, max_iter = 3, 30

    data = make_hypergraph(
        shape=(150, 80, 40),
        rank=4,
        n_entries=args.n_entries,
        noise=args.noise,
        random_state=args.seed,
    )
    labels = data.labels[0]
    # Give adjacencies: a fold's graph is then the induced sub-graph with its own degrees.
    H = Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency")
    H_train, H_test, y_train, y_test = train_test_split(
        H, labels, test_size=0.25, stratify=labels, random_state=args.seed
    )
    print(f"{H}\ntraining entities: {len(H_train)}, test entities: {len(H_test)}")

    pipe = Pipeline(
        [
            ("hyperlearn", HyperLearnDecomposition(max_iter=max_iter, random_state=args.seed)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    cv = StratifiedKFold(folds, shuffle=True, random_state=args.seed)
    search = GridSearchCV(pipe, grid, cv=cv)
    tic = time.perf_counter()
    search.fit(H_train, y_train)
    print(
        f"\ngrid search: {len(search.cv_results_['params'])} candidates × {folds} folds "
        f"in {time.perf_counter() - tic:.1f} s"
    )
    print(f"{'rank':>5} {'lam':>6}   CV accuracy")
    res = search.cv_results_
    for params, mean, std in zip(
        res["params"], res["mean_test_score"], res["std_test_score"], strict=True
    ):
        print(
            f"{params['hyperlearn__rank']:>5} {params['hyperlearn__lam']:>6}   "
            f"{mean:.3f} ± {std:.3f}"
        )
    best = search.best_params_
    print(f"best: rank={best['hyperlearn__rank']}, lam={best['hyperlearn__lam']}")
    print(
        f"\ntest accuracy, HyperLearn with graphs (best of grid): "
        f"{search.score(H_test, y_test):.3f}"
    )

    # The same pipeline without graphs: the tensor alone (plain CP).
    plain = clone(search.best_estimator_).fit(H_train.tensor, y_train)
    print(
        f"test accuracy, same pipeline without graphs (plain CP): "
        f"{plain.score(H_test.tensor, y_test):.3f}"
    )
    chance = np.bincount(y_test).max() / len(y_test)
    print(f"majority class: {chance:.3f}")


if __name__ == "__main__":
    main()
