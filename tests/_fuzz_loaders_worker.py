"""Seeded corruptions of tiny Monti ``.mat`` and Last.fm files, for
tests/inputs/test_fuzz_loaders.py.

``python tests/_fuzz_loaders_worker.py {monti|lastfm} SEED N FOLDER`` writes ``N`` corrupted
copies under ``FOLDER`` and loads each. Every outcome is checked against an independent
pure-Python reading of the same corrupted parts: where the reference finds the parts consistent
the loader must succeed and return exactly what the reference builds; otherwise it must raise a
ValueError or OSError whose message names the file and the corrupted variable. The test runs this
script in a subprocess, so that a crash of compiled code (SIGSEGV) fails the test instead of
killing pytest. It prints one summary line and exits 1 on the first wrong outcome.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skhyperlearn.datasets import load_lastfm2k, load_monti_movielens

# ---------------------------------------------------------------------------- Monti .mat files
_RATINGS = np.array([[5.0, 0, 3, 0], [0, 1, 4, 2], [2, 0, 0, 5]])
_SPARSE = {
    "W_users": sp.csc_array(np.array([[0.0, 1, 1], [1, 0, 0], [1, 0, 0]])),
    "W_movies": sp.csc_array(np.ones((4, 4)) - np.eye(4)),
}
_INT64_MAX = int(np.iinfo(np.int64).max)


def _monti_parts() -> dict:
    """The sparse parts of each graph as MATLAB v7.3 stores them (uint64 ir/jc)."""
    return {
        name: {
            "data": mat.data.copy(),
            "ir": mat.indices.astype(np.uint64),
            "jc": mat.indptr.astype(np.uint64),
            "MATLAB_sparse": np.uint64(mat.shape[0]),
        }
        for name, mat in _SPARSE.items()
    }


def _random_value(rng, kind: str):
    """A value that may or may not be valid where it lands."""
    choices = [0, 1, 2, 3, 4, 5, -1, 2**31, 2**63 - 1, 2**64 - 1, 10**12]
    if kind == "data":
        choices = [0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e308, 7.0]
    return choices[rng.integers(len(choices))]


def _corrupt_field(rng, arr: np.ndarray, kind: str):
    """One corruption of one 1-D part: a changed entry, a length change, a type or a shape."""
    what = rng.integers(8)
    arr = arr.copy()
    if what <= 2 and arr.size:  # one entry changed (possibly to a consistent value)
        value = _random_value(rng, kind)
        if arr.dtype.kind == "u" and (isinstance(value, int) and value < 0):
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "u" and isinstance(value, float):
            arr = arr.astype(np.float64)
        if arr.dtype.kind in "iu" and isinstance(value, int) and value > np.iinfo(arr.dtype).max:
            arr = arr.astype(np.uint64)
        arr[rng.integers(arr.size)] = value
        return arr
    if what == 3:  # truncated
        return arr[: rng.integers(arr.size + 1)]
    if what == 4:  # extended
        return np.concatenate([arr, arr[: rng.integers(1, 3)] if arr.size else arr[:0]])
    if what == 5:  # shuffled
        return rng.permutation(arr)
    if what == 6:  # another type
        types = [np.float64, np.int32, np.int8, np.float32, "S4"]
        return arr.astype(types[rng.integers(len(types))])
    return arr.reshape(1, -1) if rng.integers(2) else np.stack([arr, arr])


def _corrupt_monti(rng, parts: dict) -> str:
    """Corrupt one part of one graph in place; return the graph's name."""
    name = ("W_users", "W_movies")[rng.integers(2)]
    field = ("data", "ir", "jc", "MATLAB_sparse", "drop")[rng.integers(5)]
    part = parts[name]
    if field == "MATLAB_sparse":
        choices = [np.uint64(0), np.uint64(2**63 + 5), np.int64(-3), np.float64(3.0), b"3",
                   np.uint64(part["MATLAB_sparse"] + 1), np.array([3, 3], np.uint64)]  # fmt: skip
        part["MATLAB_sparse"] = choices[rng.integers(len(choices))]
    elif field == "drop":
        del part[("data", "ir", "jc")[rng.integers(3)]]
    else:
        part[field] = _corrupt_field(rng, part[field], "data" if field == "data" else "index")
    return name


