"""``python -m skhyperlearn.distributed``: every option checked before anything runs (#23).

Each bad option used to be a Python traceback that did not name it (``--timeout inf``,
``--synthetic a,b``, non-JSON ``--params``, ``--lam abc``, a ``--data`` file of another kind,
``--backend nccl`` without CUDA) or, for ``--output`` into a missing folder, an error after the
whole fit. Here each one is argparse's error (exit status 2) naming the option, raised before the
process group is joined (``init_process_group`` is replaced by a tripwire). Under torchrun the
ranks that never reached a failed round are named, and only rank 0 prints unprefixed lines.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _gloo import free_port, gloo_env

from skhyperlearn.distributed import __main__ as entry

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).resolve().parents[1] / "_distributed_worker.py")
GUARD = 240  # seconds before a run counts as hung (a safety net, not a timing assertion)


@pytest.fixture
def tripwire(monkeypatch):
    """``init_process_group`` that fails the test: the checks must all come before it."""

    def joined(*args, **kwargs):
        raise AssertionError("the process group was joined before the arguments were checked")

    monkeypatch.setattr(entry, "init_process_group", joined)


def _refused(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        entry.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert match in err, err
    return err


SYN = ["--synthetic", "6,5,4"]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--synthetic", "a,b"], "--synthetic must be at least two positive integers"),
        (["--synthetic", "7"], "--synthetic must be at least two"),
        (["--synthetic", "7,0"], "--synthetic sizes must be >= 1"),
        ([*SYN, "--timeout", "inf"], "--timeout must be a finite number of seconds > 0"),
        ([*SYN, "--timeout", "nan"], "--timeout must be a finite"),
        ([*SYN, "--timeout", "-3"], "--timeout must be a finite"),
        ([*SYN, "--timeout", "1e300"], "--timeout is too large"),
        ([*SYN, "--params", "{alpha: 1}"], "--params must be a JSON object"),
        ([*SYN, "--params", "[1, 2]"], "--params must be a JSON object, got list"),
        ([*SYN, "--params", '{"rank": 3}'], "--params sets 'rank', which --rank sets"),
        ([*SYN, "--params", '{"max_iter": 3}'], "which --max-iter sets"),
        ([*SYN, "--params", '{"random_state": 3}'], "which --seed sets"),
        ([*SYN, "--params", '{"schedule": "parallel"}'], "the entry point sets itself"),
        ([*SYN, "--params", '{"alpah": 0.1}'], "--params: HyperLearnDecomposition has no"),
        ([*SYN, "--params", '{"alpha": -1}'], "--params: The 'alpha' parameter"),
        ([*SYN, "--lam", "abc"], "--lam must be 'auto' or a number, got 'abc'"),
        ([*SYN, "--lam", "-1"], "--lam must be 'auto' or a finite number >= 0"),
        ([*SYN, "--lam", "inf"], "--lam must be 'auto' or a finite number >= 0"),
        ([*SYN, "--tol", "nan"], "--tol must be a finite number >= 0"),
        ([*SYN, "--rank", "0"], "--rank must be >= 1"),
        ([*SYN, "--max-iter", "0"], "--max-iter must be >= 1"),
        ([*SYN, "--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
        ([*SYN, "--seed", "-1"], "--seed must be >= 0"),
        ([*SYN, "--n-entries", "0"], "--n-entries must be >= 1"),
        (["--data", "x.pkl", "--n-entries", "5"], "--n-entries applies to --synthetic only"),
        (["--lastfm", "/nonexistent/lastfm"], "--lastfm /nonexistent/lastfm:"),
        (["--data", "/nonexistent/X.pkl"], "--data /nonexistent/X.pkl: no such file"),
        ([*SYN, "--output", "/nonexistent/folder/model.pkl"], "the folder '/nonexistent/folder'"),
        ([*SYN, "--stats", "/nonexistent/folder/s.json"], "--stats '/nonexistent/folder/s.json'"),
    ],
)
def test_bad_option_is_refused_naming_it_before_anything_runs(tripwire, capsys, argv, match):
    _refused(argv, match, capsys)


def test_output_naming_a_folder_is_refused(tripwire, capsys, tmp_path):
    _refused([*SYN, "--output", str(tmp_path)], "--output must name a file", capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_nccl_without_cuda_is_refused(tripwire, capsys):
    _refused([*SYN, "--backend", "nccl"], "--backend nccl needs CUDA", capsys)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a pickle at all", "is not a readable pickle of X"),
        (b"", "is not a readable pickle of X: EOFError"),
        (pickle.dumps({"a": 1}), "holds a dict; expected a Hypergraph"),
        (pickle.dumps(np.ones(4)), "is not a tensor this fit can use: X must have at least 2"),
        (pickle.dumps(np.full((3, 3), np.nan)), "is not a tensor this fit can use"),
    ],
    ids=["garbage", "empty", "dict", "1-d", "nan"],
)
def test_data_file_of_another_kind_is_refused(tripwire, capsys, tmp_path, content, match):
    path = tmp_path / "X.pkl"
    path.write_bytes(content)
    out = tmp_path / "model.pkl"
    err = _refused(["--data", str(path), "--output", str(out)], match, capsys)
    assert f"--data {path}" in err
    assert path.read_bytes() == content and not out.exists()


def test_good_arguments_reach_the_process_group(tripwire, tmp_path):
    # All checks pass: the run gets as far as joining the group (the tripwire), no further.
    out = tmp_path / "model.pkl"
    argv = [*SYN, "--params", '{"alpha": 0.5}', "--lam", "2", "--output", str(out)]
    with pytest.raises(AssertionError, match="process group was joined"):
        entry.main(argv)
    assert not out.exists()


def test_init_process_group_refuses_an_infinite_timeout():
    from skhyperlearn.distributed import init_process_group

    for bad in (float("inf"), float("nan"), 0, "10"):
        with pytest.raises(ValueError, match="timeout must be a finite number of seconds > 0"):
            init_process_group("gloo", bad)


# ---------------------------------------------------------------------------- under torchrun
@pytest.mark.slow  # a torchrun launch of 2 processes: about 30 s on 2 shared cores
def test_torchrun_prints_progress_once_and_prefixes_the_other_ranks(tmp_path):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "skhyperlearn.distributed", "--synthetic", "12,10,8", "--rank", "2",
        "--max-iter", "3", "--tol", "0", "--params", json.dumps({"verbose": 1, "init_iter": 1}),
        "--backend", "gloo", "--timeout", "60", "--output", str(tmp_path / "m.pkl"),
    ]  # fmt: skip
    run = subprocess.run(
        cmd, env=gloo_env(), capture_output=True, text=True, timeout=GUARD, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
    progress = [ln for ln in lines if "[HyperLearnDecomposition]" in ln]
    # rank 0's progress, unprefixed; rank 1 prints none (verbose only on rank 0)
    assert progress and all(ln.startswith("[HyperLearnDecomposition]") for ln in progress)
    assert sum("fitted over 2 ranks" in ln for ln in lines) == 1
    assert (tmp_path / "m.pkl").is_file()


@pytest.mark.slow  # 3 processes and a fault: about a minute on 2 shared cores
@pytest.mark.parametrize("fault", ["die", "hang"])
def test_killed_or_hung_rank_is_named_by_the_survivors(fault):
    cfg = dict(
        shape=[20, 15, 10], timeout=8, fault=fault, fault_rank=2, fault_round=2,
        params=dict(rank=3, solver="hyperlearn", max_iter=6, tol=0.0, init_iter=2,
                    random_state=0),
    )  # fmt: skip
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, json.dumps(cfg)],
            env=gloo_env(
                MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=r, WORLD_SIZE=3, LOCAL_RANK=r
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for r in range(3)
    ]
    try:
        # the survivors end on their own; the planted rank may be asleep
        errors = [p.communicate(timeout=GUARD)[1] for p in procs[:2]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    for err in errors:
        # rank 2 died or hung after round 2: it never reached round 3, where the others failed
        assert "rank(s) 2 never reached round 3" in err, err[-2000:]
