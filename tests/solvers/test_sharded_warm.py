"""``python -m skhyperlearn.distributed --warm``: the compiled kernels cached before the ranks.

Reference: the signatures numba compiles. After ``--warm`` (which must read nothing of the data
but the manifest), fitting the data itself must compile no new signature: each rank of a group
then only loads kernels from the cache. Run in a fresh process with its own cache folder, so
that no earlier test has compiled them already.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the workers' folder
from _gloo import free_port, gloo_env
from _sharded_worker import whole

from skhyperlearn.distributed import __main__ as entry
from skhyperlearn.distributed._shards import write_shards

ROOT = Path(__file__).resolve().parents[2]
GUARD = 240  # seconds before a run counts as hung (a safety net, not a timing assertion)

_SCRIPT = """
import json, sys
from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.distributed import __main__ as entry, _shards
from skhyperlearn._numerics._cpu import _fused_cg_numba, _fused_numba

def signatures():
    return {
        f"{m.__name__}.{n}": {str(s) for s in d.signatures}
        for m in (_fused_numba, _fused_cg_numba) for n, d in vars(m).items()
        if hasattr(d, "signatures")
    }

folder, params = sys.argv[1], json.loads(sys.argv[2])
read_shard = _shards.read_shard

def refuse(*args, **kwargs):
    raise AssertionError("--warm read the entries")

_shards.read_shard = refuse
code = entry.main(["--data", folder, "--solver", "als", "--rank", "3", "--tol", "0",
                   "--params", json.dumps(params), "--warm"])
warmed = signatures()
X = read_shard(folder, 0, 1)
HyperLearnDecomposition(rank=3, solver="als", max_iter=2, tol=0, schedule="sequential",
                        random_state=0, **params).fit(X)
fitted = signatures()
added = {k: sorted(fitted[k] - warmed.get(k, set())) for k in fitted}
new = {k: v for k, v in added.items() if v}
print(json.dumps({"code": code, "warmed": sum(map(len, warmed.values())), "new": new}))
"""


@pytest.mark.parametrize(
    "params, no_graph",
    [
        ({"loss": "hypergraph", "init": "random"}, ()),
        # Mode 1 without a graph: the compiled per-row CG there, the operator elsewhere.
        ({"loss": "implicit", "init": "random"}, (1,)),
    ],
)
def test_warm_compiles_every_kernel_the_fit_calls_reading_only_the_manifest(
    tmp_path, params, no_graph
):
    folder = write_shards(whole((20, 15, 10), counts=True, no_graph=no_graph), tmp_path / "s", 2)
    env = gloo_env(NUMBA_CACHE_DIR=tmp_path / "numba-cache")
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(folder), json.dumps(params)],
        env=env, capture_output=True, text=True, timeout=GUARD, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["code"] == 0
    assert out["warmed"] > 0
    assert out["new"] == {}, out["new"]
    assert any((tmp_path / "numba-cache").rglob("*.nbi"))


def test_warm_needs_a_description_of_the_data(tmp_path, capsys):
    path = tmp_path / "X.pkl"
    path.write_bytes(b"not read")
    with pytest.raises(SystemExit) as info:
        entry.main(["--data", str(path), "--warm"])
    assert info.value.code == 2
    assert "--warm reads the data's description" in capsys.readouterr().err


@pytest.mark.slow  # a torchrun launch of 2 processes
def test_warm_under_torchrun_records_each_ranks_memory_without_the_data(tmp_path):
    folder = write_shards(whole((20, 15, 10)), tmp_path / "s", 2)
    stats = tmp_path / "warm.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "skhyperlearn.distributed", "--data", str(folder), "--solver", "als",
        "--rank", "3", "--params", json.dumps({"loss": "hypergraph", "init": "random"}),
        "--backend", "gloo", "--timeout", "60", "--warm", "--stats", str(stats),
    ]  # fmt: skip
    run = subprocess.run(cmd, env=gloo_env(), capture_output=True, text=True, timeout=GUARD)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(stats.read_text())
    assert got["world_size"] == 2 and got["warm"] is True
    assert got["nnz_per_rank"] == [0, 0]
    assert all(p >= i > 0 for p, i in zip(got["peak_rss"], got["import_rss"], strict=True))
    assert sum("compiled kernels ready" in ln for ln in run.stdout.splitlines()) == 1
