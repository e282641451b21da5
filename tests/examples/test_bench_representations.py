"""The helpers of benchmarks/representations.py that are not a library's own code."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD

from skhyperlearn import Hypergraph
from skhyperlearn.datasets import make_hypergraph

pytest.importorskip("implicit")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _results_cache import ResultCache, estimator_signature
from representations import (
    ImplicitALS,
    Runner,
    Task,
    _baselines,
    _cached_rows,
    _Counts,
    evaluate,
    fixed_methods,
)


def test_implicit_als_folds_new_rows_in_by_weighted_least_squares():
    train = sp.random(60, 40, density=0.15, random_state=1, format="csr")
    train.data[:] = 1.0
    new = sp.random(5, 40, density=0.2, random_state=2, format="csr")
    new.data[:] = 1.0
    model = ImplicitALS(4, alpha=10.0, regularization=0.5).fit(train)
    folded = model.transform(new)
    Y = np.asarray(model.model_.item_factors, dtype=np.float64)
    # implicit's objective for one row: stored cells weigh alpha·x, absent ones 1, target 1
    # where stored; its minimiser by the dense normal equations.
    for row, got in zip(new.toarray(), folded, strict=True):
        w = np.where(row > 0, 10.0 * row, 1.0)
        p = (row > 0).astype(np.float64)
        A = Y.T @ (w[:, None] * Y) + 0.5 * np.eye(4)
        np.testing.assert_allclose(got, np.linalg.solve(A, Y.T @ (w * p)), rtol=1e-3, atol=1e-4)


def test_counts_transforms():
    X = sp.csr_array(np.array([[0.0, 3.0], [1.0, 0.0]]))
    np.testing.assert_allclose(_Counts("log1p").transform(X).toarray(), np.log1p(X.toarray()))
    np.testing.assert_array_equal(_Counts("binary").transform(X).toarray(), [[0, 1], [1, 0]])


# ---------------------------------------------------------------- the results cache


def test_cache_survives_a_reload_and_merges_writers_of_the_same_file(tmp_path):
    path = tmp_path / "c.json"
    first, second = ResultCache(path), ResultCache(path)
    first.put("a", {"macro": 0.5})
    second.put("b", {"macro": 0.25})  # started before "a" was written: must not drop it
    reloaded = ResultCache(path)
    assert reloaded.get("a") == {"macro": 0.5}
    assert reloaded.get("b") == {"macro": 0.25}
    assert ResultCache(None).get("a") is None


def test_signature_tells_configurations_apart():
    svd = TruncatedSVD(10, random_state=0)
    assert estimator_signature(svd) == estimator_signature(TruncatedSVD(10, random_state=0))
    # scikit-learn's repr hides unchanged defaults; the signature must not
    assert estimator_signature(svd) != estimator_signature(TruncatedSVD(10, n_iter=6))
    (_, a, _), (_, b, _) = _baselines(10)[0], _baselines(32)[0]
    assert estimator_signature(a) != estimator_signature(b)


def _tiny_task() -> Task:
    data = make_hypergraph(shape=(40, 30, 20), rank=2, random_state=0)
    labels = np.eye(2, dtype=np.int64)[data.labels[0]]
    hypergraph = Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency")
    return Task("tiny", hypergraph, labels, "tiny")


class _Refuses(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        raise AssertionError("a cached row was fitted again")


def _args(**kw):
    base = {"folds": 3, "inner": 2, "protocol": "pipeline", "grid": "fixed", "dims": [2]}
    return SimpleNamespace(**{**base, **kw})


def test_rows_are_resumed_from_the_cache_and_only_package_rows_carry_the_code_hash():
    task, args = _tiny_task(), _args()
    runner = Runner(ResultCache(None))
    rows = {name: (model, grid) for name, model, grid in fixed_methods(2, (1.0,))}
    svd, _ = rows["TruncatedSVD of sample × largest mode"]
    key = runner.row_key(task, "svd", 2, svd, None, args)
    assert key["code"] is None
    hyper, grid = rows["HyperLearn, defaults, graphs"]
    assert runner.row_key(task, "hl", 2, hyper, grid, args)["code"] is not None

    measured = evaluate(task, 2, svd, None, args, runner, key)
    assert len(measured["macro"]) == 3 and all(0 < m <= 1 for m in measured["macro"])
    # The same key again: every fold comes from the cache, nothing is fitted.
    refuses = svd.set_params(rep=_Refuses())
    again = evaluate(task, 2, refuses, None, args, runner, key)
    assert again["macro"] == measured["macro"]


def test_readme_rows_list_what_the_cache_holds_for_the_current_data():
    task, args = _tiny_task(), _args()
    runner = Runner(ResultCache(None))
    assert _cached_rows(task, args, runner) == []
    name, model, grid = fixed_methods(2, (1.0,))[2]
    evaluate(task, 2, model, grid, args, runner, runner.row_key(task, name, 2, model, grid, args))
    rows = _cached_rows(task, args, runner)
    assert [(r["method"], r["dim"]) for r in rows] == [(name, 2)]
