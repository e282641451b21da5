"""Representations downstream: does a classifier do better on HyperLearn's factors?

The paper's Tasks 2 and 3 score the learned representation of one modality by a multi-label
classifier. This harness does the same, as a user would run it, on the visible tasks:

- ``movielens``: ML-100K movies (movie × user × rating-level hyperedges, 100,000 of them), labels
  the 18 genres (``unknown`` dropped); graphs: a movie co-occurrence graph built from the tensor
  and Monti et al.'s 10-NN user graph (from demographics). Monti's movie graph is never used: it
  is built from features that include the genres. Three more rows fit the defaults with a graph
  on the rating-level mode joining every level to every other: alone, weighted 10⁴ (the levels
  tied), and tied beside the movie graph.
- ``lastfm3`` / ``lastfm4``: HetRec Last.fm 2K artists (artist × tag × user, and × month),
  labels a dozen top-level genre tags (rock, pop, electronic, metal, hip-hop, jazz, folk, punk,
  soul, blues, ambient, country) that are *removed from the tensor* before anything is learned;
  artists with at least ``--min-degree`` remaining tag assignments; graphs: an artist graph
  from the listening counts (``user_artists.dat``, side information the tagging tensor does not
  hold: 10-NN, cosine of log1p play counts) and the users' friendship graph.
- ``synthetic``: ``make_hypergraph`` planted communities (one-hot community labels), with the
  planted kNN graphs.
- ``movielens-users``: the ``movielens`` hypergraph with the users as the sample mode (the
  users mode put first, as the harness cross-validates over mode 0), labels gender (F, M) and
  age band (< 25, 25–34, 35–44, ≥ 45) from ``u.user``; the graphs of the ``movielens`` fit
  (the movie co-occurrence graph, on the movie mode) but Monti's user graph, which is built
  from these demographics.

Representations, at equal dimensions (``--dims``, default 10 and 32):

- HyperLearn (``HyperLearnDecomposition``) with its defaults (``loss="auto"``: the implicit loss
  on these non-negative tensors, ``confidence="auto"``, ``factor_scale="auto"``: each mode
  solved against unit-norm others), exact solver with graphs, rank = dimension, λ chosen by
  ``GridSearchCV`` inside the training folds (over ``--default-lams``: with the scale on the
  solved mode, useful λ are larger); the same without graphs; the same two with the paper's
  loss (``loss="hypergraph"``, λ over ``--lams``); the HyperLearn solver (diffusion blocks)
  with graphs at the default λ; HyperLearn (paper's loss) after ``MarginalizeModes`` (the
  context modes summed out, log1p counts, a ridge);
- TruncatedSVD of the sample mode's unfolding and of the sample × (largest other mode) count
  matrix (the other modes summed out), and of its log1p counts; NMF of that matrix; implicit
  ALS (the ``implicit`` package's ``AlternatingLeastSquares``, factors = dimension, alpha
  chosen by ``GridSearchCV`` over 1, 10, 40) of its binary presence, new rows folded in by
  ``recalculate_user``;
- the raw counts of that matrix (all its columns: a reference, not a target);
- a spectral embedding of the sample mode's graph (transductive: it has no ``transform``).

Protocol (``--protocol pipeline``, the default): outer 5-fold cross-validation over the sample
entities; every method is a ``Pipeline`` (representation → ``StandardScaler`` → one-vs-rest
``LogisticRegression``) fitted on the training entities only and applied to the test entities
(HyperLearn folds them in with its ``transform``; the ``Hypergraph`` container slices the sample
mode's graph with the tensor). ``--protocol transductive`` learns each representation once per
λ of its grid on all entities without labels (the hypergraph holds every entity, as in the
paper's tasks) and chooses λ per outer fold by the classifier's inner cross-validation on the
training entities' labels, then scores the test entities (one fit per λ instead of one per
inner fold: much faster; the spectral embedding always runs this way). Scores: average precision,
macro over the labels present in a test fold and micro over all entity-label pairs, mean ± std
over the outer folds.

``--grid fixed`` runs one grid on every task — the recommended path, the table issue 26 asks
for: ``HyperLearnDecomposition(rank=dim, lam=λ)``, every other parameter at its default, λ over
{0.1, 1, 10}, with and without the graphs, beside the 2-way baselines. ``--grid harness`` (the
default) runs the researcher's rows: λ grids per row type and ML-100K's rating-level graph,
configurations found on one task after looking at its scores, kept as measurements.
``--grid wide`` is a diagnostic: the same rows with λ over 0.001 … 1000;
with ``--protocol transductive`` it also reports each λ's test macro AP and the best λ.

Affordable runs: ``--n-jobs N`` measures N outer folds at once, one process each (pipeline
protocol; ``--threads`` torch threads per process); every finished outer fold is written to a
results cache (``--cache``, by default ``benchmarks/_out/representations-cache.json``, ignored
by git) under a key naming the task's data, the row's full configuration, the grid, the folds
and, for rows with a skhyperlearn estimator, a hash of the package's source. A stopped run
resumes where it was, ``--only`` (``--rows``) runs some rows and leaves the others' results in
place, and a change to the model makes only the rows that use it stale (the 2-way baselines
stay). Each row prints its outer folds as they end and its seconds.

Writes one table per task into ``benchmarks/README.md`` (sections
``representations-<protocol>-<task>``, ``representations-<grid>-<protocol>-<task>`` with
``--grid``), holding every row of that task, grid and protocol found in the cache for the
current data and code (this run's and earlier ones')::

    python benchmarks/representations.py --data ../shared/data
    python benchmarks/representations.py --grid fixed --tasks movielens movielens-users
    python benchmarks/representations.py --grid fixed --only TruncatedSVD implicit NMF --n-jobs 2
    python benchmarks/representations.py --tasks movielens --dims 10 --protocol transductive \
        --no-readme
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sparse
import torch
from joblib import Parallel, delayed
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import NMF, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import spectral_embedding
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, normalize
from threadpoolctl import threadpool_limits

from skhyperlearn import Hypergraph, HyperLearnDecomposition
from skhyperlearn.datasets import (
    load_lastfm2k,
    load_monti_movielens,
    load_movielens100k,
    make_hypergraph,
)
from skhyperlearn.graphs import cooccurrence_graph, knn_graph, normalized_laplacian
from skhyperlearn.preprocessing import MarginalizeModes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, text_table, write_readme_section
from _results_cache import ResultCache, data_fingerprint, estimator_signature, package_fingerprint

HERE = Path(__file__).resolve().parent
README_HEADER = "# skhyperlearn benchmarks\n"
LASTFM_GENRES = (
    "rock",
    "pop",
    "electronic",
    "metal",
    "hip-hop",
    "jazz",
    "folk",
    "punk",
    "soul",
    "blues",
    "ambient",
    "country",
)


def default_data_home() -> Path:
    env = os.environ.get("SKHYPERLEARN_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


@dataclass
class Task:
    """A hypergraph whose sample mode (mode 0) carries multi-label targets."""

    name: str
    hypergraph: Hypergraph  # graphs as adjacencies; mode 0 is the sample mode
    labels: np.ndarray  # (N_0, n_labels) of 0/1
    description: str

    @property
    def tensor(self) -> sparse.COO:
        return self.hypergraph.tensor

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the tensor, the graphs and the labels (the cache's name for the data)."""
        graphs = [sp.csr_array(g) for g in self.hypergraph.graphs if g is not None]
        parts = [self.tensor.coords, self.tensor.data, self.labels]
        parts += [a for g in graphs for a in (g.data, g.indices, g.indptr)]
        return data_fingerprint(*parts)


