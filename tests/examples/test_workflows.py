"""What users do from day one: Pipelines, grid searches, entry-wise completion, persistence.

- ``GridSearchCV(Pipeline([decomposition, LogisticRegression]))`` over rank and λ on a
  :class:`~skhyperlearn.hypergraph.Hypergraph`, checking that every fit sees exactly its training
  fold's sub-graph (computed here independently from the full adjacency);
- ``GridSearchCV(HyperLearnRegressor)`` holding out entries picks the planted rank and a
  sensible λ;
- feature names, pandas output, clone, pickle / joblib round trips, and a model fitted on CUDA
  devices that is loaded and used on a CPU-only machine;
- scikit-learn's estimator checks for :class:`HyperLearnRegressor`.
"""

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse import csgraph
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn._completion import HyperLearnRegressor
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.hypergraph import Hypergraph


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # These fits are tiny: on a loaded 2-core machine, torch's intra-op threads only contend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def binary_data():
    return make_hypergraph(shape=(40, 30, 20), rank=3, random_state=0)


@pytest.fixture(scope="module")
def real_data():
    return make_hypergraph(
        shape=(30, 25, 20), rank=3, n_entries=3000, values="real", noise=0.05, random_state=0
    )


def _hypergraph(data):
    n = data.shape[0]
    return Hypergraph(
        data.tensor,
        data.adjacencies,
        graph_kind="adjacency",
        ids=[np.arange(n), None, None],
    )


# ---------------------------------------------------------------------- Pipeline + GridSearchCV
_SEEN: list = []


class _RecordingDecomposition(HyperLearnDecomposition):
    """Records, at every fit, which sample entities it was given and the graph it used."""

    def _record(self, X):
        _SEEN.append((np.array(X.ids[0]), self._laplacians_fit[0].toarray()))

    def fit(self, X, y=None):
        super().fit(X, y)
        self._record(X)
        return self

    def fit_transform(self, X, y=None):
        out = super().fit_transform(X, y)
        self._record(X)
        return out


def _subgraph_laplacian(adjacency, idx):
    """Normalized Laplacian of the sub-graph on ``idx``, computed without the package."""
    w = adjacency.toarray()[np.ix_(idx, idx)]
    return csgraph.laplacian(w, normed=True)


def test_gridsearch_pipeline_fits_on_each_folds_subgraph(binary_data):
    H = _hypergraph(binary_data)
    y = binary_data.labels[0]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pipe = Pipeline(
        [
            ("hyperlearn", _RecordingDecomposition(max_iter=15, random_state=0)),
            ("clf", LogisticRegression()),
        ]
    )
    grid = {"hyperlearn__rank": [2, 3], "hyperlearn__lam": [0.1, 1.0]}
    _SEEN.clear()
    search = GridSearchCV(pipe, grid, cv=cv, error_score="raise").fit(H, y)

    folds = [np.sort(train) for train, _ in cv.split(np.zeros(len(y)), y)]
    assert len(_SEEN) == 4 * len(folds) + 1  # every candidate on every fold, then the refit
    for ids, lap in _SEEN:
        # Each fit saw one training fold (or everything, for the refit), in order...
        assert any(np.array_equal(ids, f) for f in folds) or np.array_equal(ids, np.arange(len(y)))
        # ...and exactly that fold's sub-graph, with the sub-graph's own degrees.
        np.testing.assert_allclose(
            lap, _subgraph_laplacian(binary_data.adjacencies[0], ids), atol=1e-12
        )
    fold_fits = [ids for ids, _ in _SEEN[:-1]]
    for f in folds:
        assert sum(np.array_equal(ids, f) for ids in fold_fits) == 4
    assert set(search.best_params_) == set(grid)
    # The planted communities are visible in the learned sample-mode factors.
    assert search.best_score_ > 0.8


def test_pipeline_transform_uses_the_test_entities_graph(binary_data):
    H = _hypergraph(binary_data)
    train, test = np.arange(30), np.arange(30, 40)
    model = HyperLearnDecomposition(rank=3, max_iter=15, random_state=0).fit(H[train])
    folded = model.transform(H[test])
    # The held-out entities are folded in with their own sub-graph, not the training one.
    without_graph = model.transform(H[test].tensor)
    assert folded.shape == without_graph.shape == (10, 3)
    assert not np.allclose(folded, without_graph)


