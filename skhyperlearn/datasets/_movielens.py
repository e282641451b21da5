"""Loaders for MovieLens 100K: the raw GroupLens files and Monti et al.'s split with graphs.

The data are research-only (GroupLens terms forbid redistribution), so nothing is shipped: both
loaders read a local copy. ``data_home`` (or the ``SKHYPERLEARN_DATA`` environment variable) names
the folder that holds ``ml-100k/`` and ``mgcnn/movielens/split_1.mat``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

__all__ = ["load_monti_movielens", "load_movielens100k"]

_ML100K_URL = "https://grouplens.org/datasets/movielens/100k/"
_MONTI_URL = "https://github.com/fmonti/mgcnn (Data/movielens/split_1.mat)"
_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
_N_GENRE_FLAGS = 19
# Fields before the 19 genre flags in u.item: id, title, release date, video release date, URL.
_ITEM_FIELDS = 5

_DESCR = """MovieLens 100K (GroupLens, 1998): 100,000 ratings (1-5) by 943 users of 1682 movies,
with user demographics and 19 movie genres. Research use only; no redistribution. Cite
F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015.
"""

_MONTI_DESCR = """MovieLens 100K as used by Monti, Bronstein & Bresson, "Geometric Matrix Completion
with Recurrent Multi-Graph Neural Networks" (NIPS 2017): the u1.base/u1.test split and unweighted
10-nearest-neighbour user and movie graphs. Reference test RMSE (sRGCNN): 0.929.
"""


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Folder holding the local copies of the research data sets.

    Parameters
    ----------
    data_home : str or path-like, optional
        Explicit folder. Defaults to the ``SKHYPERLEARN_DATA`` environment variable, then to
        ``~/skhyperlearn_data``.

    Returns
    -------
    pathlib.Path
    """
    if data_home is None:
        data_home = os.environ.get("SKHYPERLEARN_DATA") or "~/skhyperlearn_data"
    return Path(data_home).expanduser()


def _find_folder(data_home, name: str, marker: str, what: str, source: str) -> Path:
    """``data_home/name``, or ``data_home`` itself when it already is that folder."""
    home = get_data_home(data_home)
    for folder in (home / name, home):
        if (folder / marker).is_file():
            return folder
    raise FileNotFoundError(
        f"{what} not found: expected the file {home / name / marker}. Set data_home or the "
        f"SKHYPERLEARN_DATA environment variable to the folder that holds {name}/ "
        f"(download from {source})."
    )


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected the file {path}.")
    return path


def _read_int_table(
    path: Path, columns: tuple[str, ...], *, delimiter: str = "\t", skip_header: bool = False
) -> np.ndarray:
    """Integer table with exactly ``len(columns)`` columns, as an (n, len(columns)) int64 array."""
    expected = f"{len(columns)} integer columns ({', '.join(columns)}) separated by {delimiter!r}"
    # Text mode with universal newlines: CRLF copies of these files parse like LF ones.
    with open(path, encoding="latin-1", newline=None) as handle:
        if skip_header:
            header = handle.readline().strip().split(delimiter)
            if header != list(columns):
                raise ValueError(
                    f"{path} is malformed: expected the header {list(columns)}, got {header}."
                )
        try:
            with warnings.catch_warnings():
                # An empty file gets our own ValueError below, not numpy's warning.
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(handle, dtype=np.int64, delimiter=delimiter, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"{path} is malformed: expected {expected}; {exc}") from None
    if table.shape[0] == 0:
        raise ValueError(f"{path} is empty: expected {expected}.")
    if table.shape[1] != len(columns):
        raise ValueError(f"{path} is malformed: expected {expected}, got {table.shape[1]}.")
    return table


def _read_fields(path: Path, n_fields: int, *, delimiter: str = "|") -> list[list[str]]:
    """Non-blank lines of a latin-1 text file split into exactly ``n_fields`` fields."""
    rows = []
    with open(path, encoding="latin-1", newline=None) as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split(delimiter)
            if len(fields) != n_fields:
                raise ValueError(
                    f"{path} is malformed: line {lineno} has {len(fields)} "
                    f"{delimiter!r}-separated fields; expected {n_fields}."
                )
            rows.append(fields)
    if not rows:
        raise ValueError(f"{path} is empty.")
    return rows


