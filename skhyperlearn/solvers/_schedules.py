"""Schedules: in which order, and from which factors, the modes of a round are updated.

A schedule runs one round of a per-mode update ``update(problem, state, mode) -> (a, b, quad)``
over every mode and writes the results into ``state``. It sees factor matrices and biases only,
so a distributed schedule (one process per device, exchanging factors and biases) fits the same
interface.

- :class:`Sequential` (Gauss–Seidel): each mode sees the factors its predecessors produced this
  round.
- :class:`Parallel` (Jacobi): every mode starts from the previous round's factors; the modes run
  concurrently, one worker thread per mode, each on its own device.
- :class:`~._distributed.Distributed`: the parallel round over the ranks of a torch.distributed
  group, each rank updating the modes it owns and broadcasting their factors.
- :class:`~._sharded.Sharded`: the sequential round over a torch.distributed group whose ranks
  each hold a share of the stored entries, every pass over them summed over the ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from ._problem import Problem, State, all_finite

__all__ = ["SCHEDULES", "Distributed", "Parallel", "Sequential", "Update", "make_schedule"]

#: A per-mode update: new factors, new bias (or None) and the mode's quadratic at ``state``.
Update = Callable[[Problem, State, int], tuple]


def _finite(a: torch.Tensor, b: torch.Tensor | None) -> bool:
    return all_finite(a) and (b is None or all_finite(b))


class Sequential:
    """Modes one after another in ``mode_order``, each from the freshest factors."""

    def __init__(self, mode_order: list[int]) -> None:
        self.mode_order = list(mode_order)

    def __enter__(self) -> Sequential:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def run_round(self, problem: Problem, state: State, update: Update) -> float | None:
        """One round; returns the data term at the new state when known without another pass."""
        for k in self.mode_order:
            if problem.normalize:
                state.normalize_except(k, problem.keeps_model)
            a, b, quad = update(problem, state, k)
            state.assign(k, a, b)
            # Stop at the first non-finite block: the next mode's solve would fail on it.
            if not _finite(a, b):
                return float("nan")
        # The last mode's quadratic was built from every other mode's new factors, so it gives
        # the data term at the new state without another pass.
        return max(float(quad.value(a, b)), 0.0)


class Parallel:
    """Every mode from the previous round's factors, concurrently (one thread per mode)."""

    def __init__(self, mode_order: list[int], concurrent: bool = True) -> None:
        self.mode_order = list(mode_order)
        self.concurrent = concurrent
        self._workers: ThreadPoolExecutor | None = None

    def __enter__(self) -> Parallel:
        if self.concurrent:
            self._workers = ThreadPoolExecutor(max_workers=len(self.mode_order))
        return self

    def __exit__(self, *exc) -> None:
        if self._workers is not None:
            self._workers.shutdown()
            self._workers = None

    def run_round(self, problem: Problem, state: State, update: Update) -> float | None:
        for k in self.mode_order:
            problem.data(k)  # copy the entries to every device now, not from racing workers

        # Every update reads ``state`` before any result is written back: no copy needed
        # (with ``normalize``, each reads its own view, built here before any worker starts).
        views = {k: problem.view_for(state, k) for k in self.mode_order}

        def step(k: int):
            return update(problem, views[k], k)

        if self._workers is not None:
            results = list(self._workers.map(step, self.mode_order))
        else:
            results = [step(k) for k in self.mode_order]
        for k, (a, b, _) in zip(self.mode_order, results, strict=True):
            state.assign(k, a, b)
        problem.carry_scale(state, self.mode_order[-1])
        return None


from ._distributed import Distributed  # noqa: E402  (it needs nothing from this module)

#: Schedules by the name given as ``schedule=``.
SCHEDULES = {"sequential": Sequential, "parallel": Parallel, "distributed": Distributed}

from . import _sharded  # noqa: E402, F401  (registers "sharded": it needs Sequential)


def make_schedule(name: str, mode_order: list[int]) -> Sequential | Parallel | Distributed:
    """The schedule named ``name`` over ``mode_order``."""
    return SCHEDULES[name](mode_order)
