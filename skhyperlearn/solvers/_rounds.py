"""The round driver shared by every solver: rounds of per-mode updates until training stops.

A solver is a per-mode update (:class:`~._als.ExactUpdate`, :class:`~._hyperlearn.BlockUpdate`)
run by a schedule (:mod:`._schedules`). Each round: update the global mean when biases are
fitted, let the schedule update every mode, compose J once (``Problem.objective``), report to the
callback, and stop on ``tol``, on the callback's word, on non-finite factors, or at ``max_iter``.

One callback protocol: ``callback(info) -> bool | None`` with ``info`` the dict that users'
callbacks receive (``iteration``, ``loss``, ``data``, ``graph``, ``ridge``, ``time``,
``factors``, ``biases``, ``mean``); returning True stops training.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._checkpoint import Checkpoint
from ._problem import Problem, State
from ._schedules import Update

__all__ = ["RunResult", "report", "run_rounds"]

Callback = Callable[[dict], "bool | None"]


@dataclass
class RunResult:
    """What a run returns: J after each round, the rounds run and why training stopped.

    ``stop_reason`` is one of ``"tol"``, ``"callback"``, ``"nonfinite"``, ``"max_iter"``.
    """

    history: list[float] = field(default_factory=list)
    n_iter: int = 0
    stop_reason: str = "max_iter"


def report(iteration: int, info: dict, state: State) -> dict:
    """The callback's dict: J and its parts, plus the state's tensors (detached, not copied)."""
    return dict(
        info,
        iteration=iteration,
        factors=[a.detach() for a in state.factors],
        biases=None if state.biases is None else [b.detach() for b in state.biases],
        mean=state.mean,
    )


def _format(kind: str, iteration: int, info: dict, lam: float) -> str:
    # The printed parts add up to J: lam·data + graph + ridge.
    line = (
        f"{kind} {iteration:4d}  J = {info['loss']:.6e} = {lam:g}·{info['data']:.4e} (data)"
        f" + {info['graph']:.4e} (graph) + {info['ridge']:.4e} (ridge)"
    )
    if "validation_rmse" in info:
        line += f"  validation RMSE {info['validation_rmse']:.5f}"
    return line + f"  {info['time']:.3f} s"


def _progress_bar(desc: str | None, total: int, unit: str, initial: int = 0):
    if desc is None:
        return contextlib.nullcontext()
    from tqdm.auto import tqdm  # only fits that ask for a bar pay for the import

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=True, dynamic_ncols=True)


def _advance(bar, info: dict) -> None:
    if not hasattr(bar, "update"):
        return
    postfix = {"J": f"{info['loss']:.5g}"}
    if "validation_rmse" in info:
        postfix["val RMSE"] = f"{info['validation_rmse']:.4f}"
    bar.set_postfix(postfix, refresh=False)
    bar.update(1)


def wants_stop(answer) -> bool:
    """Whether a callback's return value asks to stop: True, including numpy's ``np.True_``.

    Only booleans count, so that a callback returning some other object by accident (a count,
    a list) never stops a fit.
    """
    return isinstance(answer, (bool, np.bool_)) and bool(answer)


def _stalled(history: list[float], tol: float) -> bool:
    if len(history) < 2:
        return False
    prev = history[-2]
    return abs(prev - history[-1]) <= tol * max(abs(prev), 1e-300)


def _first_stop(history: list[float], tol: float) -> int | None:
    """The first round at which ``tol`` stops a run with this J history (None: none)."""
    for it in range(2, len(history) + 1):
        if _stalled(history[:it], tol):
            return it
    return None


def _resume_point(saved: dict, max_iter: int, tol: float) -> tuple[int | None, str | None]:
    """Where a saved run goes on under this run's ``max_iter`` and ``tol``.

    Returns ``(first round to run, None)``, or ``(None, stop reason)`` when the saved run is
    where the uninterrupted one under these settings stops. ``tol`` decides nothing but when
    to stop, so the saved rounds are those of any run that had not stopped before them: a
    stricter ``tol`` goes on after a saved tol stop, a looser one that would have stopped at
    the saved round stops there. A run that would have stopped before its saved round (a
    looser ``tol``, a smaller ``max_iter``) cannot be taken back: ValueError says so.
    """
    reached, path = saved["iteration"], saved.get("_path", "the checkpoint")
    stop = _first_stop(saved["history"], tol)
    if stop is not None and stop < reached:
        raise ValueError(
            f"checkpoint {path!r} is at round {reached}, but with tol={tol} the fit stops at "
            f"round {stop}; resume with the tol it was written with, or remove it to start again."
        )
    if reached > max_iter:
        raise ValueError(
            f"checkpoint {path!r} is at round {reached}, beyond max_iter={max_iter}; raise "
            "max_iter, or remove it to start again."
        )
    if stop == reached:
        return None, "tol"
    if saved["stop_reason"] not in (None, "tol"):
        return None, saved["stop_reason"]
    if reached == max_iter:
        return None, "max_iter"
    return reached + 1, None


def _resume(
    checkpoint, problem, state, update, callback, result: RunResult, max_iter: int, tol: float
) -> int | None:
    """The first round to run, after restoring a saved run; ``None`` when that run had stopped.

    Kept apart from the loop so that a resumed run and a fresh one share every later line.
    """
    if checkpoint is None:
        return 1
    saved = checkpoint.load(problem, state, update, callback)
    if saved is None:
        return 1
    result.history = list(saved["history"])
    result.n_iter = saved["iteration"]
    first, reason = _resume_point(saved, max_iter, tol)
    if reason is not None:
        result.stop_reason = reason
    return first


def _one_round(problem: Problem, state: State, update: Update, schedule) -> dict:
    """One round (mean, every mode, J) and its timing: the part that is the same every round."""
    tic = time.perf_counter()
    if problem.bias:
        state.mean = problem.update_mean(state)
    data_error = schedule.run_round(problem, state, update)
    if data_error is not None and math.isnan(data_error):
        info = dict.fromkeys(("loss", "data", "graph", "ridge"), math.nan)
    else:
        info = problem.objective(state, data_error)
    info["time"] = time.perf_counter() - tic
    return info


def run_rounds(
    problem: Problem,
    state: State,
    update: Update,
    schedule,
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
    log: Callable[[str], None] | None = None,
    checkpoint: Checkpoint | None = None,
    progress: str | None = None,
) -> RunResult:
    """Rounds of ``update`` under ``schedule`` from ``state`` (updated in place).

    Training stops when J moved by at most ``tol`` relative to the previous round (with
    ``tol=0``: when it did not move at all), when the callback returns True, when the factors
    stop being finite, or after ``max_iter`` rounds. With ``checkpoint``, the run resumes from
    the saved round when a checkpoint exists, and saves every ``checkpoint.every`` rounds.
    ``progress`` names a tqdm progress bar over the rounds (on standard error), ``None`` for
    none.
    """
    result = RunResult()
    kind = getattr(update, "kind", "round")
    first = _resume(checkpoint, problem, state, update, callback, result, max_iter, tol)
    if first is None:
        return result
    bar = _progress_bar(progress, max_iter, kind, initial=first - 1)
    with schedule, bar:
        for it in range(first, max_iter + 1):
            info = _one_round(problem, state, update, schedule)
            result.history.append(info["loss"])
            result.n_iter = it
            message = report(it, info, state)
            stop = callback is not None and wants_stop(callback(message))
            if log is not None:
                log(_format(kind, it, message, problem.lam))
            _advance(bar, message)
            reason = None
            if not math.isfinite(info["loss"]):
                reason = "nonfinite"
            elif stop:
                reason = "callback"
            elif _stalled(result.history, tol):
                reason = "tol"
            # A non-finite state is never saved: the last checkpoint stays the one to resume.
            if checkpoint is not None and reason != "nonfinite":
                if reason is not None or it % checkpoint.every == 0 or it == max_iter:
                    # max_iter is not saved as a stop: a resume with a larger one goes on.
                    checkpoint.save(it, problem, state, update, callback, result.history, reason)
            if reason is not None:
                result.stop_reason = reason
                break
    return result
