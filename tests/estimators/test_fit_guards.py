"""Guards a fit applies before and after its work: memory, the loss chosen, true warnings.

References: the fit's own memory estimate against the machine's (faked where a test needs a
small machine), a planted low-rank tensor (recovered by ``loss="auto"`` as by the hypergraph
loss), the presence target of the implicit loss (a fit of counts ×10¹⁵ predicts about 1, so
nothing collapsed), and J at the start of the HyperLearn solver's rounds.
"""

import warnings

import numpy as np
import pytest
import sparse
from _snapshot import assert_same, snapshot
from sklearn.exceptions import ConvergenceWarning

from skhyperlearn import HyperLearnDecomposition, _memory
from skhyperlearn.datasets import make_hypergraph


def _small():
    data = make_hypergraph((12, 10, 8), rank=3, n_entries=150, random_state=0)
    return data.tensor, data.laplacians


# ---------------------------------------------------------------------------- memory
def test_huge_modes_refused_by_the_fits_own_estimate():
    n = 10**9
    coords = np.tile(np.arange(5), (3, 1))
    X = sparse.COO(coords, np.ones(5), shape=(n, n, n), sorted=True, has_duplicates=False)
    room = _memory.available_bytes()
    if room is None or room > 10**12:
        pytest.skip("this machine's available memory is unknown or above the estimate")
    snap = snapshot(X)
    model = HyperLearnDecomposition(rank=10)
    expected = (
        r"max_memory=None: the fit needs an estimated \d+\.\d+ GiB but this machine has .* "
        r"available.*max_memory='unlimited'"
    )
    with pytest.raises(MemoryError, match=expected):
        model.fit(X)
    assert not hasattr(model, "factors_")
    assert_same(snap, snapshot(X))


