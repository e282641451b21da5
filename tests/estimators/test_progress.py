"""Progress output (verbose), why training stopped, and the warnings at the end of a fit."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph

_LINE = re.compile(
    r"(sweep|round)\s+(\d+)\s+J = (\S+) = (\S+)·(\S+) \(data\) "
    r"\+ (\S+) \(graph\) \+ (\S+) \(ridge\)"
)


def _data(values="binary", n_entries=600):
    return make_hypergraph((20, 16, 12), rank=3, n_entries=n_entries, values=values,
                           random_state=0)  # fmt: skip


def test_each_line_adds_up_to_J_and_the_last_says_why(capsys):
    data = _data("real")
    model = HyperLearnDecomposition(
        rank=3, laplacians=data.laplacians, loss="observed", max_iter=300, tol=1e-3, verbose=1,
        random_state=0,
    ).fit(data.tensor)  # fmt: skip
    out = capsys.readouterr().out
    lines = [m.groups() for m in map(_LINE.search, out.splitlines()) if m]
    assert len(lines) == model.n_iter_
    for (_, _it, j, lam, d, g, r), hist in zip(lines, model.loss_history_, strict=True):
        assert float(j) == pytest.approx(float(lam) * float(d) + float(g) + float(r), rel=1e-3)
        assert float(j) == pytest.approx(hist, rel=1e-5)
    assert f"stopped after {model.n_iter_} iterations: tol" in out.splitlines()[-2]


def test_early_stopping_prints_validation_rmse_init_and_refit(capsys):
    data = _data("real", n_entries=2000)
    model = HyperLearnDecomposition(
        rank=3, laplacians=data.laplacians, loss="observed", solver="hyperlearn",
        early_stopping=True, n_iter_no_change=2, max_iter=30, init_iter=2, n_terms=2, hidden=4,
        n_steps=1, learning_rate=0.5, tol=0, verbose=1, random_state=0,
    ).fit(data.tensor)  # fmt: skip
    out = capsys.readouterr().out
    assert "init: init='svd', then up to 2 exact sweeps" in out
    rmse = [float(x) for x in re.findall(r"validation RMSE (\S+)", out)]
    assert rmse == pytest.approx(model.validation_history_, rel=1e-4)
    assert f"refit on all entries, 2 + {model.best_iter_} sweeps" in out
    assert "early stopping" in out


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"max_iter": 2, "tol": 1e-12}, "max_iter"), ({"callback": lambda info: True}, "callback")],
)
def test_final_line_names_the_reason(capsys, kwargs, reason):
    data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        HyperLearnDecomposition(rank=3, verbose=1, **kwargs).fit(data.tensor)
    assert re.search(rf"stopped after \d+ iterations: {reason}", capsys.readouterr().out)


def test_convergence_warning_at_max_iter_only():
    data = _data()
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        HyperLearnDecomposition(rank=3, max_iter=2, tol=1e-12).fit(data.tensor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        HyperLearnDecomposition(rank=3, max_iter=200, tol=1e-3).fit(data.tensor)
        # tol=0 asks for exactly max_iter iterations: nothing to warn about.
        HyperLearnDecomposition(rank=3, max_iter=2, tol=0).fit(data.tensor)


def test_init_als_spelling_still_works_with_a_future_warning():
    data = _data()
    kw = dict(rank=3, solver="hyperlearn", max_iter=2, init_iter=2, n_terms=2, hidden=4,
              n_steps=1, tol=0, random_state=0)  # fmt: skip
    with pytest.warns(FutureWarning, match="exact_sweeps"):
        old = HyperLearnDecomposition(init="als", **kw).fit(data.tensor)
    new = HyperLearnDecomposition(init="exact_sweeps", **kw).fit(data.tensor)
    for a, b in zip(old.factors_, new.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
