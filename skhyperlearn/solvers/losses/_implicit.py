"""``loss="implicit"``: every cell counts, stored hyperedges weighted above absent cells.

Implicit-feedback least squares (Hu, Koren & Volinsky 2008) on a K-th order tensor: the target is
the presence ``p`` (1 on a stored entry, 0 elsewhere) and a stored entry of value ``x_e`` weighs
``1 + c·x_e`` (``c`` = ``confidence``), an absent cell 1:

``(Σ_all (p − x̂)² + Σ_stored c·x_e (1 − x̂_e)²) / (1 + c)``.

On binary, very sparse hyperedges the plain hypergraph loss spends its rank on the few dense
blocks, because millions of absent cells outweigh the stored ones; here the stored ones carry a
weight a user sets. The sum is divided by ``1 + c``, so that a stored entry of value 1 weighs 1
and an absent cell ``1/(1 + c)``: on binary hyperedges the data term at all-zero factors is
``nnz`` whatever ``c``, as for the hypergraph loss, and ``lam`` weighs it against the graph and
ridge terms on the same scale (``c = 0`` is the hypergraph loss). ``confidence="auto"`` sets
c relative to X's median stored value m and divides by ``1 + c·m``: X and s·X (s > 0) fit alike.

With every mode but k fixed the first sum is the hypergraph loss's quadratic
(the Gram of the Khatri–Rao product, by the Gram identity) and the second adds per-row Grams over
the stored entries only, so the mode's system is the observed loss's: one R×R Gram per row, solved
directly or, with a graph, by block-preconditioned CG (``mode_solve="exact"``). The default,
``mode_solve="cg"``, never forms those Grams: a few warm-started CG steps per sweep on the same
systems, applied entry by entry (:mod:`._matrix_free`).

``projection_weight > 0`` adds the hypergraph's pairwise projections (sample × each other mode)
as data terms on the same factors (:mod:`._projections`).
"""

from __future__ import annotations

import math

import numpy as np

from ..._numerics._kernels import gram_hadamard, implicit_normal_equations, implicit_sq_error
from ._base import Loss, register_loss
from ._matrix_free import ImplicitOperatorQuadratic, cpu_gram_hadamard
from ._projections import (
    CoupledOperatorQuadratic,
    cells_rule,
    combine_rowwise,
    coupled_error,
    coupled_terms,
    pair_constants,
)
from ._rowwise import RowwiseQuadratic

__all__ = ["ImplicitLoss"]

#: λ's unit (``lam_unit``) when the solved mode carries the scale: the graphs act at the
#: model's scale there, and a weight of 1 lets them flatten the factors (benchmarks/README.md).
_SOLVED_SCALE_UNIT = 30.0
#: λ's unit with the projection terms (free scale): the penalties are then shared by every
#: mode's scale, and the data term's best weight was 0.1 on both development tasks (ML-100K
#: genres, Last.fm 3rd order; confirmed on ML-100K users and the planted task), where it was
#: 30 without them (benchmarks/README.md, "λ's unit").
_PROJECTIONS_UNIT = 0.1


#: ``confidence="auto"``: this times ``sqrt(cells / stored entries)`` over the median value.
_AUTO_MULTIPLIER = 3.0