def test_memory_guard_uses_the_machines_memory_unless_told_otherwise(monkeypatch):
    X, laps = _small()
    params = dict(rank=3, laplacians=laps, max_iter=2, tol=0.0, random_state=0)
    monkeypatch.setattr("skhyperlearn.solvers._fit.available_bytes", lambda: 10**5)
    with pytest.raises(MemoryError, match=r"has 97\.66 KiB available"):
        HyperLearnDecomposition(**params).fit(X)
    # "unlimited" turns the guard off; a size of the caller's replaces the machine's.
    free = HyperLearnDecomposition(**params, max_memory="unlimited").fit(X)
    own = HyperLearnDecomposition(**params, max_memory="1GB").fit(X)
    monkeypatch.setattr("skhyperlearn.solvers._fit.available_bytes", lambda: None)
    unknown = HyperLearnDecomposition(**params).fit(X)
    for a, b, c in zip(free.factors_, own.factors_, unknown.factors_, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


def test_available_bytes_reads_meminfo_and_cgroup_and_falls_back(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  8000 kB\nMemFree: 100 kB\nMemAvailable:    1234 kB\n")
    assert _memory._read_int(str(meminfo), "MemAvailable") == 1234 * 1024
    assert _memory._read_int(str(tmp_path / "missing"), "MemAvailable") is None
    (tmp_path / "max").write_text("max\n")
    assert _memory._read_int(str(tmp_path / "max")) is None
    files = {"/proc/meminfo": None, "/sys/fs/cgroup/memory.max": 5000,
             "/sys/fs/cgroup/memory.current": 3000}  # fmt: skip
    monkeypatch.setattr(_memory, "_read_int", lambda path, field=None: files.get(path))
    assert _memory.available_bytes() == 2000  # the cgroup's room is below the free pages
    files["/sys/fs/cgroup/memory.max"] = None
    assert _memory.available_bytes() > 0  # os.sysconf's free pages

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(_memory.os, "sysconf", no_sysconf)
    assert _memory.available_bytes() is None


# ---------------------------------------------------------------------------- loss="auto"
def test_auto_loss_recovers_a_dense_real_valued_planted_tensor():
    rng = np.random.RandomState(0)
    planted = [rng.rand(n, 4) for n in (20, 15, 10)]
    X = np.einsum("ir,jr,kr->ijk", *planted)
    before = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        default = HyperLearnDecomposition(random_state=0).fit(X)
        paper = HyperLearnDecomposition(loss="hypergraph", random_state=0).fit(X)
    assert default.loss_ == "hypergraph"
    model = np.einsum("ir,jr,kr->ijk", *default.factors_)
    assert np.linalg.norm(model - X) / np.linalg.norm(X) < 1e-3
    for a, b in zip(default.factors_, paper.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(X, before)


def _coo(values, shape=(10, 8, 6), nnz=40, seed=0):
    rng = np.random.RandomState(seed)
    cells = rng.choice(int(np.prod(shape)), nnz, replace=False)
    coords = np.array(np.unravel_index(np.sort(cells), shape))
    return sparse.COO(coords, values(rng, nnz), shape=shape)


@pytest.mark.parametrize(
    "values, expected",
    [
        (lambda rng, n: np.ones(n), "implicit"),  # presence
        (lambda rng, n: rng.randint(1, 9, n).astype(float), "implicit"),  # counts as floats
        (lambda rng, n: rng.randint(1, 9, n), "implicit"),  # integer counts
        (lambda rng, n: np.ones(n, dtype=bool), "implicit"),
        (lambda rng, n: rng.rand(n) + 0.1, "hypergraph"),  # non-negative real values
        (lambda rng, n: rng.randint(1, 9, n) + 0.5, "hypergraph"),
        (lambda rng, n: rng.randn(n), "hypergraph"),  # signed
    ],
    ids=["presence", "float-counts", "int-counts", "bool", "real", "halves", "signed"],
)
def test_auto_loss_follows_what_the_values_are(values, expected):
    X = _coo(values)
    snap = snapshot(X)
    model = HyperLearnDecomposition(rank=2, max_iter=2, tol=0.0, random_state=0).fit(X)
    assert model.loss_ == expected
    assert_same(snap, snapshot(X))


def test_auto_loss_reads_a_mostly_filled_count_tensor_as_values():
    shape = (6, 5, 4)
    n = int(np.prod(shape))
    sparse_counts = _coo(lambda rng, k: rng.randint(1, 4, k).astype(float), shape, n // 2)
    filled = _coo(lambda rng, k: rng.randint(1, 4, k).astype(float), shape, n // 2 + 1)
    fit = dict(rank=2, max_iter=2, tol=0.0, random_state=0)
    assert HyperLearnDecomposition(**fit).fit(sparse_counts).loss_ == "implicit"
    assert HyperLearnDecomposition(**fit).fit(filled).loss_ == "hypergraph"


# ---------------------------------------------------------------------------- true warnings
def _collapse_warnings(record):
    return [str(w.message) for w in record if "collapsed" in str(w.message)]


def test_implicit_loss_at_a_huge_scale_predicts_presence_without_a_collapse_warning():
    X, _ = _small()
    big = X * 1e15
    snap = snapshot(big)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = HyperLearnDecomposition(rank=3, max_iter=20, random_state=0).fit(big)
    assert model.loss_ == "implicit"
    assert _collapse_warnings(record) == []
    # The presence model, nothing collapsed: with confidence="auto" relative to the typical
    # stored value, the same predictions as the fit of X itself, well above zero.
    pred = model.reconstruct(big.coords.T)
    reference = HyperLearnDecomposition(rank=3, max_iter=20, random_state=0).fit(X)
    np.testing.assert_allclose(pred, reference.reconstruct(X.coords.T), rtol=1e-3)
    assert np.median(pred) > 0.3
    assert_same(snap, snapshot(big))


@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1.0, 1e10])
def test_hypergraph_loss_in_float64_warns_of_no_collapse_at_any_scale(scale):
    X, _ = _small()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = HyperLearnDecomposition(3, loss="hypergraph", max_iter=10, random_state=0)
        model.fit(X * scale)
    assert _collapse_warnings(record) == []
    assert max(np.abs(a).max() for a in model.factors_) > 0


def test_float32_values_too_small_warn_that_they_underflow():
    X, _ = _small()
    tiny = (X * 1e-30).astype(np.float32)
    snap = snapshot(tiny)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = HyperLearnDecomposition(3, loss="hypergraph", max_iter=10, random_state=0)
        model.fit(tiny)
    assert np.all(model.reconstruct(tiny.coords.T) == 0)  # the outcome the warning explains
    (message,) = _collapse_warnings(record)
    assert "too small for float32" in message and "underflow" in message
    assert "alpha" not in message  # the ridge is not the cause (alpha=0)
    assert_same(snap, snapshot(tiny))


# ---------------------------------------------------------------------------- HyperLearn solver
HL_SMALL = dict(n_terms=3, hidden=8, n_steps=2, learning_rate=1e-2, init_iter=3)


def test_hyperlearn_under_the_solved_scale_keeps_its_best_state_and_says_it_rose():
    data = make_hypergraph((30, 24, 18), rank=3, n_entries=1500, random_state=0)
    snap = snapshot(data.tensor)
    params = dict(rank=3, laplacians=data.laplacians, projection_weight=0.0, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = HyperLearnDecomposition(**params, solver="hyperlearn", max_iter=15, **HL_SMALL)
        model.fit(data.tensor)
    assert model.factor_scale_ == "solved"
    rose = [str(w.message) for w in record if "ended above their start" in str(w.message)]
    assert len(rose) == 1 and "keeps the best state reached (the start)" in rose[0]
    # Every round climbed J: the start is kept, so the fit is the exact sweeps' (the same
    # sweeps as the exact solver's first three, then the same fold-in of the sample mode).
    assert model.best_iter_ == 0
    assert np.all(np.diff(model.loss_history_) > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exact = HyperLearnDecomposition(**params, max_iter=HL_SMALL["init_iter"], init="svd")
        exact.fit(data.tensor)
    for a, b in zip(model.factors_, exact.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_same(snap, snapshot(data.tensor))


def _monitor_on_a_small_problem():
    from skhyperlearn.solvers._monitor import Monitor
    from skhyperlearn.solvers._problem import Problem, State

    X, _ = _small()
    coords = X.coords.T.astype(np.int64)
    problem = Problem.build(
        coords, X.data, X.shape, [None] * 3, loss="hypergraph", lam=1.0, alpha=0.0, bias=False,
        devices=[__import__("torch").device("cpu")] * 3, normalize=True,
    )  # fmt: skip
    rng = np.random.RandomState(0)
    state = State(problem.place([rng.rand(n, 2) for n in X.shape]))
    monitor = Monitor(problem, by_loss=True)
    monitor.seed(state)
    return monitor, state


def _info(state, iteration, loss):
    return dict(iteration=iteration, loss=loss, factors=state.factors, biases=None, mean=0.0)


def test_monitor_by_loss_keeps_the_lowest_j_and_reports_a_rise():
    monitor, state = _monitor_on_a_small_problem()
    j0 = monitor.start_loss
    assert j0 > 0 and monitor.best_iter == 0
    for it in (1, 2):
        monitor(_info(state, it, j0 * (1 + it)))
    assert monitor.best_iter == 0
    assert "J went from" in monitor.rise_message() and "(the start)" in monitor.rise_message()
    # A round below the start is kept; ending below the start reports nothing.
    monitor(_info(state, 3, 0.5 * j0))
    monitor(_info(state, 4, 0.7 * j0))
    assert monitor.best_iter == 3 and monitor.rise_message() is None


def test_monitor_without_by_loss_keeps_the_latest_state_under_the_solved_scale():
    monitor, state = _monitor_on_a_small_problem()
    monitor.by_loss = False
    monitor(_info(state, 1, 10.0))
    monitor(_info(state, 2, 20.0))
    assert monitor.best_iter == 2
