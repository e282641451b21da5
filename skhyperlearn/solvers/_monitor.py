"""Early stopping: the best state seen, stalls, faults, and the user's callback.

A :class:`Monitor` is the round driver's callback (one protocol: it receives the dict users'
callbacks receive, adds ``validation_rmse`` when entries are held out, and passes it on).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._numerics._kernels import cp_values
from ._problem import Problem, State
from ._rounds import wants_stop

__all__ = ["Monitor", "validation_rmse"]

#: Relative rise of J above its start that :meth:`Monitor.rise_message` reports.
_RISE_RTOL = 1e-9


def validation_rmse(
    problem: Problem, state: State, coords: torch.Tensor, values: torch.Tensor
) -> float:
    """RMSE of the model (CP values, biases and mean) at held-out stored entries."""
    factors = problem.on_data_device(state.factors)
    pred = cp_values(coords, factors) + state.mean
    if state.biases is not None:
        for k, b in enumerate(problem.on_data_device(state.biases)):
            pred = pred + b.index_select(0, coords[:, k])
    return math.sqrt(float(((pred - values) ** 2).mean()))


class Monitor:
    """Keeps the best state seen and decides when training stops early.

    The state is judged by validation RMSE when held-out entries are given, else by J. Training
    stops after ``n_iter_no_change`` rounds without improvement (``stop_reason`` "early
    stopping"), as soon as J or the factors stop being finite (``fault`` is then set), or when
    the user's callback returns True (``stop_reason`` "callback").

    With ``Problem.normalize`` the exact solves do not descend J (each moves the scale between
    modes), so the latest finite state is the fit; ``by_loss=True`` judges states by J there
    too, for an update that is trained on J and may climb it (the HyperLearn solver's blocks):
    the best state reached is kept, the start included, and :meth:`rise_message` says when
    the rounds ended above their start.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        n_iter_no_change: int | None = None,
        callback: Callable[[dict], bool | None] | None = None,
        by_loss: bool = False,
    ) -> None:
        self.problem = problem
        self.by_loss = by_loss
        self.start_loss: float | None = None
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
        self.stop_reason: str | None = None
        self._stall = 0

    def _score(self, state: State, iteration: int, loss: float | None = None) -> float:
        if self.validation is not None:
            return validation_rmse(self.problem, state, *self.validation)
        if self.problem.normalize and not self.by_loss:
            # Solving each mode against unit-norm others does not descend J (it moves the
            # scale between modes each step): the latest finite state is the fit.
            return -float(iteration)
        return self.problem.objective(state)["loss"] if loss is None else loss

    def seed(self, state: State) -> None:
        """Score the starting state, so that training can never return anything worse."""
        if state.is_finite():
            if self.by_loss:
                self.start_loss = self.problem.objective(state)["loss"]
            self._keep_if_best(self._score(state, 0, self.start_loss), state, 0)

    def rise_message(self, what: str = "the rounds") -> str | None:
        """A sentence saying that J ended above its start (with ``by_loss``), else None."""
        if self.start_loss is None or not self.losses or self.fault is not None:
            return None
        last, start = self.losses[-1], self.start_loss
        # A rise at the level of rounding is no rise.
        if not last - start > _RISE_RTOL * abs(start):
            return None
        where = "the start" if self.best_iter == 0 else f"round {self.best_iter}"
        return (
            f"{what} ended above their start: J went from {start:.6g} to {last:.6g} (up "
            f"{(last - start) / abs(start):.2g} relative) after {len(self.losses)} rounds. The "
            f"fit keeps the best state reached ({where})."
        )

    def _keep_if_best(self, score: float, state: State, iteration: int) -> bool:
        if score < self.best_score:
            # Into the previous best's own tensors: a fresh copy each round costs page faults
            # (a tenth of a 2·10^5-entry sweep), and two copies would be held for a moment.
            if self.best_state is None or not self.best_state.copy_from(state):
                self.best_state = None
                self.best_state = state.clone()
            self.best_score, self.best_iter = score, iteration
            return True
        return False

    def state_dict(self) -> dict:
        """The record a checkpoint keeps (the best state on the CPU)."""
        best = None
        if self.best_state is not None:
            # Tensors and plain values only: a checkpoint is read with weights_only=True.
            b = self.best_state
            best = [
                [a.detach().cpu() for a in b.factors],
                None if b.biases is None else [x.detach().cpu() for x in b.biases],
                float(b.mean),
            ]
        return {
            "best_score": self.best_score,
            "best_state": best,
            "best_iter": self.best_iter,
            "scores": list(self.scores),
            "losses": list(self.losses),
            "fault": self.fault,
            "stop_reason": self.stop_reason,
            "stall": self._stall,
        }

    def load_state_dict(self, saved: dict) -> None:
        self.best_score, self.best_iter = saved["best_score"], saved["best_iter"]
        self.scores, self.losses = list(saved["scores"]), list(saved["losses"])
        self.fault, self.stop_reason, self._stall = (
            saved["fault"], saved["stop_reason"], saved["stall"]
        )  # fmt: skip
        self.best_state = None
        if saved["best_state"] is not None:
            factors, biases, mean = saved["best_state"]
            place = self.problem.place
            self.best_state = State(place(factors), None if biases is None else place(biases), mean)

    def __call__(self, info: dict) -> bool:
        iteration = info["iteration"]
        state = State(info["factors"], info["biases"], info["mean"])
        self.losses.append(info["loss"])
        if not math.isfinite(info["loss"]) or not state.is_finite():
            self.fault = f"non-finite loss or factors at iteration {iteration}"
            return True
        score = self._score(state, iteration, info["loss"])
        if self.validation is not None:
            info["validation_rmse"] = score
        self.scores.append(score)
        self._stall = 0 if self._keep_if_best(score, state, iteration) else self._stall + 1
        if self.callback is not None and wants_stop(self.callback(dict(info))):
            self.stop_reason = "callback"
            return True
        if self.n_iter_no_change is not None and self._stall >= self.n_iter_no_change:
            self.stop_reason = "early stopping"
            return True
        return False
