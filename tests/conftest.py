"""Shared pytest set-up: make the package importable from a plain checkout; shared fixtures."""

import sys
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a module (``pytestmark = usefixtures(...)``).

    On a small, shared machine torch's threads make tiny sparse products orders of magnitude
    slower under load; one thread keeps such modules fast and changes no result.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
