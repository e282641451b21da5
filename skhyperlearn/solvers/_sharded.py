"""The entry-sharded schedule: each rank of a torch.distributed group holds a share of the entries.

``schedule="distributed"`` spreads the *modes* over the ranks, but every rank holds every stored
entry; a hypergraph too large for one machine needs the *entries* spread. Here rank r holds about
``nnz/W`` of them (loaded or sliced per rank, see :mod:`skhyperlearn.distributed._shards`), and
every rank holds the factor matrices and the Laplacians (``Σ_k N_k·R`` numbers and the graphs,
usually far smaller than the entries). Each pass over the stored entries is a sum over entries,
so it splits over the shards, and the partial sums go to the ranks that solve the rows they
belong to (``reduce_scatter``: each rank solves a block of each mode's rows, see
:mod:`._sharded_rows`, and one ``all_gather`` gives every rank the solved factors):

- ``loss="hypergraph"``: the partial ``MTTKRP_k`` (an N_k × R block); ``‖X‖²`` once per fit;
- ``loss="implicit"`` with ``mode_solve="exact"``: the right-hand side (N_k × R) and the per-row
  Grams (N_k × R × R) of the stored entries (every row's partial Grams, the block's summed
  ones), the data term's constant once per fit; with ``mode_solve="cg"`` (the default), the
  right-hand side and Jacobi diagonal, then each CG step's stored-entry product (N_k × R), see
  :mod:`._sharded_cg`;
- J's data term: the stored entries' partial sums (two or three numbers).

A small mode whose exact solve a graph couples is the exception: its partial sums are
all-reduced and every rank solves all its rows, where the gather each CG step would add costs
more than the step. The Grams of the factors (``⊛_{j≠k} A_jᵀA_j``) are summed from the row
blocks (one all_reduce of K − 1 R × R blocks). What stays on every rank: the graph and ridge
terms of J and the normalization, one pass over each factor per round (a CG solve makes many).
The round is the sequential (Gauss–Seidel) one: with the entries sharded, every rank works on
every mode's pass, so the Jacobi round's concurrency over modes buys nothing and
Gauss–Seidel converges in fewer rounds; the fit is the single-process ``schedule="sequential"``
fit up to the rounding of the reduced sums.

A failed collective (a rank died, hung or left) is raised as
:class:`~._distributed.DistributedFault`, naming the ranks that never reached the round (from the
round each rank records in the process group's store), as the mode-distributed schedule does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torch.distributed as dist

from .._numerics._kernels import (
    cp_values,
    gram_hadamard,
    implicit_normal_equations,
    inner_product,
    mttkrp,
)
from ._distributed import DistributedFault, check_process_group
from ._problem import Problem, State
from ._schedules import Sequential, register_schedule
from ._shard_comm import ShardComm, comm_device, traffic
from ._sharded_cg import sharded_operator_quadratic
from ._sharded_rows import RowBlock, solve_rows, split_gram_hadamard, split_policy
from .losses._hypergraph import HypergraphQuadratic
from .losses._rowwise import RowwiseQuadratic

__all__ = [
    "SUPPORTED_LOSSES",
    "Sharded",
    "ShardedProblem",
    "check_sharded",
    "for_data",
    "global_median",
    "global_summary",
    "sharded_init",
    "traffic",
]

#: The losses whose passes over the stored entries the sharded schedule splits.
SUPPORTED_LOSSES = ("hypergraph", "implicit")
# Entries per piece when J's partial sums are computed (bounds the predictions' temporary).
_PIECE = 1 << 18
# A rank's chunk budget: at most this many bytes per stored entry it holds (a chunk then holds
# at most an eighth of the entries at rank 8 in float64), and at least 1 MiB.
_CHUNK_BYTES_PER_ENTRY = 8
_MIN_CHUNK_BYTES = 2**20


@dataclass
class ShardedProblem(Problem):
    """A :class:`Problem` over this rank's share of the entries, passes summed over the ranks.

    ``quadratic`` and ``data_error`` return what the single-process problem over every rank's
    entries returns (up to the rounding of the sums); everything else is inherited.
    """

    comm: ShardComm | None = None
    #: Each mode's block of rows on this rank, and the rows its solve holds (built on first use).
    _blocks: list = field(default_factory=list, repr=False)
    _solve_rows: dict = field(default_factory=dict, repr=False)
    #: The stored entries' constants summed over the ranks (they do not change in a fit).
    _constants: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, problem: Problem, comm: ShardComm | None = None) -> ShardedProblem:
        """``problem`` (over this rank's entries) with its passes summed over the ranks."""
        if len(problem.terms) != 1:
            raise ValueError("schedule='sharded' splits one data term (the K-way tensor's).")
        kept = {f.name: getattr(problem, f.name) for f in fields(Problem)}
        tensor = problem.terms[0].tensor
        # The chunk temporaries follow the rank's share: at the fixed budget they would be a
        # per-rank constant (tens of MB) that does not fall as ranks are added.
        share = max(_MIN_CHUNK_BYTES, _CHUNK_BYTES_PER_ENTRY * tensor.nnz)
        tensor.chunk_bytes = min(tensor.chunk_bytes, share)
        split_policy()  # a bad SKHYPERLEARN_SPLIT_SOLVES is refused before any work
        return cls(**kept, comm=ShardComm() if comm is None else comm)

    def blocks(self) -> list[RowBlock]:
        """Every mode's block of rows on this rank."""
        if not self._blocks:
            shape = self.terms[0].tensor.shape
            self._blocks = [RowBlock(self.comm, int(n), k) for k, n in enumerate(shape)]
        return self._blocks

    def solve_rows(self, mode: int, width: int, coupled: bool):
        """The rows of ``mode`` this rank's solve holds (see :mod:`._sharded_rows`)."""
        if mode not in self._solve_rows:
            n = int(self.terms[0].tensor.shape[mode])
            rows = solve_rows(self.comm, n, mode, n * width, coupled, split_policy())
            self._solve_rows[mode] = rows
            if not rows.whole:
                traffic["split_modes"].add(mode)
        return self._solve_rows[mode]

    def constant(self, name: str, local: float) -> float:
        """``local`` summed over the ranks once per fit (a constant of the stored entries)."""
        if name not in self._constants:
            _, (self._constants[name],) = self.comm.sum([], [local], f"X's {name}")
        return self._constants[name]

    def _implicit_scale(self) -> float:
        return 1.0 / (1.0 + self.loss.confidence * self.loss.typical)

    def quadratic(self, state: State, mode: int):
        data = self.data(mode)
        factors = self.gather(mode, state.factors)
        coupled = self.laplacians[mode] is not None
        tic = time.perf_counter()
        if self.loss.name == "hypergraph":
            rows = self.solve_rows(mode, factors[mode].shape[1], coupled)
            m = mttkrp(data, factors, mode)
            traffic["pass_seconds"] += time.perf_counter() - tic
            norm_sq = self.constant("squared norm", data.norm_sq)
            linear = rows.scatter_sum(m, "stored-entry products")
            gram = split_gram_hadamard(factors, mode, self.blocks())
            return HypergraphQuadratic(mode, norm_sq, linear, gram, rows=rows)
        if self.loss.mode_solve == "cg":
            return sharded_operator_quadratic(self, state, mode)
        c = self.loss.confidence
        linear, grams = implicit_normal_equations(data, factors, mode, c)
        traffic["pass_seconds"] += time.perf_counter() - tic
        rows = self.solve_rows(mode, linear.shape[1], coupled)
        const = self.constant("implicit constant", data.nnz + c * data.value_sum)
        width = linear.shape[1]
        # One message for both: each row's right-hand side beside its Gram.
        both = torch.cat([linear, grams.reshape(-1, width * width)], 1)
        both = rows.scatter_sum(both, "normal equations")
        linear, grams = both[:, :width], both[:, width:].reshape(-1, width, width)
        grams += split_gram_hadamard(factors, mode, self.blocks())
        scale = self._implicit_scale()
        return RowwiseQuadratic(
            mode, scale * const, linear.mul_(scale), grams.mul_(scale), rows=rows
        )  # fmt: skip

    def data_error(self, state: State) -> float:
        data = self.data(0)
        factors = self.gather(0, state.factors)
        model_sq = float(gram_hadamard(factors).sum())
        if self.loss.name == "hypergraph":
            local = data.norm_sq - 2.0 * inner_product(data, factors)
            _, (total,) = self.comm.sum([], [local], "J's data term")
            # Cancellation can leave a tiny negative number when the fit is exact.
            return max(total + model_sq, 0.0)
        pred_sum, weighted = _implicit_partials(data, factors)
        _, (pred_sum, weighted, nnz) = self.comm.sum(
            [], [pred_sum, weighted, float(data.nnz)], "J's data term"
        )
        total = max(nnz - 2.0 * pred_sum + model_sq, 0.0) + self.loss.confidence * weighted
        return total / (1.0 + self.loss.confidence * self.loss.typical)


def _implicit_partials(data, factors) -> tuple[float, float]:
    """``Σ_stored x̂_e`` and ``Σ_stored x_e (1 − x̂_e)²`` over this rank's entries."""
    pred_sum = weighted = 0.0
    coords = data.coords
    for start in range(0, data.nnz, _PIECE):
        stop = min(start + _PIECE, data.nnz)
        pred = cp_values(coords[start:stop], factors)
        r = 1.0 - pred
        pred_sum += float(pred.sum())
        weighted += float(torch.dot(data.values[start:stop] * r, r))
    return pred_sum, weighted


@register_schedule
class Sharded(Sequential):
    """Sequential rounds over a :class:`ShardedProblem`, each round recorded in the store."""

    name = "sharded"
    shares_entries = True

    @classmethod
    def check_ready(cls) -> None:
        check_process_group()

    @classmethod
    def training_problem(cls, problem: Problem) -> ShardedProblem:
        return ShardedProblem.of(problem)

    @classmethod
    def start_values(cls, values: np.ndarray) -> np.ndarray:
        """A one-entry stand-in with the root mean square of every rank's values."""
        squares = _sum_floats([float(np.square(values, dtype=np.float64).sum()), values.shape[0]])
        return np.array([math.sqrt(squares[0] / max(squares[1], 1.0))])

    def __init__(self, mode_order: list[int]) -> None:
        check_process_group()
        super().__init__(mode_order)
        self.rounds = 0

    def run_round(self, problem: Problem, state: State, update) -> float | None:
        if not isinstance(problem, ShardedProblem):
            raise TypeError("schedule='sharded' runs over a ShardedProblem (built by the fit).")
        self.rounds += 1
        problem.comm.start_round(self.rounds)
        out = super().run_round(problem, state, update)
        problem.comm.end_round()
        return out


# ------------------------------------------------------------------------ before the fit
@dataclass
class Summary:
    """What the fit's checks need of every rank's stored values together."""

    nnz: int
    smallest: float
    whole_non_negative: bool

    def auto_loss(self, shape) -> str:
        """``loss="auto"`` over every rank's entries (as :func:`~.losses.auto_loss`)."""
        from .losses._base import PRESENCE_MAX_DENSITY

        cells = math.prod(int(n) for n in shape)
        dense = cells > 0 and self.nnz > PRESENCE_MAX_DENSITY * cells
        return "implicit" if not dense and self.whole_non_negative else "hypergraph"


def _reduce(values: list[float], op) -> list[float]:
    buf = torch.tensor(values, dtype=torch.float64).to(comm_device())
    try:
        dist.all_reduce(buf, op=op)
    except (RuntimeError, dist.DistError) as exc:
        raise DistributedFault(
            f"rank {dist.get_rank()}/{dist.get_world_size()}: the ranks' summary of X failed "
            f"before the fit (a rank died or never started): {exc}"
        ) from exc
    return [float(v) for v in buf.cpu()]


def global_summary(values: np.ndarray, shape) -> Summary:
    """Every rank's stored values summarised (a collective: every rank calls it).

    Raises ValueError naming ``X`` when the ranks' tensors have different shapes.
    """
    from .losses._base import _whole_non_negative

    n = int(values.shape[0])
    smallest = float(values.min()) if n else math.inf
    whole = 1.0 if _whole_non_negative(values) else 0.0
    shape = [float(s) for s in shape]
    order = len(shape)
    # MIN reductions: the negated entries give the maxima.
    got = _reduce([smallest, whole, order, -order], dist.ReduceOp.MIN)
    same = got[2] == -got[3] == order
    if same:
        sizes = _reduce([*shape, *(-s for s in shape)], dist.ReduceOp.MIN)
        same = all(sizes[k] == -sizes[order + k] == shape[k] for k in range(order))
    if not same:
        raise ValueError(
            f"schedule='sharded': X on rank {dist.get_rank()} has shape {tuple(map(int, shape))}, "
            "and another rank's X has another; every rank must pass its share of the entries "
            "of one tensor, with that tensor's shape."
        )
    total = _sum_int(n)
    return Summary(total, got[0] if total else 0.0, got[1] == 1.0)


def _sum_floats(values: list[float]) -> list[float]:
    return _reduce([float(v) for v in values], dist.ReduceOp.SUM)


def _sum_int(n: int) -> int:
    """``n`` summed over the ranks (exact: int64)."""
    buf = torch.tensor([n], dtype=torch.int64).to(comm_device())
    try:
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    except (RuntimeError, dist.DistError) as exc:
        raise DistributedFault(
            f"rank {dist.get_rank()}/{dist.get_world_size()}: a count over the ranks failed "
            f"before the fit (a rank died or never started): {exc}"
        ) from exc
    return int(buf.item())


def _sortable(values: np.ndarray) -> np.ndarray:
    """Unsigned integers ordered as the floating ``values`` are (IEEE bit patterns)."""
    bits = values.view(np.uint64 if values.dtype == np.float64 else np.uint32)
    sign = bits.dtype.type(1) << bits.dtype.type(8 * bits.dtype.itemsize - 1)
    return np.where(bits & sign, ~bits, bits | sign)


def _kth(keys: np.ndarray, k: int, width: int) -> int:
    """The key of rank ``k`` (0-based) among every rank's keys: bisection on the key's bits,
    one all-reduced count per bit (exact, and no rank sees another's values)."""
    lo, hi = 0, (1 << width) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        below = _sum_int(int(np.count_nonzero(keys <= keys.dtype.type(mid))))
        lo, hi = (lo, mid) if below > k else (mid + 1, hi)
    return lo


def global_median(values: np.ndarray) -> float:
    """``np.median`` of every rank's ``values`` together (a collective), exactly."""
    dtype = values.dtype if values.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    v = np.ascontiguousarray(values, dtype=dtype)
    keys = _sortable(v)
    width = 8 * v.dtype.itemsize
    n = _sum_int(v.shape[0])
    if n == 0:
        return 1.0

    def value(k: int):
        key = keys.dtype.type(_kth(keys, k, width))
        sign = keys.dtype.type(1) << keys.dtype.type(width - 1)
        bits = key & ~sign if key & sign else ~key
        return np.array([bits], dtype=keys.dtype).view(dtype)[0]

    if n % 2:
        return float(value(n // 2))
    return float(np.mean(np.array([value(n // 2 - 1), value(n // 2)], dtype=dtype)))


def for_data(loss, values: np.ndarray, shape):
    """``loss.for_data`` over every rank's entries (a collective: every rank calls it).

    The options resolved on X (the implicit loss's ``confidence="auto"``) need the number of
    entries and their median over every share; the median goes in a one-entry stand-in.
    """
    if getattr(loss, "confidence", None) != "auto":
        return loss
    nnz = _sum_int(int(values.shape[0]))
    return loss.for_data(tuple(shape), nnz, np.array([global_median(values)]))


def check_sharded(solver: str, loss, init, early_stopping) -> None:
    """Refuse, naming the parameter, what the sharded schedule does not split."""
    if solver != "als":
        raise ValueError(
            f"schedule='sharded' supports solver='als' (the exact solver), got solver={solver!r}."
        )
    if loss.name not in SUPPORTED_LOSSES:
        raise ValueError(
            f"schedule='sharded' supports loss in {list(SUPPORTED_LOSSES)}, got loss={loss.name!r}."
        )
    if isinstance(init, str) and init in ("svd", "exact_sweeps", "als"):
        raise ValueError(
            f"schedule='sharded' cannot start from init={init!r}: the SVD of the unfoldings "
            "needs every entry on one rank; use init='random' (what 'auto' means here) or "
            "give the initial factors."
        )
    if early_stopping is True:
        raise ValueError("schedule='sharded' holds out no entries: set early_stopping=False.")


def sharded_init(init):
    """``init`` under the sharded schedule: ``"auto"`` is ``"random"`` (the SVD start needs
    every entry on one rank)."""
    return "random" if isinstance(init, str) and init == "auto" else init
