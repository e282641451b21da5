"""The distributed schedule: each rank of a torch.distributed group updates the modes it owns.

The Jacobi round of :class:`~._schedules.Parallel`, spread over processes: every rank holds the
problem (the stored entries, which every mode's quadratic visits, and the Laplacians), updates
the modes it owns from the previous round's factors, then each mode's owner broadcasts the new
factor matrix (and bias) to the others. Only factor matrices and biases cross processes, through
torch.distributed collectives (gloo on CPU, NCCL on GPUs): ``Σ_k N_k·R`` numbers per round (plus
``Σ_k N_k`` for biases). Every rank then holds the same state, so J, the callback and the stop
decision are computed identically everywhere and the run gives what the single-process parallel
schedule gives.

A rank that dies or hangs makes the collectives of the others fail, at the latest after the
process group's timeout; the failure is raised as :class:`DistributedFault`, never a hang. Each
rank records the round it reached in the process group's key-value store (torchrun's agent
holds it), so that the survivors' error names the ranks that never reached the failed round,
where gloo's own message names only a peer's address.
"""

from __future__ import annotations

import datetime
import itertools
from types import SimpleNamespace

import torch
import torch.distributed as dist

from ._problem import Problem, State
from ._schedules import Schedule, register_schedule

__all__ = [
    "Distributed",
    "DistributedFault",
    "check_process_group",
    "owned_modes",
    "owner",
    "traffic",
]

#: This process's bytes sent or received by the distributed schedule's broadcasts, and rounds.
traffic = {"bytes": 0, "rounds": 0}


class DistributedFault(RuntimeError):
    """A collective failed: another rank died, hung past the timeout or left the group."""


def owner(mode: int, world_size: int) -> int:
    """The rank that updates mode ``mode`` (round-robin over the ranks)."""
    return mode % world_size


def owned_modes(order: int, rank: int, world_size: int) -> list[int]:
    """The modes rank ``rank`` updates."""
    return [k for k in range(order) if owner(k, world_size) == rank]


def check_process_group() -> None:
    """Raise a ValueError naming ``schedule`` when no process group is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "schedule='distributed' needs an initialised torch.distributed process group "
            "(launch with torchrun -m skhyperlearn.distributed, or call "
            "skhyperlearn.distributed.init_process_group first)."
        )


# Fits in this process: every rank creates its schedules in the same order, so the count names
# the same fit on every rank (the store's keys of one fit never meet another's).
_fits = itertools.count()
# Seconds the error path waits on the store: it may be gone with a dead rank.
_STORE_WAIT = 5.0


def _default_store():
    try:
        return dist.distributed_c10d._get_default_store()
    except Exception:  # no store this process group exposes: faults name no rank
        return None


def _comm_device() -> torch.device:
    # NCCL moves CUDA tensors only, gloo is used here for CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@register_schedule
class Distributed(Schedule):
    """Modes spread over the ranks of the default process group, one Jacobi round at a time.

    Parameters
    ----------
    mode_order : list of int
        The modes of the problem (their order does not matter: every mode starts from the
        previous round's factors), except that the last one keeps the model's scale when the
        problem normalizes.
    """

    name = "distributed"

    @classmethod
    def check_ready(cls) -> None:
        check_process_group()

    def __init__(self, mode_order: list[int]) -> None:
        check_process_group()
        #: The mode left carrying the model's scale after a round (``factor_scale="solved"``):
        #: the last of the given order, as in the other schedules.
        self.scale_mode = mode_order[-1]
        self.mode_order = sorted(mode_order)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.owned = owned_modes(len(self.mode_order), self.rank, self.world_size)
        #: Bytes this rank sent and received through broadcasts, summed over the rounds.
        self.bytes_exchanged = 0
        self.rounds = 0
        self._store = _default_store()
        self._key = f"skhyperlearn/fit{next(_fits)}/reached/"

    def _mark_round(self, round_: int) -> None:
        """Record in the store that this rank reached ``round_`` (best effort)."""
        if self._store is not None:
            try:
                self._store.set(f"{self._key}{self.rank}", str(round_))
            except Exception:  # a store that fails is no reason to fail the fit
                self._store = None

    def _absent(self, round_: int) -> str:
        """The ranks that never reached ``round_``, as a phrase for the fault's message."""
        if self._store is None:
            return ""
        late = []
        try:
            self._store.set_timeout(datetime.timedelta(seconds=_STORE_WAIT))
            for r in range(self.world_size):
                key = f"{self._key}{r}"
                reached = int(self._store.get(key)) if self._store.check([key]) else 0
                if reached < round_:
                    late.append(r)
        except Exception:  # the store went with a dead rank: nothing more to say
            return ""
        if not late:
            return ""
        ranks = ", ".join(str(r) for r in late)
        return f" rank(s) {ranks} never reached round {round_} (killed, hung or failed);"

    def _broadcast(self, tensor: torch.Tensor, src: int, what: str) -> torch.Tensor:
        dev = _comm_device()
        # A copy: a receiving rank must not overwrite the previous round's tensor in place
        # (another object, such as a block's initial factors, may share its storage).
        buf = tensor.detach().to(dev, copy=True).contiguous()
        try:
            dist.broadcast(buf, src=src)
        except (RuntimeError, dist.DistError) as exc:  # DistBackendError is a RuntimeError
            round_ = self.rounds + 1
            raise DistributedFault(
                f"rank {self.rank}/{self.world_size}: broadcast of {what} from rank {src} "
                f"failed in round {round_} (a rank died, hung past the timeout or left the "
                f"group):{self._absent(round_)} {exc}"
            ) from exc
        self.bytes_exchanged += buf.numel() * buf.element_size()
        traffic["bytes"] += buf.numel() * buf.element_size()
        return buf

    def run_round(self, problem: Problem, state: State, update) -> float | None:
        self._mark_round(self.rounds + 1)
        results = {k: update(problem, problem.view_for(state, k), k) for k in self.owned}
        new = {}
        for k in self.mode_order:
            src = owner(k, self.world_size)
            dev = problem.devices[k]
            a = results[k][0] if k in results else state.factors[k]
            a = self._broadcast(a, src, f"mode {k}'s factors").to(dev)
            b = None
            if problem.bias:
                b = results[k][1] if k in results else state.biases[k]
                b = self._broadcast(b, src, f"mode {k}'s bias").to(dev)
            new[k] = (a, b)
        # Written back only once every mode is known: every update read the previous round.
        for k, (a, b) in new.items():
            state.assign(k, a, b)
        problem.carry_scale(state, self.scale_mode)
        self.rounds += 1
        traffic["rounds"] += 1
        return None

    def finish(self, update) -> None:
        """Give every rank the trained blocks of every mode (the fitted estimator's ``blocks_``).

        Each owner broadcasts its blocks' networks (on the CPU); the others receive them as
        stand-ins with a ``block`` attribute, which is all the estimator keeps of a block.
        """
        blocks = getattr(update, "blocks", None)
        if blocks is None:
            return
        for k in self.mode_order:
            src = owner(k, self.world_size)
            payload = [blocks[k].block.cpu() if k in self.owned else None]
            try:
                dist.broadcast_object_list(payload, src=src)
            except (RuntimeError, dist.DistError) as exc:
                raise DistributedFault(
                    f"rank {self.rank}/{self.world_size}: gathering mode {k}'s block from "
                    f"rank {src} failed: {exc}"
                ) from exc
            if k not in self.owned:
                blocks[k] = SimpleNamespace(block=payload[0])
