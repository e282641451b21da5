"""Checkpointed fits resume to the uninterrupted fit, whatever interrupted them.

Written against the public API only (``fit(X, checkpoint=PATH, checkpoint_every=n)``, the
callback, files damaged by writing bytes over them), never the file's fields: the reference is
the same fit run without a checkpoint, and the rounds the callback of the resumed fit sees must
be exactly those after the newest round saved. A damaged file is refused by name (see
tests/solvers/test_checkpoint_safety.py); once it is removed, ``PATH.prev`` is resumed.
"""

from __future__ import annotations

import numpy as np
import pytest
import sparse

from skhyperlearn import HyperLearnDecomposition

MAX_ITER = 6
PARAMS = dict(rank=3, lam=1.0, alpha=0.05, loss="observed", bias=True, max_iter=MAX_ITER)
PARAMS.update(tol=0.0, init_iter=2, early_stopping=False, random_state=0)


class _Crash(Exception):
    pass


def _tensor():
    # Planted rank-2 values plus noise at random cells.
    rng = np.random.default_rng(0)
    shape = (14, 11, 9)
    coords = np.unique(np.stack([rng.integers(0, n, 400) for n in shape]), axis=1)
    planted = [rng.normal(size=(n, 2)) for n in shape]
    values = np.einsum("er,er,er->e", *(a[c] for a, c in zip(planted, coords, strict=True)))
    values += 3.0 + 0.1 * rng.normal(size=values.shape)
    return sparse.COO(coords, values, shape=shape)


X = _tensor()


def _fit(path=None, every=1, crash_at=None, **params):
    """A fit and the rounds its callback saw (raising at round ``crash_at``)."""
    seen = []

    def callback(info):
        seen.append(int(info["iteration"]))
        if info["iteration"] == crash_at:
            raise _Crash(f"planted crash at round {crash_at}")

    model = HyperLearnDecomposition(**{**PARAMS, **params}, callback=callback)
    if path is None:
        return model.fit(X), seen
    return model.fit(X, checkpoint=path, checkpoint_every=every), seen


def _assert_same(got, ref):
    np.testing.assert_array_equal(got.loss_history_, ref.loss_history_)
    assert got.n_iter_ == ref.n_iter_
    for a, b in zip(got.factors_, ref.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got.biases_, ref.biases_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.mean_ == ref.mean_


@pytest.fixture(scope="module", params=["als", "hyperlearn"])
def reference(request):
    """The uninterrupted fit of each solver, and its rounds."""
    model, seen = _fit(solver=request.param)
    assert seen == list(range(1, MAX_ITER + 1))
    return request.param, model


def _saved_before(crash_at: int, every: int) -> int:
    # The callback runs before the round is saved: a crash at round c keeps the rounds below c.
    return (crash_at - 1) // every * every


@pytest.mark.parametrize("every", [1, 4])
@pytest.mark.parametrize("crash_at", range(1, MAX_ITER + 1))
def test_resume_after_a_crash_at_any_round(tmp_path, reference, crash_at, every):
    solver, ref = reference
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Crash):
        _fit(path, every, crash_at=crash_at, solver=solver)
    resumed, seen = _fit(path, every, solver=solver)
    start = _saved_before(crash_at, every) + 1
    assert seen == list(range(start, MAX_ITER + 1))
    _assert_same(resumed, ref)