@register_loss
class ImplicitLoss(Loss):
    """Presence fitted over every cell, stored entries weighted ``1 + confidence·x`` to 1."""

    name = "implicit"
    default_lam = 1.0
    # A small ridge: it fixes the scale CP leaves free, while rows with a handful of stored
    # entries (about ten on the planted task) do not collapse to zero, as they do at 0.3.
    default_alpha = 0.03
    options = ("confidence", "mode_solve", "projection_weight", "sample_mode")
    # A stored value is a confidence (a count): a negative one would weigh its cell below zero.
    nonnegative = True

    @property
    def normalize_by_default(self) -> bool:
        """Without the solved scale the graphs and the ridge are escaped by moving the scale
        between modes; on presence data they then barely act (benchmarks/README.md). The
        projection terms fix every factor's scale instead, and normalizing would change them."""
        return not self.coupled

    def __init__(
        self,
        confidence: float | str = "auto",
        mode_solve: str = "cg",
        typical: float = 1.0,
        projection_weight: float = 0.0,
        sample_mode: int = 0,
        pair_constants: dict | None = None,
    ) -> None:
        self.confidence = confidence if confidence == "auto" else float(confidence)
        if mode_solve not in ("cg", "exact"):
            raise ValueError(f"mode_solve={mode_solve!r} is not one of ['cg', 'exact'].")
        self.mode_solve = mode_solve
        # The stored value the weights are relative to (1 unless "auto" resolved it on X): the
        # sum is divided by 1 + confidence·typical, the weight of a typical stored entry.
        self.typical = float(typical)
        self.projection_weight = float(projection_weight)
        if not 0.0 <= self.projection_weight <= 1.0:
            raise ValueError(f"projection_weight={projection_weight!r} is not in [0, 1].")
        self.sample_mode = int(sample_mode)
        # Per other mode k: the projection term's confidence, typical value and share, fixed
        # on the training X (for_data), so that transform's new samples weigh alike.
        self.pair_constants = pair_constants

    @property
    def coupled(self) -> bool:
        """Whether the projection terms are part of the data term (``projection_weight > 0``)."""
        return self.projection_weight > 0.0 and self.pair_constants is not None

    @property
    def inexact_solve(self) -> bool:
        """Whether a warm mode solve stops after a few CG steps (see ``Problem.keeps_model``)."""
        return self.mode_solve == "cg"

    def lam_unit(self, normalize: bool) -> float:
        if self.coupled:
            return _PROJECTIONS_UNIT
        return _SOLVED_SCALE_UNIT if normalize else 1.0

    def for_data(self, shape, nnz, values=None, coords=None):
        """``confidence="auto"``: ``3·sqrt(cells / stored entries) / median stored value``.

        The sparser X, the more a stored entry must weigh for the rank to be spent on the
        stored entries rather than on the absent cells: on the four tasks of
        ``benchmarks/representations.py`` (cells per stored entry from 79 to 3·10⁷) the best
        confidence grew from about 30 to about 3·10⁴, close to this rule on each. Dividing by
        the median stored value makes the weights ``confidence·x`` of X and c·X equal (counts
        in plays or in kiloplays fit alike); the median rather than the mean, so that a few
        huge counts do not lower every other entry's weight (and binary X is unchanged).
        """
        pairs = None
        if self.projection_weight > 0.0 and coords is not None and len(shape) > 2:
            rule = cells_rule(_AUTO_MULTIPLIER)
            pairs = pair_constants(coords, values, shape, self.sample_mode, self.confidence, rule)
        if self.confidence != "auto":
            return self if pairs is None else self._with(self.confidence, self.typical, pairs)
        cells_per_entry = math.prod(float(n) for n in shape) / max(nnz, 1)
        typical = float(np.median(values)) if values is not None and len(values) else 1.0
        conf = _AUTO_MULTIPLIER * math.sqrt(cells_per_entry) / typical
        return self._with(conf, typical, pairs)

    def _with(self, confidence, typical, pairs) -> ImplicitLoss:
        return ImplicitLoss(
            confidence, self.mode_solve, typical, self.projection_weight, self.sample_mode, pairs
        )

    def start_values(self, values):
        # With the projection terms every factor's scale is fitted (no normalization), so the
        # start must not carry X's units: relative to the typical stored value, c·X starts
        # where X does. Without them the start is X's own (the fits stay as they were).
        return values / self.typical if self.coupled else values

    def target_norm(self, values):
        # The target is presence, 1 at every stored entry, whatever the values weigh.
        return math.sqrt(values.shape[0])

    def quadratic(self, tensor, factors, mode, biases=None, mean=0.0, with_bias=False):
        if self.coupled and len(factors) > 2:
            const, parts = coupled_terms(self, tensor, factors, mode, self._part)
            if self.mode_solve == "cg":
                return CoupledOperatorQuadratic(mode, const, parts)
            return combine_rowwise(mode, const, parts)
        return self._part(tensor, factors, mode, self.confidence, self.typical)

    def _part(self, data, factors, mode, confidence, typical):
        """One implicit term's quadratic in ``factors[mode]``: entries ``data``, weights
        ``confidence``, divided by the typical stored entry's weight."""
        scale = 1.0 / (1.0 + confidence * typical)
        # Σ_all p² + Σ_stored w_e: the data term at all-zero factors.
        const = data.nnz + confidence * data.value_sum
        if self.mode_solve == "cg":
            gram = cpu_gram_hadamard(factors, mode)
            return ImplicitOperatorQuadratic(mode, const, scale, confidence, data, factors, gram)
        linear, grams = implicit_normal_equations(data, factors, mode, confidence)
        grams += gram_hadamard(factors, mode)
        return RowwiseQuadratic(mode, scale * const, linear.mul_(scale), grams.mul_(scale))

    def error(self, tensor, factors, biases=None, mean=0.0):
        if self.coupled and len(factors) > 2:
            return coupled_error(self, tensor, factors)
        total = implicit_sq_error(tensor, factors, self.confidence)
        return total / (1.0 + self.confidence * self.typical)

    def buffer_bytes(self, shape, rank, itemsize):
        if self.mode_solve == "cg":
            # The block CG's vectors (iterate, residual, direction, its product, diagonal).
            own = 6 * max(shape) * rank * itemsize
        else:
            # Per-row Grams and the solve's copies of them, as for the observed loss.
            own = 4 * max(shape) * rank**2 * itemsize
        return own + self._projection_bytes(shape, itemsize)

    def _projection_bytes(self, shape, itemsize) -> int:
        """The projection terms' own copies: each pair's two coordinates, its summed value, a
        permutation and a row pointer per axis, and the unique/inverse/sum buffers of their
        construction (int64), per distinct pair."""
        if not self.coupled:
            return 0
        total = 0
        for k, constants in self.pair_constants.items():
            n = constants.n_pairs
            idx = 4 if max(shape[self.sample_mode], shape[k]) <= 2**31 - 1 else 8
            pidx = 4 if n <= 2**31 - 1 else 8
            rowptrs = 16 * (shape[self.sample_mode] + shape[k])
            total += n * (2 * idx + itemsize + pidx + 24) + rowptrs
        return total