def _write_monti(path: Path, parts: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f["M"] = _RATINGS.T
        f["Otraining"] = (_RATINGS > 0).astype(np.float64).T
        f["Otest"] = np.zeros_like(_RATINGS).T
        for name, part in parts.items():
            g = f.create_group(name)
            for field in ("data", "ir", "jc"):
                if field in part:
                    g[field] = part[field]
            g.attrs["MATLAB_sparse"] = part["MATLAB_sparse"]


def _reference_graph(part: dict, n: int) -> np.ndarray | None:
    """The dense graph the parts describe, by plain loops; None when they are inconsistent."""
    rows = part["MATLAB_sparse"]
    if not isinstance(rows, np.integer) or rows.ndim != 0 or int(rows) != n:
        return None
    arrays = [part.get(f) for f in ("data", "ir", "jc")]
    if any(a is None or a.ndim != 1 for a in arrays):
        return None
    data, ir, jc = arrays
    if ir.dtype.kind not in "iu" or jc.dtype.kind not in "iu" or data.dtype.kind not in "biuf":
        return None
    jc, ir = [int(v) for v in jc], [int(v) for v in ir]
    if len(jc) != n + 1 or jc[0] != 0 or any(b < a for a, b in pairwise(jc)):
        return None
    if not (len(ir) == len(data) == jc[-1]) or any(not 0 <= i < n for i in ir):
        return None
    if not all(np.isfinite(float(d)) for d in data):
        return None
    dense = np.zeros((n, n))
    for j in range(n):
        for p in range(jc[j], jc[j + 1]):
            dense[ir[p], j] += float(data[p])
    return dense


def fuzz_monti(rng, folder: Path) -> str:
    parts = _monti_parts()
    name = _corrupt_monti(rng, parts)
    path = folder / "split_1.mat"
    _write_monti(path, parts)
    n = {"W_users": _RATINGS.shape[0], "W_movies": _RATINGS.shape[1]}
    expected = {k: _reference_graph(parts[k], n[k]) for k in parts}
    try:
        got = load_monti_movielens(path)
    except (ValueError, OSError) as exc:
        if expected[name] is not None:
            raise AssertionError(f"consistent parts of {name} refused: {exc}") from exc
        if str(path) not in str(exc) or name not in str(exc):
            raise AssertionError(f"the error does not name {path} and {name}: {exc}") from exc
        return "error"
    if expected[name] is None:
        raise AssertionError(f"inconsistent parts of {name} loaded: {parts[name]}")
    for key, attr in (("W_users", "user_adjacency"), ("W_movies", "movie_adjacency")):
        np.testing.assert_array_equal(getattr(got, attr).toarray(), expected[key])
    return "load"


# ---------------------------------------------------------------------------- Last.fm files
_TAGGED_HEADER = ["userID", "artistID", "tagID", "day", "month", "year"]
_FRIENDS_HEADER = ["userID", "friendID"]
_TAGGED = [[2, 52, 13, 1, 4, 2009], [2, 51, 13, 1, 5, 2009], [7, 52, 1, 1, 4, 2008],
           [9, 51, 1, 2, 12, 2010], [7, 53, 13, 3, 1, 2007]]  # fmt: skip
_FRIENDS = [[2, 9], [9, 2], [7, 9], [9, 7], [11, 2]]
_TOKENS = ["0", "-3", "13", "12", "2011", "99999999999999999999", str(_INT64_MAX),
           str(-_INT64_MAX - 1), "nan", "inf", "1.5", "abc", "", "1e3", "\xff"]  # fmt: skip


def _lines(header: list[str], rows: list[list[int]]) -> list[list[str]]:
    return [list(header)] + [[str(v) for v in row] for row in rows]


def _corrupt_table(rng, table: list[list[str]]) -> list[list[str]]:
    """One corruption of a tab-separated table: a token, a field too many or too few, a row."""
    table = [list(r) for r in table]
    what = rng.integers(5)
    row = table[rng.integers(len(table))]
    if what <= 1:
        row[rng.integers(len(row))] = _TOKENS[rng.integers(len(_TOKENS))]
    elif what == 2:
        del row[rng.integers(len(row))]
    elif what == 3:
        row.insert(rng.integers(len(row) + 1), _TOKENS[rng.integers(len(_TOKENS))])
    else:
        del table[rng.integers(len(table))]
    return table


def _write_lastfm(folder: Path, tagged, friends) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in (("user_taggedartists.dat", tagged), ("user_friends.dat", friends)):
        text = "".join("\t".join(r) + "\n" for r in table)
        (folder / name).write_bytes(text.encode("latin-1"))
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n52\tMorcheeba\ta\tb\n")
    (folder / "tags.dat").write_text("tagID\ttagValue\n1\tmetal\n13\tjazz\n")


def _strict_ints(table, header, width) -> list[tuple[int, ...]] | None:
    """Rows of ``table`` as ints when the header and every row are well formed, else None."""
    # The loader compares the header line stripped of surrounding whitespace (tabs included).
    if not table or "\t".join(table[0]).strip().split("\t") != header:
        return None
    rows = []
    for r in table[1:]:
        if len(r) != width or not all(re.fullmatch(r"-?[0-9]+", t) for t in r):
            return None
        values = tuple(int(t) for t in r)
        if any(not -_INT64_MAX - 1 <= v <= _INT64_MAX for v in values):
            return None
        rows.append(values)
    return rows or None


def _reference_lastfm(tagged, friends):
    """Hyperedge counts and friend pairs the files describe; None when they are malformed."""
    t = _strict_ints(tagged, _TAGGED_HEADER, 6)
    f = _strict_ints(friends, _FRIENDS_HEADER, 2)
    if t is None or f is None or any(not (1 <= r[4] <= 12 and 0 <= r[5] <= 9999) for r in t):
        return None
    edges = Counter((r[0], r[1], r[2]) for r in t)
    pairs = {(a, b) for a, b in f if a != b} | {(b, a) for a, b in f if a != b}
    return edges, pairs


def _loaded_lastfm(bunch):
    h = bunch.hypergraph
    coords = h.tensor.coords
    edges = Counter()
    for p in range(coords.shape[1]):
        key = tuple(int(h.ids[k][coords[k, p]]) for k in range(3))
        edges[key] += int(h.tensor.data[p])
    fr = bunch.friendship.tocoo()
    pairs = {
        (int(bunch.user_ids[i]), int(bunch.user_ids[j]))
        for i, j in zip(fr.row, fr.col, strict=True)
    }
    return edges, pairs


def fuzz_lastfm(rng, folder: Path) -> str:
    tagged = _lines(_TAGGED_HEADER, _TAGGED)
    friends = _lines(_FRIENDS_HEADER, _FRIENDS)
    target = rng.integers(2)
    name = ("user_taggedartists.dat", "user_friends.dat")[target]
    if target == 0:
        tagged = _corrupt_table(rng, tagged)
    else:
        friends = _corrupt_table(rng, friends)
    _write_lastfm(folder, tagged, friends)
    expected = _reference_lastfm(tagged, friends)
    try:
        got = load_lastfm2k(folder)
    except (ValueError, OSError) as exc:
        if expected is not None:
            raise AssertionError(f"well-formed {name} refused: {exc}") from exc
        if str(folder / name) not in str(exc):
            raise AssertionError(f"the error does not name {folder / name}: {exc}") from exc
        return "error"
    if expected is None:
        raise AssertionError(f"malformed {name} loaded: {tagged if target == 0 else friends}")
    if _loaded_lastfm(got) != expected:
        raise AssertionError(f"{name} loaded wrongly: {_loaded_lastfm(got)} != {expected}")
    return "load"


def main() -> None:
    which, seed, n, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    rng = np.random.default_rng(seed)
    fuzz = fuzz_monti if which == "monti" else fuzz_lastfm
    outcomes = Counter()
    for i in range(n):
        case = folder / f"case{i}"
        case.mkdir(parents=True)
        try:
            outcomes[fuzz(rng, case)] += 1
        except AssertionError as exc:
            print(f"{which} case {i} (seed {seed}): {exc}", flush=True)
            sys.exit(1)
    print(f"{which}: {n} cases, {outcomes['error']} errors, {outcomes['load']} loads", flush=True)


if __name__ == "__main__":
    main()
