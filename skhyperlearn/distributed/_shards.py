"""A tensor's stored entries in shard files, so that each rank reads only its share.

:func:`write_shards` splits a tensor (and its graphs) into a folder: ``manifest.json`` (shape,
number of entries, the shards and their sizes), ``shard-00000.npz``, … (each ``coords``
``(K, n)`` in the narrowest index type and ``values`` ``(n,)``, uncompressed) and
``graph-{k}.npz`` for the modes with a Laplacian (``scipy.sparse.save_npz``). With S shards and
W ranks (S ≥ W), :func:`read_shard` gives rank r the shards ``array_split(range(S), W)[r]``: every
entry on exactly one rank, and no rank opens another's files. The graphs are read on every rank.

Shards are written from a tensor whose repeated coordinates are already summed (a ``sparse.COO``
is): the sharded fit sums partial products over the ranks, and the same coordinate on two ranks
would be two entries.

Without a folder of shards, :func:`read_npy_share` reads a rank's share of one ``.npy`` pair
(``coords`` ``(K, nnz)`` and ``values`` ``(nnz,)``, as ``np.save`` writes a COO's arrays):
both are memory-mapped and only the rank's contiguous entries are copied, so a rank reads its
byte ranges of the files and no other.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sparse

__all__ = [
    "MANIFEST",
    "read_npy_share",
    "read_shard",
    "shard_range",
    "share_tensor",
    "write_shards",
]

#: The file that describes a folder of shards.
MANIFEST = "manifest.json"
_FORMAT = "skhyperlearn-shards"
#: Entries per piece when the order of a rank's entries is checked (bounds the linear index's
#: temporary: 8 bytes per entry of a piece, not of the share).
_ORDER_PIECE = 1 << 20


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s contiguous share of ``n`` items (sizes within 1)."""
    return n * rank // world_size, n * (rank + 1) // world_size


def _index_dtype(shape) -> np.dtype:
    return np.dtype(np.int32) if max(shape) <= np.iinfo(np.int32).max else np.dtype(np.int64)


def _in_order(coords: np.ndarray, shape) -> bool:
    """Whether ``coords`` (``(K, n)``, inside ``shape``) are in row-major order with no
    coordinate twice: a strictly increasing linear index, checked piece by piece."""
    if math.prod(int(s) for s in shape) >= 2**63:
        return False
    last = -1
    for start in range(0, coords.shape[1], _ORDER_PIECE):
        linear = np.ravel_multi_index(tuple(coords[:, start : start + _ORDER_PIECE]), shape)
        if linear[0] <= last or not bool(np.all(linear[1:] > linear[:-1])):
            return False
        last = int(linear[-1])
    return True


def share_tensor(coords: np.ndarray, values: np.ndarray, shape) -> sparse.COO:
    """A ``sparse.COO`` of a rank's entries, ``coords`` ``(K, n)`` inside ``shape``.

    Entries already in row-major order and distinct (what :func:`write_shards` writes and the
    fit's checks produce) are wrapped as they are. ``sparse.COO`` would otherwise check and sort
    them with functions numba compiles in every process (about 50 MiB of compiler memory per
    rank, whatever the share's size) and temporaries of 16 bytes per entry; the fit sorts and
    sums its own input in any case.
    """
    if _in_order(coords, shape):
        return sparse.COO(coords, values, shape=shape, has_duplicates=False, sorted=True)
    return sparse.COO(coords, values, shape=shape, has_duplicates=False, sorted=False)


