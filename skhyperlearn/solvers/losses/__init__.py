"""Data losses of J, by name. Registering a new loss is one import line here."""

from . import _hypergraph, _implicit, _observed  # noqa: F401  (registration)
from ._base import (
    LOSS_CHOICES,
    LOSS_NAMES,
    LOSSES,
    Loss,
    ModeQuadratic,
    auto_loss,
    get_loss,
    register_loss,
)

__all__ = [
    "LOSSES",
    "LOSS_CHOICES",
    "LOSS_NAMES",
    "Loss",
    "ModeQuadratic",
    "auto_loss",
    "get_loss",
    "register_loss",
]