def _check_consecutive_ids(ids: list[str], path: Path) -> int:
    """The ids must be 1..n in order, because the rating files use them as indices."""
    try:
        values = np.array([int(i) for i in ids])
    except ValueError:
        raise ValueError(f"{path} is malformed: the first field must be an integer id.") from None
    if not np.array_equal(values, np.arange(1, len(values) + 1)):
        raise ValueError(f"{path} is malformed: ids must be 1..{len(values)} in order.")
    return len(values)


def _ratings(path: Path, n_users: int, n_items: int):
    table = _read_int_table(path, _RATING_COLUMNS)
    users, items, ratings, stamps = table.T
    if users.min() < 1 or users.max() > n_users or items.min() < 1 or items.max() > n_items:
        raise ValueError(
            f"{path} is malformed: user ids must lie in 1..{n_users} and item ids "
            f"in 1..{n_items} (the rows of u.user and u.item)."
        )
    if ratings.min() < 1 or ratings.max() > 5:
        raise ValueError(f"{path} is malformed: ratings must lie in 1..5.")
    coords = np.stack([users - 1, items - 1], axis=1)  # 0-based (user, movie)
    return coords, ratings.astype(np.float64), stamps


def _int_field(values: list, path: Path, what: str) -> np.ndarray:
    """``values`` (strings) as an int64 array; a non-integer or one beyond int64 named."""
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        reason = "beyond the int64 range" if isinstance(exc, OverflowError) else "not integers"
        raise ValueError(
            f"{path} is malformed: {what} must be integers within int64; some are {reason}."
        ) from None


def _read_catalogue(folder: Path) -> dict:
    """Users, movies and genres of ``u.user``/``u.item``/``u.genre``: checked before any rating."""
    items = _read_fields(_require(folder / "u.item", "MovieLens 100K movie list"), 24)
    users = _read_fields(_require(folder / "u.user", "MovieLens 100K user list"), 5)
    genre_rows = _read_fields(_require(folder / "u.genre", "MovieLens 100K genre list"), 2)
    n_items = _check_consecutive_ids([r[0] for r in items], folder / "u.item")
    n_users = _check_consecutive_ids([r[0] for r in users], folder / "u.user")
    if len(genre_rows) != _N_GENRE_FLAGS:
        raise ValueError(
            f"{folder / 'u.genre'} is malformed: expected {_N_GENRE_FLAGS} genres, "
            f"got {len(genre_rows)}."
        )
    genres = _int_field([r[_ITEM_FIELDS:] for r in items], folder / "u.item", "genre flags")
    ages = _int_field([r[1] for r in users], folder / "u.user", "ages (field 2)")
    if not np.isin(genres, (0, 1)).all():
        raise ValueError(f"{folder / 'u.item'} is malformed: genre flags must be 0 or 1.")
    return dict(
        n_users=n_users,
        n_items=n_items,
        genres=genres.astype(np.uint8),
        genre_names=[r[0] for r in genre_rows],
        item_titles=np.array([r[1] for r in items], dtype=object),
        item_release_dates=np.array([r[2] for r in items], dtype=object),
        user_age=ages,
        user_gender=np.array([r[2] for r in users], dtype=object),
        user_occupation=np.array([r[3] for r in users], dtype=object),
        user_zip_code=np.array([r[4] for r in users], dtype=object),
    )


def _split_ratings(folder: Path, split: str | None, n_users: int, n_items: int):
    """The training and test ratings of ``split`` (all of ``u.data`` and none for ``None``)."""
    if split is None:
        train = _ratings(folder / "u.data", n_users, n_items)
        test = (np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0, np.int64))
    else:
        base = _require(folder / f"{split}.base", f"MovieLens 100K split {split}")
        train = _ratings(base, n_users, n_items)
        test = _ratings(
            _require(folder / f"{split}.test", f"MovieLens 100K split {split}"), n_users, n_items
        )
    return train, test


def _ratings_bunch(train, test, shape: tuple[int, int], **extra) -> Bunch:
    """The fields both ML-100K loaders return, from their (coords, values, …) splits."""
    return Bunch(
        train_coords=train[0],
        train_values=train[1],
        test_coords=test[0],
        test_values=test[1],
        shape=shape,
        **extra,
    )