def write_shards(X, directory: str | os.PathLike, n_shards: int) -> Path:
    """Write ``X`` (a ``sparse.COO`` tensor or a Hypergraph) as ``n_shards`` shard files.

    Parameters
    ----------
    X : sparse.COO or Hypergraph
        The tensor; a Hypergraph's Laplacians are written too.
    directory : path-like
        A folder that does not exist yet, or an empty one.
    n_shards : int
        Number of shard files (at least the number of ranks that will read them).

    Returns
    -------
    Path
        The folder.
    """
    from .._validation import check_tensor

    if isinstance(n_shards, bool) or not isinstance(n_shards, (int, np.integer)) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}.")
    folder = Path(directory)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"directory {str(folder)!r} must be a new or empty folder.")
    data = check_tensor(X, "X")
    n = data.values.shape[0]
    if n_shards > n:
        raise ValueError(f"n_shards={n_shards} is more than the {n} stored entries of X.")
    folder.mkdir(parents=True, exist_ok=True)
    idx = _index_dtype(data.shape)
    shards = []
    for i in range(int(n_shards)):
        start, stop = shard_range(n, i, int(n_shards))
        name = f"shard-{i:05d}.npz"
        coords = np.ascontiguousarray(data.coords[start:stop].T, dtype=idx)
        np.savez(folder / name, coords=coords, values=data.values[start:stop])
        shards.append({"file": name, "nnz": stop - start})
    graphs = []
    for k, lap in enumerate(data.laplacians or [None] * data.order):
        if lap is None:
            graphs.append(None)
            continue
        name = f"graph-{k}.npz"
        sp.save_npz(folder / name, sp.csr_matrix(lap))
        graphs.append(name)
    manifest = {
        "format": _FORMAT, "version": 1, "shape": list(data.shape), "nnz": n,
        "dtype": data.values.dtype.str, "shards": shards, "graphs": graphs,
    }  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{str(folder)!r} holds no {MANIFEST}: not a folder of shards.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a manifest of {_FORMAT} (format field).")
    return manifest


def _load_shard(folder: Path, entry: dict, shape, dtype):
    path = folder / entry["file"]
    with np.load(path, allow_pickle=False) as f:
        coords, values = f["coords"], f["values"]
    if coords.shape != (len(shape), entry["nnz"]) or values.shape != (entry["nnz"],):
        raise ValueError(
            f"{str(path)!r}: coords {coords.shape} and values {values.shape} do not match the "
            f"manifest ({len(shape)} modes, {entry['nnz']} entries)."
        )
    if values.dtype != dtype:
        raise ValueError(f"{str(path)!r}: values of dtype {values.dtype}, manifest says {dtype}.")
    for k, n in enumerate(shape):
        if coords.shape[1] and not (0 <= int(coords[k].min()) and int(coords[k].max()) < n):
            raise ValueError(f"{str(path)!r}: mode {k}'s coordinates are outside [0, {n}).")
    return coords, values


def read_shard(directory: str | os.PathLike, rank: int, world_size: int):
    """Rank ``rank``'s share of the tensor in ``directory``, with the graphs.

    Parameters
    ----------
    directory : path-like
        A folder written by :func:`write_shards`.
    rank : int
        This rank, in ``[0, world_size)``.
    world_size : int
        The number of ranks sharing the shards (at most the number of shards).

    Returns
    -------
    Hypergraph
        The shards ``array_split(range(S), world_size)[rank]`` as one ``sparse.COO`` tensor
        of the whole tensor's shape, and every mode's Laplacian.

    Raises
    ------
    ValueError
        Naming the folder or file: not a folder of shards, a shard that does not match the
        manifest, fewer shards than ``world_size``, or ``rank`` out of range.
    """
    if not (0 <= rank < world_size):
        raise ValueError(f"rank={rank} is not in [0, world_size={world_size}).")
    from ..hypergraph import Hypergraph

    folder = Path(directory)
    manifest = _manifest(folder)
    shape = tuple(int(s) for s in manifest["shape"])
    entries = manifest["shards"]
    if len(entries) < world_size:
        raise ValueError(
            f"{str(folder)!r} holds {len(entries)} shards, fewer than the {world_size} ranks: "
            "write at least one shard per rank (write_shards(X, folder, n_shards))."
        )
    mine = np.array_split(np.arange(len(entries)), world_size)[rank]
    dtype = np.dtype(manifest["dtype"])
    parts = [_load_shard(folder, entries[i], shape, dtype) for i in mine]
    if len(parts) == 1:
        coords, values = parts[0]
    else:
        coords = np.concatenate([c for c, _ in parts], axis=1)
        values = np.concatenate([v for _, v in parts])
        del parts
    tensor = share_tensor(coords, values, shape)
    graphs = [
        None if name is None else sp.csr_array(sp.load_npz(folder / name))
        for name in manifest["graphs"]
    ]
    return Hypergraph(tensor, graphs if any(g is not None for g in graphs) else None)


