"""``torchrun --nproc-per-node N -m skhyperlearn.distributed``: one fit over N processes.

Every rank loads the same data (a synthetic hypergraph, the Last.fm 4th-order hypergraph, or a
pickle), fits ``HyperLearnDecomposition(schedule="distributed")`` and rank 0 pickles the fitted
estimator (``--output``) and writes per-round figures (``--stats``, JSON). A failed rank makes
the others exit with status 1 and the error on stderr, within ``--timeout`` seconds.

``--warm`` (with the fit's options) fits the same estimator once on a tiny tensor of the data's
order and dtypes, so that the compiled kernels are in numba's cache before the ranks start;
under torchrun, ``--stats`` then records each rank's memory with nothing of the data.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import torch.distributed as dist

from .. import HyperLearnDecomposition
from ..solvers import _distributed, _sharded
from ._args import checked_arguments
from ._launch import DEFAULT_TIMEOUT, init_process_group, local_device, prefix_output


def _peak_rss() -> int:
    """This process's peak resident memory so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _file_rss() -> int | None:
    """Bytes of this process's resident pages that are files (shared libraries, mapped data):
    shared with every other process that maps them. None where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssFile:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _memory(imported: int, nnz: int) -> list:
    """Every rank's (RSS after the imports, peak RSS, file-backed RSS now, entries)."""
    memory = [None] * dist.get_world_size()
    dist.all_gather_object(memory, (imported, _peak_rss(), nnz, _file_rss()))
    return memory


def _memory_stats(memory: list) -> dict:
    return {
        "nnz_per_rank": [m[2] for m in memory],
        # Per rank: peak RSS after the imports (before the data) and at the end.
        "import_rss": [m[0] for m in memory], "peak_rss": [m[1] for m in memory],
        "file_rss": [m[3] for m in memory],
    }  # fmt: skip


def _save(args, model, world, backend, times, wall, memory) -> None:
    """Rank 0's outputs: the pickled estimator, the per-round figures and one summary line."""
    if args.output:
        with open(args.output, "wb") as f:
            pickle.dump(model, f)
    if args.stats:
        traffic = (_sharded if model.schedule == "sharded" else _distributed).traffic
        stats = {
            "world_size": world, "backend": backend, "shape": list(model.tensor_shape_),
            "rank": args.rank, "solver": args.solver, "round_times": times,
            "bytes_per_round": traffic.get("round_bytes", traffic["bytes"])
            / max(traffic["rounds"], 1),
            "fit_seconds": wall, "loss_history": model.loss_history_,
            "schedule": model.schedule, **_memory_stats(memory),
            "round_parts": traffic.get("per_round"),  # rank 0's pass and all_reduce seconds
        }  # fmt: skip
        Path(args.stats).write_text(json.dumps(stats))
    print(
        f"fitted over {world} ranks ({backend}) in {wall:.2f} s, {model.n_iter_} rounds,"
        f" J = {model.loss_history_[-1]:.6e}"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m skhyperlearn.distributed", description=__doc__)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--synthetic", metavar="N1,N2,...", help="make_hypergraph of this shape")
    data.add_argument("--lastfm", metavar="DATA_HOME", help="Last.fm 2K, 4th order")
    data.add_argument(
        "--data", metavar="PICKLE|DIR",
        help="a pickled X (e.g. a Hypergraph), or a folder of shards (write_shards): each rank "
        "reads only its own shards",
    )  # fmt: skip
    p.add_argument(
        "--schedule", choices=("distributed", "sharded"), default=None,
        help="modes over the ranks (distributed, the default) or stored entries over the ranks "
        "(sharded, the default for a folder of shards; --solver als)",
    )  # fmt: skip
    p.add_argument("--n-entries", type=int, default=None, help="--synthetic: stored entries")
    p.add_argument("--seed", type=int, default=0, help="data and estimator random_state")
    p.add_argument("--rank", type=int, default=8, help="CP rank R")
    p.add_argument("--solver", choices=("hyperlearn", "als"), default="hyperlearn")
    p.add_argument("--max-iter", type=int, default=20)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--lam", default="auto")
    p.add_argument(
        "--params", default="{}", help="other estimator parameters as JSON, e.g. '{\"alpha\": 0.1}'"
    )
    p.add_argument("--backend", choices=("gloo", "nccl"), default=None)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (dead rank)")
    p.add_argument("--checkpoint", default=None, help="checkpoint path (resumed when present)")
    p.add_argument("--checkpoint-every", type=int, default=1)
    p.add_argument("--output", default=None, help="rank 0 pickles the fitted estimator here")
    p.add_argument("--stats", default=None, help="rank 0 writes per-round figures here (JSON)")
    p.add_argument(
        "--warm", action="store_true",
        help="fit once on a tiny tensor of the data's order and dtypes (reading only a folder's "
        "manifest), so that the compiled kernels are cached before the ranks start; under "
        "torchrun with --stats, each rank's memory without the data",
    )  # fmt: skip
    return p


