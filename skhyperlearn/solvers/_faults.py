"""The fault policy of a fit: numerical failures and interruptions during training.

A numerical fault (J or the factors not finite, a solve that breaks down) either raises, leaving
the estimator unfitted, or warns and keeps the best state seen (``on_nonfinite``); Ctrl-C keeps
the best state seen so far, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._monitor import Monitor

__all__ = ["apply_fault_policy", "collapse_message", "run_guarded"]


def run_guarded(run: Callable[[], object], monitor: Monitor, *, stacklevel: int = 4):
    """``run()``, turning breakdowns into ``monitor.fault`` and Ctrl-C into a warning.

    Returns ``(result, interrupted)``; ``result`` is None when ``run`` did not finish.
    """
    try:
        return run(), False
    except torch.linalg.LinAlgError as exc:
        # A solve that breaks down is a numerical fault like a NaN: on_nonfinite decides.
        monitor.fault = f"linear algebra failure ({exc})"
    except KeyboardInterrupt:
        warnings.warn(
            f"fit interrupted after {len(monitor.losses)} iterations; keeping the best "
            f"factors so far (iteration {monitor.best_iter}).",
            UserWarning,
            stacklevel=stacklevel,
        )
        return None, True
    return None, False


def apply_fault_policy(monitor: Monitor, on_nonfinite: str, *, stacklevel: int = 4) -> None:
    """Raise (``on_nonfinite="raise"``) or warn about ``monitor.fault``, if any."""
    if monitor.fault is None:
        return
    message = f"{monitor.fault}; try a larger alpha, a smaller lam or learning_rate."
    if on_nonfinite == "raise":
        raise FloatingPointError(message + " The estimator was left unfitted.")
    warnings.warn(
        message + f" Keeping the best factors seen (iteration {monitor.best_iter}).",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def collapse_message(
    factors: Sequence[torch.Tensor], values: np.ndarray, loss, lam: float, alpha: float,
    has_biases: bool,
) -> str | None:  # fmt: skip
    """Why the CP part of the model is (numerically) zero although its target is not; None
    when it is not.

    The model is compared with the loss's own target (``Loss.target_norm``: the values, or
    presence for the implicit loss), so the test holds at every scale of X. The cause named
    is the true one: values so small that their squares underflow the working dtype (the
    solves' products round to zero), else the ridge (and graphs) outweighing the data term.
    """
    target = loss.target_norm(values)
    if target == 0.0:
        return None
    # ‖[[A]]‖ ≤ Σ_r Π_k ‖a_kr‖ without forming the tensor: enough to tell zero from non-zero.
    norms = np.ones(factors[0].shape[1])
    for a in factors:
        norms = norms * a.detach().double().pow(2).sum(0).sqrt().cpu().numpy()
    if norms.sum() > 1e-10 * target:
        return None
    rest = "the mean and biases alone" if has_biases else "zero everywhere"
    info = np.finfo(values.dtype) if values.dtype.kind == "f" else np.finfo(np.float64)
    largest = float(np.max(np.abs(values)))
    if not loss.nonnegative and largest * largest < float(info.tiny):
        return (
            f"Every factor collapsed to zero: the model is {rest}. X's values (largest "
            f"{largest:.3g}) are too small for {info.dtype}: their squares, and the products "
            f"the solves form, underflow its smallest normal number {float(info.tiny):.3g} and "
            "round to zero. Multiply X by a constant (the fit follows its scale) or give "
            "float64 values."
        )
    if alpha > 0:
        return (
            f"Every factor collapsed to zero: the model is {rest}. With alpha={alpha} the "
            f"ridge and the graph terms outweigh the data term at lam={lam:.6g}; raise lam or "
            "lower alpha (with alpha=0 no collapse can occur)."
        )
    return (
        f"Every factor collapsed to zero: the model is {rest}. The graph terms outweigh the "
        f"data term at lam={lam:.6g}; raise lam."
    )
