"""The HyperLearn solver: one MGCNN-LSTM diffusion block per modality, trained by alternation.

Each mode k owns a :class:`DiffusionBlock` that maps its fixed initial factors ``A_k⁰`` to
diffused factors ``A_k = block_k(A_k⁰, L̃_k)``; for the observed loss with biases, the mode's
bias vector is solved exactly after the block's steps (a closed form given the quadratic — Adam's
per-coordinate steps would shake every bias by the learning rate). A round builds each mode's
quadratic (one pass over the stored entries, the other modes' current factors fixed and
detached) and takes ``inner_steps`` Adam steps on

``Loss_k = λ · data_k(A_k, b_k) + ½ tr(A_kᵀ L_k A_k) + α (‖A_k‖² + ‖b_k‖²)``

which, given the quadratic, costs only the block's forward and backward pass: the stored entries
are visited once per mode per round, however many steps are taken.

Schedules: ``"sequential"`` (Gauss–Seidel: each mode sees the factors its predecessors produced
this round) and ``"parallel"`` (Jacobi: every block starts from the previous round's factors and
the blocks run concurrently, one worker thread per mode, each on its own device). Only factor
matrices and bias vectors move between devices.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ._als import update_mean
from ._block import DiffusionBlock, sparse_scaled_laplacian
from ._monitor import end_of_iteration
from ._problem import Problem, State
from ._quadratic import ModeQuadratic, mode_quadratic

__all__ = ["BlockConfig", "ModeBlock", "run_hyperlearn"]


@dataclass(frozen=True)
class BlockConfig:
    """Hyper-parameters of every mode's block (Monti's ML-100K values as reference)."""

    n_terms: int = 5
    hidden: int = 32
    n_steps: int = 10
    learning_rate: float = 1e-3
    inner_steps: int = 1


class ModeBlock:
    """One modality's pipeline on its device: block, optimizer, graph and initial factors."""

    def __init__(
        self,
        problem: Problem,
        mode: int,
        laplacian,
        a0: torch.Tensor,
        b0: torch.Tensor | None,
        config: BlockConfig,
        seed: int,
    ) -> None:
        dev = problem.devices[mode]
        self.mode = mode
        self.problem = problem
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.block = DiffusionBlock(
                a0.shape[1], n_terms=config.n_terms, hidden=config.hidden, n_steps=config.n_steps
            ).to(device=dev, dtype=problem.dtype)
        self.lap_tilde = (
            None
            if laplacian is None
            else sparse_scaled_laplacian(laplacian, dtype=problem.dtype, device=dev)
        )
        self.a0 = a0.detach().to(dev)
        self.bias = None if b0 is None else b0.detach().clone().to(dev)
        self.optimizer = torch.optim.Adam(self.block.parameters(), lr=config.learning_rate)

    def loss(self, quad: ModeQuadratic, a: torch.Tensor) -> torch.Tensor:
        """``Loss_k`` at diffused factors ``a`` (Eq. 11 with the corrected Laplacian)."""
        p = self.problem
        out = p.lam * quad.value(a, self.bias) + p.graph_term(self.mode, a)
        if p.alpha:
            out = out + p.alpha * (a * a).sum()
            if self.bias is not None:
                out = out + p.alpha * (self.bias * self.bias).sum()
        return out

    def diffuse(self) -> torch.Tensor:
        return self.block(self.a0, self.lap_tilde)

    def train(self, quad: ModeQuadratic) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``inner_steps`` optimizer steps on Loss_k; returns the new factors and bias."""
        for _ in range(self.config.inner_steps):
            self.optimizer.zero_grad(set_to_none=True)
            self.loss(quad, self.diffuse()).backward()
            self.optimizer.step()
        with torch.no_grad():
            a = self.diffuse()
            if self.bias is not None:
                self.bias = self._exact_bias(quad, a)
        return a, None if self.bias is None else self.bias.clone()

    def _exact_bias(self, quad: ModeQuadratic, a: torch.Tensor) -> torch.Tensor:
        """The bias minimising Loss_k given the factors: one division per row."""
        p = self.problem
        rank = a.shape[1]
        cross = (quad.gram[:, rank, :rank] * a).sum(1)
        count = quad.gram[:, rank, rank]
        return p.lam * (quad.linear[:, rank] - cross) / (p.lam * count + p.alpha + 1e-12)


def run_hyperlearn(
    problem: Problem,
    state: State,
    laplacians: Sequence,
    *,
    config: BlockConfig,
    schedule: str,
    mode_order: list[int],
    max_iter: int,
    tol: float,
    seed: int,
    concurrent: bool = True,
    callback: Callable[[int, dict, State], bool | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[State, list[float], int, list[ModeBlock]]:
    """Train one block per mode from ``state`` (the initial factors) for up to ``max_iter`` rounds.

    Returns the state of the last round, J after each round, the rounds run and the blocks.
    """
    blocks = [
        ModeBlock(
            problem,
            k,
            laplacians[k],
            state.factors[k],
            None if state.biases is None else state.biases[k],
            config,
            seed + 7919 * k,
        )
        for k in range(problem.order)
    ]
    for k in range(problem.order):
        problem.data(k)  # copy the entries to every device now, not from racing workers
    workers = ThreadPoolExecutor(max_workers=problem.order) if schedule == "parallel" else None
    history: list[float] = []
    n_iter = 0
    try:
        for it in range(1, max_iter + 1):
            tic = time.perf_counter()
            if problem.bias:
                state.mean = update_mean(problem, state)
            data_error = None
            if schedule == "sequential":
                for k in mode_order:
                    quad = mode_quadratic(problem, state, k)
                    a, b = blocks[k].train(quad)
                    state.factors[k] = a
                    if b is not None:
                        state.biases[k] = b
                # The last mode's quadratic was built from every other mode's new factors, so
                # it gives the data term at the new state without another pass.
                data_error = max(float(quad.value(a, b)), 0.0)
            else:
                frozen = state.clone()

                def step(k: int, frozen: State = frozen):
                    return blocks[k].train(mode_quadratic(problem, frozen, k))

                if concurrent:
                    results = list(workers.map(step, mode_order))
                else:
                    results = [step(k) for k in mode_order]
                for k, (a, b) in zip(mode_order, results, strict=True):
                    state.factors[k] = a
                    if b is not None:
                        state.biases[k] = b
            info = problem.objective(state, data_error)
            info["time"] = time.perf_counter() - tic
            n_iter = it
            if end_of_iteration(
                "round", it, info, state, history, tol=tol, log=log, callback=callback
            ):
                break
    finally:
        if workers is not None:
            workers.shutdown()
    return state, history, n_iter, blocks


def block_seed(random_state: np.random.RandomState) -> int:
    """A torch seed drawn from the estimator's random state."""
    return int(random_state.randint(0, 2**31 - 1))
