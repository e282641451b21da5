"""One sharded rank's memory, step by step: what the per-rank constant is made of.

Prints, for one rank, the resident memory (RSS; of it the anonymous pages, private to the
process, and the file-backed ones, shared-library pages every rank of a machine maps from the
same files) after the imports, after reading its shards, after joining the gloo group, around
the fit's steps (checks, problem, start, the first compiled kernel call, each round, the final
fold-in) and at the end, with the peak so far.

    python benchmarks/sharded_memory_steps.py DIR                 # one rank (W = 1)
    torchrun --nproc-per-node 4 benchmarks/sharded_memory_steps.py DIR --print-rank 1

``DIR`` is a folder of shards (``write_shards``), e.g. the benchmark's; run
``python -m skhyperlearn.distributed --data DIR --solver als ... --warm`` first for a warm
numba cache. ``SKHYPERLEARN_NO_NUMBA=1`` shows the same with torch's kernels.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
MIB = 2**20
_last = [0.0]


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1024
    return out


def _mark(step: str, show: bool) -> None:
    s = _status()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if show:
        print(
            f"{step:34s} RSS {s['VmRSS']:6.1f} MiB ({s['VmRSS'] - _last[0]:+6.1f})  peak "
            f"{peak:6.1f}  anonymous {s['RssAnon']:6.1f}  file-backed {s['RssFile']:6.1f}",
            flush=True,
        )
    _last[0] = s["VmRSS"]


def _around(owner, name: str, step: str, show: bool, once: bool = False) -> None:
    """Marks before and after ``owner.name`` (only its first call with ``once``)."""
    fn, seen = getattr(owner, name), [False]

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        first = not seen[0]
        seen[0] = True
        if first or not once:
            _mark(f"before {step}", show)
        out = fn(*args, **kwargs)
        if first or not once:
            _mark(f"after {step}", show)
        return out

    setattr(owner, name, wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--print-rank", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", "29613")
    show = int(os.environ["RANK"]) == args.print_rank
    import torch
    import torch.distributed as dist

    from skhyperlearn import HyperLearnDecomposition, _decomposition
    from skhyperlearn._numerics._cpu import _fused
    from skhyperlearn.distributed import _args  # noqa: F401  (the entry point's imports)
    from skhyperlearn.distributed._shards import read_shard
    from skhyperlearn.solvers import _fit

    _mark("imports", show)
    _around(_decomposition.HyperLearnDecomposition, "_check_params", "the checks", show)
    _around(_fit.ModelSpec, "problem", "the problem", show)
    _around(_fit, "_initial_state", "the start", show)
    _around(_fused, "_run_by_rows", "the first compiled kernel", show, once=True)
    _around(_fit, "fold_in_mode", "the final fold-in", show)
    X = read_shard(args.folder, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    _mark("read_shard", show)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=600))
    _mark("gloo group joined", show)
    torch.set_num_threads(1)
    rounds = iter(range(1, args.rounds + 1))
    HyperLearnDecomposition(
        rank=8, solver="als", max_iter=args.rounds, tol=0, schedule="sharded", init="random",
        loss="hypergraph", max_memory="unlimited", random_state=0,
        callback=lambda info: _mark(f"round {next(rounds)}", show),
    ).fit(X)  # fmt: skip
    _mark("fit done", show)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