# ---------------------------------------------------------------------- entry-wise completion
def test_entrywise_gridsearch_picks_rank_and_lam(real_data):
    coords, values = real_data.tensor.coords.T, real_data.tensor.data
    search = GridSearchCV(
        HyperLearnRegressor(
            laplacians=real_data.laplacians, alpha=0.1, max_iter=30, random_state=0
        ),
        {"rank": [1, 3], "lam": [0.01, 10.0]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_root_mean_squared_error",
        error_score="raise",
    ).fit(coords, values)
    assert search.best_params_ == {"rank": 3, "lam": 10.0}
    # Held-out RMSE well under the spread of the values (noise is 5 % of it).
    assert -search.best_score_ < 0.2 * values.std()


def test_regressor_shares_the_decomposition_engine(real_data):
    coords, values = real_data.tensor.coords.T, real_data.tensor.data
    params = {"rank": 3, "lam": 10.0, "alpha": 0.1, "max_iter": 20, "random_state": 0}
    reg = HyperLearnRegressor(laplacians=real_data.laplacians, **params).fit(coords, values)
    dec = HyperLearnDecomposition(
        laplacians=real_data.laplacians, loss="observed", bias=True, **params
    ).fit(real_data.tensor)
    held = np.argwhere(np.ones(real_data.shape))[::97]
    np.testing.assert_allclose(reg.predict(held), dec.reconstruct(held), rtol=1e-10, atol=1e-12)
    assert reg.decomposition_.loss == "observed"
    assert reg.shape_ == real_data.shape and reg.n_features_in_ == 3
    assert reg.n_iter_ == reg.decomposition_.n_iter_
    assert [a.shape for a in reg.factors_] == [(n, 3) for n in real_data.shape]


def test_regressor_shape_inference_and_coordinate_errors():
    rng = np.random.default_rng(0)
    coords = np.array([[0, 0], [1, 2], [2, 1], [3, 3], [1, 1], [2, 3]])
    values = rng.random(len(coords))
    # Without graphs or shape: max index + 1 per column.
    reg = HyperLearnRegressor(rank=1, max_iter=5, random_state=0).fit(coords, values)
    assert reg.shape_ == (4, 4)
    with pytest.raises(ValueError, match="outside mode 1 of the fitted shape"):
        reg.predict([[0, 4]])
    # A Laplacian fixes its mode's size; shape= fixes all of them.
    lap = csgraph.laplacian(np.ones((6, 6)) - np.eye(6), normed=True)
    reg = HyperLearnRegressor(rank=1, laplacians=[lap, None], max_iter=5).fit(coords, values)
    assert reg.shape_ == (6, 4)
    reg = HyperLearnRegressor(rank=1, shape=(5, 7), max_iter=5).fit(coords, values)
    assert reg.shape_ == (5, 7) and reg.predict([[4, 6]]).shape == (1,)
    with pytest.raises(ValueError, match="give a larger shape"):
        HyperLearnRegressor(shape=(3, 7)).fit(coords, values)
    with pytest.raises(ValueError, match="shape has 3 entries"):
        HyperLearnRegressor(shape=(5, 7, 2)).fit(coords, values)
    with pytest.raises(ValueError, match="integer coordinates"):
        HyperLearnRegressor().fit(coords + 0.5, values)
    with pytest.raises(ValueError, match="Negative values"):
        HyperLearnRegressor().fit(coords - 1, values)
    with pytest.raises(ValueError, match="expecting 2 features"):
        reg.predict([[0, 1, 2]])
    # Integer-valued floats (e.g. from a DataFrame) are coordinates too.
    frame = pd.DataFrame(coords.astype(float), columns=["user", "item"])
    fitted = HyperLearnRegressor(rank=1, max_iter=5, random_state=0).fit(frame, values)
    assert list(fitted.feature_names_in_) == ["user", "item"]


def test_regressor_averages_repeated_coordinates():
    coords = np.array([[0, 0], [0, 0], [1, 1], [0, 1], [1, 0]])
    values = np.array([1.0, 3.0, 2.0, 0.5, 0.5])
    kw = {"rank": 1, "max_iter": 10, "random_state": 0}
    once = HyperLearnRegressor(**kw).fit(
        np.array([[0, 0], [1, 1], [0, 1], [1, 0]]), np.array([2.0, 2.0, 0.5, 0.5])
    )
    twice = HyperLearnRegressor(**kw).fit(coords, values)
    np.testing.assert_allclose(twice.predict(coords), once.predict(coords))


# ---------------------------------------------------------------------- scikit-learn conventions
def test_feature_names_and_pandas_output(binary_data):
    model = HyperLearnDecomposition(rank=3, max_iter=10, random_state=0)
    out = model.fit_transform(binary_data.tensor)
    names = [f"hyperlearndecomposition{i}" for i in range(3)]
    assert list(model.get_feature_names_out()) == names
    model.set_output(transform="pandas")
    frame = model.transform(binary_data.tensor)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == names
    np.testing.assert_allclose(frame.to_numpy(), out, rtol=1e-10, atol=1e-12)
    # In a Pipeline the names flow on to the next step.
    pipe = Pipeline([("hyperlearn", clone(model)), ("clf", LogisticRegression())])
    pipe.fit(_hypergraph(binary_data), binary_data.labels[0])
    assert list(pipe[-1].feature_names_in_) == names


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(binary_data):
    lap = binary_data.laplacians
    model = HyperLearnDecomposition(rank=3, lam=0.5, laplacians=lap, max_iter=10, random_state=0)
    model.fit(binary_data.tensor)
    copy = clone(model)
    assert not hasattr(copy, "factors_")
    params = copy.get_params()
    assert params["rank"] == 3 and params["lam"] == 0.5 and len(params["laplacians"]) == 3
    for a, b in zip(params["laplacians"], lap, strict=True):
        assert (a != b).nnz == 0  # equal graphs (clone deep-copies them)
    np.testing.assert_allclose(
        copy.fit_transform(binary_data.tensor), model.transform(binary_data.tensor)
    )


def _roundtrips(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return [pickle.loads(pickle.dumps(model)), joblib.load(buffer)]


def test_pickle_and_joblib_round_trips(binary_data, real_data):
    H = _hypergraph(binary_data)
    model = HyperLearnDecomposition(rank=3, max_iter=10, random_state=0).fit(H[:30])
    expected = model.transform(H[30:])
    for loaded in _roundtrips(model):
        np.testing.assert_array_equal(loaded.transform(H[30:]), expected)

    coords, values = real_data.tensor.coords.T, real_data.tensor.data
    reg = HyperLearnRegressor(rank=2, max_iter=5, random_state=0).fit(coords, values)
    for loaded in _roundtrips(reg):
        np.testing.assert_array_equal(loaded.predict(coords), reg.predict(coords))


def test_model_fitted_on_cuda_transforms_on_a_cpu_only_machine(binary_data):
    model = HyperLearnDecomposition(rank=3, max_iter=10, random_state=0).fit(binary_data.tensor)
    expected = model.transform(binary_data.tensor)
    # What a model fitted with devices=["cuda:0", ...] carries: its factors are numpy arrays
    # and its blocks are moved to the CPU, but devices_ names the fitting devices.
    model.devices_ = ["cuda:0"] * 3
    for loaded in _roundtrips(model):
        np.testing.assert_allclose(loaded.transform(binary_data.tensor), expected, atol=1e-12)


def test_tags_say_what_the_estimators_take():
    tags = HyperLearnDecomposition().__sklearn_tags__()
    assert tags.input_tags.sparse and tags.transformer_tags is not None
    tags = HyperLearnRegressor().__sklearn_tags__()
    assert tags.estimator_type == "regressor" and tags.target_tags.required
    # Coordinates are non-negative integer codes: scikit-learn's checks then send integers.
    assert tags.input_tags.categorical and tags.input_tags.positive_only
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan


# HyperLearnRegressor passes every scikit-learn estimator check. Its X holds integer
# coordinates; the ``categorical`` input tag makes the checks send non-negative integer X
# (without it, the ~30 checks that feed continuous random features fail by design with
# "X must hold integer coordinates"). No check is expected to fail.
_EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    # init="random": the checks' X has up to 10 columns, a 10th-order tensor whose unfoldings are
    # too wide for a quick truncated SVD (the default init of the exact solver).
    [HyperLearnRegressor(rank=2, max_iter=5, init="random", random_state=0)],
    expected_failed_checks=lambda est: _EXPECTED_FAILED_CHECKS,
)
def test_regressor_sklearn_compatible(estimator, check):
    check(estimator)


def test_regressor_keeps_zero_values_as_observed_entries():
    # A stored value may be 0 (a rating scale centred on 0, a count): it is an observed entry.
    coords = np.array([[i, j] for i in range(4) for j in range(4)])
    values = np.where(coords[:, 0] // 2 == coords[:, 1] // 2, 2.0, 0.0)  # two blocks, rank 2
    reg = HyperLearnRegressor(rank=2, alpha=1e-4, bias=False, max_iter=200, random_state=0)
    reg.fit(coords, values)
    zeros = coords[values == 0]
    assert np.abs(reg.predict(zeros)).max() < 0.1  # the stored zeros, not the mean 1


def test_hypergraph_of_laplacians_slices_principal_submatrices(binary_data):
    # Given Laplacians rather than adjacencies, a fold sees the principal sub-matrix.
    H = Hypergraph(binary_data.tensor, binary_data.laplacians)
    idx = np.arange(0, 40, 2)
    model = HyperLearnDecomposition(rank=2, max_iter=5, random_state=0).fit(H[idx])
    full = sp.csr_array(binary_data.laplacians[0]).toarray()
    np.testing.assert_allclose(model._laplacians_fit[0].toarray(), full[np.ix_(idx, idx)])
