"""The loaders check every part of a file before building anything from it (#23).

A Monti ``.mat`` whose sparse parts are inconsistent used to reach scipy unchecked (and crash
the interpreter); NaN ratings and graph weights loaded silently; a 3-D ``M`` failed inside
unpacking; an age beyond int64 raised OverflowError; ``load_lastfm2k(order=3.0)`` failed after
reading the files. Each case here names the file and the field, and leaves the files unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from skhyperlearn.datasets import load_lastfm2k, load_monti_movielens, load_movielens100k

h5py = pytest.importorskip("h5py")

_RATINGS = np.array([[5.0, 0, 3], [0, 1, 4]])
_TRAIN = np.array([[1.0, 0, 1], [0, 1, 0]])
_TEST = np.array([[0.0, 0, 0], [0, 0, 1]])


def _parts(mat: sp.csc_array) -> dict:
    return {
        "data": mat.data.copy(),
        "ir": mat.indices.astype(np.uint64),
        "jc": mat.indptr.astype(np.uint64),
        "MATLAB_sparse": np.uint64(mat.shape[0]),
    }


def _write_monti(path: Path, *, dense=None, users=None, movies=None) -> Path:
    """A tiny split_1.mat; ``dense``/``users``/``movies`` override variables or sparse parts."""
    variables = {"M": _RATINGS, "Otraining": _TRAIN, "Otest": _TEST, **(dense or {})}
    graphs = {
        "W_users": {**_parts(sp.csc_array(np.array([[0.0, 1], [1, 0]]))), **(users or {})},
        "W_movies": {**_parts(sp.csc_array(np.ones((3, 3)) - np.eye(3))), **(movies or {})},
    }
    with h5py.File(path, "w") as f:
        for name, arr in variables.items():
            f[name] = np.asarray(arr).T
        for name, parts in graphs.items():
            g = f.create_group(name)
            for field in ("data", "ir", "jc"):
                g[field] = parts[field]
            g.attrs["MATLAB_sparse"] = parts["MATLAB_sparse"]
    return path


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tiny_monti_file_still_loads(tmp_path):
    path = _write_monti(tmp_path / "ok.mat")
    m = load_monti_movielens(path)
    np.testing.assert_array_equal(m.user_adjacency.toarray(), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(m.movie_adjacency.toarray(), np.ones((3, 3)) - np.eye(3))
    np.testing.assert_array_equal(m.train_values, [5.0, 3.0, 1.0])


_U64_BIG = np.uint64(2**63 + 1)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        # column pointers: decreasing, not starting at 0, too few, beyond int64
        ({"users": {"jc": np.array([0, 2, 1], np.uint64)}}, r"W_users/jc .*never decrease"),
        ({"users": {"jc": np.array([1, 1, 2], np.uint64)}}, r"W_users/jc .*start at 0"),
        ({"movies": {"jc": np.array([0, 2, 4], np.uint64)}}, r"W_movies has shape \(3, 2\)"),
        ({"users": {"jc": np.array([0, 1, _U64_BIG], np.uint64)}}, r"W_users/ir has 2 entries"),
        # row indices: beyond the size, beyond int64, negative, not integers
        ({"users": {"ir": np.array([1, 2], np.uint64)}}, r"W_users/ir has values in \[1, 2\]"),
        ({"users": {"ir": np.array([1, _U64_BIG], np.uint64)}}, r"W_users/ir has values"),
        ({"users": {"ir": np.array([1, -1], np.int64)}}, r"W_users/ir has values in \[-1, 1\]"),
        ({"users": {"ir": np.array([1.0, 0.0])}}, r"W_users/ir must be a 1-D array of integers"),
        # lengths: data shorter than the pointers say; a 2-D part
        ({"movies": {"data": np.ones(5)}}, r"W_movies/data has 5 entries; expected 6"),
        ({"users": {"data": np.ones((1, 2))}}, r"W_users/data must be a 1-D array"),
        # values and the row count
        ({"users": {"data": np.array([1.0, np.nan])}}, r"W_users/data contains NaN"),
        ({"movies": {"data": np.full(6, np.inf)}}, r"W_movies/data contains NaN or infinity"),
        ({"users": {"MATLAB_sparse": np.uint64(3)}}, r"W_users has shape \(3, 2\)"),
        ({"users": {"MATLAB_sparse": np.float64(2.0)}}, r"MATLAB_sparse attribute of W_users"),
        # the dense variables
        ({"dense": {"M": np.where(_RATINGS == 5, np.nan, _RATINGS)}}, r"M contains NaN"),
        ({"dense": {"M": np.ones((2, 3, 2))}}, r"M must be a 2-D real matrix, got shape"),
        ({"dense": {"Otraining": _TRAIN * 2}}, r"Otraining must hold 0/1 entries"),
        ({"dense": {"Otest": np.ones((3, 2))}}, r"Otest has shape \(3, 2\); expected \(2, 3\)"),
    ],
)
def test_monti_parts_are_checked_before_use(tmp_path, overrides, match):
    path = _write_monti(tmp_path / "bad.mat", **overrides)
    before = _digest(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        load_monti_movielens(path)
    assert str(path) in str(info.value)
    assert _digest(tmp_path) == before


def test_monti_consistent_but_unusual_parts_load_exactly(tmp_path):
    # Unsorted row indices and a repeated one within a column: valid CSC (summed), int64 types.
    users = {
        "data": np.array([1.0, 2.0, 3.0]),
        "ir": np.array([1, 0, 0]),
        "jc": np.array([0, 1, 3]),
    }
    m = load_monti_movielens(_write_monti(tmp_path / "odd.mat", users=users))
    np.testing.assert_array_equal(m.user_adjacency.toarray(), [[0, 5], [1, 0]])


def _write_ml100k(folder: Path, ages=("24", "53")) -> Path:
    folder.mkdir(parents=True)
    flags = "|".join(["0"] * 19)
    (folder / "u.item").write_text(f"1|A|01-Jan-1995||x|{flags}\n2|B|01-Jan-1995||y|{flags}\n")
    (folder / "u.user").write_text(f"1|{ages[0]}|M|technician|85711\n2|{ages[1]}|F|other|94043\n")
    (folder / "u.genre").write_text("".join(f"g{i}|{i}\n" for i in range(19)))
    (folder / "u.data").write_text("1\t1\t5\t100\n2\t2\t1\t200\n")
    (folder / "u1.base").write_text("1\t1\t5\t100\n")
    (folder / "u1.test").write_text("2\t2\t1\t200\n")
    return folder


@pytest.mark.parametrize(
    ("ages", "match"),
    [
        (("24", "99999999999999999999"), r"u\.user is malformed: ages .* beyond the int64 range"),
        (("24", "x"), r"u\.user is malformed: ages .* not integers"),
    ],
)
def test_ml100k_age_beyond_int64_is_named(tmp_path, ages, match):
    folder = _write_ml100k(tmp_path / "ml-100k", ages)
    before = _digest(folder)
    with pytest.raises(ValueError, match=match):
        load_movielens100k(tmp_path)
    assert _digest(folder) == before
    assert load_movielens100k(_write_ml100k(tmp_path / "ok" / "ml-100k")).user_age.tolist() == [
        24,
        53,
    ]


@pytest.mark.parametrize("order", [3.0, 4.0, True, "3", 5, None, np.float64(3)])
def test_lastfm_order_refused_before_any_file_is_read(tmp_path, order):
    # No data at all: a bad order must be the error, not a missing file.
    with pytest.raises(ValueError, match=r"order must be 3 or 4, got"):
        load_lastfm2k(tmp_path / "nowhere", order=order)


def test_lastfm_integer_orders_of_numpy_types_are_accepted(tmp_path):
    with pytest.raises(FileNotFoundError, match="user_taggedartists"):
        load_lastfm2k(tmp_path / "nowhere", order=np.int64(4))


_HEADER = "userID\tartistID\ttagID\tday\tmonth\tyear\n"


@pytest.mark.parametrize("year", ["99999999999999", "-1", "10000"])
def test_lastfm_year_beyond_four_digits_is_refused(tmp_path, year):
    # year * 100 + month indexes the periods: a huge year wrapped silently in int64.
    folder = tmp_path / "hetrec2011-lastfm-2k"
    folder.mkdir()
    (folder / "user_taggedartists.dat").write_text(_HEADER + f"2\t52\t13\t1\t4\t{year}\n")
    (folder / "user_friends.dat").write_text("userID\tfriendID\n2\t9\n")
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n")
    (folder / "tags.dat").write_text("tagID\ttagValue\n")
    before = _digest(folder)
    with pytest.raises(ValueError, match=r"user_taggedartists\.dat is malformed: years must lie"):
        load_lastfm2k(tmp_path, order=4)
    assert _digest(folder) == before