@dataclass
class Runner:
    """Where results are cached, and how many outer folds run at once."""

    cache: ResultCache
    n_jobs: int = 1
    threads: int = 1

    def row_key(self, task: Task, name: str, dim: int, model, grid, args) -> dict:
        """Everything a row's numbers depend on; the package's source only where it is used."""
        code = package_fingerprint() if _uses_package(model) else None
        return {
            "task": task.name,
            "data": task.fingerprint,
            "method": name,
            "dim": dim,
            "model": estimator_signature(model),
            "grid": grid,
            "protocol": "transductive" if isinstance(model, str) else args.protocol,
            "folds": args.folds,
            "inner": args.inner,
            "code": code,
        }


def _uses_package(model) -> bool:
    steps = model.steps if isinstance(model, Pipeline) else []
    return any(type(step).__module__.startswith("skhyperlearn") for _, step in steps)


def _sample_cooccurrence(tensor: sparse.COO, n_neighbors: int) -> sp.csr_array:
    """The sample mode's graph built from the tensor itself (shared contexts, cosine kNN)."""
    return cooccurrence_graph(tensor, 0, n_neighbors=n_neighbors, normalize="cosine")


def task_movielens(data_home: Path, n_neighbors: int) -> Task:
    ml = load_movielens100k(data_home, split=None)
    users, movies = ml.train_coords[:, 0], ml.train_coords[:, 1]
    levels = ml.train_values.astype(np.int64) - 1
    tensor = sparse.COO(
        np.stack([movies, users, levels]),
        np.ones(len(levels)),
        shape=(ml.n_items, ml.n_users, 5),
        has_duplicates=False,
    )
    monti = load_monti_movielens(data_home=data_home)
    graphs = [_sample_cooccurrence(tensor, n_neighbors), monti.user_adjacency, None]
    labels = ml.genres.astype(np.int64)[:, 1:]  # "unknown" marks two movies only
    description = (
        f"ML-100K movie × user × rating level {tensor.shape}, {tensor.nnz:,} hyperedges; "
        f"{labels.shape[1]} genres; graphs: movie co-occurrence ({n_neighbors}-NN, cosine), "
        "Monti's 10-NN user graph"
    )
    return Task(
        "movielens", Hypergraph(tensor, graphs, graph_kind="adjacency"), labels, description
    )


AGE_BANDS = ((0, 25), (25, 35), (35, 45), (45, 200))


def task_movielens_users(data_home: Path, n_neighbors: int) -> Task:
    """ML-100K users from the same (movie, user, level) hypergraph: gender and age band.

    The harness cross-validates over mode 0, so the users mode comes first (user × movie ×
    level: the same CP model, its modes in another order), and the graphs are those of the
    ``movielens`` fit — the movie co-occurrence graph, on the movie mode — but Monti's user
    graph, which is built from the demographics that are the labels here.
    """
    ml = load_movielens100k(data_home, split=None)
    users, movies = ml.train_coords[:, 0], ml.train_coords[:, 1]
    levels = ml.train_values.astype(np.int64) - 1
    tensor = sparse.COO(
        np.stack([users, movies, levels]),
        np.ones(len(levels)),
        shape=(ml.n_users, ml.n_items, 5),
        has_duplicates=False,
    )
    gender = np.asarray(ml.user_gender)
    age = np.asarray(ml.user_age)
    columns = [gender == "F", gender == "M"]
    columns += [(age >= lo) & (age < hi) for lo, hi in AGE_BANDS]
    labels = np.stack(columns, axis=1).astype(np.int64)
    movies = cooccurrence_graph(tensor, 1, n_neighbors=n_neighbors, normalize="cosine")
    graphs = [None, movies, None]
    description = (
        f"ML-100K user × movie × rating level {tensor.shape}, {tensor.nnz:,} hyperedges (the "
        "movielens task's hypergraph, users first); labels: gender (F, M) and age band (< 25, "
        "25–34, 35–44, ≥ 45), from u.user; graphs: the movielens task's movie co-occurrence "
        f"graph ({n_neighbors}-NN, cosine) on the movie mode; Monti's user graph left out "
        "(built from these demographics)"
    )
    return Task(
        "movielens-users", Hypergraph(tensor, graphs, graph_kind="adjacency"), labels, description
    )


