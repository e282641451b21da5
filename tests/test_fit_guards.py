"""Guards a fit applies before and after its work: memory, the loss chosen, true warnings.

References: the fit's own memory estimate against the machine's (faked where a test needs a
small machine), a planted low-rank tensor (recovered by ``loss="auto"`` as by the hypergraph
loss), the presence target of the implicit loss (a fit of counts ×10¹⁵ predicts about 1, so
nothing collapsed), and J at the start of the HyperLearn solver's rounds.
"""

import numpy as np
import pytest
import sparse

from skhyperlearn import HyperLearnDecomposition, _memory
from skhyperlearn.datasets import make_hypergraph


def _small():
    data = make_hypergraph((12, 10, 8), rank=3, n_entries=150, random_state=0)
    return data.tensor, data.laplacians


def _snapshot(X):
    return X.coords.copy(), X.data.copy()


def _assert_unchanged(X, snap):
    np.testing.assert_array_equal(X.coords, snap[0])
    np.testing.assert_array_equal(X.data, snap[1])


# ---------------------------------------------------------------------------- memory
def test_huge_modes_refused_by_the_fits_own_estimate():
    n = 10**9
    coords = np.tile(np.arange(5), (3, 1))
    X = sparse.COO(coords, np.ones(5), shape=(n, n, n), sorted=True, has_duplicates=False)
    room = _memory.available_bytes()
    if room is None or room > 10**12:
        pytest.skip("this machine's available memory is unknown or above the estimate")
    snap = _snapshot(X)
    model = HyperLearnDecomposition(rank=10)
    expected = (
        r"max_memory=None: the fit needs an estimated 4366\.\d+ GiB but this machine has .* "
        r"available.*max_memory='unlimited'"
    )
    with pytest.raises(MemoryError, match=expected):
        model.fit(X)
    assert not hasattr(model, "factors_")
    _assert_unchanged(X, snap)


def test_memory_guard_uses_the_machines_memory_unless_told_otherwise(monkeypatch):
    X, laps = _small()
    params = dict(rank=3, laplacians=laps, max_iter=2, tol=0.0, random_state=0)
    monkeypatch.setattr("skhyperlearn._decomposition.available_bytes", lambda: 10**5)
    with pytest.raises(MemoryError, match=r"has 97\.66 KiB available"):
        HyperLearnDecomposition(**params).fit(X)
    # "unlimited" turns the guard off; a size of the caller's replaces the machine's.
    free = HyperLearnDecomposition(**params, max_memory="unlimited").fit(X)
    own = HyperLearnDecomposition(**params, max_memory="1GB").fit(X)
    monkeypatch.setattr("skhyperlearn._decomposition.available_bytes", lambda: None)
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
