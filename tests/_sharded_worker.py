"""One rank of an entry-sharded fit, for tests/solvers/test_sharded.py (not collected by pytest).

``python tests/_sharded_worker.py CONFIG_JSON`` with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set. CONFIG: ``shape``, ``params`` (estimator parameters), ``timeout``, ``out``
(a folder: every rank writes ``factors{r}.npz``, rank 0 ``model.pkl``), optional ``shards`` (a
folder written by ``write_shards``; otherwise each rank slices its share of the synthetic
tensor), ``counts`` (values 1..3), ``no_graph`` (modes without a graph), ``split``
(``SKHYPERLEARN_SPLIT_SOLVES``; rank 0 writes the modes whose solves were split to
``split.json``), ``checkpoint``/``every``, and a planted fault: ``fault`` ("die" or "raise") on
``fault_rank`` after round ``fault_round``.
"""

import json
import os
import pickle
import sys

import numpy as np
import sparse
import torch.distributed as dist

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.distributed import init_process_group
from skhyperlearn.distributed._shards import read_shard, shard_range
from skhyperlearn.hypergraph import Hypergraph
from skhyperlearn.solvers import _sharded


def whole(shape, counts=False, no_graph=()):
    """The tensor every test fits (float64), with graphs on the modes not in ``no_graph``."""
    data = make_hypergraph(tuple(shape), rank=3, random_state=0)
    t = data.tensor.astype("float64")
    if counts:  # counts 1..3 for the implicit loss's weights
        t = sparse.COO(t.coords, 1.0 + (np.arange(t.nnz) % 3), shape=t.shape)
    graphs = [None if k in no_graph else g for k, g in enumerate(data.laplacians)]
    return Hypergraph(t, graphs)


def share(X, rank, world):
    start, stop = shard_range(X.tensor.nnz, rank, world)
    t = X.tensor
    part = sparse.COO(t.coords[:, start:stop], t.data[start:stop], shape=t.shape)
    return Hypergraph(part, X.laplacians)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # Which mode solves are split over the ranks (tiny modes: "auto" splits only the uncoupled).
    os.environ["SKHYPERLEARN_SPLIT_SOLVES"] = cfg.get("split", "auto")
    init_process_group("gloo", timeout=cfg["timeout"])
    rank, world = dist.get_rank(), dist.get_world_size()
    if cfg.get("shards"):  # written from whole(shape, counts) by the test
        X = read_shard(cfg["shards"], rank, world)
    else:
        X = whole(cfg["shape"], cfg.get("counts", False), cfg.get("no_graph", ()))
        X = share(X, rank, world)

    def callback(info):
        if rank == cfg.get("fault_rank") and info["iteration"] == cfg.get("fault_round"):
            print(f"rank {rank}: planted fault {cfg['fault']!r}", file=sys.stderr, flush=True)
            if cfg["fault"] == "die":
                os._exit(3)
            raise RuntimeError("planted failure")

    model = HyperLearnDecomposition(**cfg["params"], schedule="sharded", callback=callback)
    model.fit(X, checkpoint=cfg.get("checkpoint"), checkpoint_every=cfg.get("every", 1))
    model.callback = None
    np.savez(os.path.join(cfg["out"], f"factors{rank}.npz"), *model.factors_,
             history=np.array(model.loss_history_))  # fmt: skip
    if rank == 0:
        with open(os.path.join(cfg["out"], "model.pkl"), "wb") as f:
            pickle.dump(model, f)
        with open(os.path.join(cfg["out"], "split.json"), "w") as f:
            json.dump(sorted(_sharded.traffic["split_modes"]), f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
