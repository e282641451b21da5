"""Checkpoints that cannot run code, resume only their own fit, and refuse bad paths early.

References: the uninterrupted fit (a resume under a changed ``tol``/``max_iter`` must end
where it ends), the file system (a crafted payload's file never appears; a refused path is left
as it was), and the callback (a refusal comes before the first round).
"""

import builtins
import pickle

import numpy as np
import pytest
import torch
from _snapshot import assert_same, snapshot

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.solvers import _checkpoint
from skhyperlearn.solvers._checkpoint import Checkpoint

SHAPE = (12, 10, 8)
BASE = dict(rank=3, max_iter=4, tol=0.0, init="svd", projection_weight=0.0, random_state=0)
HL = dict(BASE, solver="hyperlearn", n_terms=2, hidden=4, n_steps=1, init_iter=1)


def _data(random_state=0):
    data = make_hypergraph(SHAPE, rank=3, n_entries=150, random_state=random_state)
    return data.tensor, data.laplacians


class _Recorder:
    """A callback that records the rounds it saw (a refusal must come before the first)."""

    def __init__(self):
        self.rounds = []

    def __call__(self, info):
        self.rounds.append(info["iteration"])


def _saved(tmp_path, params=BASE, name="fit.ckpt", **fit):
    X, laps = _data()
    path = tmp_path / name
    HyperLearnDecomposition(**params, laplacians=laps).fit(X, checkpoint=path, **fit)
    return path


