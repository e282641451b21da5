"""The training of a fit: one entry point, :func:`train`, from the validated plan to the result.

The estimator checks its parameters and X into a :class:`FitPlan` (every "auto" resolved, every
rule between parameters applied) and hands it here; :func:`train` holds entries out for early
stopping, checks the memory, builds the :class:`~._problem.Problem`, starts (``init``, exact
sweeps), runs the solver under the schedule, keeps the best state, refits on every entry when
entries were held out, reports why training stopped, and ends with the exact solve of the
sample mode that ``transform`` performs. The estimator only sets its attributes from the
returned :class:`FitResult`, so a fit that fails anywhere here leaves it unfitted.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._memory import available_bytes, estimate_fit_bytes, format_bytes
from .._validation import TensorInput, _index_dtype
from ._als import ExactUpdate
from ._checkpoint import Checkpoint
from ._faults import apply_fault_policy, collapse_message, run_guarded
from ._fold_in import fold_in_mode
from ._hyperlearn import BlockConfig, BlockUpdate, block_seed
from ._init import initial_state, resolve_init
from ._monitor import Monitor
from ._problem import Problem, State, torch_dtype
from ._rounds import run_rounds
from ._schedules import Sequential, get_schedule
from .losses import Loss

__all__ = ["FitPlan", "FitResult", "ModelSpec", "train"]


@dataclass(frozen=True)
class ModelSpec:
    """What J is and where it lives: enough to build a :class:`Problem` on any entries (the
    fit's, or the new entities' of ``transform``)."""

    loss: Loss
    lam: float
    alpha: float
    bias: bool  # as asked for: the Problem fits biases only where the loss has them
    devices: list[torch.device]
    normalize: bool  # factor_scale="solved": see solvers/_problem.py
    chunk_bytes: int

    def problem(self, data: TensorInput, laplacians: list) -> Problem:
        """The problem over ``data``'s stored entries with these graphs."""
        return Problem.build(
            data.coords, data.values, data.shape, laplacians, loss=self.loss, lam=self.lam,
            alpha=self.alpha, bias=self.bias, devices=self.devices,
            chunk_bytes=self.chunk_bytes, normalize=self.normalize,
        )  # fmt: skip


@dataclass
class FitPlan:
    """Everything a fit runs on, checked and resolved by the estimator's ``_check_params``."""

    data: TensorInput
    laplacians: list
    model: ModelSpec
    rank: int
    # the solver and its schedule
    solver: str  # "als" or "hyperlearn"
    schedule: str  # a registered schedule's name
    mode_order: list[int]  # the sample mode last
    cg_tol: float
    blocks: BlockConfig
    # start
    init: str | list  # "auto", "random", "svd", "exact_sweeps" or arrays
    init_iter: int
    warm: tuple | None  # (factors, biases, mean) of the previous fit, for warm_start
    random_state: object
    # stopping, faults, memory, reporting
    max_iter: int
    tol: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    callback: Callable | None
    on_nonfinite: str
    max_memory: object  # as given, for the messages
    memory_limit: int | None  # max_memory in bytes; None: the caller set no limit
    verbose: int
    name: str  # the estimator's, prefixing the progress lines
    checkpoint: Checkpoint | None = None
    checkpoint_key: dict | None = None

    @property
    def sample_mode(self) -> int:
        return self.mode_order[-1]

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", file=sys.stdout, flush=True)

    def bar(self, phase: str) -> str | None:
        """The progress bar's name for a phase, when verbose asks for bars (2 and above)."""
        return phase if self.verbose >= 2 else None


@dataclass
class FitResult:
    """What a fit leaves for the estimator's attributes."""

    state: State
    losses: list[float]
    scores: list[float] | None  # validation RMSE per round, with held-out entries
    best_iter: int
    blocks: list | None  # the trained diffusion blocks (on the CPU)
    memory_estimate: int


