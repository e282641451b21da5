"""The entry-sharded schedule (torch.distributed, gloo on 127.0.0.1), its shards and faults.

Reference: the single-process sequential fit over every entry (float64), which each sharded run
must give to 1e-10 relative, every rank the same factors. Multi-process runs use free ports on
127.0.0.1 and are bounded by ``communicate(timeout)`` (a guard against a hang, not a timing
assertion).
"""

import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import sparse

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.distributed._shards import read_shard, shard_range, share_tensor, write_shards
from skhyperlearn.solvers._sharded import check_sharded
from skhyperlearn.solvers.losses import get_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the workers' folder
from _gloo import launch, wait
from _sharded_worker import whole

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).resolve().parents[1] / "_sharded_worker.py")
EXACT = dict(rank=3, solver="als", max_iter=5, tol=0.0, random_state=0, init="random")
HYPERGRAPH = dict(EXACT, loss="hypergraph")
# confidence="auto": the median of the values over every rank (counts 1..3, an even count).
IMPLICIT = dict(EXACT, loss="implicit", mode_solve="exact", projection_weight=0.0)
# The default mode solve: a few CG steps per sweep, each step's stored-entry product reduced.
IMPLICIT_CG = dict(EXACT, loss="implicit", projection_weight=0.0)


def _launch(cfg: dict, world: int):
    return launch(WORKER, cfg, world)


def _wait(procs, timeout=240):
    return wait(procs, timeout)


def _run(cfg: dict, world: int):
    results = _wait(_launch(cfg, world))
    for code, err in results:
        assert code == 0, err[-3000:]


def _assert_matches_single_process(out: Path, world: int, shape, params, counts=False, bare=()):
    X = whole(shape, counts, bare)
    ref = HyperLearnDecomposition(**params, schedule="sequential").fit(X)
    first = np.load(out / "factors0.npz")
    for r in range(world):
        got = np.load(out / f"factors{r}.npz")
        # Every rank holds the same state: the solves ran on the same reduced sums.
        for k in range(len(shape)):
            np.testing.assert_array_equal(got[f"arr_{k}"], first[f"arr_{k}"])
    np.testing.assert_allclose(first["history"], ref.loss_history_, rtol=1e-10, atol=0)
    for k, a in enumerate(ref.factors_):
        np.testing.assert_allclose(first[f"arr_{k}"], a, rtol=0, atol=1e-10 * np.abs(a).max())
    model = pickle.loads((out / "model.pkl").read_bytes())
    assert model.confidence_ == ref.confidence_
    # An ordinary estimator on this side: transform over the whole X gives the reference's.
    np.testing.assert_allclose(
        model.transform(X), ref.transform(X), rtol=0, atol=1e-9 * np.abs(ref.factors_[0]).max()
    )
    # Rank 0 held a share of the hyperedges: it cannot say which ones were all fitted.
    queries = np.full((2, len(shape)), -1)
    queries[:, 1:] = 0
    with pytest.raises(ValueError, match="sharded over the ranks"):
        model.recommend(queries, 0, 3)
    want = ref.recommend(queries, 0, 3, exclude=X.tensor.coords.T)
    got = model.recommend(queries, 0, 3, exclude=X.tensor.coords.T)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize(
    "world, shape, params, from_files, bare, split",
    [
        # Every mode solve over row blocks, the graphs' CG steps gathering their directions.
        (2, (20, 15, 10), HYPERGRAPH, False, (), "all"),
        # The default at this size: the coupled modes solved whole on every rank.
        (2, (20, 15, 10), HYPERGRAPH, False, (1,), "auto"),
        (3, (12, 10, 8, 6), IMPLICIT, True, (), "all"),
        # Mode 1 without a graph: the single-process fit's compiled per-row CG there.
        (2, (12, 10, 8), IMPLICIT_CG, False, (1,), "auto"),
        # Nothing split: every rank repeats every solve on all-reduced sums.
        (2, (12, 10, 8), IMPLICIT_CG, False, (), "none"),
        pytest.param(1, (12, 10, 8, 6), HYPERGRAPH, True, (), "all", marks=pytest.mark.slow),
        pytest.param(4, (20, 15, 10), IMPLICIT_CG, False, (), "auto", marks=pytest.mark.slow),
        # Mode 3 (6 rows) over 4 ranks: one block empty.
        pytest.param(4, (12, 10, 8, 6), IMPLICIT, False, (0,), "all", marks=pytest.mark.slow),
    ],
)
def test_sharded_fit_equals_single_process_fit(
    tmp_path, world, shape, params, from_files, bare, split
):
    counts = params["loss"] == "implicit"
    cfg = dict(shape=list(shape), params=params, timeout=60, out=str(tmp_path), counts=counts,
               no_graph=list(bare), split=split)  # fmt: skip
    if from_files:
        # More shards than ranks: a rank reads several files, never another rank's.
        cfg["shards"] = str(write_shards(whole(shape, counts), tmp_path / "shards", world + 1))
    _run(cfg, world)
    _assert_matches_single_process(tmp_path, world, shape, params, counts, bare)
    split_modes = json.loads((tmp_path / "split.json").read_text())
    every = list(range(len(shape)))
    uncoupled = [k for k in every if k in bare or params is IMPLICIT_CG]
    assert split_modes == {"all": every, "none": [], "auto": uncoupled}[split]


