"""One modality's MGCNN-LSTM diffusion block (HyperLearn solver).

As in the separable RGCNN of Monti, Bronstein & Bresson (NeurIPS 2017), each mode k owns a small
network that refines its factor matrix ``A_k`` (``N_k × R``) by ``T`` diffusion steps with shared
weights::

    H  = σ(Σ_{j=0}^{p} T_j(L̃_k) A Θ_j)          # Chebyshev graph convolution, R → q
    h, c = LSTMCell(H, (h, c))                    # rows (entities) are the batch
    A  = A + W_out h + b_out                      # δA, q → R

Following the errata in DESIGN.md §1, the graph filter is the *single-graph* Chebyshev convolution
on the rescaled normalized Laplacian ``L̃ = 2 L / λ_max − I`` with ``L = I − D^{-1/2} W D^{-1/2}``.
``T_j(L̃) A`` is built by the three-term recurrence with one sparse product per term; no
``T_j(L̃)`` matrix is ever formed.

The block knows nothing of tensors or losses: it maps initial factors to diffused factors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._numerics._sparse import csr_to_torch, symmetric_spmm

__all__ = [
    "ChebyshevFilter",
    "DiffusionBlock",
    "laplacian_spectrum_bound",
    "sparse_scaled_laplacian",
]


def laplacian_spectrum_bound(laplacian: sp.spmatrix | sp.sparray | np.ndarray) -> float:
    """``2 · max diag(L)``: an upper bound on the spectrum of a graph Laplacian, at any scale.

    2 for a normalized Laplacian (diagonal 1), ``2c`` for one weighted by c (a user's way of
    strengthening one mode's graph against λ), ``2 d_max`` for ``D − W``. With a fixed bound of 2
    a weighted Laplacian would leave ``L̃`` far outside ``[-1, 1]`` and the Chebyshev terms
    would grow as ``c^p``. A graph without edges (zero diagonal) keeps 2.
    """
    diagonal = laplacian.diagonal() if sp.issparse(laplacian) else np.diagonal(laplacian)
    largest = float(np.max(diagonal)) if diagonal.size else 0.0
    return 2.0 * largest if largest > 0 else 2.0


def sparse_scaled_laplacian(
    laplacian: sp.spmatrix | sp.sparray | np.ndarray,
    lambda_max: float | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Rescaled Laplacian ``L̃ = 2 L / λ_max − I`` as a torch sparse CSR tensor.

    Parameters
    ----------
    laplacian : scipy sparse matrix/array or array_like of shape (N, N)
        Graph Laplacian ``L``, normally the normalized one ``I − D^{-1/2} W D^{-1/2}``
        (``scipy.sparse.csgraph.laplacian(W, normed=True)``). Scipy input is never densified.
    lambda_max : float or None, default=None
        Upper bound on the spectrum of ``L``. ``None``: :func:`laplacian_spectrum_bound`, which is
        2 for every normalized Laplacian (``L̃ = L − I``, spectrum in ``[-1, 1]``, where the
        Chebyshev basis is stable) and scales with a weighted one.
    dtype : torch.dtype, default=torch.float32
        Dtype of the values; must match the factors the filter is applied to.
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        Sparse CSR tensor of shape (N, N) with int64 indices.
    """
    if lambda_max is not None and not (math.isfinite(lambda_max) and lambda_max > 0):
        raise ValueError(f"lambda_max must be a positive finite number, got {lambda_max!r}")
    if not sp.issparse(laplacian):
        laplacian = np.asarray(laplacian, dtype=np.float64)
    shape = laplacian.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"laplacian must be a square matrix, got shape {shape}")
    if lambda_max is None:
        lambda_max = laplacian_spectrum_bound(laplacian)
    n = shape[0]
    lap = sp.csr_array(laplacian, dtype=np.float64)
    scaled = (2.0 / lambda_max) * lap - sp.identity(n, format="csr")
    return csr_to_torch(scaled, dtype, device)