def train(plan: FitPlan) -> FitResult:
    """Run the fit ``plan`` describes (see the module docstring)."""
    if plan.checkpoint is not None:
        plan.checkpoint.prepare(plan.checkpoint_key)  # every file refused before any work
    rng = check_random_state(plan.random_state)
    tic = time.perf_counter()
    problem, state, monitor, blocks, estimate, held_out = _train(plan, rng)
    fold_in_mode(
        problem, state, plan.sample_mode, unit_others=False, cg_tol=plan.cg_tol,
        laplacian=problem.laplacians[plan.sample_mode],
    )  # fmt: skip
    if not state.is_finite():
        raise FloatingPointError(
            "The fit produced non-finite factors; try a larger alpha or a smaller lam."
        )
    # The message names λ as the user gave it, not times the model's unit (Loss.lam_unit).
    user_lam = plan.model.lam / plan.model.loss.lam_unit(plan.model.normalize)
    message = collapse_message(
        state.factors, plan.data.values, plan.model.loss, user_lam, plan.model.alpha,
        state.biases is not None,
    )  # fmt: skip
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=4)
    if plan.verbose:
        plan.log(f"fitted in {time.perf_counter() - tic:.2f} s")
    return FitResult(
        state, list(monitor.losses), list(monitor.scores) if held_out else None,
        monitor.best_iter, None if blocks is None else [b.block.cpu() for b in blocks], estimate,
    )  # fmt: skip


def _train(plan: FitPlan, rng):
    """Split, build, start, run, keep the best and refit."""
    train_data, validation = _hold_out(plan, rng)
    estimate = _check_memory(plan, train_data)
    problem = plan.model.problem(train_data, plan.laplacians)
    # A schedule over entry shards sums this process's passes over the ranks.
    problem = get_schedule(plan.schedule).training_problem(problem)
    state, init_sweeps = _initial_state(plan, problem, train_data, rng, validation)
    by_loss = plan.solver == "hyperlearn"  # its blocks may climb J: keep the best state
    monitor = Monitor(
        problem, validation=validation, callback=plan.callback, by_loss=by_loss,
        n_iter_no_change=plan.n_iter_no_change if validation is not None or by_loss else None,
    )  # fmt: skip
    monitor.seed(state)
    # The monitor keeps a copy of a finite start; only a non-finite one needs another.
    start = None if monitor.best_state is not None else state.clone()
    guarded = run_guarded(
        lambda: _solve(plan, problem, state, rng, monitor, checkpoint=plan.checkpoint),
        monitor, stacklevel=5,
    )  # fmt: skip
    (run, blocks), interrupted = _unpack(guarded)
    apply_fault_policy(monitor, plan.on_nonfinite, stacklevel=5)
    rise = monitor.rise_message("solver='hyperlearn': the diffusion blocks' rounds")
    if rise is not None and not interrupted:
        warnings.warn(
            rise + " Lower learning_rate, or use solver='als'.", UserWarning, stacklevel=5
        )
    state = monitor.best_state if monitor.best_state is not None else start
    if validation is not None:
        # The held-out entries only chose when to stop: train again on every stored entry
        # for the chosen numbers of sweeps and rounds (not after a fault or Ctrl-C).
        del problem
        if monitor.fault is None and not interrupted:
            problem, state, blocks = _refit(plan, init_sweeps, monitor.best_iter, state, blocks)
        else:
            problem = plan.model.problem(plan.data, plan.laplacians)
    _report_stop(plan, run, monitor, interrupted)
    return problem, state, monitor, blocks, estimate, validation is not None


def _unpack(guarded):
    """``((run, blocks), interrupted)`` from run_guarded, with Nones for an unfinished run."""
    result, interrupted = guarded
    return (result if result is not None else (None, None)), interrupted


