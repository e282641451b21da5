"""Solvers for HyperLearnDecomposition."""

# The schedules defined outside _schedules.py register themselves on import; importing them
# here (the package is imported before any of its modules) fills the registry without
# _schedules.py importing the modules that import it.
from . import _distributed, _sharded  # noqa: F401
