"""Loader for HetRec 2011 Last.fm 2K: user–artist–tag(–month) hyperedges and user friendships.

The data are for non-commercial use only and are not shipped: the loader reads a local copy of
the ``hetrec2011-lastfm-2k`` folder.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

from ..hypergraph import Hypergraph
from ._movielens import _find_folder, _read_int_table, _require

__all__ = ["load_lastfm2k"]

_URL = "https://grouplens.org/datasets/hetrec-2011/"
_FOLDER = "hetrec2011-lastfm-2k"
_TAGGED = "user_taggedartists.dat"
_TAGGED_COLUMNS = ("userID", "artistID", "tagID", "day", "month", "year")
_FRIENDS_COLUMNS = ("userID", "friendID")
_LAST_YEAR = 9999

_DESCR = """HetRec 2011 Last.fm 2K (Cantador, Brusilovsky & Kuflik, RecSys 2011): 186,479 tag
assignments (user, artist, tag, date) by 1892 users, and their friendship graph (12,717 undirected
edges). Non-commercial use only; cite the Last.fm website (http://www.lastfm.com).
"""


def _read_names(path: Path, header: tuple[str, ...], encoding: str) -> dict[int, str]:
    """``id -> name`` from a tab-separated file whose first two columns are id and name."""
    try:
        return _parse_names(path, header, encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not {encoding} text (wrong encoding?): {exc.reason} at byte {exc.start}."
        ) from None


def _parse_names(path: Path, header: tuple[str, ...], encoding: str) -> dict[int, str]:
    names: dict[int, str] = {}
    with open(path, encoding=encoding, newline=None) as handle:
        first = handle.readline().rstrip("\n").split("\t")
        if first != list(header):
            raise ValueError(
                f"{path} is malformed: expected the header {list(header)}, got {first}."
            )
        for lineno, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(header):
                raise ValueError(
                    f"{path} is malformed: line {lineno} has {len(fields)} "
                    f"tab-separated fields; expected {len(header)}."
                )
            try:
                names[int(fields[0])] = fields[1]
            except ValueError:
                raise ValueError(
                    f"{path} is malformed: line {lineno} does not start with an integer id."
                ) from None
    return names


def _friendship(pairs: np.ndarray, users: np.ndarray) -> sp.csr_array:
    """Binary symmetric adjacency of the friend pairs over the encoded users."""
    rows = np.searchsorted(users, pairs[:, 0])
    cols = np.searchsorted(users, pairs[:, 1])
    n = len(users)
    adjacency = sp.coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    # The file lists both directions; OR-symmetrising and binarising guards against copies that
    # list a pair once or twice.
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    return sp.csr_array(adjacency)


def _read_files(folder: Path) -> tuple:
    """Tag assignments, friendships, artist and tag names, each file checked as it is read."""
    tagged = _read_int_table(folder / _TAGGED, _TAGGED_COLUMNS, skip_header=True)
    months = tagged[:, 4]
    if months.min() < 1 or months.max() > 12:
        raise ValueError(f"{folder / _TAGGED} is malformed: months must lie in 1..12.")
    years = tagged[:, 5]
    # year * 100 + month indexes the periods: a year beyond 4 digits would wrap or collide.
    if years.min() < 0 or years.max() > _LAST_YEAR:
        raise ValueError(
            f"{folder / _TAGGED} is malformed: years must lie in 0..{_LAST_YEAR}, got "
            f"{years.min()}..{years.max()}."
        )
    friends = _read_int_table(
        _require(folder / "user_friends.dat", "Last.fm friendships"),
        _FRIENDS_COLUMNS,
        skip_header=True,
    )
    # artists.dat is UTF-8 but tags.dat is ISO-8859-1 (see the data's PROVENANCE notes).
    artist_names = _read_names(
        _require(folder / "artists.dat", "Last.fm artist list"),
        ("id", "name", "url", "pictureURL"),
        "utf-8",
    )
    tag_names = _read_names(
        _require(folder / "tags.dat", "Last.fm tag list"), ("tagID", "tagValue"), "latin-1"
    )
    return tagged, friends, artist_names, tag_names


def _build_hypergraph(tagged: np.ndarray, friends: np.ndarray, order: int) -> tuple:
    """Users (taggers and friends), their friendship graph and the tag-assignment hypergraph."""
    months = tagged[:, 4]
    users = np.union1d(tagged[:, 0], friends.ravel())
    columns = [tagged[:, 0], tagged[:, 1], tagged[:, 2]]
    if order == 4:
        columns.append(tagged[:, 5] * 100 + months)
    friendship = _friendship(friends, users)
    graphs = [friendship] + [None] * (order - 1)
    hypergraph = Hypergraph.from_edges(
        np.stack(columns, axis=1),
        ids=[users] + [None] * (order - 1),
        graphs=graphs,
        graph_kind="adjacency",
    )
    return users, friendship, hypergraph


def _listening(folder: Path, users: np.ndarray, artists: np.ndarray) -> sp.csr_array | None:
    """Play counts of ``user_artists.dat`` as an artist × user matrix over the given ids.

    Artists nobody tagged and users outside ``users`` are dropped; None without the file.
    """
    path = folder / "user_artists.dat"
    if not path.is_file():
        return None
    table = _read_int_table(path, ("userID", "artistID", "weight"), skip_header=True)
    if table[:, 2].min() < 0:
        raise ValueError(f"{path} is malformed: play counts must be non-negative.")
    rows = np.searchsorted(artists, table[:, 1]).clip(max=len(artists) - 1)
    cols = np.searchsorted(users, table[:, 0]).clip(max=len(users) - 1)
    known = (artists[rows] == table[:, 1]) & (users[cols] == table[:, 0])
    counts = sp.coo_array(
        (table[known, 2].astype(np.float64), (rows[known], cols[known])),
        shape=(len(artists), len(users)),
    )
    return sp.csr_array(counts.tocsr())  # repeated pairs summed


@validate_params(
    {
        "data_home": [str, os.PathLike, None],
        # the body's "order must be 3 or 4" is clearer than Options' "an int among {3, 4} or a
        # float among {3.0, 4.0}", which is what it accepts
        "order": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def load_lastfm2k(data_home: str | os.PathLike | None = None, *, order: int = 3) -> Bunch:
    """Load HetRec 2011 Last.fm 2K as a user × artist × tag (× month) hypergraph.

    Each tag assignment of ``user_taggedartists.dat`` is one binary hyperedge. The user mode
    (mode 0, the sample mode) carries the friendship graph of ``user_friends.dat`` as an
    adjacency; the other modes have no graph.

    Parameters
    ----------
    data_home : str or path-like, optional
        Folder holding ``hetrec2011-lastfm-2k/`` (or that folder itself); defaults to the
        ``SKHYPERLEARN_DATA`` environment variable, then ``~/skhyperlearn_data``.
    order : {3, 4}, default=3
        3: user × artist × tag. 4: user × artist × tag × month, the fourth mode indexing the
        distinct (year, month) periods in chronological order.

    Returns
    -------
    Bunch
        - ``hypergraph`` : :class:`~skhyperlearn.hypergraph.Hypergraph` with
          ``graph_kind="adjacency"``, graphs ``[friendship, None, None(, None)]`` and ``ids`` the
          original user, artist, tag ids (and periods);
        - ``user_ids``, ``artist_ids``, ``tag_ids`` : int64 arrays, index → original id;
          users are every user who tags or has a friend (1892 in the HetRec release);
        - ``periods`` : int64 ``year * 100 + month`` per index of mode 3 (``order=4`` only).
          Five assignments carry implausible years (1956, 1957, 1979) and are kept as they are;
        - ``artist_names``, ``tag_names`` : object arrays aligned with ``artist_ids`` /
          ``tag_ids``; ``None`` where ``artists.dat`` / ``tags.dat`` lack the id (390 tagged
          artists are missing from artists.dat);
        - ``friendship`` : scipy.sparse.csr_array, the symmetric 0/1 user adjacency;
        - ``listening`` : scipy.sparse.csr_array of shape (n_artists, n_users), the play counts
          of ``user_artists.dat`` (rows aligned with ``artist_ids``, columns with
          ``user_ids``; artists nobody tagged are left out): side information on the artists
          that the tag assignments do not hold, e.g. for an artist graph with
          :func:`~skhyperlearn.graphs.knn_graph`. None when the copy lacks that file;
        - ``DESCR`` : str.

    Raises
    ------
    FileNotFoundError
        Naming the first required file that is missing.
    ValueError
        If ``order`` is not 3 or 4 or a file is malformed.
    """
    # Checked before any file is read; 3.0 is not an order (it would fail after the reading).
    if (
        isinstance(order, (bool, np.bool_))
        or not isinstance(order, Integral)
        or order not in (3, 4)
    ):
        raise ValueError(f"order must be 3 or 4, got {order!r}.")
    folder = _find_folder(data_home, _FOLDER, _TAGGED, "HetRec 2011 Last.fm 2K", _URL)
    tagged, friends, artist_names, tag_names = _read_files(folder)
    users, friendship, hypergraph = _build_hypergraph(tagged, friends, order)
    return _bunch(folder, users, friendship, hypergraph, artist_names, tag_names)


def _bunch(folder, users, friendship, hypergraph, artist_names, tag_names) -> Bunch:
    """What :func:`load_lastfm2k` returns, from the hypergraph and the read files."""
    artist_ids, tag_ids = hypergraph.ids[1], hypergraph.ids[2]
    bunch = Bunch(
        hypergraph=hypergraph,
        user_ids=users,
        artist_ids=artist_ids,
        tag_ids=tag_ids,
        artist_names=np.array([artist_names.get(int(i)) for i in artist_ids], dtype=object),
        tag_names=np.array([tag_names.get(int(i)) for i in tag_ids], dtype=object),
        friendship=friendship,
        listening=_listening(folder, users, artist_ids),
        DESCR=_DESCR,
    )
    if hypergraph.ndim == 4:
        bunch.periods = hypergraph.ids[3]
    return bunch
