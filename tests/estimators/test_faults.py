"""Faults during training, interruption, resumption and the memory guard (issue #5).

- non-finite loss or factors mid-training: ``on_nonfinite="raise"`` leaves the estimator unfitted,
  ``"warn"`` keeps the best state seen before the fault; NaN factors are never returned;
- the callback sees every round's loss and factors and stops training cleanly by returning True;
- ``warm_start`` continues the J trajectory of the exact solver;
- ``KeyboardInterrupt`` during fit keeps the best factors so far and says so;
- ``max_memory`` refuses a fit before any work, naming the estimate; the measured peak of a
  moderate fit stays within ``memory_estimate_``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import sparse
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import skhyperlearn.solvers._als as als_module
import skhyperlearn.solvers._fit as fit_module
from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._memory import format_bytes, parse_bytes
from skhyperlearn.graphs import normalized_laplacian

SHAPE = (12, 10, 8)
ROOT = Path(__file__).resolve().parents[2]


def _tensor(shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    factors = [rng.random((n, 3)) for n in shape]
    dense = np.einsum("ir,jr,kr->ijk", *factors)
    mask = rng.random(shape) < 0.3
    return sparse.COO.from_numpy(np.where(mask, dense, 0.0))


def _laplacian(n, seed):
    rng = np.random.default_rng(seed)
    w = np.triu((rng.random((n, n)) < 0.3).astype(float), 1)
    return normalized_laplacian(w + w.T)


def _laplacians(shape=SHAPE, sample_graph=False):
    """Graphs on every mode but (unless asked) the sample mode 0, whose solve is then direct."""
    return [_laplacian(n, k) if (k > 0 or sample_graph) else None for k, n in enumerate(shape)]


def _model(**params):
    params.setdefault("rank", 3)
    params.setdefault("laplacians", _laplacians())
    params.setdefault("random_state", 0)
    params.setdefault("tol", 0.0)
    return HyperLearnDecomposition(**params)


class Recorder:
    """A callback that keeps a copy of every report (and may act at a given round)."""

    def __init__(self, action=None, at=None):
        self.reports: list[dict] = []
        self.action, self.at = action, at

    def __call__(self, info):
        self.reports.append(
            {
                **{k: v for k, v in info.items() if k != "factors"},
                "factors": [a.detach().cpu().numpy().copy() for a in info["factors"]],
            }
        )
        if self.at is not None and info["iteration"] == self.at:
            return self.action(info)
        return None

    def factors_at(self, iteration):
        (report,) = [r for r in self.reports if r["iteration"] == iteration]
        return report["factors"]


def _corrupting_solve_mode(monkeypatch, bad_call):
    """Patch the exact solver's mode solve so that its ``bad_call``-th call returns NaN."""
    real = als_module.solve_mode
    calls = {"n": 0}

    def solve_mode(*args, **kwargs):
        a, b, quad = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == bad_call:
            a = a * float("nan")
        return a, b, quad

    monkeypatch.setattr(als_module, "solve_mode", solve_mode)
    return calls


# ---------------------------------------------------------------------------- NaN injection
def test_nan_mid_training_raise_leaves_estimator_unfitted(monkeypatch):
    x = _tensor()
    before = x.copy()
    # 3 modes per sweep: the 7th solve is the first of sweep 3.
    calls = _corrupting_solve_mode(monkeypatch, bad_call=7)
    model = _model(max_iter=10, on_nonfinite="raise")
    with pytest.raises(FloatingPointError, match=r"non-finite loss or factors at iteration 3"):
        model.fit(x)
    assert calls["n"] <= 9  # stopped at once, in the sweep of the fault
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert not hasattr(model, "factors_")
    np.testing.assert_array_equal(x.coords, before.coords)
    np.testing.assert_array_equal(x.data, before.data)