@validate_params(
    {"data_home": [str, os.PathLike, None], "split": [StrOptions(set(_SPLITS)), None]},
    prefer_skip_nested_validation=True,
)
def load_movielens100k(
    data_home: str | os.PathLike | None = None, *, split: str | None = "u1"
) -> Bunch:
    """Load the raw MovieLens 100K files with one of the official train/test splits.

    Parameters
    ----------
    data_home : str or path-like, optional
        Folder holding ``ml-100k/`` (or the ``ml-100k`` folder itself); see :func:`get_data_home`.
    split : {"u1", "u2", "u3", "u4", "u5", "ua", "ub"} or None, default="u1"
        Official split ``<split>.base`` / ``<split>.test``. ``u1`` is the benchmark split of
        sRGCNN, GC-MC and IGMC. ``None`` puts all of ``u.data`` in the training part and leaves
        the test part empty.

    Returns
    -------
    Bunch
        - ``train_coords``, ``test_coords`` : int64 (n, 2), 0-based ``(user, movie)`` indices
          (user index = user id - 1, movie index = movie id - 1);
        - ``train_values``, ``test_values`` : float64 (n,), ratings 1..5;
        - ``train_timestamps``, ``test_timestamps`` : int64 (n,), unix seconds;
        - ``shape`` : ``(n_users, n_items)``; ``n_users`` (943), ``n_items`` (1682);
        - ``genres`` : uint8 (n_items, 19) 0/1 flags; ``genre_names`` : list of 19 str;
        - ``item_titles``, ``item_release_dates`` : object arrays (n_items,);
        - ``user_age`` : int64 (n_users,); ``user_gender``, ``user_occupation``,
          ``user_zip_code`` : object arrays (n_users,);
        - ``DESCR`` : str.

    Raises
    ------
    FileNotFoundError
        If a required file is missing (the message names it).
    ValueError
        If ``split`` is unknown or a file is malformed.
    """
    if split is not None and split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS} or None, got {split!r}.")
    folder = _find_folder(data_home, "ml-100k", "u.data", "MovieLens 100K", _ML100K_URL)
    catalogue = _read_catalogue(folder)
    n_users, n_items = catalogue["n_users"], catalogue["n_items"]
    train, test = _split_ratings(folder, split, n_users, n_items)
    return _ratings_bunch(
        train,
        test,
        (n_users, n_items),
        train_timestamps=train[2],
        test_timestamps=test[2],
        **catalogue,
        DESCR=_DESCR,
    )


def _mat_dense(f, name: str, path: Path) -> np.ndarray:
    """The 2-D real MATLAB variable ``name``, its shape and values checked before use."""
    import h5py

    ds = f.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{path} is malformed: expected a dense MATLAB variable {name!r}.")
    if ds.dtype.kind not in "biuf" or len(ds.shape) != 2:
        raise ValueError(
            f"{path} is malformed: {name} must be a 2-D real matrix, got shape {ds.shape} "
            f"and dtype {ds.dtype}."
        )
    # MATLAB writes column-major arrays, which HDF5 shows transposed.
    arr = np.asarray(ds, dtype=np.float64).T
    if not np.isfinite(arr).all():
        raise ValueError(f"{path} is malformed: {name} contains NaN or infinity.")
    return arr


def _mat_field(group, name: str, field: str, path: Path, kinds: str):
    """One part of a MATLAB sparse variable, as an unread dataset: 1-D numbers of ``kinds``."""
    import h5py

    ds = group.get(field)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in kinds or len(ds.shape) != 1:
        shape, dtype = getattr(ds, "shape", None), getattr(ds, "dtype", type(ds).__name__)
        raise ValueError(
            f"{path} is malformed: {name}/{field} must be a 1-D array of "
            f"{'integers' if kinds == 'iu' else 'real numbers'}, got shape {shape} and "
            f"dtype {dtype}."
        )
    return ds


