"""Resumable results of ``representations.py``: one JSON file, one entry per outer fold.

A long table (a pipeline row is five outer folds of a ``GridSearchCV`` each) is measured piece
by piece: every finished outer fold is written at once under a key naming what was measured
(task data, method, dimension, grid, protocol, folds), so a stopped run resumes where it was and
a rerun with ``--only`` adds rows beside those already measured. Rows whose pipeline contains
a skhyperlearn estimator also carry a fingerprint of the package's source: a change to the
model makes them stale (measured again), while the 2-way baselines stay valid.

The file lives under ``benchmarks/_out/`` (ignored by git): it is a cache, not a result; the
tables in ``benchmarks/README.md`` are.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ResultCache", "data_fingerprint", "estimator_signature", "package_fingerprint"]

_PACKAGE = Path(__file__).resolve().parents[1] / "skhyperlearn"


def package_fingerprint(root: Path = _PACKAGE) -> str:
    """A hash of every ``.py`` file of the package (path and content) but the datasets.

    The loaders and generators only make the data, which the data fingerprint covers.
    """
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "datasets":
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def data_fingerprint(*arrays) -> str:
    """A hash of the arrays a task is made of (coordinates, values, labels, graphs)."""
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def _leaf(value) -> str:
    if hasattr(value, "get_params"):
        return estimator_signature(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_leaf(v) for v in value) + "]"
    return repr(value)


def estimator_signature(estimator) -> str:
    """Class and every parameter, recursively: the same text for the same configuration.

    scikit-learn's ``repr`` elides long parameter lists and unchanged defaults, so it cannot
    tell two configurations apart once a default changes; this spells everything out.
    """
    if isinstance(estimator, str):
        return estimator
    params = estimator.get_params(deep=False)
    inner = ", ".join(f"{k}={_leaf(v)}" for k, v in sorted(params.items()))
    return f"{type(estimator).__name__}({inner})"


class ResultCache:
    """A JSON file of ``key → record``, rewritten atomically after every ``put``.

    ``path=None`` keeps everything in memory (``--no-cache``).
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._records: dict = {}
        if path is not None and path.is_file():
            self._records = json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def key(**parts) -> str:
        """One string for the parts (sorted by name), the same across runs."""
        return json.dumps(parts, sort_keys=True, default=str)

    def get(self, key: str):
        return self._records.get(key)

    def put(self, key: str, record) -> None:
        self._records[key] = record
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            # Other runs (other tasks, started beside this one) may have written since.
            if self.path.is_file():
                on_disk = json.loads(self.path.read_text(encoding="utf-8"))
                self._records = {**on_disk, key: record}
            # Write aside, then rename: a run killed mid-write leaves the previous file whole.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._records, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