def test_nan_mid_training_warn_keeps_best_state_before_fault(monkeypatch):
    x = _tensor()
    _corrupting_solve_mode(monkeypatch, bad_call=7)
    rec = Recorder()
    model = _model(max_iter=10, on_nonfinite="warn", callback=rec)
    with pytest.warns(RuntimeWarning, match=r"non-finite.*iteration 3.*best factors.*iteration 2"):
        model.fit(x)
    check_is_fitted(model)
    assert model.best_iter_ == 2
    assert [r["iteration"] for r in rec.reports] == [1, 2]  # the faulty round is not reported
    assert all(np.isfinite(a).all() for a in model.factors_)
    best = rec.factors_at(2)
    for k in (1, 2):  # the non-sample modes are the best state's, exactly
        np.testing.assert_array_equal(model.factors_[k], best[k])
    # the sample mode is re-solved (fold-in) from that state: the same exact solve
    np.testing.assert_allclose(model.factors_[0], best[0], rtol=1e-8, atol=1e-10)
    assert math.isfinite(model.score(x))
    assert np.isfinite(model.transform(x)).all()


def test_nan_in_the_first_sweep_warn_falls_back_to_the_initial_factors(monkeypatch):
    _corrupting_solve_mode(monkeypatch, bad_call=1)
    model = _model(max_iter=5, on_nonfinite="warn")
    with pytest.warns(RuntimeWarning, match="non-finite"):
        model.fit(_tensor())
    assert model.best_iter_ == 0
    assert all(np.isfinite(a).all() for a in model.factors_)


def test_nan_written_into_the_state_by_a_callback_is_caught_next_round():
    """The reported factors are the live state: corrupting them is a fault caught at once."""

    def corrupt(info):
        info["factors"][1][0, 0] = float("nan")

    rec = Recorder(corrupt, at=3)
    model = _model(max_iter=10, on_nonfinite="warn", callback=rec)
    with pytest.warns(RuntimeWarning, match=r"iteration 4"):
        model.fit(_tensor())
    assert model.best_iter_ == 3
    assert all(np.isfinite(a).all() for a in model.factors_)


@pytest.mark.parametrize("on_nonfinite", ["raise", "warn"])
def test_nan_in_the_hyperlearn_solver(on_nonfinite):
    def corrupt(info):
        for a in info["factors"]:
            a.fill_(float("nan"))

    rec = Recorder(corrupt, at=2)
    model = _model(
        solver="hyperlearn",
        init="random",
        max_iter=5,
        n_steps=2,
        hidden=4,
        n_terms=2,
        on_nonfinite=on_nonfinite,
        callback=rec,
    )
    if on_nonfinite == "raise":
        with pytest.raises(FloatingPointError, match="non-finite"):
            model.fit(_tensor())
        with pytest.raises(NotFittedError):
            check_is_fitted(model)
    else:
        with pytest.warns(RuntimeWarning, match="non-finite"):
            model.fit(_tensor())
        assert model.best_iter_ == 2
        assert all(np.isfinite(a).all() for a in model.factors_)


# ---------------------------------------------------------------------------- callback
@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_callback_returning_true_stops_cleanly(solver):
    rec = Recorder(lambda info: True, at=2)
    extra = {"init": "random", "n_steps": 2, "hidden": 4, "n_terms": 2} if solver != "als" else {}
    model = _model(solver=solver, max_iter=20, callback=rec, **extra).fit(_tensor())
    assert model.n_iter_ == 2
    assert len(model.loss_history_) == 2
    assert [r["iteration"] for r in rec.reports] == [1, 2]
    assert all(np.isfinite(a).all() for a in model.factors_)


def test_callback_receives_loss_and_factors_each_round():
    rec = Recorder()
    x = _tensor()
    model = _model(max_iter=4, callback=rec).fit(x)
    assert [r["iteration"] for r in rec.reports] == [1, 2, 3, 4]
    for r, loss in zip(rec.reports, model.loss_history_, strict=True):
        assert {"iteration", "loss", "time", "factors"} <= set(r)
        assert r["loss"] == loss and math.isfinite(r["loss"])
        assert [a.shape for a in r["factors"]] == [(n, 3) for n in SHAPE]
    losses = [r["loss"] for r in rec.reports]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(losses))
    for k in (1, 2):
        np.testing.assert_array_equal(model.factors_[k], rec.reports[-1]["factors"][k])


