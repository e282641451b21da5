"""The entry point's arguments, every one checked before any process group or fit starts.

Each check ends in ``parser.error`` naming the option (argparse's usage line, exit status 2),
so a mistyped option costs no rendezvous, no data loading on N ranks and no fit.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import sparse
import torch

from .. import HyperLearnDecomposition

__all__ = ["checked_arguments"]

#: Estimator parameters the options set; --params must not set them a second time.
_OPTION_OF = {
    "rank": "--rank",
    "solver": "--solver",
    "max_iter": "--max-iter",
    "tol": "--tol",
    "lam": "--lam",
    "random_state": "--seed",
}
#: Set by the entry point itself.
_RESERVED = ("schedule", "callback")


def _shape(text: str, parser) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) < 2 or not all(re.fullmatch(r"[0-9]+", p.strip()) for p in parts):
        parser.error(
            f"--synthetic must be at least two positive integers separated by commas "
            f"(e.g. 60,50,40), got {text!r}."
        )
    shape = tuple(int(p) for p in parts)
    if min(shape) < 1:
        parser.error(f"--synthetic sizes must be >= 1, got {text!r}.")
    return shape


def data_layout(args, parser) -> tuple[int, np.dtype, np.dtype, list[bool]]:
    """``(order, value dtype, index dtype, graphed modes)`` of the fit's data, without its
    entries: a folder's manifest or the ``--synthetic`` shape."""
    from ._shards import _index_dtype, _manifest

    if args.synthetic:
        shape = _shape(args.synthetic, parser)
        return len(shape), np.dtype(np.float64), _index_dtype(shape), [True] * len(shape)
    if args.data is None or not Path(args.data).is_dir():
        parser.error("--warm reads the data's description: give --data FOLDER or --synthetic.")
    try:
        manifest = _manifest(Path(args.data))
        shape = [int(s) for s in manifest["shape"]]
        dtype, graphs = np.dtype(manifest["dtype"]), [g is not None for g in manifest["graphs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"--data {args.data}: {exc}")
    return len(shape), dtype, _index_dtype(shape), graphs


def _params(text: str, parser) -> dict:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"--params must be a JSON object, e.g. '{{\"alpha\": 0.1}}': {exc}.")
    if not isinstance(params, dict):
        parser.error(f"--params must be a JSON object, got {type(params).__name__} {text!r}.")
    known = set(HyperLearnDecomposition().get_params())
    for key in params:
        if key in _OPTION_OF:
            parser.error(
                f"--params sets {key!r}, which {_OPTION_OF[key]} sets: use {_OPTION_OF[key]}."
            )
        if key in _RESERVED:
            parser.error(f"--params sets {key!r}, which the entry point sets itself.")
        if key not in known:
            parser.error(f"--params: HyperLearnDecomposition has no parameter {key!r}.")
    return params


def _lam(text: str, parser):
    if text == "auto":
        return "auto"
    try:
        lam = float(text)
    except ValueError:
        parser.error(f"--lam must be 'auto' or a number, got {text!r}.")
    if not math.isfinite(lam) or lam < 0:
        parser.error(f"--lam must be 'auto' or a finite number >= 0, got {text!r}.")
    return lam


def _timeout(seconds: float, parser) -> None:
    if not math.isfinite(seconds) or seconds <= 0:
        parser.error(f"--timeout must be a finite number of seconds > 0, got {seconds!r}.")
    try:
        datetime.timedelta(seconds=seconds)
    except OverflowError:
        parser.error(f"--timeout is too large to be a time span: {seconds!r} seconds.")


def _backend(backend: str | None, parser) -> None:
    if backend == "nccl" and not torch.cuda.is_available():
        parser.error("--backend nccl needs CUDA, which is not available here; use --backend gloo.")


def _output(path: str | None, option: str, parser) -> None:
    """An output file whose folder exists and is writable (checked now, not after the fit)."""
    if path is None:
        return
    target = Path(path)
    folder = target.parent
    if path == "" or target.is_dir():
        parser.error(f"{option} must name a file, got the folder {path!r}.")
    if not folder.is_dir():
        parser.error(f"{option} {path!r}: the folder {str(folder)!r} does not exist.")
    if not os.access(folder, os.W_OK):
        parser.error(f"{option} {path!r}: the folder {str(folder)!r} is not writable.")


def _counts(args, parser) -> None:
    for option, value, low in (
        ("--rank", args.rank, 1),
        ("--max-iter", args.max_iter, 1),
        ("--checkpoint-every", args.checkpoint_every, 1),
        ("--seed", args.seed, 0),
    ):
        if value < low:
            parser.error(f"{option} must be >= {low}, got {value}.")
    if args.n_entries is not None:
        if not args.synthetic:
            parser.error("--n-entries applies to --synthetic only.")
        if args.n_entries < 1:
            parser.error(f"--n-entries must be >= 1, got {args.n_entries}.")
    if not math.isfinite(args.tol) or args.tol < 0:
        parser.error(f"--tol must be a finite number >= 0, got {args.tol!r}.")


def _schedule(args, parser) -> str:
    """``--schedule``, resolved: "sharded" for a folder of shards, else "distributed"."""
    folder = args.data is not None and Path(args.data).is_dir()
    schedule = args.schedule or ("sharded" if folder else "distributed")
    if folder and schedule != "sharded":
        parser.error(f"--data {args.data} is a folder of shards: it needs --schedule sharded.")
    if schedule == "sharded" and args.solver != "als":
        parser.error(
            f"--schedule sharded supports --solver als (the exact solver), got {args.solver!r}."
        )
    return schedule


def _world(parser) -> tuple[int, int]:
    """This rank and the world size, from the environment torchrun sets."""
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except (KeyError, ValueError):
        parser.error("--schedule sharded reads RANK and WORLD_SIZE: launch it with torchrun.")
    return rank, world


def _share(X, parser):
    """This rank's contiguous share of the stored entries of a whole X (and its graphs)."""
    from .._validation import check_tensor
    from ..hypergraph import Hypergraph
    from ._shards import shard_range, share_tensor

    rank, world = _world(parser)
    data = check_tensor(X, "X")
    start, stop = shard_range(data.values.shape[0], rank, world)
    # check_tensor's entries are sorted and distinct: wrapped without sparse's compiled checks.
    part = share_tensor(data.coords[start:stop].T, data.values[start:stop], data.shape)
    return Hypergraph(part, data.laplacians)


def _estimator(args, params: dict, lam, parser, schedule: str) -> HyperLearnDecomposition:
    """The estimator the ranks will fit, its parameters checked as fit would check them."""
    model = HyperLearnDecomposition(
        rank=args.rank, solver=args.solver, max_iter=args.max_iter, tol=args.tol, lam=lam,
        schedule=schedule, random_state=args.seed, **params,
    )  # fmt: skip
    try:
        model._validate_params()
    except ValueError as exc:
        found = re.search(r"The '(\w+)' parameter", str(exc))
        option = _OPTION_OF.get(found.group(1), "--params") if found else "--params"
        parser.error(f"{option}: {exc}")
    return model


def _check_data(X, source: str, parser) -> None:
    from ..hypergraph import Hypergraph

    if not isinstance(X, (Hypergraph, sparse.SparseArray, np.ndarray)) and not sp.issparse(X):
        parser.error(
            f"{source} holds a {type(X).__name__}; expected a Hypergraph, a sparse.COO "
            "tensor, a scipy sparse matrix or an ndarray."
        )
    from .._validation import check_tensor

    try:
        check_tensor(X, "X")
    except (TypeError, ValueError) as exc:
        parser.error(f"{source} is not a tensor this fit can use: {exc}")


def _load(args, parser):
    """The data every rank fits, loaded and checked before the process group is joined."""
    if args.synthetic:
        from ..datasets import make_hypergraph
        from ..hypergraph import Hypergraph

        shape = _shape(args.synthetic, parser)
        try:
            data = make_hypergraph(shape, rank=4, n_entries=args.n_entries, random_state=args.seed)
        except (TypeError, ValueError) as exc:
            parser.error(f"--synthetic {args.synthetic} --n-entries {args.n_entries}: {exc}")
        return Hypergraph(data.tensor, data.laplacians)
    if args.lastfm:
        from ..datasets import load_lastfm2k

        try:
            return load_lastfm2k(args.lastfm, order=4).hypergraph
        except (OSError, ValueError) as exc:
            parser.error(f"--lastfm {args.lastfm}: {exc}")
    source = f"--data {args.data}"
    if Path(args.data).is_dir():
        from ._shards import read_shard

        try:
            return read_shard(args.data, *_world(parser))
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"{source}: {exc}")
    if not Path(args.data).is_file():
        parser.error(f"{source}: no such file.")
    try:
        with open(args.data, "rb") as f:
            X = pickle.load(f)  # the option's contract: a pickle the user made (trusted)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError, ValueError, OSError) as exc:  # fmt: skip
        parser.error(f"{source} is not a readable pickle of X: {type(exc).__name__}: {exc}")
    _check_data(X, source, parser)
    return X


def checked_arguments(args, parser) -> SimpleNamespace:
    """Every option checked (and the data loaded), before anything else runs.

    Returns
    -------
    SimpleNamespace
        ``X`` (the data: this rank's share under ``--schedule sharded``; None with
        ``--warm``, which has ``layout`` instead: see :func:`data_layout`), ``params``
        (the extra estimator parameters), ``lam``, ``schedule``.
    """
    _counts(args, parser)
    _timeout(args.timeout, parser)
    _backend(args.backend, parser)
    params = _params(args.params, parser)
    lam = _lam(args.lam, parser)
    _output(args.output, "--output", parser)
    _output(args.stats, "--stats", parser)
    schedule = _schedule(args, parser)
    _estimator(args, params, lam, parser, schedule)
    if args.warm:
        layout = data_layout(args, parser)
        return SimpleNamespace(X=None, layout=layout, params=params, lam=lam, schedule=schedule)
    X = _load(args, parser)
    if schedule == "sharded" and not Path(args.data or "").is_dir():
        X = _share(X, parser)  # every rank loaded the whole X: keep its share only
    return SimpleNamespace(X=X, layout=None, params=params, lam=lam, schedule=schedule)
