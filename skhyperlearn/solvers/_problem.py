"""The objective J shared by every solver, and the state it is evaluated at.

``J = λ·data + ½ Σₖ tr(AₖᵀLₖAₖ) + α Σₖ (‖Aₖ‖² + ‖bₖ‖²)``: λ weighs the data term (owned by the
loss object, see :mod:`.losses`) against the graph terms, whose weight is fixed at ½, and α is
a ridge on the factors and biases. J is composed here, once, for every solver.

Where the model's scale sits: CP leaves it free to move between modes, so a graph or ridge term
on one mode can be escaped by shrinking that mode and growing the others. With
``Problem.normalize`` (``factor_scale="solved"``) every mode is solved with the other modes'
columns scaled to unit norm, so the mode being solved carries the whole model's scale and its
penalties act on it at that scale (as CP-ALS codes normalize after each mode, keeping weights);
after a round the last mode of the round (the sample mode) carries it. Without it, the paper's
formulation: the penalties act on whatever scale each mode happens to have.

J's data part is a list of data terms (:class:`DataTerm`): each a loss on its own tensor over
the modes it spans. Today a fit has one, the K-way tensor over every mode; mode k's quadratic is
the sum of the quadratics of the terms that span k, and J's data part the sum of their errors
(a second term spanning some modes, such as a pairwise projection of the hypergraph, is one
more entry of ``Problem.terms``; adding two quadratics of one mode is :func:`sum_quadratics`).

``Problem`` places what each mode's block needs on that mode's device: a copy of each term's
stored entries and its Laplacian; and it gathers what a loss reads (the entries on the mode's
device, the factors and biases of the term's modes) before calling it, so that a loss sees
arrays only. J's data part, the mean update and the validation entries are computed on the
device of mode :data:`DATA_MODE`. Between modes only factor matrices (and biases) move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._numerics._kernels import numpy_ready
from .._numerics._layout import DEFAULT_CHUNK_BYTES, SparseTensorData
from .._numerics._sparse import laplacian_to_torch, symmetric_spmm
from .losses import Loss, ModeQuadratic, get_loss

__all__ = [
    "DATA_MODE",
    "DataTerm",
    "Problem",
    "State",
    "all_finite",
    "sum_quadratics",
    "torch_dtype",
    "unit_columns",
]

#: The mode whose device computes J's data part, the mean update and the validation error.
DATA_MODE = 0


def torch_dtype(dtype) -> torch.dtype:
    """The torch dtype a fit computes in for values of numpy ``dtype`` (float32 stays float32)."""
    return torch.float32 if np.dtype(dtype) == np.float32 else torch.float64


def unit_columns(a: torch.Tensor) -> torch.Tensor:
    """``a`` with every non-zero column scaled to unit norm (zero columns stay zero)."""
    norms = torch.linalg.vector_norm(a, dim=0)
    return a / torch.where(norms > 0, norms, torch.ones_like(norms))


def all_finite(a: torch.Tensor) -> bool:
    """Whether every element of ``a`` is finite."""
    if numpy_ready(a):
        # torch's isfinite makes several passes over the tensor and numpy's one: checked after
        # every mode, the difference shows in a sweep.
        return bool(np.isfinite(a.detach().numpy()).all())
    return bool(torch.isfinite(a).all())


@dataclass
class State:
    """Factor matrices (factor k on device k), optional per-mode biases and the global mean."""

    factors: list[torch.Tensor]
    biases: list[torch.Tensor] | None = None
    mean: float = 0.0

    def clone(self) -> State:
        return State(
            [a.detach().clone() for a in self.factors],
            None if self.biases is None else [b.detach().clone() for b in self.biases],
            self.mean,
        )

    def copy_from(self, other: State) -> bool:
        """Copy ``other`` into this state's own tensors, when every tensor has the same shape,
        dtype and device (returns True); otherwise change nothing (returns False)."""
        mine = [*self.factors, *(self.biases or [])]
        theirs = [*other.factors, *(other.biases or [])]
        if (
            (self.biases is None) != (other.biases is None)
            or len(self.factors) != len(other.factors)
            or len(mine) != len(theirs)
            or any(
                (a.shape, a.dtype, a.device) != (b.shape, b.dtype, b.device)
                for a, b in zip(mine, theirs, strict=True)
            )
        ):
            return False
        with torch.no_grad():
            for a, b in zip(mine, theirs, strict=True):
                a.copy_(b)
        self.mean = other.mean
        return True

    def numpy(self) -> tuple[list[np.ndarray], list[np.ndarray] | None, float]:
        factors = [a.detach().cpu().numpy() for a in self.factors]
        biases = None if self.biases is None else [b.detach().cpu().numpy() for b in self.biases]
        return factors, biases, float(self.mean)

    def is_finite(self) -> bool:
        arrays = list(self.factors) + list(self.biases or [])
        return bool(np.isfinite(self.mean)) and all(all_finite(a) for a in arrays)

    def normalize_except(self, mode: int, carry: bool = False) -> None:
        """Scale every factor but ``mode``'s to unit column norms (new tensors, in the state).

        ``carry``: ``mode``'s columns take the scale the others lose, so the model is unchanged
        (an inexact, warm-started solve then starts from the current model, not a rescaled one).
        """
        moved = None
        for j, a in enumerate(self.factors):
            if j != mode:
                if carry:
                    norms = torch.linalg.vector_norm(a, dim=0)
                    kept = torch.where(norms > 0, norms, torch.ones_like(norms))
                    moved = kept if moved is None else moved * kept.to(moved.device)
                self.factors[j] = unit_columns(a)
        if moved is not None:
            self.factors[mode] = self.factors[mode] * moved.to(self.factors[mode].device)

    def normalized_except(self, mode: int, carry: bool = False) -> State:
        """A state sharing this one's biases and mean, the factors but ``mode``'s normalized."""
        out = State(list(self.factors), self.biases, self.mean)
        out.normalize_except(mode, carry)
        return out

    def assign(self, mode: int, a: torch.Tensor, b: torch.Tensor | None) -> None:
        """Set mode ``mode``'s factors (and bias, when the loss fits one)."""
        self.factors[mode] = a
        if b is not None:
            self.biases[mode] = b