# ---------------------------------------------------------------------------- warm start
def test_warm_start_continues_the_exact_solver_trajectory():
    x = _tensor()
    single = _model(max_iter=10).fit(x)
    model = _model(max_iter=5).fit(x)
    first = list(model.loss_history_)
    model.set_params(warm_start=True)
    model.fit(x)
    history = model.loss_history_
    assert len(history) == 10
    assert history[:5] == first
    assert history[5] <= history[4] * (1 + 1e-10)  # J keeps decreasing across the restart
    assert all(b <= a * (1 + 1e-10) for a, b in itertools.pairwise(history))
    np.testing.assert_allclose(history, single.loss_history_, rtol=1e-6)
    for a, b in zip(model.factors_, single.factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_warm_start_without_previous_fit_uses_init():
    x = _tensor()
    a = _model(max_iter=3, warm_start=True).fit(x)
    b = _model(max_iter=3).fit(x)
    np.testing.assert_allclose(a.loss_history_, b.loss_history_)


def test_warm_start_observed_loss_keeps_biases():
    x = _tensor()
    model = _model(max_iter=3, loss="observed", alpha=1e-3).fit(x)
    j3 = model.loss_history_[-1]
    model.set_params(warm_start=True, max_iter=2)
    model.fit(x)
    assert len(model.loss_history_) == 5
    assert model.loss_history_[3] <= j3 * (1 + 1e-8)


# ---------------------------------------------------------------------------- KeyboardInterrupt
def test_keyboard_interrupt_in_callback_keeps_best_factors():
    def interrupt(info):
        raise KeyboardInterrupt

    rec = Recorder(interrupt, at=3)
    model = _model(max_iter=20, callback=rec)
    with pytest.warns(UserWarning, match=r"interrupted after 3 iterations.*best factors"):
        model.fit(_tensor())
    check_is_fitted(model)
    assert model.n_iter_ == 3
    assert model.best_iter_ == 3
    best = rec.factors_at(3)
    for k in (1, 2):
        np.testing.assert_array_equal(model.factors_[k], best[k])
    assert all(np.isfinite(a).all() for a in model.factors_)


def test_keyboard_interrupt_inside_a_sweep_keeps_the_last_complete_sweep(monkeypatch):
    real = als_module.solve_mode
    calls = {"n": 0}

    def solve_mode(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # second solve of sweep 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(als_module, "solve_mode", solve_mode)
    rec = Recorder()
    model = _model(max_iter=20, callback=rec)
    with pytest.warns(UserWarning, match=r"interrupted after 2 iterations.*iteration 2"):
        model.fit(_tensor())
    assert model.best_iter_ == 2
    for k in (1, 2):
        np.testing.assert_array_equal(model.factors_[k], rec.factors_at(2)[k])


# ---------------------------------------------------------------------------- memory guard
_SIZE = r"(\d+(?:\.\d+)?) (B|KiB|MiB|GiB)"


def _size(text):
    value, unit = re.search(_SIZE, text).groups()
    return float(value) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_memory_guard_refuses_before_any_work(monkeypatch, solver):
    def forbidden(*args, **kwargs):
        raise AssertionError("work started although the memory guard should have refused")

    for name in ("run_rounds", "initial_state"):
        monkeypatch.setattr(fit_module, name, forbidden)
    monkeypatch.setattr(fit_module.Problem, "build", forbidden)
    model = _model(solver=solver, max_memory="1KB")
    with pytest.raises(MemoryError, match=r"max_memory") as err:
        model.fit(_tensor())
    message = str(err.value)
    assert "max_memory='1KB'" in message
    estimated = _size(message.split("estimated", 1)[1])
    assert estimated > 1024
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_memory_guard_lets_a_fit_within_the_limit_through():
    x = _tensor()
    model = _model(max_iter=2, max_memory="8GB").fit(x)
    estimate = model.memory_estimate_
    assert isinstance(estimate, int) and 0 < estimate <= parse_bytes("8GB")
    # the estimate of an unconstrained fit is a limit the fit respects (chunks shrink to fit)
    tight = _model(max_iter=2, max_memory=estimate).fit(x)
    assert tight.memory_estimate_ <= estimate
    np.testing.assert_allclose(tight.loss_history_, model.loss_history_, rtol=1e-10)


def test_memory_estimate_grows_with_entries_and_rank():
    small = _model(max_iter=1).fit(_tensor()).memory_estimate_
    big_rank = _model(max_iter=1, rank=12).fit(_tensor()).memory_estimate_
    big_x = _model(max_iter=1, laplacians=None).fit(_tensor((40, 30, 20))).memory_estimate_
    assert big_rank > small and big_x > small


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1024, 1024),
        (2.5e9, 2_500_000_000),
        ("4GB", 4 * 2**30),
        ("4 GiB", 4 * 2**30),
        ("512MiB", 512 * 2**20),
        ("512 mb", 512 * 2**20),
        ("1.5G", int(1.5 * 2**30)),
        ("100", 100),
        ("64K", 64 * 2**10),
        (" 2T ", 2 * 2**40),
    ],
)
def test_parse_bytes(value, expected):
    assert parse_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        ("lots", ValueError),
        ("0GB", ValueError),
        ("-1GB", ValueError),
        ("4 PB", ValueError),
        (0, ValueError),
        (-5, ValueError),
        (True, TypeError),
        (None, TypeError),
        ([4], TypeError),
    ],
)
def test_parse_bytes_refuses(value, exc):
    with pytest.raises(exc, match="max_memory"):
        parse_bytes(value)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2**20) == "1.00 MiB"
    assert format_bytes(3 * 2**30) == "3.00 GiB"


