"""Checkpoints of a run of rounds: everything needed to resume it with nothing lost.

A checkpoint holds the round reached, the state (factors, biases, mean), the per-mode update's
own state (the diffusion blocks' weights, Adam's moments and the biases they solved), the
monitor's record (best state, scores, stall count), J's history, and why the run stopped if it
did. It is written every ``every`` rounds (and when the run stops), atomically (a temporary
file, then a rename), and the previous one is kept as ``PATH.prev``, so a crash while writing
loses at most the round being saved. Under the distributed schedule each rank writes its own
file (``PATH.rank{r}of{w}``: it owns its blocks) after a barrier (every rank reached the round),
and on resume the ranks agree on the latest round that every one of them saved.

Resuming runs again what precedes the rounds (hold-out, initial state, exact sweeps: all
deterministic given ``random_state``), then loads the checkpoint and goes on from the next round,
so a resumed fit ends where the uninterrupted one ends.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

from ._problem import Problem, State

__all__ = ["Checkpoint"]

_VERSION = 1


def _cpu(tensors):
    return None if tensors is None else [t.detach().cpu() for t in tensors]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _collective(what: str, fn, *args):
    from ._distributed import DistributedFault

    try:
        return fn(*args)
    except (RuntimeError, dist.DistError) as exc:
        raise DistributedFault(
            f"rank {dist.get_rank()}/{dist.get_world_size()}: {what} failed (a rank died, hung "
            f"past the timeout or left the group): {exc}"
        ) from exc


class Checkpoint:
    """Where and how often a run of rounds is saved.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (resumed from when it exists).
    every : int, default=1
        Save after every ``every``-th round (and after the last one).
    """

    def __init__(self, path: str | os.PathLike, every: int = 1) -> None:
        self.path = Path(path)
        self.every = int(every)

    def file(self) -> Path:
        """This process's checkpoint file."""
        if _distributed():
            r, w = dist.get_rank(), dist.get_world_size()
            return self.path.with_name(f"{self.path.name}.rank{r}of{w}")
        return self.path

    def _previous(self) -> Path:
        target = self.file()
        return target.with_name(target.name + ".prev")

    @staticmethod
    def _key(problem: Problem, state: State, update) -> dict:
        # What must match between the saved run and this one for a resume to make sense.
        return {
            "shape": tuple(problem.shape),
            "rank": int(state.factors[0].shape[1]),
            "update": type(update).__name__,
            "bias": bool(problem.bias),
        }

    def save(self, iteration, problem, state, update, callback, history, stop_reason) -> None:
        payload = {
            "version": _VERSION,
            "key": self._key(problem, state, update),
            "iteration": iteration,
            "factors": _cpu(state.factors),
            "biases": _cpu(state.biases),
            "mean": float(state.mean),
            "update": update.state_dict() if hasattr(update, "state_dict") else None,
            "callback": callback.state_dict() if hasattr(callback, "state_dict") else None,
            "history": list(history),
            "stop_reason": stop_reason,
        }
        if _distributed():
            # Every rank reached this round: no rank saves a round another never finished.
            _collective(f"the barrier before saving round {iteration}", dist.barrier)
        target = self.file()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        torch.save(payload, tmp)
        if target.exists():
            os.replace(target, self._previous())
        os.replace(tmp, target)

    def _saved(self) -> dict:
        """This process's readable checkpoints by round."""
        out = {}
        for path in (self._previous(), self.file()):
            if path.exists():
                # A file cut short or left zeroed by a crash raises whatever torch.load's reader
                # meets first (RuntimeError, EOFError, UnpicklingError, ValueError, or KeyError
                # when zeros read as an empty tar archive): none of them is a round to resume.
                try:
                    saved = torch.load(path, map_location="cpu", weights_only=False)
                except Exception:
                    continue
                saved["_path"] = str(path)
                out[int(saved["iteration"])] = saved
        return out

    def load(self, problem: Problem, state: State, update, callback) -> dict | None:
        """Restore ``state``, ``update`` and ``callback`` in place; None when nothing is saved."""
        candidates = self._saved()
        rounds = set(candidates)
        if _distributed():
            everyone = [None] * dist.get_world_size()
            _collective("agreeing on the checkpoint", dist.all_gather_object, everyone, rounds)
            if not any(everyone):
                return None
            rounds = set.intersection(*everyone)
            if not rounds:
                raise ValueError(
                    f"the ranks' checkpoints under {str(self.path)!r} share no round "
                    f"({everyone}); remove them to start again."
                )
        if not rounds:
            return None
        saved = candidates[max(rounds)]
        key = self._key(problem, state, update)
        if saved.get("version") != _VERSION or saved.get("key") != key:
            raise ValueError(
                f"checkpoint {saved['_path']!r} was written by another fit ({saved.get('key')}, "
                f"this fit: {key}); remove it or choose another checkpoint path."
            )
        state.factors = problem.place(saved["factors"])
        if saved["biases"] is not None:
            state.biases = problem.place(saved["biases"])
        state.mean = saved["mean"]
        if saved["update"] is not None:
            update.load_state_dict(saved["update"])
        if saved["callback"] is not None and hasattr(callback, "load_state_dict"):
            callback.load_state_dict(saved["callback"])
        return saved
