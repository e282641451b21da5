"""Malformed and unusual input to the dataset loaders and the generator (see _refused.py and
_unusual.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _refused import MISSING, Case, _func, check_refused, refused_params
from _unusual import Catalogue, check_unusual

from skhyperlearn.datasets import (
    load_lastfm2k,
    load_monti_movielens,
    load_movielens100k,
    make_hypergraph,
)

REFUSED: list[Case] = [
    # ---------------------------------------------------------------- loaders
    Case(
        "load_movielens100k-missing-path",
        *_func(load_movielens100k, lambda: [MISSING]),
        FileNotFoundError,
        r"MovieLens 100K not found: expected the file .*skhyperlearn-catalogue/ml-100k/u.data",
    ),
    Case(
        "load_lastfm2k-missing-path",
        *_func(load_lastfm2k, lambda: [MISSING]),
        FileNotFoundError,
        r"Last.fm 2K not found: expected the file .*user_taggedartists.dat",
    ),
    Case(
        "load_lastfm2k-order-5",
        *_func(load_lastfm2k, lambda: [MISSING], order=5),
        ValueError,
        r"order must be 3 or 4, got 5",
    ),
    Case(
        "load_monti_movielens-missing-path",
        *_func(load_monti_movielens, lambda: [MISSING]),
        FileNotFoundError,
        r"split_1.mat\) not found: expected the file .*skhyperlearn-catalogue",
    ),
    Case(
        "make_hypergraph-one-mode",
        *_func(make_hypergraph, lambda: [], shape=(5,)),
        ValueError,
        r"shape must have at least 2 modes, got 1",
    ),
]

UNUSUAL = Catalogue()
case, fit_case = UNUSUAL.case, UNUSUAL.fit_case


# --- files ---------------------------------------------------------------------------------
def _truncated_monti(tmp: Path) -> Path:
    h5py = pytest.importorskip("h5py")
    path = tmp / "split_1.mat"
    with h5py.File(path, "w") as f:
        f["M"] = np.arange(20000.0).reshape(100, 200)
        f["Otraining"] = np.ones((100, 200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _lastfm_folder(tmp: Path, artists: bytes) -> Path:
    folder = tmp / "hetrec2011-lastfm-2k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t52\t13\t1\t4\t2009\n"
    )
    (folder / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n")
    (folder / "artists.dat").write_bytes(artists)
    (folder / "tags.dat").write_text("tagID\ttagValue\n13\trock\n", encoding="latin-1")
    return folder


def _file_case(id, make_path, call, exc, match):
    case(id, lambda: {"make": make_path}, lambda d: call(d["make"]()), exc, match)


_file_case(
    "files-monti-truncated-hdf5",
    lambda: _truncated_monti(_tmp()),
    load_monti_movielens,
    ValueError,
    r"split_1\.mat cannot be read \(truncated or corrupt",
)
_file_case(
    "files-lastfm-artists-wrong-encoding",
    lambda: _lastfm_folder(
        _tmp(), "id\tname\turl\tpictureURL\n52\tMötley\tu\tp\n".encode("utf-16")
    ),
    load_lastfm2k,
    ValueError,
    r"artists\.dat is not utf-8 text",
)
_file_case(
    "files-lastfm-artists-latin1-instead-of-utf8",
    lambda: _lastfm_folder(
        _tmp(), "id\tname\turl\tpictureURL\n52\tMötley\tu\tp\n".encode("latin-1")
    ),
    load_lastfm2k,
    ValueError,
    r"artists\.dat is not utf-8 text",
)


def _ml100k_utf16(tmp: Path) -> Path:
    folder = tmp / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    # The first file read (the movie list) arrives in UTF-16.
    (folder / "u.item").write_bytes(("1|Toy Story|" + "|" * 21 + "\n").encode("utf-16"))
    return tmp


_file_case(
    "files-movielens-utf16-ratings",
    lambda: _ml100k_utf16(_tmp()),
    load_movielens100k,
    ValueError,
    r"u\.item is malformed",
)

_TMP: list[Path] = []


def _tmp() -> Path:
    return _TMP[-1]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", refused_params(REFUSED))
def test_malformed_input_is_refused_naming_the_culprit(case):
    check_refused(case)


@pytest.mark.parametrize("case", UNUSUAL, ids=[c.id for c in UNUSUAL])
def test_unusual_input_is_refused_or_handled(case, tmp_path):
    _TMP.append(tmp_path)
    check_unusual(case)
