"""ML-100K with Monti's split and graphs: test RMSE and training time of both solvers.

Reproduces Task 1 of the paper (the 2nd-order case): completion of the 943 × 1682 rating matrix
(u1 split, 80,000 training / 20,000 test ratings) with Monti et al.'s 10-NN user and movie graphs.
Every setting is chosen on a validation split of the *training* ratings (``early_stopping``); the
test ratings are only read to draw the curves and fill the table. Writes the table into
``benchmarks/README.md`` and the curves (test RMSE against iteration and against wall time, the
paper's Fig. 4) into ``benchmarks/movielens.png``.

    python benchmarks/movielens.py --data ../shared/data/mgcnn/movielens/split_1.mat
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import sparse
import torch

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import load_monti_movielens
from skhyperlearn.graphs import normalized_laplacian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, text_table, write_readme_section

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "mgcnn" / "movielens" / "split_1.mat"

PUBLISHED = [
    ("GMC (Kalofolias et al. 2014)", 0.996),
    ("GRALS (Rao et al. 2015)", 0.945),
    ("sRGCNN (Monti et al. 2017)", 0.929),
    ("GC-MC (van den Berg et al. 2017)", 0.910),
]


class TestCurve:
    """Callback recording test RMSE and elapsed time after every sweep or round.

    It reads the test ratings for the figure only; it never influences training (returns None).
    """

    def __init__(self, coords: np.ndarray, values: np.ndarray) -> None:
        self.coords = torch.as_tensor(coords)
        self.values = torch.as_tensor(values)
        self.start = time.perf_counter()
        self.points: list[tuple[int, float, float]] = []

    def __call__(self, report: dict) -> None:
        factors = [a.cpu().to(torch.float64) for a in report["factors"]]
        pred = factors[0][self.coords[:, 0]].mul(factors[1][self.coords[:, 1]]).sum(1)
        pred = pred + report["mean"]
        if report["biases"] is not None:
            for k, b in enumerate(report["biases"]):
                pred = pred + b.cpu().to(torch.float64)[self.coords[:, k]]
        rmse = math.sqrt(float(((pred - self.values) ** 2).mean()))
        self.points.append((report["iteration"], time.perf_counter() - self.start, rmse))


def _test_rmse(model, data) -> float:
    pred = model.reconstruct(data.test_coords)
    return float(np.sqrt(np.mean((pred - data.test_values) ** 2)))


def run(name: str, params: dict, data, x_train, laplacians) -> dict:
    curve = TestCurve(data.test_coords, data.test_values)
    params = {"laplacians": laplacians, **params}
    model = HyperLearnDecomposition(loss="observed", callback=curve, **params)
    tic = time.perf_counter()
    model.fit(x_train)
    elapsed = time.perf_counter() - tic
    rmse = _test_rmse(model, data)
    row = {
        "method": name,
        "rmse": f"{rmse:.4f}",
        "val": "" if not model.validation_history_ else f"{min(model.validation_history_):.4f}",
        "iters": model.n_iter_,
        "best": model.best_iter_,
        "time": f"{elapsed:.1f}",
        "per_iter": f"{1000 * elapsed / max(model.n_iter_, 1):.0f}",
    }
    print(text_table([row], COLUMNS), flush=True)
    return {"row": row, "curve": curve.points, "rmse": rmse, "time": elapsed}


COLUMNS = [
    ("method", "method"),
    ("rmse", "test RMSE"),
    ("val", "best validation RMSE"),
    ("iters", "iterations"),
    ("best", "kept iteration"),
    ("time", "train time (s)"),
    ("per_iter", "ms / iteration (incl. init)"),
]


def settings(quick: bool) -> list[tuple[str, dict]]:
    """Each row adds or removes one choice, so the table says what each one buys."""
    n = 30 if quick else 200
    base = {"rank": 10, "random_state": 0, "max_iter": n}
    return [
        (
            "exact (als), random init, no early stopping",
            {**base, "solver": "als", "init": "random", "early_stopping": False},
        ),
        ("exact (als), random init, early stopping", {**base, "solver": "als", "init": "random"}),
        ("exact (als), defaults", {**base, "solver": "als"}),
        ("HyperLearn, SVD init (Monti's start)", {**base, "solver": "hyperlearn", "init": "svd"}),
        ("HyperLearn, defaults", {**base, "solver": "hyperlearn"}),
        (
            "HyperLearn, defaults, learning_rate=1e-2",
            {**base, "solver": "hyperlearn", "learning_rate": 1e-2},
        ),
        ("HyperLearn, defaults, no biases", {**base, "solver": "hyperlearn", "bias": False}),
        ("HyperLearn, defaults, no graphs", {**base, "solver": "hyperlearn", "laplacians": None}),
    ]


PLOTTED = (
    "exact (als), random init, no early stopping",
    "exact (als), defaults",
    "HyperLearn, SVD init (Monti's start)",
    "HyperLearn, defaults",
)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, res in results.items():
        if name not in PLOTTED or not res["curve"]:
            continue
        its, secs, rmse = zip(*res["curve"], strict=True)
        (line,) = axes[0].plot(its, rmse, label=name)
        axes[1].plot(secs, rmse, color=line.get_color())
        # The curve follows training on the 90 % split; the star is the returned model, refit
        # on every training rating for the chosen number of iterations.
        axes[0].plot(its[-1], res["rmse"], "*", ms=11, color=line.get_color())
        axes[1].plot(res["time"], res["rmse"], "*", ms=11, color=line.get_color())
    for ax, xlabel in zip(axes, ["iteration (sweep / round)", "wall time (s)"], strict=True):
        ax.axhline(0.929, ls=":", c="gray", label="sRGCNN 0.929")
        ax.axhline(0.910, ls="--", c="gray", label="GC-MC 0.910")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test RMSE")
        ax.set_ylim(0.88, 1.05)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(
        "ML-100K (u1, Monti's graphs), rank 10 — lines: training on the 90 % split; "
        "stars: returned model (refit on all training ratings)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _what_each_choice_bought(results: dict) -> str:
    r = {name: res["rmse"] for name, res in results.items()}
    hl = r["HyperLearn, defaults"]
    als = r["exact (als), defaults"]
    return "\n".join(
        [
            "**What each choice bought** (test RMSE differences against `HyperLearn, defaults` "
            f"= {hl:.4f}; the validation split alone chose every stopping point):",
            f"- biases and global mean: {r['HyperLearn, defaults, no biases'] - hl:+.4f} "
            "without them;",
            f"- Monti's 10-NN graphs: {r['HyperLearn, defaults, no graphs'] - hl:+.4f} "
            "without them;",
            '- where the blocks start: from the exact solver\'s sweeps (`init="exact_sweeps"`, the '
            f"default) instead of Monti's SVD start, {r[MONTI] - hl:+.4f} for the SVD start;",
            "- early stopping on validation, then a refit on every training rating for the "
            "chosen number of sweeps: the exact solver from random factors run to convergence "
            f"ends at {r['exact (als), random init, no early stopping']:.4f}, the defaults "
            f"(SVD start, early stopping, refit) at {als:.4f};",
            "- the diffusion blocks themselves: HyperLearn's defaults end "
            f"{hl - als:+.4f} from the exact solver's defaults. On ML-100K at rank 10 the "
            "trained blocks barely move the factors that the exact sweeps give them: J is "
            "already near a block-wise optimum there, and the validation split stops the "
            "rounds within a few dozen steps. Each round costs one pass over the ratings per "
            "mode plus one forward/backward pass of each block (Adam, learning rate 1e-3).",
        ]
    )


MONTI = "HyperLearn, SVD init (Monti's start)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Monti's split_1.mat")
    parser.add_argument("--quick", action="store_true", help="few iterations, smoke test")
    parser.add_argument("--no-readme", action="store_true", help="do not write README section")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data.exists():
        sys.exit(f"missing {args.data}: pass --data path/to/mgcnn/movielens/split_1.mat")
    data = load_monti_movielens(args.data)
    x_train = sparse.COO(data.train_coords.T, data.train_values, shape=data.shape)
    laplacians = [
        normalized_laplacian(data.user_adjacency),
        normalized_laplacian(data.movie_adjacency),
    ]
    results = {}
    for name, params in settings(args.quick):
        results[name] = run(name, params, data, x_train, laplacians)
    rows = [r["row"] for r in results.values()]
    rows += [{"method": f"{n} (published)", "rmse": f"{v:.3f}"} for n, v in PUBLISHED]
    print(text_table(rows, COLUMNS))
    png = HERE / "movielens.png"
    plot(results, png)
    if not args.no_readme and not args.quick:
        info = machine_info(["torch", "scikit-learn"])
        content = "\n".join(
            [
                "## ML-100K completion (Task 1): HyperLearn vs the exact solver",
                "",
                "`python benchmarks/movielens.py` — Monti's u1 split and 10-NN graphs, rank 10, "
                "settings chosen on a 10 % validation split of the training ratings.",
                f"Machine: {info['cores']} cores, {info.get('cpu', '')}; "
                f"torch {info.get('versions', {}).get('torch', '')}.",
                "",
                markdown_table(rows, COLUMNS, align={k: "r" for k, _ in COLUMNS[1:]}),
                "",
                "![test RMSE against iteration and wall time](movielens.png)",
                "",
                _what_each_choice_bought(results),
            ]
        )
        write_readme_section(HERE / "README.md", "movielens", content, "# Benchmarks")


if __name__ == "__main__":
    main()
