"""Tests of the MovieLens and Last.fm loaders: real data when present, tiny files otherwise."""

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from skhyperlearn.datasets._lastfm import load_lastfm2k
from skhyperlearn.datasets._movielens import load_monti_movielens, load_movielens100k
from skhyperlearn.hypergraph import Hypergraph

# Research-only data are never copied into the repository: read them where they live.
DATA = Path(
    os.environ.get("SKHYPERLEARN_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
ML100K = DATA / "ml-100k"
MONTI = DATA / "mgcnn" / "movielens" / "split_1.mat"
LASTFM = DATA / "hetrec2011-lastfm-2k"

needs_ml100k = pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason="ml-100k absent")
needs_monti = pytest.mark.skipif(not MONTI.is_file(), reason="mgcnn split_1.mat absent")
needs_lastfm = pytest.mark.skipif(
    not (LASTFM / "user_taggedartists.dat").is_file(), reason="hetrec2011-lastfm-2k absent"
)


def _sorted_pairs(coords, values):
    order = np.lexsort((coords[:, 1], coords[:, 0]))
    return coords[order], values[order]


# ---------------------------------------------------------------------- real data
@needs_ml100k
def test_movielens100k_sizes():
    b = load_movielens100k(DATA)
    assert (b.n_users, b.n_items) == (943, 1682) and b.shape == (943, 1682)
    assert b.train_coords.shape == (80000, 2) and b.test_coords.shape == (20000, 2)
    assert b.train_values.shape == (80000,) and b.test_values.shape == (20000,)
    assert b.train_coords.min() == 0
    assert b.train_coords[:, 0].max() == 942 and b.train_coords[:, 1].max() <= 1681
    np.testing.assert_array_equal(
        np.bincount(b.train_values.astype(int)), [0, 4719, 9178, 21963, 27396, 16744]
    )
    assert b.genres.shape == (1682, 19) and set(np.unique(b.genres)) == {0, 1}
    assert b.genre_names[0] == "unknown" and b.genre_names[-1] == "Western"
    assert b.item_titles[0] == "Toy Story (1995)"
    assert "Misérables, Les (1995)" in set(b.item_titles)  # latin-1 decoded
    assert b.user_age.shape == (943,) and set(b.user_gender) == {"M", "F"}
    full = load_movielens100k(ML100K, split=None)  # the ml-100k folder itself also works
    assert full.train_coords.shape == (100000, 2) and full.test_coords.shape == (0, 2)
    both = np.concatenate([b.train_coords, b.test_coords])
    assert len(np.unique(both[:, 0] * 1682 + both[:, 1])) == 100000


@needs_monti
def test_monti_movielens_sizes():
    m = load_monti_movielens(MONTI)
    assert m.shape == (943, 1682)
    assert m.train_coords.shape == (80000, 2) and m.test_coords.shape == (20000, 2)
    assert set(np.unique(m.train_values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    for w, n, nnz in ((m.user_adjacency, 943, 12594), (m.movie_adjacency, 1682, 28928)):
        assert isinstance(w, sp.csr_array) and w.shape == (n, n) and w.nnz == nnz
        assert abs(w - w.T).max() == 0 and w.diagonal().sum() == 0
        assert w.sum(axis=1).min() == 10  # 10-NN graphs symmetrised by OR
    default = load_monti_movielens(data_home=DATA)
    np.testing.assert_array_equal(default.test_coords, m.test_coords)


@needs_monti
@needs_ml100k
def test_monti_split_is_official_u1():
    m = load_monti_movielens(MONTI)
    b = load_movielens100k(DATA, split="u1")
    for part in ("train", "test"):
        c, v = _sorted_pairs(b[f"{part}_coords"], b[f"{part}_values"])
        np.testing.assert_array_equal(c, m[f"{part}_coords"])
        np.testing.assert_array_equal(v, m[f"{part}_values"])


@needs_lastfm
def test_lastfm2k_order3():
    b = load_lastfm2k(DATA)
    h = b.hypergraph
    assert isinstance(h, Hypergraph) and h.graph_kind == "adjacency"
    assert h.shape == (1892, 12523, 9749) and h.nnz == 186479 and len(h) == 1892
    assert set(np.unique(h.tensor.data)) == {1.0}
    w = b.friendship
    assert w.shape == (1892, 1892) and w.nnz == 25434
    assert abs(w - w.T).max() == 0 and w.diagonal().sum() == 0
    assert h.graphs[1] is None and h.graphs[2] is None
    np.testing.assert_array_equal(h.ids[0], b.user_ids)
    assert sum(name is None for name in b.artist_names) == 390
    assert b.artist_names[h.index_of(1, 1)] == "MALICE MIZER"
    assert b.tag_names[h.index_of(2, 1)] == "metal"
    assert "rock français" in set(b.tag_names)  # tags.dat is latin-1
    sub = h[np.arange(0, 1892, 2)]
    assert sub.laplacians[0].shape == (946, 946)


@needs_lastfm
def test_lastfm2k_order4():
    b = load_lastfm2k(LASTFM, order=4)
    assert b.hypergraph.shape == (1892, 12523, 9749, 73) and b.hypergraph.nnz == 186479
    assert b.periods[0] == 195606 and b.periods[-1] // 100 == 2011
    assert np.all(np.diff(b.periods) > 0)


# ---------------------------------------------------------------------- tiny synthetic copies
def _write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True)
    flags = "|".join(["0"] * 18)
    (folder / "u.item").write_bytes(
        f"1|Toy Story (1995)|01-Jan-1995||http://x|1|{flags}\n"
        f"2|Misérables (1995)|01-Jan-1995||http://y|0|{flags}\n"
        "3|Three (1996)|01-Jan-1996||http://z|0|{0}\n".format(flags).encode("latin-1")
    )
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    genres = ["unknown", "Action"] + [f"g{i}" for i in range(17)]
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    rows = "1\t1\t5\t100\n2\t3\t1\t200\n1\t2\t3\t300\n"
    (folder / "u.data").write_text(rows)
    (folder / "u1.base").write_text("1\t1\t5\t100\n2\t3\t1\t200\n")
    (folder / "u1.test").write_text("1\t2\t3\t300\n")
    return folder


def test_movielens100k_tiny_copy(tmp_path):
    _write_ml100k(tmp_path / "ml-100k")
    b = load_movielens100k(tmp_path)
    assert b.shape == (2, 3)
    np.testing.assert_array_equal(b.train_coords, [[0, 0], [1, 2]])
    np.testing.assert_array_equal(b.train_values, [5.0, 1.0])
    np.testing.assert_array_equal(b.test_coords, [[0, 1]])
    assert b.item_titles[1] == "Misérables (1995)" and b.genres[0, 0] == 1
    assert load_movielens100k(tmp_path, split=None).train_coords.shape == (3, 2)


def test_movielens100k_env_var(tmp_path, monkeypatch):
    _write_ml100k(tmp_path / "ml-100k")
    monkeypatch.setenv("SKHYPERLEARN_DATA", str(tmp_path))
    assert load_movielens100k().n_items == 3


def test_movielens100k_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ml-100k.*u\.data"):
        load_movielens100k(tmp_path / "nowhere")
    folder = _write_ml100k(tmp_path / "ml-100k")
    (folder / "u1.test").unlink()
    with pytest.raises(FileNotFoundError, match=r"u1\.test"):
        load_movielens100k(tmp_path)
    (folder / "u.item").unlink()
    with pytest.raises(FileNotFoundError, match=r"u\.item"):
        load_movielens100k(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("u1.base", "1\t1\t5\n2\t3\t1\n", r"u1\.base.*4 integer columns"),
        ("u1.base", "1\t1\t5\t100\nx\t3\t1\t200\n", r"u1\.base.*malformed"),
        ("u1.base", "1\t1\t5.5\t100\n", r"u1\.base.*malformed"),
        ("u1.base", "3\t1\t5\t100\n", r"user ids must lie in 1\.\.2"),
        ("u1.base", "1\t9\t5\t100\n", r"item ids"),
        ("u1.base", "1\t1\t7\t100\n", r"ratings"),
        ("u1.base", "", r"u1\.base is empty"),
        ("u.user", "1|24|M|technician\n", r"u\.user.*5"),
        ("u.user", "2|24|M|technician|1\n1|3|F|x|2\n", r"u\.user.*1\.\.2 in order"),
        ("u.genre", "unknown|0\n", r"u\.genre.*19"),
    ],
)
def test_movielens100k_malformed(tmp_path, name, content, match):
    folder = _write_ml100k(tmp_path / "ml-100k")
    (folder / name).write_text(content)
    with pytest.raises(ValueError, match=match):
        load_movielens100k(tmp_path)


def test_movielens100k_bad_split(tmp_path):
    _write_ml100k(tmp_path / "ml-100k")
    with pytest.raises(ValueError, match=r"'split' parameter .* a str among .* Got 'u9'"):
        load_movielens100k(tmp_path, split="u9")


def _write_monti(path: Path, *, drop=None, movie_shape=None):
    """A tiny split_1.mat laid out as MATLAB v7.3 writes it (transposed, sparse as CSC groups)."""
    h5py = pytest.importorskip("h5py")
    ratings = np.array([[5.0, 0, 3], [0, 1, 4]])
    train = np.array([[1.0, 0, 1], [0, 1, 0]])
    test = np.array([[0.0, 0, 0], [0, 0, 1]])
    users = sp.csc_array(np.array([[0.0, 1], [1, 0]]))
    movies = sp.csc_array(np.ones(movie_shape or (3, 3)) - np.eye(*(movie_shape or (3, 3))))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for name, arr in (("M", ratings), ("Otraining", train), ("Otest", test)):
            if name != drop:
                f[name] = arr.T
        for name, mat in (("W_users", users), ("W_movies", movies)):
            if name == drop:
                continue
            g = f.create_group(name)
            g["data"], g["ir"] = mat.data, mat.indices.astype(np.uint64)
            g["jc"] = mat.indptr.astype(np.uint64)
            g.attrs["MATLAB_sparse"] = np.uint64(mat.shape[0])
    return path


def test_monti_tiny_copy(tmp_path):
    path = _write_monti(tmp_path / "mgcnn" / "movielens" / "split_1.mat")
    m = load_monti_movielens(data_home=tmp_path)
    assert m.shape == (2, 3)
    np.testing.assert_array_equal(m.train_coords, [[0, 0], [0, 2], [1, 1]])
    np.testing.assert_array_equal(m.train_values, [5.0, 3.0, 1.0])
    np.testing.assert_array_equal(m.test_coords, [[1, 2]])
    np.testing.assert_array_equal(m.test_values, [4.0])
    np.testing.assert_array_equal(m.user_adjacency.toarray(), [[0, 1], [1, 0]])
    assert m.movie_adjacency.shape == (3, 3) and m.movie_adjacency.nnz == 6
    assert load_monti_movielens(path).n_items == 3


def test_monti_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"split_1\.mat"):
        load_monti_movielens(data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing\.mat"):
        load_monti_movielens(tmp_path / "missing.mat")
    not_hdf5 = tmp_path / "old.mat"
    not_hdf5.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(ValueError, match=r"not a MATLAB v7\.3"):
        load_monti_movielens(not_hdf5)
    for drop in ("Otest", "W_movies"):
        path = _write_monti(tmp_path / f"no_{drop}.mat", drop=drop)
        with pytest.raises(ValueError, match=drop):
            load_monti_movielens(path)
    path = _write_monti(tmp_path / "bad_shape.mat", movie_shape=(4, 4))
    with pytest.raises(ValueError, match="W_movies has shape"):
        load_monti_movielens(path)


_TAGGED_HEADER = "userID\tartistID\ttagID\tday\tmonth\tyear\n"


def _write_lastfm(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "user_taggedartists.dat").write_text(
        _TAGGED_HEADER + "2\t52\t13\t1\t4\t2009\n2\t51\t13\t1\t5\t2009\n7\t52\t1\t1\t4\t2008\n"
    )
    # CRLF line ends, as some copies of the release have
    (folder / "user_friends.dat").write_bytes(b"userID\tfriendID\r\n2\t9\r\n9\t2\r\n7\t9\r\n")
    (folder / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n52\tMorcheeba\thttp://a\thttp://b\n", encoding="utf-8"
    )
    (folder / "tags.dat").write_bytes("tagID\ttagValue\n1\tmetal\n13\tfrançais\n".encode("latin-1"))
    return folder


def test_lastfm_tiny_copy(tmp_path):
    _write_lastfm(tmp_path / "hetrec2011-lastfm-2k")
    b = load_lastfm2k(tmp_path)
    h = b.hypergraph
    assert h.shape == (3, 2, 2)  # user 9 only has friends
    np.testing.assert_array_equal(b.user_ids, [2, 7, 9])
    np.testing.assert_array_equal(b.friendship.toarray(), [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    assert list(b.artist_names) == [None, "Morcheeba"] and list(b.tag_names) == [
        "metal",
        "français",
    ]
    assert b.listening is None  # this copy has no user_artists.dat
    b4 = load_lastfm2k(tmp_path / "hetrec2011-lastfm-2k", order=4)
    np.testing.assert_array_equal(b4.periods, [200804, 200904, 200905])
    assert b4.hypergraph.tensor.todense()[0, 1, 1, 1] == 1


def test_lastfm_listening_counts_aligned_with_the_ids(tmp_path):
    folder = _write_lastfm(tmp_path / "hetrec2011-lastfm-2k")
    # user 5 and artist 60 are in no tag assignment or friendship: dropped; (7, 52) twice: summed
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t51\t10\n7\t52\t3\n7\t52\t4\n5\t52\t9\n9\t60\t1\n"
    )
    b = load_lastfm2k(tmp_path)
    np.testing.assert_array_equal(b.artist_ids, [51, 52])
    np.testing.assert_array_equal(b.listening.toarray(), [[10, 0, 0], [0, 7, 0]])
    (folder / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t-1\n")
    with pytest.raises(ValueError, match="play counts must be non-negative"):
        load_lastfm2k(tmp_path)


def test_lastfm_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"user_taggedartists\.dat"):
        load_lastfm2k(tmp_path)
    folder = _write_lastfm(tmp_path / "hetrec2011-lastfm-2k")
    with pytest.raises(ValueError, match="order must be 3 or 4, got 5"):
        load_lastfm2k(tmp_path, order=5)
    (folder / "tags.dat").unlink()
    with pytest.raises(FileNotFoundError, match=r"tags\.dat"):
        load_lastfm2k(tmp_path)
    (folder / "user_friends.dat").write_text("userID\tfriend\n2\t9\n")
    with pytest.raises(ValueError, match="header"):
        load_lastfm2k(tmp_path)
    (folder / "user_taggedartists.dat").write_text(_TAGGED_HEADER + "2\t52\t13\t1\t4\n")
    with pytest.raises(ValueError, match=r"user_taggedartists\.dat is malformed"):
        load_lastfm2k(tmp_path)
    (folder / "user_taggedartists.dat").write_text(_TAGGED_HEADER + "2\t52\t13\t1\t14\t2009\n")
    with pytest.raises(ValueError, match="months"):
        load_lastfm2k(tmp_path)