def _listening_graph(plays: sp.csr_array, n_neighbors: int) -> sp.csr_array:
    """Artists joined to those with the most similar listeners (side information).

    Artists nobody listened to get no edge rather than arbitrary neighbours.
    """
    features = normalize(sp.csr_array(plays).log1p())
    adjacency = knn_graph(features, n_neighbors, metric="cosine")
    heard = (np.diff(features.indptr) > 0).astype(np.float64)
    keep = sp.diags_array(heard)
    return sp.csr_array(keep @ adjacency @ keep)


def task_lastfm(data_home: Path, order: int, n_neighbors: int, min_degree: int) -> Task:
    data = load_lastfm2k(data_home, order=order)
    coords = data.hypergraph.tensor.coords  # user, artist, tag(, period)
    names = list(data.tag_names)
    genre_tags = [names.index(g) for g in LASTFM_GENRES]
    n_artists = data.hypergraph.shape[1]
    labels = np.zeros((n_artists, len(genre_tags)), dtype=np.int64)
    for j, t in enumerate(genre_tags):
        labels[np.unique(coords[1][coords[2] == t]), j] = 1
    # The label tags leave the tensor: the representation never sees them.
    coords = coords[:, ~np.isin(coords[2], genre_tags)]
    degree = np.bincount(coords[1], minlength=n_artists)
    artists = np.flatnonzero(degree >= min_degree)
    coords = coords[:, np.isin(coords[1], artists)]
    artist_idx = np.searchsorted(artists, coords[1])
    tags, tag_idx = np.unique(coords[2], return_inverse=True)
    users, user_idx = np.unique(coords[0], return_inverse=True)
    rows = [artist_idx, tag_idx, user_idx]
    shape = [len(artists), len(tags), len(users)]
    if order == 4:
        periods, period_idx = np.unique(coords[3], return_inverse=True)
        rows.append(period_idx)
        shape.append(len(periods))
    tensor = sparse.COO(np.stack(rows), np.ones(coords.shape[1]), shape=tuple(shape))
    tensor = sparse.COO(tensor.coords, np.ones(tensor.nnz), shape=tensor.shape)  # binary
    friendship = sp.csr_array(data.friendship)[users][:, users]
    graphs = [_listening_graph(data.listening[artists], n_neighbors), None, friendship]
    graphs += [None] * (order - 3)
    modes = "artist × tag × user" + (" × month" if order == 4 else "")
    description = (
        f"Last.fm 2K {modes} {tensor.shape}, {tensor.nnz:,} hyperedges (artists with ≥ "
        f"{min_degree} assignments once the {len(genre_tags)} genre tags are removed); graphs: "
        f"artists by who listens to them ({n_neighbors}-NN, cosine of log1p play counts, "
        "user_artists.dat: not in the tensor), user friendship"
    )
    name = f"lastfm{order}"
    return Task(
        name, Hypergraph(tensor, graphs, graph_kind="adjacency"), labels[artists], description
    )


def task_synthetic() -> Task:
    data = make_hypergraph(
        shape=(1500, 600, 300),
        rank=8,
        n_entries=15_000,
        noise=0.3,
        n_communities=8,
        random_state=0,
    )
    labels = np.eye(8, dtype=np.int64)[data.labels[0]]
    description = (
        f"make_hypergraph {data.tensor.shape}, {data.tensor.nnz:,} binary hyperedges (30 % "
        "uniform noise), 8 planted communities per mode; graphs: the planted kNN graphs"
    )
    hypergraph = Hypergraph(data.tensor, data.adjacencies, graph_kind="adjacency")
    return Task("synthetic", hypergraph, labels, description)


# --------------------------------------------------------------------------------------------
# Representations
# --------------------------------------------------------------------------------------------


class Matricize(BaseEstimator, TransformerMixin):
    """A ``Hypergraph`` (or COO tensor) as a sparse matrix of its sample mode (mode 0).

    ``kind="unfolding"``: the mode-0 unfolding. ``kind="collapse"``: mode 0 × ``other`` (the
    largest other mode by default), the remaining modes summed out (counts).
    """

    def __init__(self, kind="collapse", other=None):
        self.kind = kind
        self.other = other

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        tensor = X.tensor if isinstance(X, Hypergraph) else X
        coords, shape = tensor.coords, tensor.shape
        others = list(range(1, len(shape)))
        if self.kind == "unfolding":
            cols = np.ravel_multi_index(tuple(coords[1:]), shape[1:])
            n_cols = int(np.prod(shape[1:]))
        else:
            other = self.other if self.other is not None else max(others, key=shape.__getitem__)
            cols, n_cols = coords[other], shape[other]
        out = sp.csr_array((tensor.data, (coords[0], cols)), shape=(shape[0], n_cols))
        out.sum_duplicates()
        return out


