"""One rank of a distributed fit with biases, for tests/solvers/test_distributed_ownership.py.

``python tests/_distributed_bias_worker.py CONFIG_JSON`` with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set. CONFIG: ``shape``, ``params`` (estimator parameters), ``timeout``,
``checkpoint`` and ``output`` (a folder). Rank 0 pickles the fitted model to ``output/model.pkl``;
every rank writes ``output/rank{r}.json``: the modes whose blocks its checkpoints held.
"""

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import sparse
import torch.distributed as dist

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.distributed import init_process_group
from skhyperlearn.solvers import _hyperlearn


def make_data(shape):
    """Ratings-like values (a planted rank-2 model, row and column offsets, noise)."""
    rng = np.random.default_rng(0)
    coords = np.unique(np.stack([rng.integers(0, n, 30 * max(shape)) for n in shape]), axis=1)
    planted = [rng.uniform(0.2, 1.0, (n, 2)) for n in shape]
    offsets = [rng.normal(scale=0.5, size=n) for n in shape]
    values = np.prod([a[c] for a, c in zip(planted, coords, strict=True)], axis=0).sum(1)
    values += 3.0 + sum(o[c] for o, c in zip(offsets, coords, strict=True))
    values += 0.1 * rng.normal(size=values.shape)
    return sparse.COO(coords, values, shape=shape)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    init_process_group("gloo", timeout=cfg["timeout"])
    rank = dist.get_rank()
    saved_modes = set()
    state_dict = _hyperlearn.BlockUpdate.state_dict

    def recorded(self):
        out = state_dict(self)
        saved_modes.update(int(k) for k in out)
        return out

    # What each rank's checkpoint holds of the blocks: read where it is handed to the file.
    _hyperlearn.BlockUpdate.state_dict = recorded
    model = HyperLearnDecomposition(**cfg["params"], schedule="distributed")
    model.fit(make_data(tuple(cfg["shape"])), checkpoint=cfg["checkpoint"])
    out = Path(cfg["output"])
    (out / f"rank{rank}.json").write_text(json.dumps(sorted(saved_modes)))
    if rank == 0:
        with open(out / "model.pkl", "wb") as f:
            pickle.dump(model, f)
    # A rank leaving with its gloo group alive can abort at exit ("terminate called without an
    # active exception"), failing a run that succeeded.
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