def _warm(args, checked, imported: int) -> int:
    """``--warm``: the tiny fit, in the process group when torchrun started this process."""
    from ._warm import warm_fit

    grouped = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    params = dict(
        checked.params, rank=args.rank, solver=args.solver, tol=args.tol, lam=checked.lam,
        schedule=checked.schedule if grouped else "sequential", random_state=args.seed,
    )  # fmt: skip
    if grouped:
        init_process_group(args.backend, args.timeout)
    try:
        warm_fit(params, *checked.layout)
        if grouped and args.stats:
            memory = _memory(imported, 0)
            if dist.get_rank() == 0:
                stats = {"world_size": dist.get_world_size(), "warm": True}
                Path(args.stats).write_text(json.dumps({**stats, **_memory_stats(memory)}))
    except _distributed.DistributedFault as exc:
        print(f"skhyperlearn.distributed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if not grouped or int(os.environ["RANK"]) == 0:
        print(f"compiled kernels ready: order {checked.layout[0]}, {checked.layout[1]} values")
    return 0


def main(argv=None) -> int:
    imported = _peak_rss()
    parser = _parser()
    args = parser.parse_args(argv)
    # Every option (and the data) checked before the rendezvous: a typo fails at once, naming
    # the option, instead of as a traceback on N ranks or after the whole fit.
    checked = checked_arguments(args, parser)
    if args.warm:
        return _warm(args, checked, imported)
    params = dict(checked.params)
    backend = init_process_group(args.backend, args.timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank != 0:
        # Progress once (rank 0's); what the other ranks still print says which rank it is.
        params["verbose"] = 0
        prefix_output(f"[rank {rank}/{world}] ")
    try:
        if backend == "nccl":
            params.setdefault("devices", str(local_device(backend)))
        if checked.schedule == "sharded":
            # The projection terms (the estimator's default) need a pair's entries on one
            # rank; sharded, the tensor's own term is fitted unless --params says otherwise.
            params.setdefault("projection_weight", 0.0)
        times = []
        model = HyperLearnDecomposition(
            rank=args.rank, solver=args.solver, max_iter=args.max_iter, tol=args.tol,
            lam=checked.lam, schedule=checked.schedule, random_state=args.seed,
            callback=lambda info: times.append(info["time"]), **params,
        )  # fmt: skip
        tic = time.perf_counter()
        model.fit(checked.X, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every)
        wall = time.perf_counter() - tic
        model.callback = None  # a lambda of this script: the saved estimator must not need it
        memory = _memory(imported, model._fit_nnz) if args.stats else None
        if rank == 0:
            _save(args, model, world, backend, times, wall, memory)
    except _distributed.DistributedFault as exc:
        print(f"skhyperlearn.distributed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # After a fault the group is broken: do not wait for the others to leave it.
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # nothing more to do on the way out
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