@dataclass
class DataTerm:
    """One data term of J: ``loss`` on the stored entries ``tensor`` (held on the device of
    :data:`DATA_MODE`), whose axes are the fit's modes ``modes`` in that order."""

    loss: Loss
    tensor: SparseTensorData
    modes: tuple[int, ...]


def sum_quadratics(quads: Sequence[ModeQuadratic]) -> ModeQuadratic:
    """One mode's quadratic from those of the data terms that span it.

    The extension point for a mode under several data terms: a loss family whose quadratics
    can be added (the same structure: a linear part and Grams) adds them here. With one term
    the sum is that term's quadratic.
    """
    if len(quads) == 1:
        return quads[0]
    raise NotImplementedError(
        "A mode spanned by several data terms needs a sum of their quadratics; "
        "add it in solvers/_problem.py:sum_quadratics."
    )


@dataclass
class Problem:
    """The loss J of a fit and where its parts live (see the module docstring)."""

    shape: tuple[int, ...]
    loss: Loss  # the loss of the first data term (the K-way tensor's): biases, mean, memory
    lam: float
    alpha: float
    bias: bool
    devices: list[torch.device]
    dtype: torch.dtype
    laplacians: list[torch.Tensor | None]
    terms: list[DataTerm]
    _copies: dict[tuple[int, torch.device], SparseTensorData] = field(default_factory=dict)
    #: Solve each mode with the others' columns at unit norm (see the module docstring).
    normalize: bool = False

    @classmethod
    def build(
        cls,
        coords: np.ndarray,
        values: np.ndarray,
        shape: Sequence[int],
        laplacians: Sequence,
        *,
        loss: str | Loss,
        lam: float,
        alpha: float,
        bias: bool,
        devices: Sequence[torch.device],
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        normalize: bool = False,
    ) -> Problem:
        loss = get_loss(loss)
        dtype = torch_dtype(values.dtype)
        tensor = SparseTensorData.from_numpy(
            coords, values, shape, dtype=dtype, device=devices[DATA_MODE], chunk_bytes=chunk_bytes
        )
        laps = [
            laplacian_to_torch(lap, dtype, dev)
            for lap, dev in zip(laplacians, devices, strict=False)
        ]
        fits_bias = bool(bias and loss.fits_bias)
        terms = [DataTerm(loss, tensor, tuple(range(len(shape))))]
        return cls(
            tuple(shape), loss, float(lam), float(alpha), fits_bias, list(devices), dtype, laps,
            terms, normalize=bool(normalize),
        )  # fmt: skip

    @property
    def order(self) -> int:
        return len(self.shape)

    def data(self, mode: int, term: int = 0) -> SparseTensorData:
        """Data term ``term``'s stored entries on mode ``mode``'s device (copied there once)."""
        dev = self.devices[mode]
        tensor = self.terms[term].tensor
        if dev == tensor.device:
            return tensor
        if (term, dev) not in self._copies:
            self._copies[term, dev] = tensor.to(dev)
        return self._copies[term, dev]

    def gather(self, mode: int, tensors: Sequence[torch.Tensor | None]) -> list:
        """``tensors`` moved to mode ``mode``'s device (no copy for those already there)."""
        dev = self.devices[mode]
        return [None if t is None else t.to(dev, non_blocking=True) for t in tensors]

    def on_data_device(self, tensors: Sequence[torch.Tensor | None] | None) -> list | None:
        """``tensors`` on the device that computes J's data part (that of :data:`DATA_MODE`)."""
        return None if tensors is None else self.gather(DATA_MODE, tensors)

    def _arrays(self, index: int, state: State, mode: int) -> tuple:
        """What data term ``index``'s loss reads, on mode ``mode``'s device: the entries, the
        factors and biases of the term's modes (in its order) and the mean."""
        modes = self.terms[index].modes
        factors = self.gather(mode, [state.factors[j] for j in modes])
        biases = None
        if state.biases is not None:
            biases = self.gather(mode, [state.biases[j] for j in modes])
        return self.data(mode, index), factors, biases, state.mean

    def place(self, arrays: Sequence) -> list[torch.Tensor]:
        """One array per mode as a tensor of the fit's dtype on that mode's device."""
        return [
            torch.as_tensor(a, dtype=self.dtype).to(dev).contiguous()
            for a, dev in zip(arrays, self.devices, strict=True)
        ]

    def view_for(self, state: State, mode: int) -> State:
        """What mode ``mode``'s update in a parallel round reads: ``state``, or with
        ``normalize`` a view with the other modes' columns at unit norm."""
        return state.normalized_except(mode, self.keeps_model) if self.normalize else state

    @property
    def keeps_model(self) -> bool:
        """Whether normalizing before a mode's update keeps the model (``carry``): the loss's
        warm solve is a few CG steps, which would otherwise start from a rescaled model."""
        return self.loss.inexact_solve

    def carry_scale(self, state: State, mode: int) -> None:
        """After a parallel round (with ``normalize``), leave the scale on ``mode`` only (the
        last of the round's order: the sample mode, as after a sequential round)."""
        if self.normalize:
            state.normalize_except(mode)

    def quadratic(self, state: State, mode: int) -> ModeQuadratic:
        """Mode ``mode``'s data part of J as a quadratic at ``state``: the sum over the data
        terms that span the mode (one pass over each one's entries, on the mode's device)."""
        quads = []
        for i, term in enumerate(self.terms):
            if mode in term.modes:
                tensor, factors, biases, mean = self._arrays(i, state, mode)
                local = term.modes.index(mode)
                quads.append(term.loss.quadratic(tensor, factors, local, biases, mean, self.bias))
        return sum_quadratics(quads)

    def graph_term(self, mode: int, a: torch.Tensor) -> torch.Tensor:
        """``½ tr(AᵀLA)`` for one mode (zero without a graph)."""
        lap = self.laplacians[mode]
        if lap is None:
            return a.new_zeros(())
        return 0.5 * (a * symmetric_spmm(lap, a)).sum()

    def ridge_term(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """``α (‖A‖² + ‖b‖²)`` for one mode."""
        if self.alpha == 0.0:
            return a.new_zeros(())
        out = self._sq_norm(a)
        if b is not None:
            out = out + self._sq_norm(b)
        return self.alpha * out

    def _sq_norm(self, a: torch.Tensor) -> torch.Tensor:
        """``‖a‖²``; on the calling thread, in numpy, for a loss whose sweeps are a few CG steps
        (``keeps_model``): there a sweep is short, and torch's parallel region must wake
        threads for a sum far cheaper than the wake-up. The exact solves keep torch's sum, to
        which their fits' J is reproducible to the last bit."""
        if (
            self.keeps_model
            and numpy_ready(a)
            and not (torch.is_grad_enabled() and a.requires_grad)
        ):
            m = a.detach().numpy().ravel()
            return torch.tensor(float(np.dot(m, m)), dtype=a.dtype)
        return (a * a).sum()

    def mode_loss(self, quad, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """The terms of J that depend on mode ``quad.mode`` (differentiable in ``a`` and ``b``)."""
        data = self.lam * quad.value(a, b)
        return data + self.graph_term(quad.mode, a) + self.ridge_term(a, b)

    def data_error(self, state: State) -> float:
        """J's data part before weighting by λ: the sum of the data terms' errors."""
        errors = [
            term.loss.error(*self._arrays(i, state, DATA_MODE)) for i, term in enumerate(self.terms)
        ]
        return errors[0] if len(errors) == 1 else sum(errors)

    def update_mean(self, state: State) -> float:
        """The exact minimiser of J over the global mean (only called when biases are fitted;
        the mean belongs to the first data term's model)."""
        return self.loss.update_mean(*self._arrays(0, state, DATA_MODE))

    def objective(self, state: State, data_error: float | None = None) -> dict[str, float]:
        """J and its parts at ``state``; pass ``data_error`` when it is already known.

        ``loss = lam · data + graph + ridge``.
        """
        if data_error is None:
            data_error = self.data_error(state)
        graph = sum(float(self.graph_term(k, a)) for k, a in enumerate(state.factors))
        biases = state.biases or [None] * len(state.factors)
        ridge = sum(
            float(self.ridge_term(a, b)) for a, b in zip(state.factors, biases, strict=True)
        )
        return {
            "loss": self.lam * data_error + graph + ridge,
            "data": data_error,
            "graph": graph,
            "ridge": ridge,
        }
