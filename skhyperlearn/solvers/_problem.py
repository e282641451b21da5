"""The objective J shared by every solver, and the state it is evaluated at.

``Problem`` places what each mode's block needs on that mode's device: a copy of the stored
entries and its Laplacian. Between modes only factor matrices (and biases) move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .._kernels import (
    DEFAULT_CHUNK_BYTES,
    SparseTensorData,
    hypergraph_sq_error,
    observed_sq_error,
)
from ._block import symmetric_spmm

__all__ = ["Problem", "State", "laplacian_to_torch"]


def laplacian_to_torch(lap, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """A scipy sparse Laplacian as a torch sparse CSR tensor on ``device``."""
    if lap is None:
        return None
    csr = sp.csr_array(lap)
    csr.sum_duplicates()
    csr.sort_indices()
    return torch.sparse_csr_tensor(
        torch.as_tensor(csr.indptr.astype(np.int64)),
        torch.as_tensor(csr.indices.astype(np.int64)),
        torch.as_tensor(csr.data, dtype=dtype),
        size=csr.shape,
    ).to(device)


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

    def numpy(self) -> tuple[list[np.ndarray], list[np.ndarray] | None, float]:
        factors = [a.detach().cpu().numpy() for a in self.factors]
        biases = None if self.biases is None else [b.detach().cpu().numpy() for b in self.biases]
        return factors, biases, float(self.mean)

    def is_finite(self) -> bool:
        arrays = list(self.factors) + list(self.biases or [])
        return bool(np.isfinite(self.mean)) and all(bool(torch.isfinite(a).all()) for a in arrays)


@dataclass
class Problem:
    """The loss ``J = λ·data + ½Σ tr(AₖᵀLₖAₖ) + αΣ(‖Aₖ‖² + ‖bₖ‖²)`` and where its parts live.

    ``data`` is ``‖X − [[A]]‖²`` over every cell for ``loss="hypergraph"``, and the squared
    error over the stored entries (with biases and mean when ``bias``) for ``loss="observed"``.
    """

    shape: tuple[int, ...]
    loss: str
    lam: float
    alpha: float
    bias: bool
    devices: list[torch.device]
    dtype: torch.dtype
    laplacians: list[torch.Tensor | None]
    _tensor: SparseTensorData
    _copies: dict[torch.device, SparseTensorData] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        coords: np.ndarray,
        values: np.ndarray,
        shape: Sequence[int],
        laplacians: Sequence,
        *,
        loss: str,
        lam: float,
        alpha: float,
        bias: bool,
        devices: Sequence[torch.device],
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> Problem:
        dtype = torch.float32 if values.dtype == np.float32 else torch.float64
        tensor = SparseTensorData.from_numpy(
            coords, values, shape, dtype=dtype, device=devices[0], chunk_bytes=chunk_bytes
        )
        laps = [
            laplacian_to_torch(lap, dtype, dev)
            for lap, dev in zip(laplacians, devices, strict=False)
        ]
        return cls(
            tuple(shape),
            loss,
            float(lam),
            float(alpha),
            bool(bias and loss == "observed"),
            list(devices),
            dtype,
            laps,
            tensor,
        )

    @property
    def order(self) -> int:
        return len(self.shape)

    def data(self, mode: int) -> SparseTensorData:
        """The stored entries on mode ``mode``'s device (copied there once)."""
        dev = self.devices[mode]
        if dev == self._tensor.device:
            return self._tensor
        if dev not in self._copies:
            self._copies[dev] = self._tensor.to(dev)
        return self._copies[dev]

    def gather(self, mode: int, tensors: Sequence[torch.Tensor | None]) -> list:
        """``tensors`` moved to mode ``mode``'s device (no copy for those already there)."""
        dev = self.devices[mode]
        return [None if t is None else t.to(dev, non_blocking=True) for t in tensors]

    def graph_term(self, mode: int, a: torch.Tensor) -> torch.Tensor:
        """``½ tr(AᵀLA)`` for one mode (zero without a graph)."""
        lap = self.laplacians[mode]
        if lap is None:
            return a.new_zeros(())
        return 0.5 * (a * symmetric_spmm(lap, a)).sum()

    def ridge_term(self, state: State) -> float:
        if self.alpha == 0.0:
            return 0.0
        total = sum(float((a * a).sum()) for a in state.factors)
        if state.biases is not None:
            total += sum(float((b * b).sum()) for b in state.biases)
        return self.alpha * total

    def data_error(self, state: State) -> float:
        """The data term before weighting by λ."""
        factors = self.gather(0, state.factors)
        if self.loss == "hypergraph":
            return hypergraph_sq_error(self.data(0), factors)
        biases = None if state.biases is None else self.gather(0, state.biases)
        return observed_sq_error(self.data(0), factors, biases, state.mean)

    def objective(self, state: State, data_error: float | None = None) -> dict[str, float]:
        """J and its parts at ``state``; pass ``data_error`` when it is already known."""
        if data_error is None:
            data_error = self.data_error(state)
        graph = sum(float(self.graph_term(k, a)) for k, a in enumerate(state.factors))
        ridge = self.ridge_term(state)
        return {
            "loss": self.lam * data_error + graph + ridge,
            "data": data_error,
            "graph": graph,
            "ridge": ridge,
        }
