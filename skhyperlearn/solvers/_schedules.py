"""Schedules: in which order, and from which factors, the modes of a round are updated.

A schedule runs one round of a per-mode update ``update(problem, state, mode) -> (a, b, quad)``
over every mode and writes the results into ``state``. It sees factor matrices and biases only,
so a distributed schedule (one process per device, exchanging factors and biases) fits the same
interface.

Schedules are registered by name, as losses are: a :class:`Schedule` subclass decorated with
:func:`register_schedule` is accepted as ``schedule=`` by every estimator (the parameter's
constraint reads :data:`SCHEDULE_NAMES`), and what the fit needs to know of a schedule it asks
the class (``check_ready``, ``concurrent``) or the instance (``owned``, ``finish``), never its
name.

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
from typing import ClassVar

import torch

from ._problem import Problem, State, all_finite

__all__ = [
    "SCHEDULES",
    "SCHEDULE_NAMES",
    "Parallel",
    "Schedule",
    "Sequential",
    "Update",
    "get_schedule",
    "register_schedule",
]

#: A per-mode update: new factors, new bias (or None) and the mode's quadratic at ``state``.
Update = Callable[[Problem, State, int], tuple]

#: Registered schedules by the name given as ``schedule=``.
SCHEDULES: dict[str, type[Schedule]] = {}
#: Their names, a live set: the estimators' parameter constraint accepts every registered one.
SCHEDULE_NAMES: set[str] = set()


class Schedule:
    """What every schedule offers besides ``run_round`` (defaults for one process)."""

    #: Name given as ``schedule=``.
    name: ClassVar[str]
    #: Whether the modes of a round run at once in this process (one worker thread per mode):
    #: the memory guard then counts a gather buffer per mode.
    concurrent: ClassVar[bool] = False
    #: Whether each process holds a share of the stored entries only (X is this process's
    #: share): what the fit decides on X's values it then decides on every share together.
    shares_entries: ClassVar[bool] = False
    #: The modes this process updates (None: all of them); the HyperLearn solver builds the
    #: blocks of these only.
    owned: list[int] | None = None

    @classmethod
    def check_ready(cls) -> None:
        """Raise, naming ``schedule``, when the schedule cannot run here (before any work)."""

    def __enter__(self) -> Schedule:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def run_round(self, problem: Problem, state: State, update: Update) -> float | None:
        """One round of ``update`` over every mode, written into ``state``; returns the data
        term at the new state when known without another pass, else None."""
        raise NotImplementedError

    def finish(self, update: Update) -> None:
        """After the last round: make ``update``'s results (the blocks) whole in this process."""

    @classmethod
    def training_problem(cls, problem: Problem) -> Problem:
        """The problem the training runs on, given the one over this process's entries."""
        return problem

    @classmethod
    def start_values(cls, values):
        """The stored values the random start is scaled by (this process's, by default)."""
        return values


def register_schedule(cls: type[Schedule]) -> type[Schedule]:
    """Class decorator: make ``cls`` available as ``schedule=cls.name``."""
    SCHEDULES[cls.name] = cls
    SCHEDULE_NAMES.add(cls.name)
    return cls


def get_schedule(name: str) -> type[Schedule]:
    """The schedule class registered as ``name``."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(f"schedule={name!r} is not one of {sorted(SCHEDULES)}.") from None


def _finite(a: torch.Tensor, b: torch.Tensor | None) -> bool:
    return all_finite(a) and (b is None or all_finite(b))


@register_schedule
class Sequential(Schedule):
    """Modes one after another in ``mode_order``, each from the freshest factors."""

    name = "sequential"

    def __init__(self, mode_order: list[int]) -> None:
        self.mode_order = list(mode_order)

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


@register_schedule
class Parallel(Schedule):
    """Every mode from the previous round's factors, concurrently (one thread per mode)."""

    name = "parallel"
    concurrent = True

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
