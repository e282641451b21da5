"""Where ``projection_weight`` and λ score, one grid point at a time (issue 26, diagnostic).

Each point is one fit on every entity of a ``representations.py`` task (labels unseen), then
the benchmark's classifier scored over its 5 outer folds (macro AP, mean ± std): the
transductive protocol without the inner choice, so each line is one configuration's test
score, printed as soon as it is known. A diagnostic of the model family, not a table row: a
configuration chosen by looking at these scores is a researcher's, not a default.

    python benchmarks/projections_probe.py movielens 10 \
        '[{"projection_weight": 1.0, "lam": 1}, {"projection_weight": 0.0, "lam": 10}]'

Tasks: movielens, movielens-users, lastfm3, lastfm4, synthetic, crossed (the quickstart's
data). A point may add
``"nographs": true`` to drop the task's graphs. ``--data`` defaults to ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
import representations as R

from skhyperlearn import HyperLearnDecomposition


def _task(name: str, data: Path):
    tasks = {
        "movielens": lambda: R.task_movielens(data, 10),
        "movielens-users": lambda: R.task_movielens_users(data, 10),
        "lastfm3": lambda: R.task_lastfm(data, 3, 10, 10),
        "lastfm4": lambda: R.task_lastfm(data, 4, 10, 10),
        "synthetic": R.task_synthetic,
        "crossed": _task_crossed,
    }
    return tasks[name]()


def _task_crossed():
    """The quickstart's built-in hypergraph (classes in the whole hyperedge, in no pair)."""
    from skhyperlearn.datasets import make_crossed_hypergraph

    data = make_crossed_hypergraph(random_state=0)
    labels = np.asarray(data.labels[0])
    hypergraph = R.Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency")
    return R.Task(
        "crossed", hypergraph, np.eye(labels.max() + 1, dtype=np.int64)[labels], "crossed"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("dim", type=int)
    parser.add_argument("points", help="JSON list of parameter dicts")
    parser.add_argument("--data", type=Path, default=R.default_data_home())
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    task = _task(args.task, args.data)
    y = task.labels
    folds = list(KFold(5, shuffle=True, random_state=0).split(y))
    clf = Pipeline(R._classifier())
    for point in json.loads(args.points):
        tic = time.perf_counter()
        params = dict(point)
        X = task.hypergraph
        if params.pop("nographs", False):
            X = R.Hypergraph(X.tensor, [None] * X.tensor.ndim)
        model = HyperLearnDecomposition(rank=args.dim, random_state=0, **params)
        z = model.fit_transform(X)
        aps = [
            R._fold_scores(y[te], clone(clf).fit(z[tr], y[tr]).decision_function(z[te]))[0]
            for tr, te in folds
        ]
        print(
            f"{args.task} {args.dim} {json.dumps(point)} macro AP {np.mean(aps):.3f} ± "
            f"{np.std(aps):.3f}, {model.n_iter_} sweeps, {time.perf_counter() - tic:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