class UnfoldingSVD(BaseEstimator, TransformerMixin):
    """Truncated SVD of a sparse matrix with very many columns, by its row Gram operator.

    The leading eigenvectors ``U`` of ``M Mᵀ`` (``eigsh`` on the operator, never a vector as
    long as a row) give the training rows ``U Σ``; new rows ``m`` map to ``m Mᵀ U Σ⁻¹``, the
    projection onto the right singular vectors without forming them. TruncatedSVD would hold
    ``n_columns``-long vectors: 10⁹ columns for the 4th-order Last.fm unfolding.
    """

    def __init__(self, n_components=10):
        self.n_components = n_components

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        X = sp.csr_array(X)
        n = X.shape[0]
        op = LinearOperator((n, n), matvec=lambda v: X @ (X.T @ v), dtype=np.float64)
        w, U = eigsh(op, k=self.n_components, which="LA", v0=np.ones(n))
        order = np.argsort(-w)
        sigma = np.sqrt(np.clip(w[order], 1e-300, None))
        self.components_rows_ = X
        self.projection_ = U[:, order] / sigma
        return U[:, order] * sigma

    def transform(self, X):
        return (sp.csr_array(X) @ self.components_rows_.T) @ self.projection_


class _Counts(BaseEstimator, TransformerMixin):
    """A count matrix as ``"log1p"`` of its counts or as ``"binary"`` presence."""

    def __init__(self, kind="log1p"):
        self.kind = kind

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = sp.csr_array(X, dtype=np.float64)
        return X.log1p() if self.kind == "log1p" else (X > 0).astype(np.float64)


class ImplicitALS(BaseEstimator, TransformerMixin):
    """``implicit``'s ALS (Hu, Koren & Volinsky 2008) on a samples × items matrix.

    The training rows are fitted; new rows are folded in against the fitted item factors by
    ``recalculate_user`` (one exact least-squares solve per row), so it runs in a ``Pipeline``
    like every other representation here. Single-threaded BLAS, as ``implicit`` asks.
    """

    def __init__(self, n_components=10, alpha=1.0, regularization=0.01, iterations=15):
        self.n_components = n_components
        self.alpha = alpha
        self.regularization = regularization
        self.iterations = iterations

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            self.model_ = AlternatingLeastSquares(
                factors=self.n_components,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=0,
                num_threads=1,
            )
            self.model_.fit(sp.csr_matrix(X), show_progress=False)
        return np.asarray(self.model_.user_factors, dtype=np.float64)

    def transform(self, X):
        X = sp.csr_matrix(X, dtype=np.float32)
        with threadpool_limits(1, "blas"):
            out = self.model_.recalculate_user(np.arange(X.shape[0]), X)
        return np.asarray(out, dtype=np.float64).reshape(X.shape[0], -1)


def _classifier(sparse_input: bool = False) -> list:
    return [
        ("scale", StandardScaler(with_mean=not sparse_input)),
        ("clf", OneVsRestClassifier(LogisticRegression(max_iter=2000))),
    ]


def methods(task: Task, dim: int, args) -> list[tuple[str, object, dict | None]]:
    """(name, pipeline or "spectral", GridSearchCV grid or None) for one dimension."""
    fit_args = {"max_iter": args.max_iter, "random_state": 0}
    defaults = HyperLearnDecomposition(rank=dim, **fit_args)
    paper = HyperLearnDecomposition(rank=dim, loss="hypergraph", **fit_args)
    neural = HyperLearnDecomposition(
        rank=dim, solver="hyperlearn", max_iter=args.hyperlearn_rounds, random_state=0
    )
    grid = {"rep__lam": list(args.lams)}
    # The defaults solve each mode against unit-norm others (factor_scale="solved"), where λ
    # sets how far the graphs smooth at the model's scale: its useful range is higher.
    default_grid = {"rep__lam": list(args.default_lams)}
    # The context modes: every mode but the sample mode and its largest other mode.
    shape = task.tensor.shape
    largest = max(range(1, len(shape)), key=shape.__getitem__)
    context = [k for k in range(1, len(shape)) if k != largest]
    summed = HyperLearnDecomposition(
        rank=dim, loss="hypergraph", alpha=args.summed_alpha, **fit_args
    )
    summed_name = f"paper's loss, context modes {context} summed, log1p, alpha={args.summed_alpha}"
    return [
        (
            "HyperLearn, defaults, graphs",
            Pipeline([("rep", defaults), *_classifier()]),
            default_grid,
        ),
        (
            "HyperLearn, defaults, no graphs",
            Pipeline([("strip", _StripGraphs()), ("rep", clone(defaults)), *_classifier()]),
            default_grid,
        ),
        (
            "HyperLearn, paper's loss, graphs",
            Pipeline([("rep", paper), *_classifier()]),
            grid,
        ),
        (
            "HyperLearn, paper's loss, no graphs",
            Pipeline([("strip", _StripGraphs()), ("rep", clone(paper)), *_classifier()]),
            grid,
        ),
        (
            "HyperLearn, HyperLearn solver, graphs",
            Pipeline([("rep", neural), *_classifier()]),
            None,
        ),
        (
            f"HyperLearn, {summed_name}, graphs",
            Pipeline(
                [("sum", MarginalizeModes(context, "log1p")), ("rep", summed), *_classifier()]
            ),
            {"rep__lam": list(args.summed_lams)},
        ),
        (
            f"HyperLearn, {summed_name}, no graphs",
            Pipeline(
                [
                    ("strip", _StripGraphs()),
                    ("sum", MarginalizeModes(context, "log1p")),
                    ("rep", clone(summed)),
                    *_classifier(),
                ]
            ),
            {"rep__lam": list(args.summed_lams)},
        ),
        (
            "TruncatedSVD of the unfolding",
            Pipeline(
                [
                    ("mat", Matricize("unfolding")),
                    ("rep", UnfoldingSVD(dim)),
                    *_classifier(),
                ]
            ),
            None,
        ),
        *_baselines(dim),
        ("spectral embedding of the sample graph", "spectral", None),
        *_level_rows(task, defaults, default_grid),
    ]