def _mapped(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} {str(path)!r} is not a readable .npy file: {exc}") from exc


def _check_pair(coords: np.ndarray, values: np.ndarray, shape, paths) -> None:
    where = f"coords {str(paths[0])!r} and values {str(paths[1])!r}"
    if coords.ndim != 2 or coords.shape[0] != len(shape) or coords.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: coords must be integers of shape (K={len(shape)}, nnz) for shape "
            f"{tuple(shape)}, got {coords.dtype} of shape {coords.shape}."
        )
    if values.ndim != 1 or values.shape[0] != coords.shape[1]:
        raise ValueError(
            f"{where}: values must be 1-D with one value per entry ({coords.shape[1]}), got "
            f"shape {values.shape}."
        )
    if values.dtype.kind != "f":
        raise ValueError(f"{where}: values must be floating point, got {values.dtype}.")


def read_npy_share(
    coords: str | os.PathLike, values: str | os.PathLike, shape, rank: int, world_size: int,
    laplacians=None,
):  # fmt: skip
    """Rank ``rank``'s contiguous share of the entries stored in one ``.npy`` pair.

    Parameters
    ----------
    coords : path-like
        A ``.npy`` file of integer coordinates, shape ``(K, nnz)`` (``np.save(path, X.coords)``
        of a ``sparse.COO`` ``X``).
    values : path-like
        A ``.npy`` file of the ``nnz`` floating values, in the same order.
    shape : sequence of int
        The whole tensor's shape.
    rank : int
        This rank, in ``[0, world_size)``.
    world_size : int
        The number of ranks sharing the entries (at most nnz).
    laplacians : list, optional
        The graphs of the modes (every rank holds them), as a Hypergraph takes them.

    Returns
    -------
    Hypergraph
        Entries ``shard_range(nnz, rank, world_size)`` as a ``sparse.COO`` of ``shape``.

    Raises
    ------
    ValueError
        Naming the files: not ``.npy``, coordinates not ``(K, nnz)`` integers, values not one
        float per entry, coordinates of the share outside ``shape``; or ``rank`` out of range,
        or more ranks than entries.
    """
    from ..hypergraph import Hypergraph

    if not (0 <= rank < world_size):
        raise ValueError(f"rank={rank} is not in [0, world_size={world_size}).")
    shape = tuple(int(s) for s in shape)
    paths = (Path(coords), Path(values))
    coords_map, values_map = _mapped(paths[0], "coords"), _mapped(paths[1], "values")
    _check_pair(coords_map, values_map, shape, paths)
    n = coords_map.shape[1]
    if world_size > n:
        raise ValueError(f"{world_size} ranks share {n} entries: at most one rank per entry.")
    start, stop = shard_range(n, rank, world_size)
    # Copies of the rank's entries only: the maps read no page outside them.
    mine = np.array(coords_map[:, start:stop], dtype=_index_dtype(shape))
    vals = np.array(values_map[start:stop])
    del coords_map, values_map
    for k, size in enumerate(shape):
        if stop > start and not (0 <= int(mine[k].min()) and int(mine[k].max()) < size):
            raise ValueError(
                f"coords {str(paths[0])!r}: mode {k}'s coordinates of entries {start}–{stop} "
                f"are outside [0, {size})."
            )
    return Hypergraph(share_tensor(mine, vals, shape), laplacians)
