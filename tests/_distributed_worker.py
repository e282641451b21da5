"""One rank of a distributed fit, for tests/solvers/test_distributed.py (not collected by pytest).

``python tests/_distributed_worker.py CONFIG_JSON`` with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set. CONFIG: ``shape``, ``params`` (estimator parameters), ``timeout``, optional
``checkpoint``/``every``/``output``, and a planted fault: ``fault`` ("die": the process exits
at once, "hang": it sleeps, "raise": an exception) on ``fault_rank`` after round ``fault_round``.
"""

import json
import os
import pickle
import sys
import time

import torch.distributed as dist

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.distributed import init_process_group
from skhyperlearn.hypergraph import Hypergraph


def main() -> None:
    cfg = json.loads(sys.argv[1])
    init_process_group("gloo", timeout=cfg["timeout"])
    rank = dist.get_rank()
    data = make_hypergraph(tuple(cfg["shape"]), rank=3, random_state=0)
    X = Hypergraph(data.tensor.astype("float32"), data.laplacians)

    def callback(info):
        if rank == cfg.get("fault_rank") and info["iteration"] == cfg.get("fault_round"):
            print(f"rank {rank}: planted fault {cfg['fault']!r}", file=sys.stderr, flush=True)
            if cfg["fault"] == "die":
                os._exit(3)
            if cfg["fault"] == "hang":
                time.sleep(3600)
            raise RuntimeError("planted failure")

    model = HyperLearnDecomposition(**cfg["params"], schedule="distributed", callback=callback)
    model.fit(X, checkpoint=cfg.get("checkpoint"), checkpoint_every=cfg.get("every", 1))
    model.callback = None
    if rank == 0 and cfg.get("output"):
        with open(cfg["output"], "wb") as f:
            pickle.dump(model, f)
    # A rank leaving with its gloo group alive can abort at exit ("terminate called without an
    # active exception"), failing a run that succeeded.
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