FIXED_LAMS = (0.1, 1.0, 10.0)
WIDE_LAMS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
ALS_ALPHAS = (1.0, 10.0, 40.0)


def _baselines(dim: int) -> list:
    """The 2-way factorizations of the sample × largest-mode matrix (other modes summed out)."""
    return [
        (
            "TruncatedSVD of sample × largest mode",
            Pipeline(
                [("mat", Matricize()), ("rep", TruncatedSVD(dim, random_state=0)), *_classifier()]
            ),
            None,
        ),
        (
            "TruncatedSVD of log1p sample × largest mode",
            Pipeline(
                [
                    ("mat", Matricize()),
                    ("log", _Counts("log1p")),
                    ("rep", TruncatedSVD(dim, random_state=0)),
                    *_classifier(),
                ]
            ),
            None,
        ),
        (
            "implicit ALS of binary sample × largest mode",
            Pipeline(
                [
                    ("mat", Matricize()),
                    ("bin", _Counts("binary")),
                    ("rep", ImplicitALS(dim)),
                    *_classifier(),
                ]
            ),
            {"rep__alpha": list(ALS_ALPHAS)},
        ),
        (
            "NMF of sample × largest mode",
            Pipeline(
                [
                    ("mat", Matricize()),
                    ("rep", NMF(dim, init="nndsvda", max_iter=400, random_state=0)),
                    *_classifier(),
                ]
            ),
            None,
        ),
    ]


def fixed_methods(dim: int, lams) -> list:
    """``--grid fixed`` / ``wide``: the estimator's defaults (only rank and λ set; a seed for
    reproducibility), with and without the graphs, beside the 2-way baselines."""
    defaults = HyperLearnDecomposition(rank=dim, random_state=0)
    grid = {"rep__lam": list(lams)}
    return [
        ("HyperLearn, defaults, graphs", Pipeline([("rep", defaults), *_classifier()]), grid),
        (
            "HyperLearn, defaults, no graphs",
            Pipeline([("strip", _StripGraphs()), ("rep", clone(defaults)), *_classifier()]),
            grid,
        ),
        *_baselines(dim),
    ]


def _level_rows(task: Task, defaults, grid) -> list:
    """ML-100K: the defaults with a graph on the rating-level mode joining every level.

    Its Laplacian penalises how far each column of the level factor strays from its mean over
    the levels, so components are no longer spent on telling the five levels apart (a watch at
    any level is a watch). Alone and unweighted, λ sets how far (small λ: towards summing the
    mode out). Weighted 10⁴, far above every λ of the grid, it ties the levels at any λ, and
    the movie co-occurrence graph can act at the λ it needs; Monti's user graph is left out
    (it lowered every configuration tried, benchmarks/README.md).
    """
    if task.name != "movielens":
        return []
    return [
        (
            "HyperLearn, defaults, rating-level graph only",
            Pipeline([("levels", _LevelGraph(2)), ("rep", clone(defaults)), *_classifier()]),
            grid,
        ),
        (
            "HyperLearn, defaults, levels tied only (10⁴ × complete graph)",
            Pipeline(
                [("levels", _LevelGraph(2, weight=1e4)), ("rep", clone(defaults)), *_classifier()]
            ),
            grid,
        ),
        (
            "HyperLearn, defaults, movie graph + levels tied (10⁴ × complete graph)",
            Pipeline(
                [
                    ("levels", _LevelGraph(2, weight=1e4, keep=(0,))),
                    ("rep", clone(defaults)),
                    *_classifier(),
                ]
            ),
            grid,
        ),
    ]


class _StripGraphs(BaseEstimator, TransformerMixin):
    """Drops every graph of a ``Hypergraph``: the same estimator, without graphs."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.tensor if isinstance(X, Hypergraph) else X


class _LevelGraph(BaseEstimator, TransformerMixin):
    """A complete graph, its Laplacian times ``weight``, on mode ``mode`` (a mode of a few
    levels); of the input's graphs only those of the modes in ``keep`` stay."""

    def __init__(self, mode=2, weight=1.0, keep=()):
        self.mode = mode
        self.weight = weight
        self.keep = keep

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        tensor = X.tensor if isinstance(X, Hypergraph) else X
        kept = X.laplacians if isinstance(X, Hypergraph) else [None] * tensor.ndim
        graphs = [kept[k] if k in self.keep else None for k in range(tensor.ndim)]
        n = tensor.shape[self.mode]
        graphs[self.mode] = self.weight * normalized_laplacian(np.ones((n, n)) - np.eye(n))
        return Hypergraph(tensor, graphs, graph_kind="laplacian")


