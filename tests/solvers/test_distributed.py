"""The distributed schedule (torch.distributed, gloo on 127.0.0.1), checkpoints and faults.

Multi-process runs use free ports on 127.0.0.1 only and are bounded by ``communicate(timeout)``
(a guard against a hang, not a timing assertion). References: the single-process parallel
schedule (the same Jacobi rounds in one process) and the uninterrupted fit.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _gloo import free_port, gloo_env, launch, wait

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.hypergraph import Hypergraph

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).resolve().parents[1] / "_distributed_worker.py")
PARAMS = dict(rank=3, solver="hyperlearn", max_iter=6, tol=0.0, init_iter=2, random_state=0)
GUARD = 240  # seconds before a run counts as hung (the tests' own safety net)


def _launch(cfg: dict, world: int = 3):
    return launch(WORKER, cfg, world)


def _wait(procs, timeout=GUARD) -> list[tuple[int, str]]:
    return wait(procs, timeout)


def _data(shape):
    data = make_hypergraph(shape, rank=3, random_state=0)
    return Hypergraph(data.tensor.astype("float32"), data.laplacians)


def _reference(shape, **params):
    """The single-process parallel schedule: what every distributed run must give."""
    model = HyperLearnDecomposition(**{**PARAMS, **params}, schedule="parallel")
    return model.fit(_data(shape))


def _assert_same_fit(got, ref):
    # float32 tolerance: the ranks run the same float32 arithmetic as the reference.
    np.testing.assert_allclose(got.loss_history_, ref.loss_history_, rtol=1e-5)
    for a, b in zip(got.factors_, ref.factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


def test_distributed_torchrun_three_gloo_ranks_match_parallel(tmp_path):
    # 4 modes on 3 ranks: rank 0 owns modes 0 and 3, so one rank serves two modalities.
    shape = (20, 15, 10, 8)
    data = tmp_path / "X.pkl"
    data.write_bytes(pickle.dumps(_data(shape)))
    out = tmp_path / "model.pkl"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "3",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "skhyperlearn.distributed", "--data", str(data), "--rank", "3",
        "--max-iter", "6", "--tol", "0", "--params", json.dumps({"init_iter": 2}),
        "--backend", "gloo", "--timeout", "60", "--output", str(out),
    ]  # fmt: skip
    run = subprocess.run(
        cmd, env=gloo_env(), capture_output=True, text=True, timeout=GUARD, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    model = pickle.loads(out.read_bytes())
    ref = _reference(shape)
    _assert_same_fit(model, ref)
    # An ordinary estimator on this side: every mode's block gathered, transform works.
    assert model.schedule == "distributed" and len(model.blocks_) == 4
    np.testing.assert_allclose(
        model.transform(_data(shape)), ref.transform(_data(shape)), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("fault", ["die", pytest.param("hang", marks=pytest.mark.slow)])
def test_distributed_failed_rank_ends_the_others_within_timeout(fault):
    timeout = 8
    cfg = dict(
        shape=[20, 15, 10], params=PARAMS, timeout=timeout, fault=fault, fault_rank=2,
        fault_round=2,
    )  # fmt: skip
    procs = _launch(cfg)
    # The survivors must end on their own (the guard is far above the timeout)...
    try:
        results = _wait(procs[:2], timeout=timeout + 90)
    finally:
        procs[2].kill()  # the planted rank: dead already, or asleep
        procs[2].wait()
    for code, err in results:
        assert code != 0
        # ...with the error naming the failed collective, not a hang or a bare traceback.
        assert "DistributedFault" in err and "broadcast" in err, err[-2000:]


@pytest.mark.slow  # two launches of 3 processes: about 2 minutes on 2 shared cores
def test_distributed_resume_from_checkpoint_reproduces_uninterrupted_run(tmp_path):
    shape = (20, 15, 10)
    cfg = dict(shape=list(shape), params=PARAMS, timeout=30, checkpoint=str(tmp_path / "ck"),
               every=2, output=str(tmp_path / "model.pkl"))  # fmt: skip
    # Rank 1 fails after round 5: every rank keeps round 4, none saves round 5.
    crashed = _wait(_launch(dict(cfg, fault="raise", fault_rank=1, fault_round=5)))
    assert all(code != 0 for code, _ in crashed)
    assert "planted failure" in crashed[1][1]
    assert not (tmp_path / "model.pkl").exists()
    for r in range(3):
        saved = __import__("torch").load(tmp_path / f"ck.rank{r}of3", weights_only=False)
        assert saved["iteration"] == 4
    resumed = _wait(_launch(cfg))
    assert all(code == 0 for code, _ in resumed), resumed
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    _assert_same_fit(model, _reference(shape))


@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_distributed_checkpoint_resume_single_process(tmp_path, solver):
    X = _data((20, 15, 10))
    params = dict(PARAMS, solver=solver, schedule="sequential")
    full = HyperLearnDecomposition(**params).fit(X)

    def crash(info):
        if info["iteration"] == 5:
            raise KeyError("planted crash")

    path = tmp_path / "fit.ckpt"
    with pytest.raises(KeyError, match="planted crash"):
        HyperLearnDecomposition(**params, callback=crash).fit(X, checkpoint=path,
                                                              checkpoint_every=2)  # fmt: skip
    assert (path.parent / "fit.ckpt.prev").exists()  # rounds 2 and 4 were saved
    resumed = HyperLearnDecomposition(**params).fit(X, checkpoint=path, checkpoint_every=2)
    np.testing.assert_array_equal(resumed.loss_history_, full.loss_history_)
    for a, b in zip(resumed.factors_, full.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    # A checkpoint of another fit is refused, not silently mixed in.
    with pytest.raises(ValueError, match="another fit"):
        HyperLearnDecomposition(**dict(params, rank=2)).fit(X, checkpoint=path)


def test_distributed_schedule_needs_a_process_group():
    model = HyperLearnDecomposition(**PARAMS, schedule="distributed")
    with pytest.raises(ValueError, match="process group"):
        model.fit(_data((20, 15, 10)))
    assert not hasattr(model, "factors_")


@pytest.mark.parametrize("every", [0, 1.5, "2"])
def test_distributed_checkpoint_every_is_checked(tmp_path, every):
    with pytest.raises(ValueError, match="checkpoint_every"):
        HyperLearnDecomposition(**PARAMS).fit(
            _data((20, 15, 10)), checkpoint=tmp_path / "c", checkpoint_every=every
        )
