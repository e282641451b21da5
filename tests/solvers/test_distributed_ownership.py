"""Distributed ownership: mode k on rank k mod W, and an observed-loss fit with biases over 3
gloo ranks equal to the single-process parallel schedule in factors and biases.

Ranks run ``tests/_distributed_bias_worker.py`` on 127.0.0.1 (free ports), bounded by
``communicate(timeout)`` (a guard against a hang, not a timing assertion).
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from _gloo import launch, wait

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.solvers._distributed import owned_modes, owner

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parents[1] / "_distributed_bias_worker.py"
SHAPE = (12, 10, 8, 6)
PARAMS = dict(
    rank=3, solver="hyperlearn", loss="observed", bias=True, lam=1.0, alpha=0.05, max_iter=3,
    tol=0.0, init_iter=2, early_stopping=False, random_state=0,
)  # fmt: skip
GUARD = 240


def _worker_module():
    spec = importlib.util.spec_from_file_location("_distributed_bias_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("order", [2, 3, 4, 7])
def test_mode_k_is_owned_by_rank_k_mod_world_size(order, world):
    # The documented rule (schedule="distributed": mode k on rank k mod world size).
    for k in range(order):
        assert owner(k, world) == k % world
    owned = [owned_modes(order, r, world) for r in range(world)]
    assert owned == [[k for k in range(order) if k % world == r] for r in range(world)]


def _run_ranks(cfg: dict, world: int) -> list[tuple[int, str]]:
    return wait(launch(WORKER, cfg, world), GUARD)


def _distributed_and_parallel(tmp_path, world, **params):
    params = {**PARAMS, **params}
    cfg = dict(shape=list(SHAPE), params=params, timeout=60, checkpoint=str(tmp_path / "ck"),
               output=str(tmp_path))  # fmt: skip
    results = _run_ranks(cfg, world)
    assert all(code == 0 for code, _ in results), [err[-2000:] for _, err in results]
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    ref = HyperLearnDecomposition(**params, schedule="parallel")
    return model, ref.fit(_worker_module().make_data(SHAPE))


def _assert_same_fit(model, ref):
    np.testing.assert_allclose(model.loss_history_, ref.loss_history_, rtol=1e-9)
    for a, b in zip(model.factors_, ref.factors_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10 * np.abs(b).max())
    # Every mode's bias is fitted (none left at its zero start) and equal to the reference's.
    for a, b in zip(model.biases_, ref.biases_, strict=True):
        assert np.abs(b).max() > 1e-2
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.mean_, ref.mean_, rtol=1e-12)


def test_distributed_fit_with_biases_equals_the_parallel_schedule(tmp_path):
    world = 3  # 4 modes: rank 0 owns modes 0 and 3
    model, ref = _distributed_and_parallel(tmp_path, world)
    assert all(np.abs(a).max() > 1e-2 for a in ref.factors_)  # no collapsed fit compared
    _assert_same_fit(model, ref)
    # Each rank's checkpoint held the blocks of exactly the modes it owns.
    for r in range(world):
        saved = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert saved == [k for k in range(len(SHAPE)) if k % world == r]
        assert (tmp_path / f"ck.rank{r}of{world}").exists()
