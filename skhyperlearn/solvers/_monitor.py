"""What every solver reports each round to: best state, stalls, faults and the user's callback."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._kernels import cp_values
from ._problem import Problem, State

__all__ = ["Monitor", "end_of_iteration", "validation_rmse"]


def end_of_iteration(
    kind: str,
    iteration: int,
    info: dict,
    state: State,
    history: list[float],
    *,
    tol: float,
    log: Callable[[str], None] | None,
    callback: Callable[[int, dict, State], bool | None] | None,
) -> bool:
    """Record J, log it, report to the callback, and say whether training stops.

    Training stops when the callback says so or when J moved by at most ``tol`` relative to
    the previous iteration (with ``tol=0``: when it did not move at all).
    """
    history.append(info["loss"])
    if log is not None:
        log(
            f"{kind} {iteration:4d}  J = {info['loss']:.6e}  (data {info['data']:.4e}, "
            f"graph {info['graph']:.4e})  {info['time']:.3f} s"
        )
    if callback is not None and callback(iteration, info, state):
        return True
    if len(history) < 2:
        return False
    prev = history[-2]
    return abs(prev - history[-1]) <= tol * max(abs(prev), 1e-300)


def validation_rmse(
    problem: Problem, state: State, coords: torch.Tensor, values: torch.Tensor
) -> float:
    """RMSE of the model (CP values, biases and mean) at held-out stored entries."""
    factors = problem.gather(0, state.factors)
    pred = cp_values(coords, factors) + state.mean
    if state.biases is not None:
        for k, b in enumerate(problem.gather(0, state.biases)):
            pred = pred + b.index_select(0, coords[:, k])
    return math.sqrt(float(((pred - values) ** 2).mean()))


class Monitor:
    """Keeps the best state seen and decides when training stops early.

    The state is judged by validation RMSE when held-out entries are given, else by J. Training
    stops after ``n_iter_no_change`` rounds without improvement, as soon as J or the factors stop
    being finite (``fault`` is then set), or when the user's callback returns True.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        n_iter_no_change: int | None = None,
        callback: Callable[[dict], bool | None] | None = None,
    ) -> None:
        self.problem = problem
        if validation is not None:
            # Scored where mode 0's factors live, where validation_rmse gathers them.
            validation = tuple(t.to(problem.devices[0]) for t in validation)
        self.validation = validation
        self.n_iter_no_change = n_iter_no_change
        self.callback = callback
        self.best_score = math.inf
        self.best_state: State | None = None
        self.best_iter = 0
        self.scores: list[float] = []
        self.losses: list[float] = []
        self.fault: str | None = None
        self.stopped_by_callback = False
        self._stall = 0

    def seed(self, state: State) -> None:
        """Score the starting state, so that training can never return anything worse."""
        if not state.is_finite():
            return
        if self.validation is not None:
            score = validation_rmse(self.problem, state, *self.validation)
        else:
            score = self.problem.objective(state)["loss"]
        if score < self.best_score:
            self.best_score, self.best_state, self.best_iter = score, state.clone(), 0

    def __call__(self, iteration: int, info: dict, state: State) -> bool:
        self.losses.append(info["loss"])
        if not math.isfinite(info["loss"]) or not state.is_finite():
            self.fault = f"non-finite loss or factors at iteration {iteration}"
            return True
        if self.validation is not None:
            info["validation_rmse"] = validation_rmse(self.problem, state, *self.validation)
            score = info["validation_rmse"]
        else:
            score = info["loss"]
        self.scores.append(score)
        if score < self.best_score:
            self.best_score, self.best_state, self.best_iter = score, state.clone(), iteration
            self._stall = 0
        else:
            self._stall += 1
        if self.callback is not None:
            report = dict(
                info,
                iteration=iteration,
                factors=[a.detach() for a in state.factors],
                biases=None if state.biases is None else [b.detach() for b in state.biases],
                mean=state.mean,
            )
            if self.callback(report) is True:
                self.stopped_by_callback = True
                return True
        return self.n_iter_no_change is not None and self._stall >= self.n_iter_no_change