def _read_field(ds, name: str, field: str, path: Path, length: int) -> np.ndarray:
    """The dataset's values, its length checked on the metadata first (no huge allocation)."""
    if ds.shape[0] != length:
        raise ValueError(
            f"{path} is malformed: {name}/{field} has {ds.shape[0]} entries; expected {length}."
        )
    return np.asarray(ds)


def _as_index(values: np.ndarray, bound: int, where: str, path: Path) -> np.ndarray:
    """Integer ``values`` as int64, refused unless every one lies in ``[0, bound]``."""
    # Compared in their own type first: a uint64 beyond int64 would wrap in the cast.
    if values.size and (values.min() < 0 or values.max() > bound):
        raise ValueError(
            f"{path} is malformed: {where} has values in [{values.min()}, {values.max()}]; "
            f"expected them in [0, {bound}]."
        )
    return values.astype(np.int64)


def _sparse_rows(group, name: str, path: Path) -> int:
    """The row count MATLAB stores in the ``MATLAB_sparse`` attribute of a sparse variable."""
    rows = np.asarray(group.attrs["MATLAB_sparse"])
    if rows.shape not in ((), (1,)) or rows.dtype.kind not in "iu" or int(rows.ravel()[0]) < 0:
        raise ValueError(
            f"{path} is malformed: the MATLAB_sparse attribute of {name} (its row count) must "
            f"be a non-negative integer, got {rows!r}."
        )
    return int(rows.ravel()[0])


def _mat_sparse(f, name: str, path: Path, n: int) -> sp.csr_array:
    """The ``(n, n)`` MATLAB sparse variable ``name``, every part checked before it is built.

    scipy trusts the arrays it is given: inconsistent column pointers or row indices would
    reach compiled code unchecked, so they are validated here, naming the field.
    """
    import h5py

    group = f.get(name)
    if (
        not isinstance(group, h5py.Group)
        or not {"data", "ir", "jc"} <= set(group)
        or "MATLAB_sparse" not in group.attrs
    ):
        raise ValueError(
            f"{path} is malformed: expected a sparse MATLAB variable {name!r} "
            "(an HDF5 group with data, ir, jc)."
        )
    # MATLAB sparse = CSC: ir are row indices, jc column pointers, MATLAB_sparse the row count.
    jc = _mat_field(group, name, "jc", path, "iu")
    shape = (_sparse_rows(group, name, path), jc.shape[0] - 1)
    if shape != (n, n):
        raise ValueError(
            f"{path} is malformed: {name} has shape {shape} (MATLAB_sparse rows, len(jc) - 1 "
            f"columns); expected {(n, n)} to match M."
        )
    jc = _read_field(jc, name, "jc", path, n + 1)
    # In jc's own type: a uint64 pointer beyond int64 must not wrap before it is compared.
    if jc[0] != 0 or np.any(jc[1:] < jc[:-1]):
        raise ValueError(
            f"{path} is malformed: {name}/jc (column pointers) must start at 0 and never decrease."
        )
    nnz = int(jc[-1])
    ir = _read_field(_mat_field(group, name, "ir", path, "iu"), name, "ir", path, nnz)
    ir = _as_index(ir, n - 1, f"{name}/ir", path)
    data = _mat_field(group, name, "data", path, "biuf")
    data = _read_field(data, name, "data", path, nnz).astype(np.float64)
    if not np.isfinite(data).all():
        raise ValueError(f"{path} is malformed: {name}/data contains NaN or infinity.")
    return sp.csr_array(sp.csc_array((data, ir, jc.astype(np.int64)), shape=(n, n)))


def _monti_path(path, data_home) -> Path:
    """The ``.mat`` file to read: ``path``, else its place under the data folder."""
    if path is None:
        home = get_data_home(data_home)
        path = home / "mgcnn" / "movielens" / "split_1.mat"
        if not path.is_file():
            raise FileNotFoundError(
                f"Monti et al.'s MovieLens split not found: expected the file {path}. Set "
                f"data_home or SKHYPERLEARN_DATA (source: {_MONTI_URL})."
            )
    return _require(Path(path), "Monti et al.'s MovieLens split (split_1.mat)")


def _check_mask(mask: np.ndarray, name: str, shape: tuple, path: Path) -> None:
    """A mask of M: M's shape, 0/1 entries."""
    if mask.shape != shape:
        raise ValueError(
            f"{path} is malformed: {name} has shape {mask.shape}; expected {shape} to match M."
        )
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError(f"{path} is malformed: {name} must hold 0/1 entries only.")