def _spectral(task: Task, dim: int) -> np.ndarray:
    adjacency = sp.csr_matrix(task.hypergraph.graphs[0])
    # scikit-learn's spectral_embedding takes 32-bit indices only.
    adjacency.indices = adjacency.indices.astype(np.int32)
    adjacency.indptr = adjacency.indptr.astype(np.int32)
    return spectral_embedding(adjacency, n_components=dim, random_state=0)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def _fold_scores(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    present = y.sum(0) > 0
    macro = average_precision_score(y[:, present], scores[:, present], average="macro")
    micro = average_precision_score(y, scores, average="micro")
    return float(macro), float(micro)


def evaluate(task: Task, dim: int, model, grid, args, runner: Runner, key: dict):
    """Macro and micro AP over outer folds, what GridSearchCV chose, and the seconds spent.

    Pipeline protocol: each outer fold is one job (``--n-jobs`` of them at once), its result
    cached as soon as it ends. Transductive protocol (and the spectral embedding): the row is
    one job, cached whole; ``per_point`` holds each grid point's mean test macro AP over the
    outer folds there (``--grid wide``: a diagnostic of where the best λ lies, not a score).
    """
    folds = list(KFold(args.folds, shuffle=True, random_state=0).split(task.labels))
    if isinstance(model, str) or args.protocol == "transductive":
        record = runner.cache.get(ResultCache.key(**key, fold="all"))
        if record is None:
            tic = time.perf_counter()
            per_point = {} if args.grid == "wide" else None
            macro, micro, chosen = _transductive(
                task, dim, model, grid, folds, args.inner, per_point
            )
            record = {"macro": macro, "micro": micro, "chosen": chosen}
            record |= {"per_point": per_point, "seconds": time.perf_counter() - tic}
            runner.cache.put(ResultCache.key(**key, fold="all"), record)
        return record
    return _merge_folds(_pipeline_folds(task, model, grid, folds, args.inner, runner, key))


def _merge_folds(records: list[dict]) -> dict:
    return {
        "macro": [r["macro"] for r in records],
        "micro": [r["micro"] for r in records],
        "chosen": [r["chosen"] for r in records if r["chosen"] is not None],
        "per_point": None,
        "seconds": sum(r["seconds"] for r in records),
    }


def _pipeline_folds(task: Task, model, grid, folds, inner: int, runner: Runner, key: dict):
    """Every outer fold's record, from the cache or measured (in parallel processes)."""
    records = [runner.cache.get(ResultCache.key(**key, fold=i)) for i in range(len(folds))]
    todo = [i for i, r in enumerate(records) if r is None]
    jobs = (
        delayed(_outer_fold)(
            task.hypergraph, task.labels, folds[i], model, grid, inner, runner.threads
        )
        for i in todo
    )
    done = Parallel(n_jobs=min(runner.n_jobs, max(len(todo), 1)), return_as="generator")(jobs)
    for i, record in zip(todo, done, strict=True):
        runner.cache.put(ResultCache.key(**key, fold=i), record)
        records[i] = record
        print(
            f"    fold {i + 1}/{len(folds)}: macro AP {record['macro']:.3f}, chosen "
            f"{record['chosen']}, {record['seconds']:.0f} s",
            flush=True,
        )
    return records


def _outer_fold(X, y, fold, model, grid, inner: int, threads: int) -> dict:
    """One outer fold of the pipeline protocol: fit on the training entities (``GridSearchCV``
    inside them when there is a grid), score the test entities folded in by ``transform``."""
    torch.set_num_threads(threads)  # in a worker process too
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    train, test = fold
    tic = time.perf_counter()
    estimator = clone(model)
    if grid is not None:
        estimator = GridSearchCV(
            estimator,
            grid,
            cv=KFold(inner, shuffle=True, random_state=1),
            scoring="average_precision",
            error_score="raise",
        )
    # BLAS as many threads as torch: on a loaded machine, more spin and wait for each other
    # (the SVD start and the graph checks slow down many times over).
    with threadpool_limits(threads, "blas"):
        estimator.fit(X[train], y[train])
        macro, micro = _fold_scores(y[test], estimator.decision_function(X[test]))
    chosen = dict(estimator.best_params_) if grid is not None else None
    return {
        "macro": macro,
        "micro": micro,
        "chosen": chosen,
        "seconds": time.perf_counter() - tic,
    }


def _fit_grid(rep: Pipeline, grid, task: Task) -> tuple[dict, list]:
    """One representation per grid point; those whose fit warned that every factor collapsed
    to zero are left out, as a user heeding the warning would (listed as collapsed)."""
    features, collapsed = {}, []
    for params in ParameterGrid(grid or {}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = clone(rep).set_params(**params).fit_transform(task.hypergraph)
        if any("collapsed to zero" in str(w.message) for w in caught):
            collapsed.append({**params, "collapsed": True})
        else:
            features[tuple(sorted(params.items()))] = out
    return features or {(): out}, collapsed


def _transductive(task: Task, dim: int, model, grid, folds, inner: int, per_point=None):
    """Each representation learned once per grid point on every entity (no labels); per outer
    fold the grid point is chosen by the classifier's inner cross-validation on the training
    entities' labels only, as ``GridSearchCV`` would, and scored on the test entities."""
    y = task.labels
    if isinstance(model, str):
        features, collapsed = {(): _spectral(task, dim)}, []
        clf = Pipeline(_classifier())
    else:
        rep = Pipeline(model.steps[:-2])
        clf = Pipeline(model.steps[-2:])
        features, collapsed = _fit_grid(rep, grid, task)
    macro, micro, chosen = [], [], collapsed
    inner_cv = KFold(inner, shuffle=True, random_state=1)
    for train, test in folds:
        best = max(
            features,
            key=lambda k: (
                cross_val_score(
                    clone(clf),
                    features[k][train],
                    y[train],
                    cv=inner_cv,
                    scoring="average_precision",
                ).mean()
                if len(features) > 1
                else 0.0
            ),
        )
        if best:
            chosen.append(dict(best))
        fitted = clone(clf).fit(features[best][train], y[train])
        m, u = _fold_scores(y[test], fitted.decision_function(features[best][test]))
        macro.append(m)
        micro.append(u)
    if per_point is not None and len(features) > 1:
        per_point.update(_per_point(features, clf, y, folds))
    return macro, micro, chosen


def _per_point(features: dict, clf, y: np.ndarray, folds) -> dict:
    out = {}
    for key, values in features.items():
        scores = []
        for train, test in folds:
            fitted = clone(clf).fit(values[train], y[train])
            scores.append(_fold_scores(y[test], fitted.decision_function(values[test]))[0])
        out[_param(dict(key))] = float(np.mean(scores))
    return out


def raw_counts(task: Task, n_splits: int) -> dict:
    """The sample × largest-mode counts as features (a reference: every column)."""
    features = Matricize().transform(task.hypergraph)
    clf = Pipeline(_classifier(sparse_input=True))
    macro, micro = [], []
    tic = time.perf_counter()
    for train, test in KFold(n_splits, shuffle=True, random_state=0).split(task.labels):
        fitted = clone(clf).fit(features[train], task.labels[train])
        m, u = _fold_scores(task.labels[test], fitted.decision_function(features[test]))
        macro.append(m)
        micro.append(u)
    seconds = time.perf_counter() - tic
    return {"macro": macro, "micro": micro, "chosen": [], "per_point": None, "seconds": seconds}


RAW_COUNTS = "raw counts (reference)"


def _raw_counts_key(task: Task, args) -> str:
    return ResultCache.key(
        task=task.name, data=task.fingerprint, method=RAW_COUNTS, folds=args.folds, fold="all"
    )


def _row(task: Task, name: str, dim: int, record: dict) -> dict:
    """A table row from a measured (or cached) record."""
    chosen = record["chosen"]
    lams = sorted({_param(c) for c in chosen if "collapsed" not in c})
    dropped = sorted({_param(c) for c in chosen if "collapsed" in c})
    row = {
        "task": task.name,
        "method": name,
        "dim": dim,
        "macro": _fmt(record["macro"]),
        "micro": _fmt(record["micro"]),
        "lam": (", ".join(f"{v:g}" for v in lams) or "-")
        + (f" ({', '.join(f'{v:g}' for v in dropped)}: collapsed)" if dropped else ""),
        "time": "-" if name == RAW_COUNTS else f"{record['seconds']:.0f}",
    }
    per_point = {float(k): v for k, v in (record.get("per_point") or {}).items()}
    if per_point:
        best = max(per_point, key=per_point.get)
        row["lam"] += f"; per point {_per_point_text(per_point)}; best {best:g}"
    return row


def _cached_rows(task: Task, args, runner: Runner) -> list[dict]:
    """Every row of this task, grid and protocol measured so far with the current data and
    code (this run's and earlier runs'), in the method order, for the README section."""
    rows = []
    for dim in sorted(set(args.dims) | {10, 32}):
        for name, model, grid in _methods_for(task, dim, args):
            key = runner.row_key(task, name, dim, model, grid, args)
            if isinstance(model, str) or args.protocol == "transductive":
                record = runner.cache.get(ResultCache.key(**key, fold="all"))
            else:
                folds = [
                    runner.cache.get(ResultCache.key(**key, fold=i)) for i in range(args.folds)
                ]
                record = None if None in folds else _merge_folds(folds)
            if record is not None:
                rows.append(_row(task, name, dim, record))
    record = runner.cache.get(_raw_counts_key(task, args))
    if record is not None:
        n_cols = Matricize().transform(task.hypergraph).shape[1]
        rows.append(_row(task, RAW_COUNTS, n_cols, record))
    return rows


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding ml-100k/ etc.")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["movielens", "movielens-users", "lastfm3", "lastfm4", "synthetic"],
    )
    parser.add_argument(
        "--grid", choices=["harness", "fixed", "wide"], default="harness",
        help="harness: the researcher's rows (every row with its own grid, per-task "
        "configurations); fixed: the recommended path, the defaults with λ in "
        f"{list(FIXED_LAMS)} beside the 2-way baselines; wide: the same with λ in "
        f"{list(WIDE_LAMS)} (a diagnostic: where the best λ lies)",
    )  # fmt: skip
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 32])
    parser.add_argument(
        "--lams", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0],
        help="λ grid of the paper's-loss rows",
    )  # fmt: skip
    parser.add_argument(
        "--default-lams", type=float, nargs="+", default=[1.0, 10.0, 100.0, 1000.0],
        help="λ grid of the defaults rows (factor_scale='solved')",
    )  # fmt: skip
    parser.add_argument("--summed-lams", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--summed-alpha", type=float, default=0.1)
    parser.add_argument("--protocol", choices=["pipeline", "transductive"], default="pipeline")
    parser.add_argument("--folds", type=int, default=5, help="outer folds")
    parser.add_argument("--inner", type=int, default=3, help="GridSearchCV folds")
    parser.add_argument("--max-iter", type=int, default=50, help="exact sweeps per fit")
    parser.add_argument("--hyperlearn-rounds", type=int, default=30)
    parser.add_argument("--n-neighbors", type=int, default=10, help="co-occurrence kNN")
    parser.add_argument("--min-degree", type=int, default=10, help="Last.fm artists kept")
    parser.add_argument(
        "--only", "--rows", nargs="*", default=None,
        help="run only the rows whose name contains one of these substrings (the README "
        "section still lists every row measured so far: see --cache)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--n-jobs", type=int, default=1,
        help="outer folds measured at once, one process each (pipeline protocol)",
    )  # fmt: skip
    parser.add_argument(
        "--cache", type=Path, default=HERE / "_out" / "representations-cache.json",
        help="results per (task, row, dim, fold), reused and extended by later runs",
    )  # fmt: skip
    parser.add_argument("--no-cache", action="store_true", help="measure every row again")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    data_home = args.data if args.data is not None else default_data_home()

    builders = {
        "movielens": lambda: task_movielens(data_home, args.n_neighbors),
        "movielens-users": lambda: task_movielens_users(data_home, args.n_neighbors),
        "lastfm3": lambda: task_lastfm(data_home, 3, args.n_neighbors, args.min_degree),
        "lastfm4": lambda: task_lastfm(data_home, 4, args.n_neighbors, args.min_degree),
        "synthetic": task_synthetic,
    }
    runner = Runner(
        ResultCache(None if args.no_cache else args.cache), n_jobs=args.n_jobs, threads=args.threads
    )
    rows = []
    for task_name in args.tasks:
        task = builders[task_name]()
        print(f"\n{task.name}: {task.description}", flush=True)
        rows += _run_task(task, args, runner)
        if not args.no_readme:
            write_section(args, task, _cached_rows(task, args, runner), load_before)
    print()
    print(text_table(rows, COLUMNS))


def _run_task(task: Task, args, runner: Runner) -> list[dict]:
    """This run's rows of one task (those ``--only`` names), each printed when it ends."""
    rows = []
    for dim in args.dims:
        for name, model, grid in _methods_for(task, dim, args):
            if args.only and not any(s in name for s in args.only):
                continue
            tic = time.perf_counter()
            key = runner.row_key(task, name, dim, model, grid, args)
            record = evaluate(task, dim, model, grid, args, runner, key)
            rows.append(_row(task, name, dim, record))
            wall = time.perf_counter() - tic
            print(text_table([rows[-1]], COLUMNS).splitlines()[-1], flush=True)
            print(f"    ({wall:.0f} s wall-clock in this run)", flush=True)
    record = runner.cache.get(_raw_counts_key(task, args))
    if record is None:
        record = raw_counts(task, args.folds)
        runner.cache.put(_raw_counts_key(task, args), record)
    n_cols = Matricize().transform(task.hypergraph).shape[1]
    rows.append(_row(task, RAW_COUNTS, n_cols, record))
    print(text_table([rows[-1]], COLUMNS).splitlines()[-1], flush=True)
    return rows


def _methods_for(task: Task, dim: int, args) -> list:
    if args.grid == "harness":
        return methods(task, dim, args)
    return fixed_methods(dim, FIXED_LAMS if args.grid == "fixed" else WIDE_LAMS)


def _per_point_text(per_point: dict) -> str:
    return " ".join(f"{k:g}: {v:.3f}" for k, v in per_point.items())


def _param(chosen: dict) -> float:
    """The value of the one searched parameter (λ, or ALS's alpha)."""
    return next(v for k, v in chosen.items() if k.startswith("rep__"))


def _grid(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def write_section(args, task: Task, rows: list, load_before: str) -> None:
    """The task's table into benchmarks/README.md (``representations-<protocol>-<task>``)."""
    info = machine_info(["skhyperlearn", "torch", "numpy", "scipy", "scikit-learn", "sparse"])
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    grid = (
        f'; λ chosen by `GridSearchCV` ({args.inner} inner folds, column "λ chosen") in the '
        "training folds only"
        if args.protocol == "pipeline"
        else (
            "; every representation learned once per λ on all entities without labels, λ "
            f"chosen per outer fold by the classifier's {args.inner}-fold cross-validation on "
            'the training entities (column "λ chosen")'
        )
    )
    if args.grid == "harness":
        grids = (
            f"λ grids: defaults rows {_grid(args.default_lams)}, paper's-loss rows "
            f"{_grid(args.lams)}, summed rows {_grid(args.summed_lams)}"
        )
    else:
        lams = FIXED_LAMS if args.grid == "fixed" else WIDE_LAMS
        grids = (
            f"HyperLearnDecomposition(rank=dim, lam=λ, random_state=0), every other parameter "
            f"at its default, λ over {_grid(lams)}; implicit ALS's alpha over "
            f"{_grid(ALS_ALPHAS)} (factors = dim, its other parameters at their defaults)"
        )
    flag = "" if args.grid == "harness" else f" --grid {args.grid}"
    content = f"""### {task.name}, {args.protocol} protocol{flag.replace(" --grid", ", grid")}

`python benchmarks/representations.py --tasks {task.name} --protocol {args.protocol}{flag}` —
{task.description}. {args.folds} outer folds{grid}. {grids}. Every row measured so far with
this data and code (rows run with `--only` in separate runs, merged through the results cache);
"time" is the seconds of work summed over the outer folds, which `--n-jobs` runs at once.

{markdown_table(rows, COLUMNS, align={"dim": "r", "time": "r"})}

Machine: {info["cpu"]}, {info["cores"]} cores, {info.get("memory", "?")}; Python {info["python"]};
{versions}; torch threads {args.threads}. Load average before: {load_before}; after:
{load_after} (shared machine).
"""
    grid_key = "" if args.grid == "harness" else f"{args.grid}-"
    key = f"representations-{grid_key}{args.protocol}-{task.name}"
    write_readme_section(args.readme, key, content, README_HEADER)
    print(f"wrote the '{key}' section of {args.readme}")


COLUMNS = [
    ("task", "task"),
    ("method", "representation"),
    ("dim", "dim"),
    ("macro", "AP macro"),
    ("micro", "AP micro"),
    ("lam", "λ (ALS: α) chosen"),
    ("time", "time (s)"),
]


if __name__ == "__main__":
    main()