class _WritesAFile:
    """A pickle payload that writes ``target`` when loaded by a full unpickler."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return builtins.exec, (f"open({self.target!r}, 'w').write('ran')",)


@pytest.mark.parametrize("which", ["fit.ckpt", "fit.ckpt.prev"])
def test_crafted_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, which):
    # The payload is real: a full unpickler runs it.
    proof = tmp_path / "proof.txt"
    torch.save({"iteration": _WritesAFile(proof)}, tmp_path / "proof.ckpt")
    torch.load(tmp_path / "proof.ckpt", weights_only=False)
    assert proof.read_text() == "ran"
    # The same payload as a fit's checkpoint (or its .prev) is refused by name, and never runs.
    target = tmp_path / "pwned.txt"
    torch.save({"iteration": 3, "x": _WritesAFile(target)}, tmp_path / which)
    X, laps = _data()
    snap = snapshot(X)
    calls = _Recorder()
    model = HyperLearnDecomposition(**BASE, laplacians=laps, callback=calls)
    with pytest.raises(ValueError, match=r"holds (builtins\.)?exec,.*nothing in the file was run"):
        model.fit(X, checkpoint=tmp_path / "fit.ckpt")
    assert not target.exists()
    assert calls.rounds == [] and not hasattr(model, "factors_")
    assert_same(snap, snapshot(X))


@pytest.mark.parametrize("params", [BASE, HL], ids=["als", "hyperlearn"])
def test_checkpoint_loads_with_weights_only(tmp_path, params):
    path = _saved(tmp_path, params)
    saved = torch.load(path, weights_only=True)  # tensors and plain values only
    assert saved["iteration"] == params["max_iter"]
    assert all(isinstance(a, torch.Tensor) for a in saved["factors"])
    assert isinstance(saved["callback"]["best_state"][0][0], torch.Tensor)
    if params is HL:
        assert isinstance(saved["update"][0]["optimizer"]["state"][0]["exp_avg"], torch.Tensor)


def test_old_full_pickle_checkpoint_is_refused_by_name(tmp_path):
    # Version 1 kept numpy arrays (a full pickle): refused, naming what it holds.
    path = tmp_path / "fit.ckpt"
    torch.save({"version": 1, "iteration": 2, "best": np.zeros(3)}, path)
    X, laps = _data()
    with pytest.raises(ValueError, match=r"holds numpy\."):
        HyperLearnDecomposition(**BASE, laplacians=laps).fit(X, checkpoint=path)


def _other_graphs():
    _, laps = _data()
    return [laps[0] * 2.0, laps[1], laps[2]]


@pytest.mark.parametrize(
    "params, change, field",
    [
        (BASE, dict(lam=50.0), "lam: 1.0 in the checkpoint, 50.0 here"),
        (BASE, dict(alpha=0.5), "alpha: 0.03 in the checkpoint, 0.5 here"),
        (BASE, dict(loss="hypergraph"), "loss: 'implicit' in the checkpoint, 'hypergraph' here"),
        (BASE, dict(confidence=2.0), "confidence:"),
        (BASE, dict(factor_scale="free"), "factor_scale: 'solved' in the checkpoint"),
        (BASE, dict(projection_weight=1.0), "projection_weight: 0.0 in the checkpoint"),
        (BASE, dict(rank=2), "rank: 3 in the checkpoint, 2 here"),
        (BASE, dict(random_state=1), "random_state: 0 in the checkpoint, 1 here"),
        (BASE, dict(laplacians="other"), "graphs[0].digest"),
        (BASE, dict(X="other"), "X.digest"),
        (BASE, dict(X="float32"), "X.dtype: 'float64' in the checkpoint, 'float32' here"),
        (BASE, dict(solver="hyperlearn"), "solver: 'als' in the checkpoint"),
        (HL, dict(hidden=8), "hidden: 4 in the checkpoint, 8 here"),
        (HL, dict(learning_rate=0.1), "learning_rate:"),
        (HL, dict(schedule="parallel"), "schedule: 'sequential' in the checkpoint"),
    ],
)
def test_checkpoint_of_another_fit_is_refused_naming_the_field(tmp_path, params, change, field):
    path = _saved(tmp_path, params)
    X, laps = _data()
    change = dict(change)
    if change.pop("X", None) == "other":
        X = _data(random_state=1)[0]  # same shape, other entries
    if field.startswith("X.dtype"):
        X = X.astype(np.float32)
    if change.get("laplacians") == "other":
        change["laplacians"] = _other_graphs()
    else:
        change.setdefault("laplacians", laps)
    before = path.read_bytes()
    calls = _Recorder()
    model = HyperLearnDecomposition(**{**params, **change}, callback=calls)
    with pytest.raises(ValueError, match="another fit") as err:
        model.fit(X, checkpoint=path)
    assert field in str(err.value)
    assert calls.rounds == [] and not hasattr(model, "factors_")
    assert path.read_bytes() == before


def test_parameters_outside_the_key_resume(tmp_path):
    # verbose, callback, max_memory and on_nonfinite change no round: the saved run is resumed.
    path = _saved(tmp_path)
    X, laps = _data()
    model = HyperLearnDecomposition(
        **BASE, laplacians=laps, verbose=0, max_memory="1GB", on_nonfinite="warn",
        callback=_Recorder(),
    )  # fmt: skip
    model.fit(X, checkpoint=path)
    assert model.callback.rounds == []  # nothing left to run: the saved run reached max_iter
    full = HyperLearnDecomposition(**BASE, laplacians=laps).fit(X)
    np.testing.assert_array_equal(model.loss_history_, full.loss_history_)


def _fit(tmp_path, path=None, **params):
    X, laps = _data()
    return HyperLearnDecomposition(**{**BASE, **params}, laplacians=laps).fit(X, checkpoint=path)


def _assert_same(a, b):
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    assert a.n_iter_ == b.n_iter_
    for x, y in zip(a.factors_, b.factors_, strict=True):
        np.testing.assert_array_equal(x, y)


def test_stricter_tol_goes_on_where_the_uninterrupted_fit_goes_on(tmp_path):
    path = tmp_path / "fit.ckpt"
    loose = _fit(tmp_path, path, tol=1e-2, max_iter=40)
    assert loose.n_iter_ < 40  # stopped by tol
    strict = _fit(tmp_path, path, tol=1e-6, max_iter=40)
    full = _fit(tmp_path, None, tol=1e-6, max_iter=40)
    assert full.n_iter_ > loose.n_iter_
    _assert_same(strict, full)


def test_looser_tol_that_would_have_stopped_earlier_is_refused(tmp_path):
    path = tmp_path / "fit.ckpt"
    _fit(tmp_path, path, tol=0.0, max_iter=12)
    with pytest.raises(ValueError, match=r"with tol=0\.1 the fit stops at round 2"):
        _fit(tmp_path, path, tol=0.1, max_iter=12)


def test_looser_tol_stopping_at_the_saved_round_stops_there(tmp_path):
    path = tmp_path / "fit.ckpt"
    ran = _fit(tmp_path, path, tol=0.0, max_iter=3)
    # A tol that stops exactly at round 3 (and not before) under the same J history.
    j = ran.loss_history_
    tol = abs(j[1] - j[2]) / abs(j[1]) * 1.0001
    assert abs(j[0] - j[1]) > tol * abs(j[0])
    resumed = _fit(tmp_path, path, tol=tol, max_iter=10)
    full = _fit(tmp_path, None, tol=tol, max_iter=10)
    assert full.n_iter_ == 3
    _assert_same(resumed, full)


def test_changed_max_iter(tmp_path):
    path = tmp_path / "fit.ckpt"
    _fit(tmp_path, path, max_iter=3)
    _assert_same(_fit(tmp_path, path, max_iter=6), _fit(tmp_path, None, max_iter=6))
    with pytest.raises(ValueError, match=r"at round 6, beyond max_iter=4"):
        _fit(tmp_path, path, max_iter=4)


def _rank_files(tmp_path, world):
    for r in range(world):
        (tmp_path / f"fit.ckpt.rank{r}of{world}").write_bytes(b"rank file")


def test_rank_files_refused_by_a_single_process(tmp_path):
    _rank_files(tmp_path, 3)
    calls = _Recorder()
    X, laps = _data()
    with pytest.raises(ValueError, match=r"distributed fit over \[3\] ranks"):
        HyperLearnDecomposition(**BASE, laplacians=laps, callback=calls).fit(
            X, checkpoint=tmp_path / "fit.ckpt"
        )
    assert calls.rounds == []


@pytest.mark.parametrize("files", ["ranks", "single"])
def test_another_world_size_is_refused(tmp_path, monkeypatch, files):
    if files == "ranks":
        _rank_files(tmp_path, 3)
        expected = r"written by \[3\] ranks, and this fit runs on 2 ranks"
    else:
        (tmp_path / "fit.ckpt").write_bytes(b"one process")
        expected = "written by one process, and this fit runs on 2 ranks"
    monkeypatch.setattr(_checkpoint, "_world", lambda: (1, 2))
    with pytest.raises(ValueError, match=expected):
        Checkpoint(tmp_path / "fit.ckpt").prepare({})


def test_world_size_is_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(_checkpoint, "_world", lambda: (0, 2))
    ck = Checkpoint(tmp_path / "fit.ckpt")
    ck.prepare({"lam": 1.0})
    assert ck.key["world_size"] == 2 and ck.file().name == "fit.ckpt.rank0of2"


def _folder(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return folder


def _garbage(tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"12 not a checkpoint \x00\xff" * 10)
    return path


def _no_fields(tmp_path):
    path = tmp_path / "dict.ckpt"
    torch.save({"factors": [torch.zeros(2)]}, path)
    return path


def _some_fields(tmp_path):
    path = tmp_path / "some.ckpt"
    torch.save({"format": "skhyperlearn checkpoint", "version": 2, "key": {}}, path)
    return path


def _wrong_types(tmp_path):
    path = _saved(tmp_path)
    saved = torch.load(path, weights_only=True)
    saved["iteration"] = "4"
    torch.save(saved, path)
    return path


def _under_a_file(tmp_path):
    (tmp_path / "plain.txt").write_text("a file, not a folder")
    return tmp_path / "plain.txt" / "fit.ckpt"


@pytest.mark.parametrize(
    "make, message",
    [
        (_folder, "is a folder"),
        (_garbage, "is not a checkpoint"),
        (_no_fields, "is not a skhyperlearn checkpoint"),
        (_some_fields, r"lacks the fields \['iteration'"),
        (_wrong_types, "has a str as 'iteration'"),
        (_under_a_file, "cannot be written"),
        (lambda tmp_path: "", "not a file path"),
        (lambda tmp_path: str(tmp_path / "new") + "/", "is a folder"),
    ],
    ids=["folder", "garbage", "no-fields", "some-fields", "types", "unwritable", "empty",
         "slash"],
)  # fmt: skip
def test_bad_paths_are_refused_before_the_first_round(tmp_path, make, message):
    path = make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    contents = path.read_bytes() if path and getattr(path, "is_file", lambda: False)() else None
    X, laps = _data()
    snap = snapshot(X)
    calls = _Recorder()
    model = HyperLearnDecomposition(**BASE, laplacians=laps, callback=calls)
    with pytest.raises(ValueError, match=message):
        model.fit(X, checkpoint=path)
    assert calls.rounds == [] and not hasattr(model, "factors_")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing renamed or left
    if contents is not None:
        assert path.read_bytes() == contents
    assert_same(snap, snapshot(X))


def test_truncated_checkpoint_is_refused(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    X, laps = _data()
    with pytest.raises(ValueError, match="is not a checkpoint"):
        HyperLearnDecomposition(**BASE, laplacians=laps).fit(X, checkpoint=path)


def test_checkpoint_with_other_shapes_inside_is_refused(tmp_path):
    # A file with this fit's key but factors of another shape (edited by hand) is refused.
    path = _saved(tmp_path)
    saved = torch.load(path, weights_only=True)
    saved["factors"][0] = torch.zeros(5, 3, dtype=torch.float64)
    torch.save(saved, path)
    X, laps = _data()
    with pytest.raises(ValueError, match="factors that do not fit"):
        HyperLearnDecomposition(**dict(BASE, max_iter=6), laplacians=laps).fit(X, checkpoint=path)


def test_pickled_estimator_with_checkpoint_round_trip(tmp_path):
    # The key is plain data: the fitted estimator still pickles after a checkpointed fit.
    path = _saved(tmp_path)
    X, laps = _data()
    model = HyperLearnDecomposition(**BASE, laplacians=laps).fit(X, checkpoint=path)
    assert pickle.loads(pickle.dumps(model)).n_iter_ == model.n_iter_