def _read_monti(path: Path) -> tuple:
    """``M``, the two masks and the two graphs of the ``.mat`` file, their shapes checked."""
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "load_monti_movielens needs h5py to read MATLAB v7.3 files: pip install h5py"
        ) from exc
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not a MATLAB v7.3 (HDF5) file.")
    try:
        with h5py.File(path, "r") as f:
            ratings = _mat_dense(f, "M", path)
            train_mask = _mat_dense(f, "Otraining", path)
            test_mask = _mat_dense(f, "Otest", path)
            for name, mask in (("Otraining", train_mask), ("Otest", test_mask)):
                _check_mask(mask, name, ratings.shape, path)
            users = _mat_sparse(f, "W_users", path, ratings.shape[0])
            movies = _mat_sparse(f, "W_movies", path, ratings.shape[1])
    except (OSError, KeyError, RuntimeError) as exc:
        # HDF5's own messages (a truncated file, a corrupt chunk) do not say which file.
        raise ValueError(f"{path} cannot be read (truncated or corrupt HDF5 file?): {exc}") from exc
    return ratings, train_mask, test_mask, users, movies


def _masked_ratings(ratings: np.ndarray, mask: np.ndarray, name: str, path: Path) -> tuple:
    """Row-major coordinates and ratings where ``mask`` is set; M must be rated there."""
    rows, cols = np.nonzero(mask)
    values = ratings[rows, cols]
    if not (values != 0).all():
        raise ValueError(f"{path} is malformed: {name} marks entries where M is 0.")
    return np.stack([rows, cols], axis=1).astype(np.int64), values


@validate_params(
    {"path": [str, os.PathLike, None], "data_home": [str, os.PathLike, None]},
    prefer_skip_nested_validation=True,
)
def load_monti_movielens(
    path: str | os.PathLike | None = None, *, data_home: str | os.PathLike | None = None
) -> Bunch:
    """Load Monti et al.'s MovieLens 100K split with its user and movie graphs.

    Reads ``split_1.mat`` of the ``fmonti/mgcnn`` repository (a MATLAB v7.3 file, read with h5py):
    the rating matrix ``M``, the masks ``Otraining`` / ``Otest`` (the official u1.base / u1.test)
    and the 10-nearest-neighbour graphs ``W_users`` / ``W_movies``.

    Parameters
    ----------
    path : str or path-like, optional
        The ``.mat`` file. Defaults to ``<data_home>/mgcnn/movielens/split_1.mat``.
    data_home : str or path-like, optional
        See :func:`get_data_home`; used only when ``path`` is None.

    Returns
    -------
    Bunch
        - ``train_coords``, ``test_coords`` : int64 (n, 2), 0-based ``(user, movie)``, row-major;
        - ``train_values``, ``test_values`` : float64 (n,), ratings;
        - ``shape`` : ``(n_users, n_items)`` = (943, 1682); ``n_users``, ``n_items``;
        - ``user_adjacency`` (n_users, n_users), ``movie_adjacency`` (n_items, n_items) :
          scipy.sparse.csr_array, symmetric 0/1;
        - ``DESCR`` : str.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ImportError
        If h5py is not installed.
    ValueError
        If the file is not a MATLAB v7.3 file, or lacks or misshapes a variable, or holds NaN
        or infinity, or a sparse variable's parts are inconsistent (column pointers that
        decrease, row indices out of range, lengths that disagree); the message names the file
        and the field. Nothing is built before its parts are checked.
    """
    path = _monti_path(path, data_home)
    ratings, train_mask, test_mask, users, movies = _read_monti(path)
    n_users, n_items = ratings.shape
    train = _masked_ratings(ratings, train_mask, "Otraining", path)
    test = _masked_ratings(ratings, test_mask, "Otest", path)
    return _ratings_bunch(
        train,
        test,
        (n_users, n_items),
        n_users=n_users,
        n_items=n_items,
        user_adjacency=users,
        movie_adjacency=movies,
        DESCR=_MONTI_DESCR,
    )