@pytest.mark.parametrize("damage", ["truncated", "empty", "zeros", "garbage", "not a pickle"])
def test_a_damaged_latest_file_is_refused_and_prev_resumed_once_it_is_removed(
    tmp_path, reference, damage
):
    solver, ref = reference
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Crash):
        _fit(path, 2, crash_at=5, solver=solver)  # rounds 2 and 4 saved: PATH.prev and PATH
    blob = path.read_bytes()
    damaged = {
        "truncated": blob[: len(blob) // 2],
        "empty": b"",
        "zeros": bytes(len(blob)),  # what some file systems leave after a power cut
        "garbage": b"\x80not a checkpoint",
        "not a pickle": b"garbage",
    }
    path.write_bytes(damaged[damage])
    # Refused by name before any round, never silently started over; nothing is touched.
    with pytest.raises(ValueError, match=r"fit\.ckpt"):
        _fit(path, 2, crash_at=1, solver=solver)
    assert path.read_bytes() == damaged[damage]
    path.unlink()
    resumed, seen = _fit(path.with_name("fit.ckpt"), 2, solver=solver)
    assert seen == [3, 4, 5, 6]  # from round 2, the intact PATH.prev
    _assert_same(resumed, ref)


def test_the_newest_of_the_saved_rounds_is_resumed(tmp_path, reference):
    solver, ref = reference
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Crash):
        _fit(path, 1, crash_at=4, solver=solver)  # rounds 2 (PATH.prev) and 3 (PATH) kept
    assert path.with_name(path.name + ".prev").exists()
    resumed, seen = _fit(path, 1, solver=solver)
    assert seen == [4, 5, 6]
    _assert_same(resumed, ref)


def test_max_iter_reached_then_resumed_with_a_larger_one(tmp_path, reference):
    solver, ref = reference
    path = tmp_path / "fit.ckpt"
    # Saved at round 3 (every) and at round 4 (max_iter), which is not a stop: a larger
    # max_iter goes on from round 5.
    short, seen = _fit(path, 3, solver=solver, max_iter=4)
    assert seen == [1, 2, 3, 4]
    np.testing.assert_array_equal(short.loss_history_, ref.loss_history_[:4])
    again, seen = _fit(path, 3, solver=solver, max_iter=4)
    assert seen == []  # nothing left to run
    _assert_same(again, short)
    resumed, seen = _fit(path, 3, solver=solver)
    assert seen == [5, 6]
    _assert_same(resumed, ref)


def test_a_finished_fit_resumes_to_itself(tmp_path, reference):
    solver, ref = reference
    path = tmp_path / "fit.ckpt"
    first, seen = _fit(path, 4, solver=solver)
    assert seen == list(range(1, MAX_ITER + 1))
    _assert_same(first, ref)
    again, seen = _fit(path, 4, solver=solver)
    assert seen == []
    _assert_same(again, ref)


@pytest.mark.parametrize(
    "other",
    [dict(solver="hyperlearn"), dict(rank=2), dict(bias=False)],
    ids=["update", "rank", "bias"],
)
def test_a_checkpoint_of_another_fit_is_refused(tmp_path, other):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Crash):
        _fit(path, 1, crash_at=3, solver="als")
    blob = path.read_bytes()
    model = HyperLearnDecomposition(**{**PARAMS, "solver": "als", **other})
    with pytest.raises(ValueError, match="checkpoint"):
        model.fit(X, checkpoint=path)
    assert not hasattr(model, "factors_")
    assert path.read_bytes() == blob  # the other fit's file is left alone


@pytest.mark.parametrize("crash_at", [2, 5])
def test_the_default_model_resumes_to_the_uninterrupted_fit(tmp_path, crash_at):
    """The defaults at order 3 (the implicit loss with the projection terms) resume exactly."""
    binary = sparse.COO(X.coords, np.ones(X.nnz), shape=X.shape)
    params = dict(rank=3, max_iter=MAX_ITER, tol=0.0, random_state=0)

    def fit(path=None, crash=None):
        seen = []

        def callback(info):
            seen.append(int(info["iteration"]))
            if info["iteration"] == crash:
                raise _Crash(f"planted crash at round {crash}")

        model = HyperLearnDecomposition(**params, callback=callback)
        return model.fit(binary, checkpoint=path), seen

    ref, _ = fit()
    assert ref.projection_weight == 1.0 and ref.loss_ == "implicit"
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Crash):
        fit(path, crash_at)
    resumed, seen = fit(path)
    assert seen == list(range(crash_at, MAX_ITER + 1))
    np.testing.assert_array_equal(resumed.loss_history_, ref.loss_history_)
    for a, b in zip(resumed.factors_, ref.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