class ChebyshevFilter(nn.Module):
    """Single-graph Chebyshev convolution ``Σ_{j=0}^{p} T_j(L̃) X Θ_j (+ b)``.

    Parameters
    ----------
    in_features : int
        Columns of the input ``X``.
    out_features : int
        Columns of the output.
    n_terms : int, default=5
        Number of Chebyshev terms ``K = p + 1`` (polynomial order ``p = n_terms − 1``); Monti's
        ``p = 4`` is ``n_terms=5``. ``n_terms=1`` is a plain linear layer.
    bias : bool, default=True
        Whether to add a learned bias.

    Attributes
    ----------
    weight : nn.Parameter of shape (n_terms * in_features, out_features)
        The ``Θ_j`` stacked along rows: rows ``j*in_features : (j+1)*in_features`` are ``Θ_j``.
        Stacking lets the filter do one matmul instead of ``n_terms`` small ones.
    bias : nn.Parameter of shape (out_features,) or None
    """

    def __init__(
        self, in_features: int, out_features: int, n_terms: int = 5, *, bias: bool = True
    ) -> None:
        super().__init__()
        if n_terms < 1:
            raise ValueError(f"n_terms must be >= 1, got {n_terms}")
        self.in_features = in_features
        self.out_features = out_features
        self.n_terms = n_terms
        self.weight = nn.Parameter(torch.empty(n_terms * in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    @property
    def order(self) -> int:
        """Polynomial order ``p = n_terms − 1``."""
        return self.n_terms - 1

    @property
    def theta(self) -> torch.Tensor:
        """View of the weights as ``(n_terms, in_features, out_features)``: ``theta[j] = Θ_j``."""
        return self.weight.view(self.n_terms, self.in_features, self.out_features)

    def reset_parameters(self) -> None:
        """Uniform init with nn.Linear's bound for the stacked fan-in ``n_terms · in_features``."""
        bound = 1.0 / math.sqrt(self.weight.shape[0])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, lap_tilde: torch.Tensor | None) -> torch.Tensor:
        """Filter the rows of ``x`` over the graph.

        Parameters
        ----------
        x : torch.Tensor of shape (N, in_features)
        lap_tilde : torch.Tensor of shape (N, N) or None
            Rescaled Laplacian (sparse CSR, see :func:`sparse_scaled_laplacian`; a dense or COO
            tensor also works). ``None`` means the mode has no graph: only the ``j = 0`` term is
            kept, i.e. ``x @ Θ_0 + b``.

        Returns
        -------
        torch.Tensor of shape (N, out_features)
        """
        if lap_tilde is None or self.n_terms == 1:
            out = x @ self.weight[: self.in_features]
        else:
            # T_0 x = x, T_1 x = L̃ x, T_j x = 2 L̃ T_{j-1} x − T_{j-2} x: one sparse product each.
            terms = [x, symmetric_spmm(lap_tilde, x)]
            for _ in range(2, self.n_terms):
                terms.append(2.0 * symmetric_spmm(lap_tilde, terms[-1]) - terms[-2])
            out = torch.cat(terms, dim=1) @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"n_terms={self.n_terms}, bias={self.bias is not None}"
        )


class DiffusionBlock(nn.Module):
    """One modality's MGCNN-LSTM pipeline: refine factors ``A_0`` by ``n_steps`` diffusion steps.

    Each step, with weights shared across steps::

        H = σ(cheb(A, L̃));  (h, c) = lstm(H, (h, c));  A ← A + out(h)

    The LSTM cell's batch is the rows (entities) of ``A``; ``(h, c)`` start at zero.

    Parameters
    ----------
    rank : int
        Columns ``R`` of the factor matrix.
    n_terms : int, default=5
        Chebyshev terms ``p + 1`` of the graph convolution (Monti: ``p = 4``).
    hidden : int, default=32
        Width ``q`` of the convolution output and LSTM state.
    n_steps : int, default=10
        Diffusion steps ``T``.
    activation : nn.Module class or instance, or callable, default=nn.ReLU
        Nonlinearity ``σ`` after the convolution; a class is instantiated.
    init_scale : float, default=1e-3
        Std of the normal init of the output layer's weight (its bias starts at zero). A small
        ``δA`` makes the block start near the identity map ``A_T ≈ A_0``, so training starts from
        the initial factors' loss instead of from factors scrambled by random weights.
        ``0`` gives exactly ``A_T = A_0``, but then no gradient reaches the convolution and LSTM
        on the first step (it flows back through the zero output weight), hence the default.

    Notes
    -----
    Memory: each step keeps about ``N_k × (n_terms·R + 4·hidden)`` numbers for autograd (the
    stacked ``T_j(L̃) A`` and the LSTM gates), so training holds ``n_steps`` times that; the graph
    costs only its ``nnz`` stored entries.

    Dtype and device follow the parameters (``block.to(device, dtype)``); ``a0`` and ``lap_tilde``
    must match them. Given ``torch.manual_seed``, construction and forward are deterministic.
    """

    def __init__(
        self,
        rank: int,
        *,
        n_terms: int = 5,
        hidden: int = 32,
        n_steps: int = 10,
        activation: type[nn.Module] | nn.Module | Callable[[torch.Tensor], torch.Tensor] = nn.ReLU,
        init_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        self.rank, self.hidden, self.n_steps = rank, hidden, n_steps
        self.cheb = ChebyshevFilter(rank, hidden, n_terms)
        self.activation = activation() if isinstance(activation, type) else activation
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.out = nn.Linear(hidden, rank)
        nn.init.normal_(self.out.weight, std=init_scale)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, a0: torch.Tensor, lap_tilde: torch.Tensor | None, *, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Diffuse the factors.

        Parameters
        ----------
        a0 : torch.Tensor of shape (N, rank)
            Initial factors.
        lap_tilde : torch.Tensor of shape (N, N) or None
            Rescaled Laplacian from :func:`sparse_scaled_laplacian`; ``None`` for a mode without
            a graph (the convolution is then a per-row linear layer).
        return_all : bool, default=False
            Return every iterate instead of only the last.

        Returns
        -------
        torch.Tensor of shape (N, rank), or list of n_steps + 1 such tensors
            ``A_T``, or ``[A_0, A_1, ..., A_T]`` when ``return_all``.
        """
        if a0.ndim != 2 or a0.shape[1] != self.rank:
            raise ValueError(f"a0 must have shape (N, {self.rank}), got {tuple(a0.shape)}")
        a = a0
        iterates = [a]
        state = None  # LSTMCell starts from zero (h, c) of the right shape, dtype and device
        for _ in range(self.n_steps):
            h, c = self.lstm(self.activation(self.cheb(a, lap_tilde)), state)
            state = (h, c)
            a = a + self.out(h)
            if return_all:
                iterates.append(a)
        return iterates if return_all else a
