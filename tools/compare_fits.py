"""Compare fits of this checkout with another checkout of skhyperlearn (behaviour unchanged?).

Fits a few configurations (both losses, both solvers, graphs or none, ridge, biases, early stopping,
float32) with the package under ``--other`` and with this one, each in its own process with the
same seeds, and prints the largest relative difference of the factors, biases and J history.

    python tools/compare_fits.py --other /work/main
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "als-hypergraph": dict(loss="hypergraph", solver="als", alpha=0.1),
    "als-hypergraph-svd": dict(loss="hypergraph", solver="als", init="svd"),
    "als-observed-bias": dict(loss="observed", solver="als", values="real"),
    "als-observed-nobias-f32": dict(loss="observed", solver="als", bias=False, values="real",
                                    dtype="float32"),
    "als-observed-early": dict(loss="observed", solver="als", values="real", n_entries=12000,
                               shape=(60, 50, 40)),
    "hl-hypergraph": dict(loss="hypergraph", solver="hyperlearn"),
    "hl-observed-bias": dict(loss="observed", solver="hyperlearn", values="real"),
    "hl-observed-parallel": dict(loss="observed", solver="hyperlearn", values="real",
                                 schedule="parallel"),
    # The default loss on binary hyperedges (implicit, factor_scale="solved").
    "als-auto-binary": dict(loss="auto", solver="als"),
    "hl-auto-binary": dict(loss="auto", solver="hyperlearn"),
    # The same without graphs: the compiled per-row CG solves (tensor term and coupled).
    "als-auto-binary-nographs": dict(loss="auto", solver="als", graphs=False),
    "als-auto-binary-tensor-nographs": dict(loss="auto", solver="als", graphs=False,
                                            projection_weight=0.0),
}  # fmt: skip

_CHILD = r"""
import json, sys, warnings
import numpy as np
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
configs, out = json.loads(sys.argv[1]), sys.argv[2]
arrays = {}
for name, cfg in configs.items():
    cfg = dict(cfg)
    values = cfg.pop("values", "binary")
    shape = tuple(cfg.pop("shape", (30, 24, 18)))
    n_entries = cfg.pop("n_entries", 1500)
    dtype = cfg.pop("dtype", "float64")
    graphs = cfg.pop("graphs", True)
    data = make_hypergraph(shape, rank=3, n_entries=n_entries, values=values, noise=0.2,
                           random_state=0)
    x = data.tensor.astype(dtype)
    if cfg["solver"] == "hyperlearn":
        cfg.update(n_terms=3, hidden=8, n_steps=2, learning_rate=1e-2, init_iter=3)
    laplacians = data.laplacians if graphs else None
    model = HyperLearnDecomposition(rank=3, laplacians=laplacians, max_iter=15,
                                    random_state=0, **cfg).fit(x)
    for k, a in enumerate(model.factors_):
        arrays[f"{name}/A{k}"] = a
    for k, b in enumerate(model.biases_ or []):
        arrays[f"{name}/b{k}"] = b
    arrays[f"{name}/J"] = np.array(model.loss_history_)
    arrays[f"{name}/n_iter"] = np.array([model.n_iter_, model.best_iter_])
np.savez(out, **arrays)
"""


def _fit_with(root: Path, out: Path) -> dict:
    import json

    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(CONFIGS), str(out)],
        env=env, check=True, cwd=root,
    )  # fmt: skip
    return dict(np.load(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, type=Path, help="checkout to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = _fit_with(args.other.resolve(), Path(tmp) / "other.npz")
        ours = _fit_with(ROOT, Path(tmp) / "ours.npz")
    print(f"{'configuration':28s} {'max rel. diff':>14s}  iterations (other / ours)")
    for name in CONFIGS:
        keys = [k for k in theirs if k.startswith(name + "/") and not k.endswith("n_iter")]
        worst = 0.0
        for k in keys:
            a, b = theirs[k], ours[k]
            if a.shape != b.shape:
                worst = np.inf
                break
            scale = max(float(np.abs(a).max()), 1e-300) if a.size else 1.0
            worst = max(worst, float(np.abs(a - b).max()) / scale if a.size else 0.0)
        n_a, n_b = theirs[f"{name}/n_iter"], ours[f"{name}/n_iter"]
        print(f"{name:28s} {worst:14.2e}  {n_a.tolist()} / {n_b.tolist()}")


if __name__ == "__main__":
    main()