def test_sharded_killed_rank_gives_an_error_naming_it_within_the_timeout(tmp_path):
    timeout = 8
    cfg = dict(shape=[20, 15, 10], params=HYPERGRAPH, timeout=timeout, out=str(tmp_path),
               fault="die", fault_rank=1, fault_round=2)  # fmt: skip
    procs = _launch(cfg, 2)
    try:
        ((code, err),) = _wait(procs[:1], timeout=timeout + 90)
    finally:
        procs[1].kill()
        procs[1].wait()
    assert code != 0
    assert "DistributedFault" in err, err[-2000:]
    assert re.search(r"(all_reduce|reduce_scatter|all_gather) of mode \d", err), err[-2000:]
    assert "rank(s) 1 never reached round 3" in err, err[-2000:]


@pytest.mark.slow  # three launches of one or two processes
def test_sharded_checkpoints_per_rank_resume_and_refuse_another_world_size(tmp_path):
    shape = (20, 15, 10)
    out = tmp_path / "out"
    out.mkdir()
    cfg = dict(shape=list(shape), params=HYPERGRAPH, timeout=30, out=str(out),
               checkpoint=str(tmp_path / "ck"), every=1)  # fmt: skip
    crashed = _wait(_launch(dict(cfg, fault="raise", fault_rank=1, fault_round=3), 2))
    assert all(code != 0 for code, _ in crashed)
    assert sorted(p.name for p in tmp_path.glob("ck.rank*of2")) == ["ck.rank0of2", "ck.rank1of2"]
    # Another number of ranks holds other shares: refused, naming the files' world size.
    ((code, err),) = _wait(_launch(cfg, 1))
    assert code != 0 and "2] ranks" in err and "same number of ranks" in err, err[-2000:]
    _run(cfg, 2)
    _assert_matches_single_process(out, 2, shape, HYPERGRAPH)