def _hold_out(plan: FitPlan, rng):
    """Hold out ``validation_fraction`` of the stored entries for early stopping (if asked)."""
    data = plan.data
    if not plan.early_stopping:
        return data, None
    n = data.values.shape[0]
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[: round(plan.validation_fraction * n)]] = True
    # The training entries in the kernels' layout and narrowest index type: one copy, which the
    # kernels then share (a row-major copy would be transposed into a second one).
    kept = ~held
    coords_t = data.coords.T
    train_t = np.empty((coords_t.shape[0], int(kept.sum())), dtype=_index_dtype(data.shape))
    for k, row in enumerate(coords_t):
        train_t[k] = row[kept]
    train_data = TensorInput(train_t.T, data.values[kept], data.shape, data.laplacians)
    dtype = torch_dtype(data.values.dtype)
    val = (torch.as_tensor(data.coords[held]), torch.as_tensor(data.values[held], dtype=dtype))
    return train_data, val


def _check_memory(plan: FitPlan, data: TensorInput) -> int:
    """Estimate the fit's peak memory and refuse, before any work, when over max_memory."""
    # Python ints: numpy ones (np.uint8(2) passes the constraints) would wrap in products.
    rank, itemsize, loss = int(plan.rank), data.values.dtype.itemsize, plan.model.loss
    estimate = estimate_fit_bytes(
        data.shape, data.values.shape[0], rank, itemsize,
        loss_bytes=loss.buffer_bytes(data.shape, rank, itemsize), entrywise=loss.entrywise,
        solver=plan.solver, concurrent=get_schedule(plan.schedule).concurrent,
        chunk_bytes=plan.model.chunk_bytes,
        laplacian_nnz=[lap.nnz for lap in plan.laplacians if lap is not None],
        n_devices=len(set(plan.model.devices)), n_terms=int(plan.blocks.n_terms),
        hidden=int(plan.blocks.hidden), n_steps=int(plan.blocks.n_steps),
    )  # fmt: skip
    what = (
        f"{data.values.shape[0]} stored entries × {data.order} modes of shape "
        f"{tuple(data.shape)} at rank {plan.rank}"
    )
    limit = plan.memory_limit
    if limit is not None and estimate > limit:
        raise MemoryError(
            f"max_memory: the fit needs an estimated {format_bytes(estimate)} but "
            f"max_memory={plan.max_memory!r} ({format_bytes(limit)}); {what}. Raise "
            "max_memory, lower the rank, or use fewer entries."
        )
    if plan.max_memory is None and all(d.type == "cpu" for d in plan.model.devices):
        room = available_bytes()
        if room is not None and estimate > room:
            raise MemoryError(
                f"max_memory=None: the fit needs an estimated {format_bytes(estimate)} but "
                f"this machine has {format_bytes(room)} available; {what}. Lower the rank, "
                "use fewer entries or entities, or pass max_memory='unlimited' (or a size) "
                "to fit anyway."
            )
    return estimate


def _initial_state(
    plan: FitPlan, problem: Problem, data: TensorInput, rng, validation, init_iter=None,
    phase="init",
) -> tuple[State, int]:  # fmt: skip
    """The starting state and the number of exact sweeps spent on it."""
    if plan.warm is not None:
        factors, biases, mean = plan.warm
        state = initial_state(problem, factors, plan.rank, rng, data.coords, data.values)
        if problem.bias and biases is not None:
            state.biases = problem.place(biases)
            state.mean = mean
        return state, 0
    n = data.values.shape[0]
    start, sweeps = resolve_init(plan.init, plan.solver, data.shape, n, plan.rank)
    # Every rank's values if sharded, relative to the loss's typical value when it asks.
    values = problem.loss.start_values(get_schedule(plan.schedule).start_values(data.values))
    state = initial_state(problem, start, plan.rank, rng, data.coords, values)
    n_sweeps = (plan.init_iter if init_iter is None else max(init_iter, 1)) if sweeps else 0
    if plan.verbose:
        what = "given factors" if not isinstance(start, str) else f"init={start!r}"
        plan.log(f"init: {what}" + (f", then up to {n_sweeps} exact sweeps" * sweeps))
    if not sweeps:
        return state, 0
    # With held-out entries the exact sweeps stop, too, where validation is best.
    monitor = Monitor(
        problem,
        validation=validation,
        n_iter_no_change=None if validation is None else plan.n_iter_no_change,
    )
    run_rounds(
        problem, state, ExactUpdate(plan.cg_tol), Sequential(plan.mode_order),
        max_iter=n_sweeps, tol=plan.tol, callback=monitor,
        progress=plan.bar(f"{phase}: exact sweeps"),
    )  # fmt: skip
    if monitor.best_state is None:
        return state, len(monitor.losses)
    return monitor.best_state, max(monitor.best_iter, 1)


