"""The compiled kernels are cached across processes: a second process compiles none of them.

Reference: numba's own per-dispatcher statistics (cache hits and misses). Two fresh processes
share one ``NUMBA_CACHE_DIR``; the first compiles and saves, the second must load every kernel
the same fits call. A kernel whose key holds something no other process can match (a compiled
function passed as an argument did) is compiled again by every process, the cache's index
growing each time (and saving it could fail, as it did under torchrun).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json
from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.hypergraph import Hypergraph
from skhyperlearn._numerics._cpu import _fused_cg_numba, _fused_numba

data = make_hypergraph((30, 20, 10), rank=3, random_state=0)
graphs = list(data.laplacians)
graphs[1] = None  # the per-row CG there, the operator's passes on the modes with a graph
X = Hypergraph(data.tensor.astype("float64"), graphs)
HyperLearnDecomposition(rank=3, max_iter=3, random_state=0).fit(X)  # projections: 2-way terms
HyperLearnDecomposition(rank=3, max_iter=3, random_state=0, loss="hypergraph").fit(X)
stats = {}
for module in (_fused_numba, _fused_cg_numba):
    for name, d in vars(module).items():
        if hasattr(d, "stats") and getattr(d, "signatures", None):
            hits, misses = d.stats.cache_hits, d.stats.cache_misses
            stats[name] = [sum(hits.values()), sum(misses.values())]
print(json.dumps(stats))
"""


def _run(cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("SKHYPERLEARN_NO_NUMBA", None)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600,
        cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    first = _run(tmp_path)
    assert {"row_value", "row_apply", "row_rhs_diag", "row_cg"} <= set(first)
    assert sum(misses for _, misses in first.values()) > 0  # the first one compiled them
    second = _run(tmp_path)
    # Helpers inlined into a kernel are compiled with it, and not at all once it is loaded.
    assert {"row_value", "row_apply", "row_rhs_diag", "row_cg"} <= set(second) <= set(first)
    assert "_rows3" in second  # the MTTKRP of an order-3 tensor (the hypergraph loss)
    recompiled = {name: m for name, (_, m) in second.items() if m}
    assert not recompiled, recompiled
    assert all(hits > 0 for hits, _ in second.values())