def test_shards_give_every_entry_to_exactly_one_rank(tmp_path):
    X = whole((20, 15, 10), counts=True)
    folder = write_shards(X, tmp_path / "s", 5)
    for world in (1, 2, 5):
        parts = [read_shard(folder, r, world) for r in range(world)]
        coords = np.concatenate([p.tensor.coords for p in parts], axis=1)
        values = np.concatenate([p.tensor.data for p in parts])
        np.testing.assert_array_equal(coords, X.tensor.coords)
        np.testing.assert_array_equal(values, X.tensor.data)
        assert all(p.tensor.shape == X.tensor.shape for p in parts)
        for p in parts:
            for a, b in zip(p.laplacians, X.laplacians, strict=True):
                assert abs(a - b).max() == 0
    assert [shard_range(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]


def test_shards_refuse_bad_folders_and_too_many_ranks(tmp_path):
    X = whole((20, 15, 10))
    folder = write_shards(X, tmp_path / "s", 2)
    with pytest.raises(ValueError, match="2 shards, fewer than the 3 ranks"):
        read_shard(folder, 0, 3)
    with pytest.raises(ValueError, match="new or empty folder"):
        write_shards(X, folder, 2)
    with pytest.raises(ValueError, match="n_shards"):
        write_shards(X, tmp_path / "t", 0)
    with pytest.raises(ValueError, match=r"manifest\.json"):
        read_shard(tmp_path, 0, 1)
    # A shard that does not match its manifest is named.
    np.savez(folder / "shard-00001.npz", coords=np.zeros((3, 1), np.int32), values=np.ones(1))
    with pytest.raises(ValueError, match=r"shard-00001\.npz"):
        read_shard(folder, 0, 1)
    assert isinstance(read_shard(folder, 0, 2).tensor, sparse.COO)


def test_shards_in_order_are_wrapped_without_sparse_compiled_checks(tmp_path, monkeypatch):
    # sparse.COO's own check and sort are numba functions compiled in every process (tens of
    # MiB per rank, whatever its share): shards in row-major order must not reach them.
    from sparse.numba_backend._coo import core

    X = whole((20, 15, 10), counts=True)
    folder = write_shards(X, tmp_path / "s", 3)

    def compiled(*args, **kwargs):
        raise AssertionError("sparse's compiled coordinate check or sort ran")

    monkeypatch.setattr(core, "_validate_coo_coords", compiled)
    monkeypatch.setattr(core.COO, "_sort_indices", compiled)
    for world in (1, 3):
        parts = [read_shard(folder, r, world).tensor for r in range(world)]
        coords = np.concatenate([p.coords for p in parts], axis=1)
        np.testing.assert_array_equal(coords, X.tensor.coords)
    args_share = share_tensor(X.tensor.coords, X.tensor.data, X.tensor.shape)
    np.testing.assert_array_equal(args_share.coords, X.tensor.coords)


def test_shards_out_of_order_are_sorted_and_out_of_shape_refused(tmp_path):
    X = whole((20, 15, 10), counts=True)
    folder = write_shards(X, tmp_path / "s", 1)
    name = folder / "shard-00000.npz"
    with np.load(name) as f:
        coords, values = f["coords"], f["values"]
    np.savez(name, coords=coords[:, ::-1].copy(), values=values[::-1].copy())
    got = read_shard(folder, 0, 1).tensor
    np.testing.assert_array_equal(got.coords, X.tensor.coords)
    np.testing.assert_array_equal(got.data, X.tensor.data)
    # A coordinate equal to its mode's size, named with the file and the mode.
    coords[2, -1] = 10
    np.savez(name, coords=coords, values=values)
    with pytest.raises(ValueError, match=r"shard-00000\.npz.*mode 2.*\[0, 10\)"):
        read_shard(folder, 0, 1)


@pytest.mark.parametrize(
    "solver, loss, init, match",
    [
        ("hyperlearn", get_loss("hypergraph"), "random", "solver='als'"),
        ("als", get_loss("observed"), "random", "loss in"),
        ("als", get_loss("hypergraph"), "svd", "init='svd'"),
    ],
)
def test_sharded_refuses_what_it_does_not_split(solver, loss, init, match):
    with pytest.raises(ValueError, match=match):
        check_sharded(solver, loss, init, "auto")


def test_sharded_schedule_needs_a_process_group():
    model = HyperLearnDecomposition(**HYPERGRAPH, schedule="sharded")
    with pytest.raises(ValueError, match="process group"):
        model.fit(whole((20, 15, 10)))
    assert not hasattr(model, "factors_")


@pytest.mark.parametrize(
    ("extra", "env", "match"),
    [
        (["--schedule", "distributed"], {}, "needs --schedule sharded"),
        (["--solver", "hyperlearn"], {}, "supports --solver als"),
        (["--solver", "als"], {"RANK": "0"}, "reads RANK and WORLD_SIZE"),
        (["--solver", "als"], {"RANK": "0", "WORLD_SIZE": "3"}, "fewer than the 3 ranks"),
    ],
)
def test_entry_point_refuses_a_folder_of_shards_it_cannot_use(
    tmp_path, monkeypatch, capsys, extra, env, match
):
    from skhyperlearn.distributed import __main__ as entry

    def joined(*args, **kwargs):
        raise AssertionError("the process group was joined before the arguments were checked")

    monkeypatch.setattr(entry, "init_process_group", joined)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    folder = write_shards(whole((20, 15, 10)), tmp_path / "s", 2)
    with pytest.raises(SystemExit) as info:
        entry.main(["--data", str(folder), *extra])
    assert info.value.code == 2
    assert match in capsys.readouterr().err
