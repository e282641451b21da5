"""The fault policy of a fit: numerical failures and interruptions during training.

A numerical fault (J or the factors not finite, a solve that breaks down) either raises, leaving
the estimator unfitted, or warns and keeps the best state seen (``on_nonfinite``); Ctrl-C keeps
the best state seen so far, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from ._monitor import Monitor

__all__ = ["apply_fault_policy", "run_guarded"]


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
