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

Which mode steps when is the schedule's business (:mod:`._schedules`), the round loop the
driver's (:mod:`._rounds`): this module only provides the per-mode update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._block import DiffusionBlock, sparse_scaled_laplacian
from ._problem import Problem, State
from .losses import ModeQuadratic

__all__ = ["BlockConfig", "BlockUpdate", "ModeBlock"]


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
        """``Loss_k`` at diffused factors ``a``: the terms of J that depend on mode k."""
        return self.problem.mode_loss(quad, a, self.bias)

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
                self.bias = quad.exact_bias(a, self.problem.lam, self.problem.alpha)
        return a, None if self.bias is None else self.bias.clone()


class BlockUpdate:
    """Per-mode update of the HyperLearn solver: one block per mode, trained on its quadratic.

    The blocks keep their own state (weights, optimizer), so one update object serves one fit;
    every mode's block lives on that mode's device.
    """

    kind = "round"

    def __init__(
        self,
        problem: Problem,
        state: State,
        laplacians: Sequence,
        config: BlockConfig,
        seed: int,
        modes: Sequence[int] | None = None,
    ) -> None:
        biases = state.biases or [None] * problem.order
        self.modes = list(range(problem.order)) if modes is None else sorted(modes)
        # Each block's seed depends on its mode only: a rank that owns some modes builds the
        # same blocks a single process builds for them. Blocks of other modes stay None.
        self.blocks: list = [None] * problem.order
        for k in self.modes:
            self.blocks[k] = ModeBlock(
                problem, k, laplacians[k], state.factors[k], biases[k], config, seed + 7919 * k
            )

    def state_dict(self) -> dict:
        """The owned blocks' weights, optimizer states and biases (what a checkpoint keeps)."""
        return {
            k: {
                "block": self.blocks[k].block.state_dict(),
                "optimizer": self.blocks[k].optimizer.state_dict(),
                "bias": self.blocks[k].bias,
            }
            for k in self.modes
        }

    def load_state_dict(self, saved: dict) -> None:
        if sorted(saved) != self.modes:
            raise ValueError(
                f"checkpoint holds the blocks of modes {sorted(saved)}, not {self.modes}"
            )
        for k in self.modes:
            mb = self.blocks[k]
            mb.block.load_state_dict(saved[k]["block"])
            mb.optimizer.load_state_dict(saved[k]["optimizer"])
            bias = saved[k]["bias"]
            mb.bias = None if bias is None else bias.to(mb.a0.device)

    def __call__(
        self, problem: Problem, state: State, mode: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, ModeQuadratic]:
        quad = problem.quadratic(state, mode)
        a, b = self.blocks[mode].train(quad)
        return a, b, quad


def block_seed(random_state: np.random.RandomState) -> int:
    """A torch seed drawn from the estimator's random state."""
    return int(random_state.randint(0, 2**31 - 1))
