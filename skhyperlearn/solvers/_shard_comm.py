"""The sharded schedule's collectives: sums, maxima, reduce_scatter and all_gather of row blocks.

:class:`ShardComm` runs each collective of a sharded fit, times it, counts its bytes in
:data:`traffic` (what ``benchmarks/distributed.py --sharded`` and ``--stats`` report), and
raises a failure as :class:`~._distributed.DistributedFault`, naming the collective, what it
carried and the ranks that never reached the round (from the round each rank records in the
process group's store).
"""

from __future__ import annotations

import itertools
import time

import torch
import torch.distributed as dist

from ._distributed import Distributed, DistributedFault, check_process_group

__all__ = ["ShardComm", "comm_device", "traffic"]

#: This process's collectives in the sharded schedule: ``bytes``, the size of their buffers (an
#: all_reduce's buffer, a reduce_scatter's input, an all_gather's output; all of them, and
#: ``round_bytes`` those of its rounds: not the checks before the fit nor the final fold-in),
#: ``row_bytes`` those of the row blocks (reduce_scatter and all_gather), how many
#: ``collectives``, and its rounds. Also the seconds spent in the local passes over the entries
#: and in the collectives (waiting for the slowest rank included).
#: ``per_round``: the seconds, bytes and collectives of each round; ``split_modes``: the modes
#: whose solves ran over row blocks.
traffic = {
    "bytes": 0, "round_bytes": 0, "row_bytes": 0, "collectives": 0, "rounds": 0,
    "pass_seconds": 0.0, "reduce_seconds": 0.0, "mode_collectives": {}, "per_round": [],
    "split_modes": set(),
}  # fmt: skip
_PER_ROUND = ("bytes", "row_bytes", "collectives", "pass_seconds", "reduce_seconds")

_fits = itertools.count()


def comm_device() -> torch.device:
    """Where a collective's buffer lives: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class ShardComm:
    """The collectives of one sharded fit, failures raised as :class:`DistributedFault`.

    Holds the round the rank is in, recorded in the group's store so that a fault can name the
    ranks that never reached it.
    """

    def __init__(self) -> None:
        check_process_group()
        # The store bookkeeping of the mode-distributed schedule: one record per rank.
        self._record = Distributed([0])
        self._record._key = f"skhyperlearn/sharded{next(_fits)}/reached/"
        self.rank = self._record.rank
        self.world_size = self._record.world_size
        self.round = 0
        #: The bytes of this rank's collectives (their buffers), summed over the fit.
        self.bytes_exchanged = 0
        self._before: dict = dict.fromkeys(_PER_ROUND, 0)
        self._before_modes: dict = {}

    def start_round(self, round_: int) -> None:
        """Record that this rank reached round ``round_``; its traffic is counted from here."""
        self.round = round_
        self._record._mark_round(round_)
        self._before = {k: traffic[k] for k in _PER_ROUND}
        self._before_modes = dict(traffic["mode_collectives"])

    def end_round(self) -> None:
        """The round's traffic into ``traffic["per_round"]``."""
        record = {k: traffic[k] - self._before[k] for k in _PER_ROUND}
        now = traffic["mode_collectives"]
        record["mode_collectives"] = {
            k: now[k] - self._before_modes.get(k, 0) for k in sorted(now)
        }  # fmt: skip
        traffic["round_bytes"] += record["bytes"]
        traffic["per_round"].append(record)
        traffic["rounds"] += 1

    def _run(self, collective, what: str, nbytes: int, *args, **kwargs) -> None:
        """``collective(*args, **kwargs)``, timed and its bytes counted; a failure raised as
        DistributedFault naming the collective, ``what`` it carried and the absent ranks."""
        tic = time.perf_counter()
        try:
            collective(*args, **kwargs)
        except (RuntimeError, dist.DistError) as exc:  # DistBackendError is a RuntimeError
            absent = self._record._absent(self.round) if self.round else ""
            raise DistributedFault(
                f"rank {self.rank}/{self.world_size}: {_KIND[collective]} of {what} failed in "
                f"round {self.round} (a rank died, hung past the timeout or left the group):"
                f"{absent} {exc}"
            ) from exc
        traffic["reduce_seconds"] += time.perf_counter() - tic
        self.bytes_exchanged += nbytes
        traffic["bytes"] += nbytes
        traffic["collectives"] += 1
        if collective is not dist.all_reduce:
            traffic["row_bytes"] += nbytes

    def sum(self, tensors: list[torch.Tensor], scalars: list[float], what: str):
        """``tensors`` and ``scalars`` summed over the ranks, in one ``all_reduce``.

        Returns the summed tensors (on their devices, same dtype) and the summed scalars.
        """
        dtype = tensors[0].dtype if tensors else torch.float64
        dev = comm_device()
        parts = [t.detach().reshape(-1).to(dev, dtype) for t in tensors]
        parts.append(torch.tensor(scalars, dtype=torch.float64).to(dev, dtype))
        buf = torch.cat(parts)
        self._run(dist.all_reduce, what, _nbytes(buf), buf, op=dist.ReduceOp.SUM)
        out, start = [], 0
        for t in tensors:
            out.append(buf[start : start + t.numel()].view(t.shape).to(t.device))
            start += t.numel()
        return out, [float(s) for s in buf[start:].cpu()]

    def max(self, x: float, what: str) -> float:
        """The largest ``x`` over the ranks."""
        buf = torch.tensor([x], dtype=torch.float64).to(comm_device())
        self._run(dist.all_reduce, what, _nbytes(buf), buf, op=dist.ReduceOp.MAX)
        return float(buf.item())

    def scatter_sum(
        self, t: torch.Tensor, block: int, count: int, what: str, mode: int
    ) -> torch.Tensor:
        """Rows ``[rank·block, rank·block + count)`` of ``t`` summed over the ranks
        (``reduce_scatter``; ``t`` holds one row per row of the mode, every rank's the same
        shape)."""
        dev = comm_device()
        padded = t.new_zeros((block * self.world_size, *t.shape[1:]), device=dev)
        padded[: t.shape[0]] = t.detach()
        out = padded.new_empty((block, *t.shape[1:]))
        self._run(_REDUCE_SCATTER, what, _nbytes(padded), out, padded)
        _count_rows(mode)
        return out[:count].to(t.device)

    def gather_rows(
        self, t: torch.Tensor, block: int, n: int, what: str, mode: int
    ) -> torch.Tensor:
        """Every rank's block of rows, in rank order: the ``n`` rows of the mode
        (``all_gather``; each rank gives its ``t``, at most ``block`` rows)."""
        dev = comm_device()
        own = t.new_zeros((block, *t.shape[1:]), device=dev)
        own[: t.shape[0]] = t.detach()
        out = own.new_empty((block * self.world_size, *t.shape[1:]))
        self._run(_ALL_GATHER, what, _nbytes(out), out, own)
        _count_rows(mode)
        return out[:n].to(t.device)


# torch 2.13 renamed the single-tensor collectives (the old names warn); 2.11 has the old ones.
_REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_KIND = {
    dist.all_reduce: "all_reduce", _REDUCE_SCATTER: "reduce_scatter", _ALL_GATHER: "all_gather"
}  # fmt: skip


def _count_rows(mode: int) -> None:
    """One more row-block collective of ``mode`` (the cost model counts them per mode)."""
    counts = traffic["mode_collectives"]
    counts[mode] = counts.get(mode, 0) + 1


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
