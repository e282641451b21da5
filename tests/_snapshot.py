"""Deep snapshots of inputs, to check that nothing the caller handed in was modified.

Shared by the input catalogues and every test that checks an entry point leaves its inputs
alone (arrays, sparse tensors and matrices, containers, the state of a fitted estimator).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp
import sparse
import torch
from sklearn.base import BaseEstimator

from skhyperlearn.hypergraph import Hypergraph

__all__ = ["assert_same", "snapshot"]


def snapshot(obj: Any, _depth: int = 0) -> Any:
    """A deep, comparable copy of ``obj``: arrays, sparse data, containers, estimator state."""
    if _depth > 8:
        return ("deep", type(obj).__name__)
    d = _depth + 1
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, Path)):
        return ("scalar", obj)
    if isinstance(obj, np.generic):
        return ("npscalar", obj.dtype.str, obj.item())
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.copy())
    if isinstance(obj, torch.Tensor):
        return ("torch", str(obj.dtype), tuple(obj.shape), obj.detach().clone().cpu())
    if isinstance(obj, torch.device):
        return ("device", str(obj))
    if isinstance(obj, sparse.COO):
        return (
            "coo",
            obj.shape,
            obj.dtype.str,
            obj.coords.copy(),
            obj.data.copy(),
            snapshot(obj.fill_value, d),
        )
    if sp.issparse(obj):
        fmt = obj.format
        if fmt in ("csr", "csc"):
            parts = (obj.data.copy(), obj.indices.copy(), obj.indptr.copy())
        elif fmt == "coo":
            parts = (obj.data.copy(), *(c.copy() for c in obj.coords))
        else:
            parts = (obj.toarray(),)
        return ("scipy", type(obj).__name__, fmt, obj.shape, obj.dtype.str, parts)
    if isinstance(obj, Hypergraph):
        return (
            "hypergraph",
            snapshot(obj.tensor, d),
            snapshot(obj.graphs, d),
            snapshot(obj.ids, d),
            obj.sample_mode,
            obj.graph_kind,
        )
    if isinstance(obj, SimpleNamespace):
        return ("namespace", snapshot(dict(vars(obj)), d))
    if isinstance(obj, BaseEstimator):
        return ("estimator", type(obj).__name__, snapshot(dict(vars(obj)), d))
    if isinstance(obj, dict):
        return ("dict", {k: snapshot(v, d) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [snapshot(v, d) for v in obj])
    # Anything else (callables, torch modules, ...): compared by identity.
    return ("object", type(obj).__name__, id(obj))


def assert_same(before: Any, after: Any, where: str = "inputs") -> None:
    """Recursive comparison of two snapshots (NaN equals NaN, dtypes must match)."""
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        assert isinstance(before, np.ndarray) and isinstance(after, np.ndarray), where
        assert before.dtype == after.dtype and before.shape == after.shape, where
        if before.dtype.kind in "fc":
            assert np.array_equal(before, after, equal_nan=True), f"{where} was modified"
        else:
            assert np.array_equal(before, after), f"{where} was modified"
        return
    if isinstance(before, torch.Tensor):
        assert isinstance(after, torch.Tensor), where
        assert torch.equal(before, after) or (
            before.shape == after.shape
            and bool(torch.all((before == after) | (before.isnan() & after.isnan())))
        ), f"{where} was modified"
        return
    if isinstance(before, dict):
        assert isinstance(after, dict) and before.keys() == after.keys(), f"{where}: keys changed"
        for k in before:
            assert_same(before[k], after[k], f"{where}[{k!r}]")
        return
    if isinstance(before, (list, tuple)):
        assert type(before) is type(after) and len(before) == len(after), f"{where} changed"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            assert_same(b, a, f"{where}[{i}]")
        return
    if isinstance(before, float) and isinstance(after, float):
        assert before == after or (math.isnan(before) and math.isnan(after)), where
        return
    assert before == after, f"{where} was modified: {before!r} -> {after!r}"