def _solve(plan: FitPlan, problem, state, rng, monitor, max_iter=None, checkpoint=None,
           phase="training"):  # fmt: skip
    """Run the chosen solver from ``state``; returns the run and the HyperLearn blocks."""
    schedule = get_schedule(plan.schedule)(plan.mode_order)
    if plan.solver == "als":
        update = ExactUpdate(plan.cg_tol)
    else:
        # A schedule spread over processes has this one build the blocks of its modes only.
        update = BlockUpdate(
            problem, state, plan.laplacians, plan.blocks, block_seed(rng), schedule.owned
        )
    run = run_rounds(
        problem, state, update, schedule,
        max_iter=plan.max_iter if max_iter is None else max_iter, tol=plan.tol,
        callback=monitor,
        # With bars (verbose >= 2) the per-iteration lines would break them.
        log=plan.log if plan.verbose == 1 else None,
        checkpoint=checkpoint, progress=plan.bar(phase),
    )  # fmt: skip
    schedule.finish(update)
    return run, getattr(update, "blocks", None)


def _refit(plan: FitPlan, init_sweeps: int, n_iter: int, chosen: State, blocks):
    """Train on every stored entry for the iteration counts chosen on validation.

    Returns the problem over every entry, and the refitted state and blocks, or ``chosen``
    and ``blocks`` when the refit is interrupted or ends non-finite.
    """
    problem = plan.model.problem(plan.data, plan.laplacians)
    rng = check_random_state(plan.random_state)
    if plan.verbose:
        plan.log(f"refit on all entries, {init_sweeps} + {n_iter} sweeps")
    try:
        state, _ = _initial_state(
            plan, problem, plan.data, rng, None, init_iter=init_sweeps, phase="refit"
        )
        refit_blocks = blocks
        if n_iter > 0:
            # J decides nothing here: the run goes the chosen number of iterations.
            _, refit_blocks = _solve(plan, problem, state, rng, Monitor(problem), n_iter,
                                     phase="refit")  # fmt: skip
    except KeyboardInterrupt:
        warnings.warn(
            "refit on every stored entry interrupted; keeping the factors chosen on "
            f"validation (iteration {n_iter}).",
            UserWarning,
            stacklevel=6,
        )
        return problem, chosen, blocks
    if not state.is_finite():
        return problem, chosen, blocks
    return problem, state, refit_blocks


def _report_stop(plan: FitPlan, run, monitor: Monitor, interrupted: bool) -> None:
    """The final progress line, and a ConvergenceWarning when max_iter ended training."""
    if interrupted or run is None:
        reason = "interrupted" if interrupted else f"fault ({monitor.fault})"
    elif monitor.fault is not None:
        reason = f"fault ({monitor.fault})"
    elif run.stop_reason == "callback":
        reason = monitor.stop_reason or "callback"
    else:
        reason = {"tol": f"tol: J changed by at most tol={plan.tol}"}.get(
            run.stop_reason, run.stop_reason
        )
    if plan.verbose:
        plan.log(f"stopped after {len(monitor.losses)} iterations: {reason}")
    if run is not None and run.stop_reason == "max_iter" and plan.tol > 0:
        warnings.warn(
            f"max_iter={plan.max_iter} reached before J converged (tol={plan.tol}); "
            "consider raising max_iter.",
            ConvergenceWarning,
            stacklevel=5,
        )
