"""One gloo group's latency and bandwidth, for the sharded benchmark's cost model.

``torchrun --nproc-per-node W benchmarks/_gloo_link.py OUT.json``: rank 0 writes the median
seconds of an all_reduce of 8 numbers (the latency α of a collective of W ranks) and the
bandwidth β that an all_gather of an 8 MB output shows ((W − 1)/W of it sent per rank).
"""

import json
import statistics
import sys

import torch
import torch.distributed as dist
from _common import time_calls

_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def _median_seconds(fn, repeats: int) -> float:
    # Five untimed calls first: they set up the pairs' buffers.
    return statistics.median(time_calls(fn, repeats, warmup=5))


def main() -> None:
    dist.init_process_group("gloo")
    world = dist.get_world_size()
    small = torch.zeros(8, dtype=torch.float64)
    alpha = _median_seconds(lambda: dist.all_reduce(small), 200)
    total = 2**20  # numbers in the gathered output: 8 MB
    own = torch.zeros(total // world, dtype=torch.float64)
    out = torch.empty(own.numel() * world, dtype=torch.float64)
    seconds = _median_seconds(lambda: _GATHER(out, own), 20)
    sent = (world - 1) / world * out.numel() * 8
    beta = sent / max(seconds - alpha, 1e-9) if world > 1 else float("inf")
    if dist.get_rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"world": world, "alpha": alpha, "beta": beta}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