# ---------------------------------------------------------------------------- measured peak
_CHILD = textwrap.dedent(
    """
    import gc, json, sys
    import numpy as np, psutil, sparse, torch
    torch.set_num_threads(1)
    from skhyperlearn import HyperLearnDecomposition

    shape, nnz = (4000, 2000, 1000), 2_000_000
    rng = np.random.default_rng(0)
    linear = np.unique(rng.integers(0, int(np.prod(shape)), nnz))
    rng.shuffle(linear)
    coords = np.stack(np.unravel_index(linear, shape)).astype(np.int64)
    del linear
    x = sparse.COO(coords, rng.random(coords.shape[1]) + 0.5, shape=shape,
                   has_duplicates=False, sorted=False)
    model = HyperLearnDecomposition(rank=16, loss=sys.argv[1], max_iter=1, tol=0.0,
                                    random_state=0, max_memory="600MB")
    gc.collect()
    rss = psutil.Process().memory_info().rss

    def high_water():
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    # Building the input can peak above the fit (the single-copy layout is that lean), so the
    # process's high-water mark is reset first (Linux: "5" to clear_refs) and read after the fit.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    peak0 = high_water()
    model.fit(x)
    peak1 = high_water()
    print(json.dumps({"rss": rss, "peak0": peak0, "peak1": peak1,
                      "estimate": model.memory_estimate_}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB on Linux")
@pytest.mark.parametrize("loss", ["hypergraph", "implicit"])
def test_measured_peak_of_a_moderate_fit_is_within_the_estimate(loss):
    """2·10⁶ entries under max_memory="600MB": chunks shrink, the peak stays within both."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, loss],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # the high-water mark was reset to the current RSS before the fit: after it, it is the fit's
    assert r["peak1"] >= r["peak0"]
    measured = r["peak1"] - r["rss"]
    assert 0 < measured <= r["estimate"], (format_bytes(measured), format_bytes(r["estimate"]))
    assert measured <= parse_bytes("600MB")


def test_no_warning_on_a_clean_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = _model(max_iter=3).fit(_tensor())
    assert all(np.isfinite(a).all() for a in model.factors_)
